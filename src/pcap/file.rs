//! Capture files: pcap (either byte order, µs or ns) and pcapng (several sections and interfaces,
//! each with its own link type and timestamp resolution), read as a stream.
//!
//! `pcap-file` parses the formats; this module owns the buffer it parses from. The file is read in
//! chunks into one buffer that grows only to the largest record, up to [`MAX_BUFFERED`], so a
//! capture of any size is read in constant memory, and every error can name the byte offset where
//! the bad record starts. A larger record is read past without being kept, and counted
//! ([`CaptureReader::oversized`]); only a pcapng section or interface header that large is an
//! error. A record cut short by the end of the file is reported as [`FileError::Truncated`]; the
//! frames before it have been returned already.

use std::io::{self, Read};
use std::time::Duration;

use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{Endianness, PcapError, TsResolution};

/// The initial buffer, and so the read size: large enough for throughput, small enough that
/// replaying many small files (or fuzzing) does not spend its time zeroing memory.
const CHUNK: usize = 256 << 10;
/// The largest record read into memory. libpcap's own snapshot limit is 256 KiB; pcapng blocks may
/// hold options too, so allow well past that. Larger records (a huge decryption-secrets block, or a
/// corrupt length) are skipped.
pub const MAX_BUFFERED: usize = 1 << 20;
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const PCAPNG_INTERFACE_DESCRIPTION: u32 = 1;
const PCAP_RECORD_HEADER_LEN: usize = 16;

/// Why a capture stopped being read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("read error at byte {offset}: {source}")]
    Io { offset: u64, source: io::Error },
    #[error("not a pcap or pcapng file (first bytes {magic})")]
    UnknownFormat { magic: String },
    #[error("invalid {what} at byte {offset}: {reason}")]
    Invalid { what: &'static str, offset: u64, reason: String },
    #[error("record at byte {offset} is cut short by the end of the file ({missing} more bytes expected)")]
    Truncated { offset: u64, missing: String },
    #[error("pcapng header block at byte {offset} declares more than {MAX_BUFFERED} bytes")]
    TooLarge { offset: u64 },
}

/// One captured frame.
#[derive(Debug)]
pub struct Frame<'a> {
    /// The LINKTYPE_ value of the interface the frame was captured on.
    pub link: u32,
    /// Capture time since the Unix epoch.
    pub timestamp: Duration,
    pub data: &'a [u8],
}

/// One pcapng interface: its link type and timestamp unit.
#[derive(Clone, Copy, Debug)]
struct Interface {
    link: u32,
    tick: Tick,
}

/// A pcapng timestamp unit (`if_tsresol`): 10^-n or 2^-n seconds.
#[derive(Clone, Copy, Debug)]
enum Tick {
    Decimal(u8),
    Binary(u8),
}

impl Tick {
    fn from_option(v: u8) -> Self {
        if v & 0x80 == 0 {
            Tick::Decimal(v)
        } else {
            Tick::Binary(v & 0x7f)
        }
    }

    fn to_duration(self, ticks: u64) -> Duration {
        let nanos = match self {
            Tick::Decimal(n) if n <= 9 => u128::from(ticks) * 10u128.pow(u32::from(9 - n)),
            Tick::Decimal(n) => u128::from(ticks) / 10u128.pow(u32::from(n.min(38) - 9)),
            Tick::Binary(n) => (u128::from(ticks) * 1_000_000_000) >> n.min(127),
        };
        let secs = u64::try_from(nanos / 1_000_000_000).unwrap_or(u64::MAX);
        Duration::new(secs, (nanos % 1_000_000_000) as u32)
    }
}

enum Format {
    Pcap { parser: PcapParser, link: u32, nanos: bool },
    PcapNg { parser: PcapNgParser, interfaces: Vec<Interface> },
}

/// A parsed record: bytes used, and for a packet where its data lies in them.
struct Parsed {
    used: usize,
    packet: Option<PacketAt>,
}

struct PacketAt {
    at: usize,
    len: usize,
    link: u32,
    timestamp: Duration,
}

/// The position of `data` inside `within` (both borrowed from the same buffer), so a frame can
/// be handed out after the parser's borrow of the buffer ends.
fn position(within: &[u8], data: &[u8]) -> (usize, usize) {
    let at = (data.as_ptr() as usize).wrapping_sub(within.as_ptr() as usize);
    (at, data.len())
}

/// A streaming reader over one capture; see the module docs.
pub struct CaptureReader<R> {
    source: R,
    buf: Vec<u8>,
    /// Unparsed bytes are `buf[start..end]`; `buf[start]` is at file offset `offset`.
    start: usize,
    end: usize,
    offset: u64,
    eof: bool,
    format: Option<Format>,
    oversized: u64,
}

impl<R: Read> CaptureReader<R> {
    /// Read the file header (or first section header) and detect the format.
    pub fn new(source: R) -> Result<Self, FileError> {
        let mut reader =
            Self { source, buf: vec![0; CHUNK], start: 0, end: 0, offset: 0, eof: false, format: None, oversized: 0 };
        loop {
            let bytes = &reader.buf[reader.start..reader.end];
            let parsed = if bytes.starts_with(&PCAPNG_MAGIC) {
                PcapNgParser::new(bytes)
                    .map(|(rest, parser)| (bytes.len() - rest.len(), Format::PcapNg { parser, interfaces: Vec::new() }))
            } else if bytes.len() >= 4 || reader.eof {
                PcapParser::new(bytes).map(|(rest, parser)| {
                    let header = parser.header();
                    let nanos = header.ts_resolution == TsResolution::NanoSecond;
                    (bytes.len() - rest.len(), Format::Pcap { link: u32::from(header.datalink), parser, nanos })
                })
            } else {
                Err(PcapError::IncompleteBuffer)
            };
            match parsed {
                Ok((used, format)) => {
                    reader.format = Some(format);
                    reader.advance(used);
                    return Ok(reader);
                }
                Err(PcapError::IncompleteBuffer) if !reader.eof => reader.fill()?,
                Err(_) => {
                    let magic = hex::encode(bytes.get(..4).unwrap_or(bytes));
                    return Err(FileError::UnknownFormat { magic });
                }
            }
        }
    }

    /// Bytes consumed so far (the file offset of the next record).
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Records skipped so far for being larger than [`MAX_BUFFERED`].
    pub fn oversized(&self) -> u64 {
        self.oversized
    }

    fn advance(&mut self, used: usize) {
        self.start += used;
        self.offset += used as u64;
    }

    /// Read more of the file, first moving the unparsed bytes to the front, growing the buffer
    /// only when one record does not fit.
    fn fill(&mut self) -> Result<(), FileError> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            if self.buf.len() >= MAX_BUFFERED {
                return self.skip_record();
            }
            self.buf.resize((self.buf.len() * 2).min(MAX_BUFFERED), 0);
        }
        let n = self.read_into(self.end..self.buf.len())?;
        self.end += n;
        self.eof = n == 0;
        Ok(())
    }

    /// Read once into `buf[range]`; 0 at the end of the file.
    fn read_into(&mut self, range: std::ops::Range<usize>) -> Result<usize, FileError> {
        loop {
            match self.source.read(&mut self.buf[range.clone()]) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    let offset = self.offset + (self.end - self.start) as u64;
                    return Err(FileError::Io { offset, source });
                }
            }
        }
    }

    /// The record at the front fills the whole buffer: read past the rest of it without keeping it.
    fn skip_record(&mut self) -> Result<(), FileError> {
        let record_offset = self.offset;
        let header_block = match &self.format {
            Some(Format::PcapNg { parser, .. }) => {
                let kind = self.buf.get(self.start..self.start + 4).unwrap_or_default();
                let kind = read_u32(kind, parser.section().endianness);
                kind == Some(u32::from_be_bytes(PCAPNG_MAGIC)) || kind == Some(PCAPNG_INTERFACE_DESCRIPTION)
            }
            _ => false,
        };
        let declared = self.declared_len().filter(|_| !header_block);
        let declared = declared.ok_or(FileError::TooLarge { offset: record_offset })?;
        let mut remaining = declared.saturating_sub(self.end - self.start);
        self.advance(self.end - self.start);
        (self.start, self.end) = (0, 0);
        while remaining > 0 {
            let n = self.read_into(0..remaining.min(self.buf.len()))?;
            if n == 0 {
                self.eof = true;
                return Err(FileError::Truncated { offset: record_offset, missing: remaining.to_string() });
            }
            remaining -= n;
            self.offset += n as u64;
        }
        self.oversized += 1;
        Ok(())
    }

    /// The next frame, `None` at a clean end of file.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, FileError> {
        loop {
            let bytes = &self.buf[self.start..self.end];
            let result = match &mut self.format {
                Some(Format::Pcap { parser, link, nanos }) => pcap_record(parser, *link, *nanos, bytes),
                Some(Format::PcapNg { parser, interfaces }) => pcapng_block(parser, interfaces, bytes),
                None => return Ok(None),
            };
            match result {
                Ok(Parsed { used, packet }) => {
                    let start = self.start;
                    self.advance(used);
                    let Some(p) = packet else { continue };
                    let data = self.buf.get(start + p.at..start + p.at + p.len).unwrap_or_default();
                    return Ok(Some(Frame { link: p.link, timestamp: p.timestamp, data }));
                }
                Err(PcapError::IncompleteBuffer) if !self.eof => self.fill()?,
                Err(PcapError::IncompleteBuffer) if self.start == self.end => return Ok(None),
                Err(PcapError::IncompleteBuffer) => {
                    return Err(FileError::Truncated { offset: self.offset, missing: self.missing() });
                }
                Err(e) => {
                    let what = match self.format {
                        Some(Format::PcapNg { .. }) => "pcapng block",
                        _ => "pcap packet record",
                    };
                    return Err(FileError::Invalid { what, offset: self.offset, reason: e.to_string() });
                }
            }
        }
    }

    /// How many bytes the cut record still needed, when its header says so.
    fn missing(&self) -> String {
        let have = self.end - self.start;
        self.declared_len().map_or_else(|| "some".into(), |declared| declared.saturating_sub(have).to_string())
    }

    /// The whole length of the record at the front, as its header declares it.
    fn declared_len(&self) -> Option<usize> {
        let bytes = self.buf.get(self.start..self.end).unwrap_or_default();
        let (field, endianness, extra) = match &self.format {
            Some(Format::Pcap { parser, .. }) => {
                (bytes.get(8..12)?, parser.header().endianness, PCAP_RECORD_HEADER_LEN)
            }
            Some(Format::PcapNg { parser, .. }) => (bytes.get(4..8)?, parser.section().endianness, 0),
            None => return None,
        };
        Some(read_u32(field, endianness)? as usize + extra)
    }
}

fn read_u32(bytes: &[u8], endianness: Endianness) -> Option<u32> {
    let bytes: [u8; 4] = bytes.try_into().ok()?;
    Some(match endianness {
        Endianness::Big => u32::from_be_bytes(bytes),
        Endianness::Little => u32::from_le_bytes(bytes),
    })
}

fn pcap_record(parser: &PcapParser, link: u32, nanos: bool, bytes: &[u8]) -> Result<Parsed, PcapError> {
    // The raw record: pcap-file's checked form refuses orig_len > snaplen, which real captures have.
    let (rest, packet) = parser.next_raw_packet(bytes)?;
    let frac = u64::from(packet.ts_frac) * if nanos { 1 } else { 1000 };
    let timestamp = Duration::from_secs(u64::from(packet.ts_sec)) + Duration::from_nanos(frac);
    let (at, len) = position(bytes, &packet.data);
    Ok(Parsed { used: bytes.len() - rest.len(), packet: Some(PacketAt { at, len, link, timestamp }) })
}

fn pcapng_block(parser: &mut PcapNgParser, interfaces: &mut Vec<Interface>, bytes: &[u8]) -> Result<Parsed, PcapError> {
    let (rest, block) = parser.next_block(bytes)?;
    let used = bytes.len() - rest.len();
    let iface = |id: u32| interfaces.get(id as usize).copied().ok_or(PcapError::InvalidInterfaceId(id));
    let packet = match &block {
        Block::SectionHeader(_) => {
            interfaces.clear();
            None
        }
        Block::InterfaceDescription(idb) => {
            let tick = idb.options.iter().find_map(|o| match o {
                InterfaceDescriptionOption::IfTsResol(v) => Some(Tick::from_option(*v)),
                _ => None,
            });
            interfaces.push(Interface { link: u32::from(idb.linktype), tick: tick.unwrap_or(Tick::Decimal(6)) });
            None
        }
        Block::EnhancedPacket(epb) => {
            let i = iface(epb.interface_id)?;
            // pcap-file stores the raw tick count as if it were nanoseconds; rescale it.
            let ticks = u64::try_from(epb.timestamp.as_nanos()).unwrap_or(u64::MAX);
            Some((position(bytes, &epb.data), i.link, i.tick.to_duration(ticks)))
        }
        Block::Packet(pb) => {
            let i = iface(u32::from(pb.interface_id))?;
            Some((position(bytes, &pb.data), i.link, i.tick.to_duration(pb.timestamp)))
        }
        Block::SimplePacket(spb) => Some((position(bytes, &spb.data), iface(0)?.link, Duration::ZERO)),
        _ => None,
    };
    let packet = packet.map(|((at, len), link, timestamp)| PacketAt { at, len, link, timestamp });
    Ok(Parsed { used, packet })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcap_file(big_endian: bool, nanos: bool, packets: &[(u32, u32, &[u8])]) -> Vec<u8> {
        let u32b = |v: u32| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let u16b = |v: u16| {
            if big_endian {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        let mut f = Vec::new();
        f.extend_from_slice(&u32b(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 }));
        f.extend_from_slice(&u16b(2));
        f.extend_from_slice(&u16b(4));
        f.extend_from_slice(&[0; 8]);
        f.extend_from_slice(&u32b(65535));
        f.extend_from_slice(&u32b(101));
        for (secs, frac, data) in packets {
            for v in [*secs, *frac, data.len() as u32, data.len() as u32] {
                f.extend_from_slice(&u32b(v));
            }
            f.extend_from_slice(data);
        }
        f
    }

    fn block(kind: u32, body: &[u8]) -> Vec<u8> {
        let len = (12 + body.len().div_ceil(4) * 4) as u32;
        let mut b = kind.to_le_bytes().to_vec();
        b.extend_from_slice(&len.to_le_bytes());
        b.extend_from_slice(body);
        b.resize(len as usize - 4, 0);
        b.extend_from_slice(&len.to_le_bytes());
        b
    }

    fn shb() -> Vec<u8> {
        let mut body = 0x1a2b_3c4du32.to_le_bytes().to_vec();
        body.extend_from_slice(&[1, 0, 0, 0]);
        body.extend_from_slice(&(-1i64).to_le_bytes());
        block(0x0a0d_0d0a, &body)
    }

    fn idb(link: u16, tsresol: Option<u8>) -> Vec<u8> {
        let mut body = link.to_le_bytes().to_vec();
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&65535u32.to_le_bytes());
        if let Some(r) = tsresol {
            body.extend_from_slice(&[9, 0, 1, 0, r, 0, 0, 0, 0, 0, 0, 0]);
        }
        block(1, &body)
    }

    fn epb(iface: u32, ticks: u64, data: &[u8]) -> Vec<u8> {
        let mut body = iface.to_le_bytes().to_vec();
        body.extend_from_slice(&((ticks >> 32) as u32).to_le_bytes());
        body.extend_from_slice(&(ticks as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(&(data.len() as u32).to_le_bytes());
        body.extend_from_slice(data);
        block(6, &body)
    }

    /// Link type, timestamp and data of each frame read.
    type Frames = Vec<(u32, Duration, Vec<u8>)>;

    fn frames(bytes: &[u8]) -> (Frames, Option<FileError>) {
        let mut reader = CaptureReader::new(bytes).unwrap();
        let mut out = Vec::new();
        loop {
            match reader.next_frame() {
                Ok(Some(f)) => out.push((f.link, f.timestamp, f.data.to_vec())),
                Ok(None) => return (out, None),
                Err(e) => return (out, Some(e)),
            }
        }
    }

    #[test]
    fn pcap_byte_orders_and_resolutions() {
        for big_endian in [false, true] {
            for nanos in [false, true] {
                let file = pcap_file(big_endian, nanos, &[(10, 500, b"abc"), (11, 0, b"")]);
                let (got, err) = frames(&file);
                assert!(err.is_none());
                let frac = Duration::from_nanos(if nanos { 500 } else { 500_000 });
                assert_eq!(got[0], (101, Duration::from_secs(10) + frac, b"abc".to_vec()));
                assert_eq!(got[1].2, b"");
            }
        }
    }

    #[test]
    fn pcapng_sections_interfaces_and_resolutions() {
        let mut file = shb();
        file.extend(idb(1, None));
        file.extend(idb(101, Some(9)));
        file.extend(epb(1, 1_500_000_000, b"ns"));
        file.extend(epb(0, 2_000_000, b"us"));
        // A second section forgets the first one's interfaces.
        file.extend(shb());
        file.extend(idb(113, Some(0x80 | 10)));
        file.extend(epb(0, 3 * 1024, b"binary"));
        let (got, err) = frames(&file);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(got[0], (101, Duration::from_millis(1500), b"ns".to_vec()));
        assert_eq!(got[1], (1, Duration::from_secs(2), b"us".to_vec()));
        assert_eq!(got[2], (113, Duration::from_secs(3), b"binary".to_vec()));
        file.extend(epb(1, 0, b"no such interface"));
        let (_, err) = frames(&file);
        assert!(matches!(err, Some(FileError::Invalid { .. })), "{err:?}");
    }

    #[test]
    fn truncated_last_packet_keeps_the_rest() {
        let file = pcap_file(false, false, &[(1, 0, b"first"), (2, 0, b"second packet")]);
        let cut = &file[..file.len() - 4];
        let (got, err) = frames(cut);
        assert_eq!(got.len(), 1);
        let err = err.unwrap();
        assert!(matches!(err, FileError::Truncated { offset: 45, .. }), "{err:?}");
        assert_eq!(err.to_string(), "record at byte 45 is cut short by the end of the file (4 more bytes expected)");
    }

    #[test]
    fn unknown_formats() {
        for bytes in [&b""[..], b"GIF89a", b"\x0a\x0d\x0d\x0a\x10"] {
            let err = CaptureReader::new(bytes).err().unwrap();
            assert!(matches!(err, FileError::UnknownFormat { .. }), "{err:?}");
        }
    }

    #[test]
    fn records_past_the_buffer_limit_are_skipped_and_counted() {
        let huge = vec![7u8; MAX_BUFFERED + 10];
        let file = pcap_file(true, false, &[(1, 0, b"before"), (2, 0, &huge), (3, 0, b"after")]);
        let mut reader = CaptureReader::new(&file[..]).unwrap();
        let mut got = Vec::new();
        while let Some(frame) = reader.next_frame().unwrap() {
            got.push(frame.data.to_vec());
        }
        assert_eq!(got, [b"before".to_vec(), b"after".to_vec()]);
        assert_eq!(reader.oversized(), 1);
        assert_eq!(reader.offset(), file.len() as u64);
        assert!(reader.buf.len() <= MAX_BUFFERED);

        // A length field promising gigabytes: skipped up to the end of the file, which cuts it short.
        let mut file = pcap_file(false, false, &[]);
        file.extend_from_slice(&[0; 8]);
        file.extend_from_slice(&u32::MAX.to_le_bytes());
        file.extend_from_slice(&u32::MAX.to_le_bytes());
        file.resize(file.len() + MAX_BUFFERED, 0);
        let (_, err) = frames(&file);
        let missing = (u32::MAX as usize + 16 - MAX_BUFFERED - 16).to_string();
        assert!(matches!(&err, Some(FileError::Truncated { offset: 24, missing: m }) if *m == missing), "{err:?}");

        // An interface description that large cannot be skipped: the packets after it need it.
        let mut file = shb();
        let mut big_idb = idb(1, None);
        let len = (MAX_BUFFERED as u32 + 64).to_le_bytes();
        big_idb[4..8].copy_from_slice(&len);
        big_idb.resize(MAX_BUFFERED + 60, 0);
        big_idb.extend_from_slice(&len);
        file.extend(big_idb);
        let (_, err) = frames(&file);
        assert!(matches!(err, Some(FileError::TooLarge { offset: 28 })), "{err:?}");
    }
}
