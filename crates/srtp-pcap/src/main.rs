//! `srtp-pcap decrypt|encrypt`: see `docs/tools.md`.

use std::process::ExitCode;

use clap::Parser;
use srtp_pcap::cli::{self, Command};

/// Decrypt SRTP captures so that Wireshark plays the call; encrypt RTP captures to make SRTP
/// test captures.
#[derive(Debug, Parser)]
#[command(name = "srtp-pcap", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 done, 1 error (bad input, key or argument), \
                        2 usage error, 3 the capture was read but no packet was decrypted \
                        (or encrypted)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli::execute(&cli.command) {
        Ok(report) => {
            let code = cli::exit_code(&report);
            if code == cli::EXIT_NOTHING_DONE {
                let what = match cli.command {
                    Command::Decrypt(_) => "decrypted: check the keys, --filter and --ssrc",
                    Command::Encrypt(_) => "encrypted: check --filter and --ssrc",
                };
                eprintln!("srtp-pcap: no packet was {what}");
            }
            ExitCode::from(code)
        }
        Err(e) => {
            // `{:#}` prints the error with its causes: "cannot open x.pcap: No such file...".
            eprintln!("srtp-pcap: {:#}", anyhow::Error::new(e));
            ExitCode::from(cli::EXIT_ERROR)
        }
    }
}
