//! Writing records (JSON lines, one JSON array, or a table) and the closing summary.

use std::io::{self, Write};

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
}

impl<W: Write> RecordWriter<W> {
    pub fn new(out: W, format: Format) -> Self {
        Self { out, format, written: 0 }
    }

    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        match self.format {
            Format::Jsonl => {
                serde_json::to_writer(&mut self.out, record)?;
                writeln!(self.out)?;
            }
            Format::Json => {
                self.out.write_all(if self.written == 0 { b"[\n" } else { b",\n" })?;
                serde_json::to_writer(&mut self.out, record)?;
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
