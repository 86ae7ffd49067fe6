//! Writing records (JSON lines, one JSON array, or a table) and the closing summary.
//!
//! A JSON record is written field by field into one reused line buffer: the same bytes
//! `serde_json` writes for a [`Record`], without its generic map machinery (`#[serde(flatten)]`)
//! and without an escaping pass over strings that need none. Most of a record is fingerprint text,
//! and on a capture of handshakes the output is most of the work.

use std::io::{self, Write};
use std::net::IpAddr;

use serde_json::ser::{CompactFormatter, Formatter};

use super::replay::{Record, Summary};

/// The `--format` of `helloguard replay`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    /// One JSON object per line (the default: streams, and greps well).
    #[default]
    Jsonl,
    /// One JSON array of every record.
    Json,
    /// Aligned columns for people: stream, endpoints, hello, SNI, JA4, JA3 (and with `--decide`:
    /// decision, reason, session key, stored value).
    Table,
}

impl std::str::FromStr for Format {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "jsonl" => Ok(Format::Jsonl),
            "json" => Ok(Format::Json),
            "table" => Ok(Format::Table),
            other => Err(format!("unknown format {other:?}, expected jsonl, json or table")),
        }
    }
}

/// Writes records in one format as they arrive.
pub struct RecordWriter<W: Write> {
    out: W,
    format: Format,
    written: u64,
    /// One JSON record at a time.
    line: Vec<u8>,
}

impl<W: Write> RecordWriter<W> {
    pub fn new(out: W, format: Format) -> Self {
        Self { out, format, written: 0, line: Vec::new() }
    }

    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        match self.format {
            Format::Jsonl => {
                self.line.clear();
                json_record(&mut self.line, record)?;
                self.line.push(b'\n');
                self.out.write_all(&self.line)?;
            }
            Format::Json => {
                self.line.clear();
                self.line.extend_from_slice(if self.written == 0 { b"[\n" } else { b",\n" });
                json_record(&mut self.line, record)?;
                self.out.write_all(&self.line)?;
            }
            Format::Table => {
                if self.written == 0 {
                    write!(
                        self.out,
                        "{:<24} {:>6} {:<4} {:<45} {:<45} {:>1} {:<32} {:<36} ja3",
                        "pcap", "stream", "tr", "src", "dst", "#", "sni", "ja4"
                    )?;
                    if record.decided.is_some() {
                        // ja3 is always 32 characters.
                        write!(self.out, "{:29} {:<9} {:<20} {:<45} stored", "", "decision", "reason", "session_key")?;
                    }
                    writeln!(self.out)?;
                }
                let transport = serde_json::to_value(record.transport).unwrap_or_default();
                write!(
                    self.out,
                    "{:<24} {:>6} {:<4} {:<45} {:<45} {:>1} {:<32} {:<36} {}",
                    record.pcap,
                    record.stream,
                    transport.as_str().unwrap_or_default(),
                    format!("{}:{}", record.src, record.src_port),
                    format!("{}:{}", record.dst, record.dst_port),
                    record.hello_index,
                    record.sni.as_deref().unwrap_or("-"),
                    record.fingerprints.ja4,
                    record.fingerprints.ja3,
                )?;
                if let Some(decided) = &record.decided {
                    write!(
                        self.out,
                        " {:<9} {:<20} {:<45} {}",
                        decided.decision.as_str(),
                        decided.reason.to_string(),
                        decided.session_key.as_deref().unwrap_or("-"),
                        decided.stored.as_deref().unwrap_or("-"),
                    )?;
                }
                writeln!(self.out)?;
            }
        }
        self.written += 1;
        Ok(())
    }

    /// Close the output (the JSON array's bracket) and flush.
    pub fn finish(mut self) -> io::Result<()> {
        if self.format == Format::Json {
            self.out.write_all(if self.written == 0 { b"[]\n" } else { b"\n]\n" })?;
        }
        self.out.flush()
    }
}

/// `record` as `serde_json` would write it, appended to `buf`. Numbers go through `serde_json`'s
/// own formatter (the same digits), addresses and strings are written directly.
fn json_record(buf: &mut Vec<u8>, record: &Record) -> io::Result<()> {
    if record.decided.is_some() {
        // `--decide` is not the fast path: let serde write its fields.
        return Ok(serde_json::to_writer(buf, record)?);
    }
    let mut number = CompactFormatter;
    buf.extend_from_slice(b"{\"pcap\":");
    json_str(buf, &record.pcap);
    buf.extend_from_slice(b",\"stream\":");
    number.write_u64(buf, record.stream)?;
    buf.extend_from_slice(b",\"transport\":");
    serde_json::to_writer(&mut *buf, &record.transport)?;
    buf.extend_from_slice(b",\"src\":\"");
    ip(buf, record.src)?;
    buf.extend_from_slice(b"\",\"dst\":\"");
    ip(buf, record.dst)?;
    buf.extend_from_slice(b"\",\"src_port\":");
    number.write_u16(buf, record.src_port)?;
    buf.extend_from_slice(b",\"dst_port\":");
    number.write_u16(buf, record.dst_port)?;
    buf.extend_from_slice(b",\"timestamp\":");
    if record.timestamp.is_finite() {
        number.write_f64(buf, record.timestamp)?;
    } else {
        buf.extend_from_slice(b"null");
    }
    buf.extend_from_slice(b",\"hello_index\":");
    number.write_u8(buf, record.hello_index)?;
    for (name, value) in [("sni", &record.sni), ("alpn", &record.alpn)] {
        if let Some(value) = value {
            field_name(buf, name);
            json_str(buf, value);
        }
    }
    let f = &record.fingerprints;
    let fingerprints = [
        ("ja3", f.ja3.as_bytes()),
        ("ja3_full", f.ja3_full.as_bytes()),
        ("ja3n", f.ja3n.as_bytes()),
        ("ja4", f.ja4.as_bytes()),
        ("ja4_r", f.ja4_r.as_bytes()),
        ("ja4_o", f.ja4_o.as_bytes()),
        ("ja4_ro", f.ja4_ro.as_bytes()),
        ("ja4_stable", f.ja4_stable.as_bytes()),
    ];
    for (name, value) in fingerprints {
        // Fingerprints are made of digits, hex, `,`, `-`, `_` and ALPN code characters
        // (alphanumeric or hex): never anything JSON escapes.
        field_name(buf, name);
        buf.push(b'"');
        buf.extend_from_slice(value);
        buf.push(b'"');
    }
    buf.push(b'}');
    Ok(())
}

/// `,"name":`
fn field_name(buf: &mut Vec<u8>, name: &str) {
    buf.extend_from_slice(b",\"");
    buf.extend_from_slice(name.as_bytes());
    buf.extend_from_slice(b"\":");
}

/// An address as `Display` writes it: IPv4 directly (the common case), IPv6 through `Display`.
fn ip(buf: &mut Vec<u8>, addr: IpAddr) -> io::Result<()> {
    match addr {
        IpAddr::V4(v4) => {
            for (i, octet) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    buf.push(b'.');
                }
                CompactFormatter.write_u8(buf, octet)?;
            }
            Ok(())
        }
        IpAddr::V6(v6) => write!(buf, "{v6}"),
    }
}

/// A JSON string. Only control characters, `"` and `\` are escaped in JSON (as `serde_json` does):
/// a string with none of them is written as it is.
fn json_str(buf: &mut Vec<u8>, value: &str) {
    let plain = value.bytes().fold(true, |plain, b| plain & (b >= 0x20) & (b != b'"') & (b != b'\\'));
    if plain {
        buf.push(b'"');
        buf.extend_from_slice(value.as_bytes());
        buf.push(b'"');
    } else {
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(buf, value);
    }
}

/// The closing summary, for stderr.
pub fn write_summary(out: &mut dyn Write, summary: &Summary) -> io::Result<()> {
    writeln!(
        out,
        "replay: {} files, {} packets ({} bytes), {} flows, {} hellos",
        summary.files, summary.packets, summary.bytes, summary.flows, summary.hellos
    )?;
    if !summary.skipped.is_empty() {
        let parts: Vec<String> = summary.skipped.iter().map(|(reason, n)| format!("{reason} {n}")).collect();
        writeln!(out, "replay: skipped: {}", parts.join(", "))?;
    }
    if !summary.decisions.is_empty() {
        let parts: Vec<String> = summary.decisions.iter().map(|(decision, n)| format!("{decision} {n}")).collect();
        writeln!(out, "replay: decisions: {}", parts.join(", "))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fingerprint::{self, AlpnMode};
    use crate::hello::{ClientHello, Transport};

    fn record(pcap: &str, sni: Option<&str>, alpn: Option<&str>, src: &str) -> Record {
        let stream = include_bytes!("../../pcaps/hellos/curl.bin");
        let hello = ClientHello::parse(&stream[5..], Transport::Tcp).unwrap();
        Record {
            pcap: pcap.into(),
            stream: 7,
            transport: Transport::Quic,
            src: src.parse().unwrap(),
            dst: "10.0.0.2".parse().unwrap(),
            src_port: 51234,
            dst_port: 443,
            timestamp: 1_700_000_000.000_123,
            hello_index: 2,
            sni: sni.map(Into::into),
            alpn: alpn.map(Into::into),
            fingerprints: fingerprint::all(&hello, Transport::Quic, AlpnMode::Spec),
            decided: None,
        }
    }

    #[test]
    fn json_records_are_what_serde_writes() {
        let records = [
            record("plain.pcap", Some("example.com"), Some("h2"), "10.0.0.1"),
            record("odd \"name\"\\.pcap", Some("quo\"te\\back\u{1}ctl\u{7f}é"), None, "2001:db8::1"),
            record("", None, Some("\n"), "::ffff:10.0.0.1"),
            record("v4.pcap", None, None, "192.0.2.255"),
            record("v4.pcap", None, None, "0.0.0.0"),
        ];
        for format in [Format::Jsonl, Format::Json] {
            let mut ours = RecordWriter::new(Vec::new(), format);
            for r in &records {
                ours.write(r).unwrap();
            }
            let ours = String::from_utf8(ours.out.clone()).unwrap();
            let serde: Vec<String> = records.iter().map(|r| serde_json::to_string(r).unwrap()).collect();
            let expected = match format {
                Format::Jsonl => serde.iter().map(|line| format!("{line}\n")).collect::<String>(),
                _ => format!("[\n{}", serde.join(",\n")),
            };
            assert_eq!(ours, expected);
        }
    }
}
