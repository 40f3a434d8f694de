//! The errors of the tools: bad arguments, unreadable captures, failed writes.

use std::fmt;
use std::io;
use std::path::PathBuf;

use crate::filter::{FilterError, SsrcError};
use crate::keys::KeyError;
use crate::net::LinkType;

/// Where in a capture something went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Position {
    /// The pcap file header.
    FileHeader,
    /// A packet record, numbered from 1 as Wireshark numbers frames.
    Frame(u64),
    /// A pcapng block, numbered from 1 (the first section header block).
    Block(u64),
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::FileHeader => f.write_str("the pcap file header"),
            Self::Frame(n) => write!(f, "frame {n}"),
            Self::Block(n) => write!(f, "pcapng block {n}"),
        }
    }
}

/// Why a run failed. Messages name the argument or the record and what was expected; they
/// never contain key material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The input file could not be opened.
    #[error("cannot open {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// The output file could not be created.
    #[error("cannot create {}", path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// A key file could not be read.
    #[error("cannot read the key file {}", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Reading the capture failed.
    #[error("reading the capture failed")]
    Read(#[source] io::Error),
    /// Writing the output failed.
    #[error("writing the output capture failed")]
    Write(#[source] io::Error),
    /// The input holds nothing.
    #[error("the input is empty: expected a pcap or pcapng capture")]
    Empty,
    /// The input does not start like a capture.
    #[error(
        "not a pcap or pcapng capture: it starts with {0}, expected a pcap magic number \
         (a1b2c3d4 or a1b23c4d, in either byte order) or a pcapng section header block (0a0d0d0a)"
    )]
    NotACapture(String),
    /// The input ends inside a record.
    #[error(
        "{0} runs past the end of the input: the capture was cut short (or the record's length \
         field is corrupt); the records before it were processed"
    )]
    Truncated(Position),
    /// A record or header is not valid.
    #[error("{at} is not valid: {reason}")]
    Malformed {
        /// Where.
        at: Position,
        /// What is wrong, as the pcap parser says it.
        reason: String,
    },
    /// A link-layer type the tools do not read.
    #[error(
        "{at}: link type {link} is not supported; supported are {}",
        supported()
    )]
    UnsupportedLinkType {
        /// Where.
        at: Position,
        /// The `LINKTYPE_` value.
        link: u32,
    },
    /// A pcapng packet names an interface its section did not describe.
    #[error("{at} names interface {interface}, but its section describes {count} interface(s)")]
    UnknownInterface {
        /// Where.
        at: Position,
        /// The interface number in the packet.
        interface: u32,
        /// Interfaces described so far in the section.
        count: usize,
    },
    /// A `--key` could not be used.
    #[error("key #{index}")]
    Key {
        /// Which key, counting from 1 in the order given.
        index: usize,
        /// Why.
        #[source]
        source: KeyError,
    },
    /// A `--filter` could not be parsed.
    #[error("--filter '{value}'")]
    Filter {
        /// The argument.
        value: String,
        /// Why.
        #[source]
        source: FilterError,
    },
    /// An `--ssrc` could not be parsed.
    #[error("--ssrc '{value}'")]
    Ssrc {
        /// The argument.
        value: String,
        /// Why.
        #[source]
        source: SsrcError,
    },
    /// No key was given.
    #[error("no key given: pass --key (or --key-file)")]
    NoKey,
    /// Encrypting needs exactly one key.
    #[error("encrypt takes exactly one key, {0} were given")]
    EncryptKeys(usize),
}

fn supported() -> String {
    LinkType::ALL
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
