//! Capture files: pcap (either byte order, µs or ns) and pcapng (several sections and interfaces,
//! each with its own link type and timestamp resolution), read as a stream.
//!
//! `pcap-file` parses the formats; this module owns the buffer it parses from. The file is read in
//! chunks into one buffer that grows only to the largest record (bounded), so a capture of any size
//! is read in constant memory, and every error can name the byte offset where the bad record
//! starts. A record cut short by the end of the file is reported as [`FileError::Truncated`]; the
//! frames before it have been returned already.

use std::io::{self, Read};
use std::time::Duration;

use pcap_file::pcap::PcapParser;
use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
use pcap_file::pcapng::{Block, PcapNgParser};
use pcap_file::{Endianness, PcapError, TsResolution};

const CHUNK: usize = 1 << 20;
/// The largest record accepted. libpcap's own snapshot limit is 256 KiB; pcapng blocks may hold
/// options too, so allow well past that but refuse a length field that would need gigabytes.
const MAX_RECORD: usize = 16 << 20;
const PCAPNG_MAGIC: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];

/// Why a capture stopped being read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("read error at byte {offset}: {source}")]
    Io { offset: u64, source: io::Error },
    #[error("not a pcap or pcapng file (first bytes {magic})")]
    UnknownFormat { magic: String },
    #[error("invalid {what} at byte {offset}: {reason}")]
    Invalid {
        what: &'static str,
        offset: u64,
        reason: String,
    },
    #[error("record at byte {offset} is cut short by the end of the file ({missing} more bytes expected)")]
    Truncated { offset: u64, missing: String },
    #[error("record at byte {offset} declares more than {MAX_RECORD} bytes")]
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
    Pcap {
        parser: PcapParser,
        link: u32,
        nanos: bool,
    },
    PcapNg {
        parser: PcapNgParser,
        interfaces: Vec<Interface>,
    },
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
}

impl<R: Read> CaptureReader<R> {
    /// Read the file header (or first section header) and detect the format.
    pub fn new(source: R) -> Result<Self, FileError> {
        let mut reader = Self {
            source,
            buf: vec![0; CHUNK],
            start: 0,
            end: 0,
            offset: 0,
            eof: false,
            format: None,
        };
        loop {
            let bytes = &reader.buf[reader.start..reader.end];
            let parsed = if bytes.starts_with(&PCAPNG_MAGIC) {
                PcapNgParser::new(bytes).map(|(rest, parser)| {
                    (
                        bytes.len() - rest.len(),
                        Format::PcapNg {
                            parser,
                            interfaces: Vec::new(),
                        },
                    )
                })
            } else if bytes.len() >= 4 || reader.eof {
                PcapParser::new(bytes).map(|(rest, parser)| {
                    let header = parser.header();
                    let nanos = header.ts_resolution == TsResolution::NanoSecond;
                    (
                        bytes.len() - rest.len(),
                        Format::Pcap {
                            link: u32::from(header.datalink),
                            parser,
                            nanos,
                        },
                    )
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
            if self.buf.len() >= MAX_RECORD {
                return Err(FileError::TooLarge {
                    offset: self.offset,
                });
            }
            self.buf.resize((self.buf.len() * 2).min(MAX_RECORD), 0);
        }
        loop {
            match self.source.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(());
                }
                Ok(n) => {
                    self.end += n;
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    let offset = self.offset + (self.end - self.start) as u64;
                    return Err(FileError::Io { offset, source });
                }
            }
        }
    }

    /// The next frame, `None` at a clean end of file.
    pub fn next_frame(&mut self) -> Result<Option<Frame<'_>>, FileError> {
        loop {
            let bytes = &self.buf[self.start..self.end];
            let result = match &mut self.format {
                Some(Format::Pcap {
                    parser,
                    link,
                    nanos,
                }) => pcap_record(parser, *link, *nanos, bytes),
                Some(Format::PcapNg { parser, interfaces }) => {
                    pcapng_block(parser, interfaces, bytes)
                }
                None => return Ok(None),
            };
            match result {
                Ok(Parsed { used, packet }) => {
                    let start = self.start;
                    self.advance(used);
                    let Some(p) = packet else { continue };
                    let data = self
                        .buf
                        .get(start + p.at..start + p.at + p.len)
                        .unwrap_or_default();
                    return Ok(Some(Frame {
                        link: p.link,
                        timestamp: p.timestamp,
                        data,
                    }));
                }
                Err(PcapError::IncompleteBuffer) if !self.eof => self.fill()?,
                Err(PcapError::IncompleteBuffer) if self.start == self.end => return Ok(None),
                Err(PcapError::IncompleteBuffer) => {
                    return Err(FileError::Truncated {
                        offset: self.offset,
                        missing: self.missing(),
                    });
                }
                Err(e) => {
                    let what = match self.format {
                        Some(Format::PcapNg { .. }) => "pcapng block",
                        _ => "pcap packet record",
                    };
                    return Err(FileError::Invalid {
                        what,
                        offset: self.offset,
                        reason: e.to_string(),
                    });
                }
            }
        }
    }

    /// How many bytes the cut record still needed, when its header says so.
    fn missing(&self) -> String {
        let bytes = self.buf.get(self.start..self.end).unwrap_or_default();
        let (endianness, field, extra) = match &self.format {
            Some(Format::Pcap { parser, .. }) => (parser.header().endianness, bytes.get(8..12), 16),
            Some(Format::PcapNg { parser, .. }) => {
                (parser.section().endianness, bytes.get(4..8), 0)
            }
            None => return "some".into(),
        };
        let Some(&[a, b, c, d]) = field else {
            return "some".into();
        };
        let declared = match endianness {
            Endianness::Big => u32::from_be_bytes([a, b, c, d]),
            Endianness::Little => u32::from_le_bytes([a, b, c, d]),
        };
        (declared as usize + extra)
            .saturating_sub(bytes.len())
            .to_string()
    }
}

fn pcap_record(
    parser: &PcapParser,
    link: u32,
    nanos: bool,
    bytes: &[u8],
) -> Result<Parsed, PcapError> {
    // The raw record: pcap-file's checked form refuses orig_len > snaplen, which real captures have.
    let (rest, packet) = parser.next_raw_packet(bytes)?;
    let frac = u64::from(packet.ts_frac) * if nanos { 1 } else { 1000 };
    let timestamp = Duration::from_secs(u64::from(packet.ts_sec)) + Duration::from_nanos(frac);
    let (at, len) = position(bytes, &packet.data);
    Ok(Parsed {
        used: bytes.len() - rest.len(),
        packet: Some(PacketAt {
            at,
            len,
            link,
            timestamp,
        }),
    })
}

fn pcapng_block(
    parser: &mut PcapNgParser,
    interfaces: &mut Vec<Interface>,
    bytes: &[u8],
) -> Result<Parsed, PcapError> {
    let (rest, block) = parser.next_block(bytes)?;
    let used = bytes.len() - rest.len();
    let iface = |id: u32| {
        interfaces
            .get(id as usize)
            .copied()
            .ok_or(PcapError::InvalidInterfaceId(id))
    };
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
            interfaces.push(Interface {
                link: u32::from(idb.linktype),
                tick: tick.unwrap_or(Tick::Decimal(6)),
            });
            None
        }
        Block::EnhancedPacket(epb) => {
            let i = iface(epb.interface_id)?;
            // pcap-file stores the raw tick count as if it were nanoseconds; rescale it.
            let ticks = u64::try_from(epb.timestamp.as_nanos()).unwrap_or(u64::MAX);
            Some((
                position(bytes, &epb.data),
                i.link,
                i.tick.to_duration(ticks),
            ))
        }
        Block::Packet(pb) => {
            let i = iface(u32::from(pb.interface_id))?;
            Some((
                position(bytes, &pb.data),
                i.link,
                i.tick.to_duration(pb.timestamp),
            ))
        }
        Block::SimplePacket(spb) => {
            Some((position(bytes, &spb.data), iface(0)?.link, Duration::ZERO))
        }
        _ => None,
    };
    let packet = packet.map(|((at, len), link, timestamp)| PacketAt {
        at,
        len,
        link,
        timestamp,
    });
    Ok(Parsed { used, packet })
}
