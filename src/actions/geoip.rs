//! `event.request.geoip` (CONTRACT §11): the client address looked up in a MaxMind DB file
//! (`[actions] geoip_database`, a GeoIP2 or GeoLite2 City database; a Country database fills the
//! country fields only), through the `maxminddb` crate. The file is read whole into memory once per version; a lookup decodes only the fields
//! the event carries. An address the database does not know gives no `geoip` (`undefined` to the
//! Action, never an invented place).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;

use maxminddb::geoip2::City;
use serde_json::{Map, Value};

/// An opened City database.
pub struct GeoIp {
    reader: maxminddb::Reader<Vec<u8>>,
}

impl GeoIp {
    /// Reads and checks `path`; the message says why it cannot serve.
    pub fn open(path: &Path) -> Result<Self, String> {
        let reader = maxminddb::Reader::open_readfile(path).map_err(|e| e.to_string())?;
        Ok(Self { reader })
    }

    /// `event.request.geoip` for `ip` (text as the proxy and the replay carry it): the fields of
    /// CONTRACT §11 the database has for it, names in English; `None` when it has none.
    pub fn lookup(&self, ip: &str) -> Option<Value> {
        let ip: IpAddr = ip.parse().ok()?;
        let city: City = match self.reader.lookup(ip) {
            Ok(found) => found?,
            Err(error) => {
                tracing::warn!(%error, "GeoIP lookup failed");
                return None;
            }
        };
        let mut geoip = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(value) = value {
                geoip.insert(key.into(), value);
            }
        };
        let country = city.country.as_ref();
        put("countryCode", country.and_then(|c| c.iso_code).map(Value::from));
        put("countryName", english(country.and_then(|c| c.names.as_ref())).map(Value::from));
        let subdivision = city.subdivisions.as_ref().and_then(|s| s.first());
        put("subdivisionCode", subdivision.and_then(|s| s.iso_code).map(Value::from));
        put("cityName", english(city.city.as_ref().and_then(|c| c.names.as_ref())).map(Value::from));
        let location = city.location.as_ref();
        put("latitude", location.and_then(|l| l.latitude).map(Value::from));
        put("longitude", location.and_then(|l| l.longitude).map(Value::from));
        put("timeZone", location.and_then(|l| l.time_zone).map(Value::from));
        put("continentCode", city.continent.as_ref().and_then(|c| c.code).map(Value::from));
        (!geoip.is_empty()).then_some(Value::Object(geoip))
    }
}

/// The English name of a place, when the database has one.
fn english<'a>(names: Option<&BTreeMap<&'a str, &'a str>>) -> Option<&'a str> {
    names?.get("en").copied()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use maxminddb_writer::paths::IpAddrWithMask;
    use serde_json::json;

    /// A City database written here (MaxMind's own test files cannot be fetched in CI): one
    /// record for 127.0.0.0/8 and one, with a country only, for 192.0.2.0/24.
    pub fn city_database() -> Vec<u8> {
        let mut database = maxminddb_writer::Database::default();
        database.metadata.database_type = "GeoLite2-City".into();
        let wellington = json!({
            "city": {"geoname_id": 2179537, "names": {"en": "Wellington", "de": "Wellington"}},
            "continent": {"code": "OC", "geoname_id": 6255151, "names": {"en": "Oceania"}},
            "country": {"geoname_id": 2186224, "iso_code": "NZ", "names": {"en": "New Zealand", "fr": "Nouvelle-Zélande"}},
            "location": {"accuracy_radius": 20, "latitude": -41.2866, "longitude": 174.7756, "time_zone": "Pacific/Auckland"},
            "subdivisions": [{"geoname_id": 2179538, "iso_code": "WGN", "names": {"en": "Wellington Region"}}],
        });
        let record = database.insert_value(wellington).unwrap();
        database.insert_node("127.0.0.0/8".parse::<IpAddrWithMask>().unwrap(), record);
        let country_only = database.insert_value(json!({"country": {"iso_code": "CH"}})).unwrap();
        database.insert_node("192.0.2.0/24".parse::<IpAddrWithMask>().unwrap(), country_only);
        database.write_to(Vec::new()).unwrap()
    }

    fn opened() -> (tempfile::TempDir, GeoIp) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("city.mmdb");
        std::fs::write(&path, city_database()).unwrap();
        let geoip = GeoIp::open(&path).unwrap();
        (dir, geoip)
    }

    #[test]
    fn the_contract_fields_in_english() {
        let (_dir, geoip) = opened();
        assert_eq!(
            geoip.lookup("127.0.0.1"),
            Some(json!({
                "countryCode": "NZ", "countryName": "New Zealand", "subdivisionCode": "WGN",
                "cityName": "Wellington", "latitude": -41.2866, "longitude": 174.7756,
                "timeZone": "Pacific/Auckland", "continentCode": "OC",
            }))
        );
        assert_eq!(geoip.lookup("192.0.2.77"), Some(json!({"countryCode": "CH"})));
    }

    #[test]
    fn unknown_addresses_have_no_geoip() {
        let (_dir, geoip) = opened();
        assert_eq!(geoip.lookup("198.51.100.1"), None);
        assert_eq!(geoip.lookup("not an address"), None);
    }

    #[test]
    fn a_broken_file_is_refused_and_another_kind_of_database_places_nobody() {
        let dir = tempfile::tempdir().unwrap();
        let broken = dir.path().join("broken.mmdb");
        std::fs::write(&broken, b"not a database").unwrap();
        assert!(GeoIp::open(&broken).is_err());
        assert!(GeoIp::open(&dir.path().join("missing.mmdb")).is_err());
        let mut database = maxminddb_writer::Database::default();
        database.metadata.database_type = "GeoLite2-ASN".into();
        let record = database.insert_value(json!({"autonomous_system_number": 64496})).unwrap();
        database.insert_node("127.0.0.0/8".parse::<IpAddrWithMask>().unwrap(), record);
        let asn = dir.path().join("asn.mmdb");
        std::fs::write(&asn, database.write_to(Vec::new()).unwrap()).unwrap();
        assert_eq!(GeoIp::open(&asn).unwrap().lookup("127.0.0.1"), None);
    }
}
