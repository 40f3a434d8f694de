//! The command line, as clap types another binary can mount (`srtp-relay pcap decrypt ...`).
//!
//! ```no_run
//! use clap::Parser;
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(subcommand)]
//!     command: srtp_pcap::cli::Command,
//! }
//!
//! let cli = Cli::parse();
//! let code = match srtp_pcap::cli::execute(&cli.command) {
//!     Ok(report) => srtp_pcap::cli::exit_code(&report),
//!     Err(e) => {
//!         eprintln!("error: {e}");
//!         srtp_pcap::cli::EXIT_ERROR
//!     }
//! };
//! std::process::exit(code.into());
//! ```

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::capture;
use crate::engine::{Config, Engine, Failed, Mode};
use crate::error::Error;
use crate::filter::{parse_ssrc, FlowFilter};
use crate::keys::Key;
use crate::report::Report;

/// Exit code when the input cannot be read, an argument is wrong or the output cannot be
/// written. (clap exits with 2 on a usage error.)
pub const EXIT_ERROR: u8 = 1;
/// Exit code when the capture was read but no packet at all was decrypted (or encrypted):
/// wrong keys, filters that select nothing, or no SRTP in the capture.
pub const EXIT_NOTHING_DONE: u8 = 3;

/// `decrypt` or `encrypt`.
#[derive(Clone, Debug, clap::Subcommand)]
pub enum Command {
    /// Replace the SRTP/SRTCP packets of a capture by the RTP/RTCP they carry, so that
    /// Wireshark decodes and plays them.
    Decrypt(CaptureArgs),
    /// Replace the RTP/RTCP packets of a capture by SRTP/SRTCP (to make test captures).
    Encrypt(CaptureArgs),
}

/// The arguments both subcommands take.
#[derive(Clone, Debug, clap::Args)]
pub struct CaptureArgs {
    /// The capture to read: pcap or pcapng ('-' for standard input).
    pub input: PathBuf,

    /// The capture to write, in the input's format ('-' for standard output).
    #[arg(
        short,
        long,
        value_name = "FILE",
        required_unless_present = "summary_only",
        conflicts_with = "summary_only"
    )]
    pub output: Option<PathBuf>,

    /// A key: an SDES line ('a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:KEY|2^31|1:1') or
    /// PROFILE:BASE64 ('AEAD_AES_128_GCM:KEY'). Repeat for several; each packet is tried
    /// against every key. Encrypt takes one.
    #[arg(short, long = "key", value_name = "KEY")]
    pub keys: Vec<String>,

    /// A file of keys, one per line in either form ('#' starts a comment line). Keeps keys out
    /// of the process list and the shell history.
    #[arg(long = "key-file", value_name = "FILE")]
    pub key_files: Vec<PathBuf>,

    /// Work only on packets of this direction: SRC_IP:PORT-DST_IP:PORT, '*' for any part,
    /// IPv6 addresses in brackets. Repeat for several.
    #[arg(long = "filter", value_name = "SRC-DST")]
    pub filters: Vec<String>,

    /// Work only on packets of this SSRC (decimal or 0x-hexadecimal). Repeat for several.
    #[arg(long = "ssrc", value_name = "SSRC")]
    pub ssrcs: Vec<String>,

    /// What to do with packets no key authenticates, or replayed ones (they are always
    /// counted).
    #[arg(long, value_enum, default_value_t = Failed::Keep)]
    pub failed: Failed,

    /// Print the summary table on standard output and write no capture.
    #[arg(long)]
    pub summary_only: bool,
}

impl CaptureArgs {
    /// The engine configuration these arguments describe: keys parsed (from `--key`, then
    /// `--key-file`), filters and SSRCs parsed.
    ///
    /// # Errors
    /// [`Error::Key`], [`Error::KeyFile`], [`Error::Filter`] or [`Error::Ssrc`] naming the
    /// argument.
    pub fn config(&self, mode: Mode) -> Result<Config, Error> {
        let mut texts = self.keys.clone();
        for path in &self.key_files {
            let text = fs::read_to_string(path).map_err(|source| Error::KeyFile {
                path: path.clone(),
                source,
            })?;
            texts.extend(
                text.lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::to_owned),
            );
        }
        let keys = texts
            .iter()
            .enumerate()
            .map(|(i, t)| {
                Key::parse(t).map_err(|source| Error::Key {
                    index: i + 1,
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        let filters = self
            .filters
            .iter()
            .map(|f| {
                f.parse::<FlowFilter>().map_err(|source| Error::Filter {
                    value: f.clone(),
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        let ssrcs = self
            .ssrcs
            .iter()
            .map(|s| {
                parse_ssrc(s).map_err(|source| Error::Ssrc {
                    value: s.clone(),
                    source,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(Config {
            mode,
            keys,
            filters,
            ssrcs,
            failed: self.failed,
        })
    }
}

/// Runs a subcommand: reads the input, writes the output, prints the summary table (on
/// standard error, or standard output with `--summary-only`; also after an error part-way,
/// for what was read until then) and returns the counters.
///
/// # Errors
/// An [`Error`]: bad arguments, an input that cannot be read or is not a valid capture, an
/// output that cannot be written.
pub fn execute(command: &Command) -> Result<Report, Error> {
    let (mode, args) = match command {
        Command::Decrypt(args) => (Mode::Decrypt, args),
        Command::Encrypt(args) => (Mode::Encrypt, args),
    };
    let mut engine = Engine::new(args.config(mode)?)?;
    let input: Box<dyn Read> = if is_stdio(&args.input) {
        Box::new(io::stdin().lock())
    } else {
        Box::new(File::open(&args.input).map_err(|source| Error::Open {
            path: args.input.clone(),
            source,
        })?)
    };
    let result = match args.output.as_deref() {
        Some(path) if !args.summary_only => {
            if is_stdio(path) {
                capture::run(&mut engine, input, BufWriter::new(io::stdout().lock()))
            } else {
                if same_file(&args.input, path) {
                    return Err(Error::Create {
                        path: path.to_owned(),
                        source: io::Error::other("it is the input capture"),
                    });
                }
                let file = File::create(path).map_err(|source| Error::Create {
                    path: path.to_owned(),
                    source,
                })?;
                capture::run(&mut engine, input, BufWriter::new(file))
            }
        }
        _ => capture::run(&mut engine, input, io::sink()),
    };
    let report = engine.report();
    if result.is_ok() || report.records() > 0 {
        let printed = if args.summary_only {
            write!(io::stdout().lock(), "{report}")
        } else {
            write!(io::stderr().lock(), "{report}")
        };
        // A closed standard output (a pager quit early) is no reason to fail the run.
        drop(printed);
    }
    result.map(|_| report.clone())
}

/// The process exit code for a run that read its input: 0, or [`EXIT_NOTHING_DONE`] when no
/// packet was decrypted (or encrypted).
pub fn exit_code(report: &Report) -> u8 {
    if report.nothing_done() {
        EXIT_NOTHING_DONE
    } else {
        0
    }
}

fn is_stdio(path: &Path) -> bool {
    path.as_os_str() == "-"
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
