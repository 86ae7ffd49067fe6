//! The `helloguard` command line: a thin layer over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "helloguard", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fingerprint every ClientHello (TLS over TCP, QUIC, DTLS) in pcap/pcapng captures.
    Replay {
        /// Capture files (pcap or pcapng).
        #[arg(required = true)]
        pcaps: Vec<PathBuf>,
        /// Output format: jsonl, json or table.
        #[arg(long, default_value = "jsonl")]
        format: helloguard::pcap::Format,
        /// Also report the second ClientHello of a connection (the retry after HelloRetryRequest).
        #[arg(long)]
        all_hellos: bool,
        /// Reproduce the reference tools' `99` ALPN code for non-ASCII ALPN values.
        #[arg(long)]
        alpn_compat: bool,
    },
}

fn main() -> anyhow::Result<ExitCode> {
    match Cli::parse().command {
        Command::Replay {
            pcaps,
            format,
            all_hellos,
            alpn_compat,
        } => {
            let alpn = if alpn_compat {
                helloguard::fingerprint::AlpnMode::Compat
            } else {
                Default::default()
            };
            let options = helloguard::pcap::Options {
                all_hellos,
                alpn,
                ..Default::default()
            };
            let stdout = std::io::stdout().lock();
            let all_read =
                helloguard::pcap::run(&pcaps, &options, format, stdout, &mut std::io::stderr())?;
            Ok(if all_read {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
