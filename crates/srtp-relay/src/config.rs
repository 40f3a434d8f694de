//! The relay process's configuration: a TOML file, overridden by the command line, over
//! built-in defaults that run a working relay on loopback.
//!
//! Every table refuses unknown keys, so a misspelt key is an error that names it rather than
//! a setting silently ignored. Values that parse but make no sense (an empty port range, a
//! public address for the plaintext API) are refused by [`Config::validate`] with the key and
//! what was expected.
//!
//! ```
//! use srtp_relay::config::Config;
//!
//! let config = Config::from_toml_str("[media]\nport_min = 40000\nport_max = 40099\n")?;
//! assert_eq!(config.media.port_min, 40000);
//! assert_eq!(config.api.listen.to_string(), "127.0.0.1:8443");
//! # Ok::<(), srtp_relay::config::ConfigError>(())
//! ```

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::control::roles::Role;
use crate::engine::EngineConfig;
use crate::io::{IoDriver, RelayConfig};

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The TOML is malformed, a key is unknown or a value has the wrong type. The message
    /// names the key, the line and what was expected.
    #[error("{0}")]
    Parse(String),
    /// A value is well-formed but not acceptable.
    #[error("`{key}`: expected {expected}")]
    Invalid {
        /// The key, dotted (`media.port_min`).
        key: &'static str,
        /// What was expected.
        expected: String,
    },
}

/// The whole configuration.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Where generated development certificates are kept. Default `./srtp-relay-state`.
    pub state_dir: Option<PathBuf>,
    /// Media sockets and workers.
    pub media: MediaConfig,
    /// The HTTPS control API.
    pub api: ApiConfig,
    /// The rtpengine-compatible ng control protocol.
    pub ng: NgConfig,
    /// Logging.
    pub log: LogConfig,
    /// Shutdown.
    pub drain: DrainConfig,
}

/// `[media]`: where media sockets bind and how many workers carry them.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// The address media sockets bind to; it is also the address written into SDP unless
    /// `advertise` is set. Default 127.0.0.1.
    pub bind: IpAddr,
    /// The address written into SDP, when clients reach the relay through NAT.
    pub advertise: Option<IpAddr>,
    /// Lowest media port (RTP on even ports, RTCP on the odd port above). Default 30000.
    pub port_min: u16,
    /// Highest media port. Default 39999.
    pub port_max: u16,
    /// Worker threads; 0 means one per core. Default 0.
    pub workers: usize,
    /// How workers receive and send: `auto` (io_uring where the kernel has it, else epoll),
    /// `uring` or `epoll`. Default `auto`.
    pub io: String,
    /// Seconds without packets before a leg's call ends. Default 60.
    pub inactivity_secs: u64,
    /// Seconds a freed port rests before reuse. Default 10.
    pub port_guard_secs: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            advertise: None,
            port_min: 30000,
            port_max: 39999,
            workers: 0,
            io: "auto".into(),
            inactivity_secs: 60,
            port_guard_secs: 10,
        }
    }
}

/// `[api]`: the HTTPS control API.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Whether the API runs. Default true.
    pub enabled: bool,
    /// The listening address. Default 127.0.0.1:8443.
    pub listen: SocketAddr,
    /// The server's certificate chain (PEM). Default: the development certificate in the
    /// state folder, generated on first run.
    pub cert: Option<PathBuf>,
    /// The server's private key (PEM).
    pub key: Option<PathBuf>,
    /// The CA that client certificates must chain to (PEM).
    pub client_ca: Option<PathBuf>,
    /// Certificate revocation lists (PEM or DER) of the client CA.
    pub crls: Vec<PathBuf>,
    /// Serve the API over plain HTTP, without authentication: every request acts as `admin`.
    /// Only on a loopback address. Default false.
    pub danger_plaintext: bool,
    /// Client identity (the certificate's subject CN, or a DNS, URI, e-mail or IP SAN) to
    /// role. Identities not listed are denied.
    pub roles: BTreeMap<String, Role>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8443)),
            cert: None,
            key: None,
            client_ca: None,
            crls: Vec::new(),
            danger_plaintext: false,
            roles: BTreeMap::new(),
        }
    }
}

/// `[ng]`: the rtpengine-compatible control protocol (bencode over UDP). It has no
/// authentication: keep it on loopback or a private signalling network.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct NgConfig {
    /// Whether the ng listener runs. Default true.
    pub enabled: bool,
    /// The listening address. Default 127.0.0.1:2223.
    pub listen: SocketAddr,
}

impl Default for NgConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 2223)),
        }
    }
}

/// The log output format.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// `[log]`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` or `json`. Default text.
    pub format: LogFormat,
    /// `error`, `warn`, `info`, `debug` or `trace`. Default info.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// `[drain]`: what SIGTERM does.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct DrainConfig {
    /// Seconds running calls may continue after SIGTERM before the relay stops. Default 30.
    pub deadline_secs: u64,
}

impl Default for DrainConfig {
    fn default() -> Self {
        Self { deadline_secs: 30 }
    }
}

/// The default state folder.
pub const DEFAULT_STATE_DIR: &str = "./srtp-relay-state";

impl Config {
    /// Parses and validates TOML text.
    ///
    /// # Errors
    /// [`ConfigError::Parse`] naming the key and line, or [`ConfigError::Invalid`].
    pub fn from_toml_str(text: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse(e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads, parses and validates a file.
    ///
    /// # Errors
    /// [`ConfigError::Read`], or as [`from_toml_str`](Self::from_toml_str) with the path
    /// prefixed.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml_str(&text).map_err(|e| match e {
            ConfigError::Parse(m) => ConfigError::Parse(format!("{}: {m}", path.display())),
            other => other,
        })
    }

    /// Checks values that parse but cannot work.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] naming the first bad key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, expected: &str| {
            Err(ConfigError::Invalid {
                key,
                expected: expected.into(),
            })
        };
        let m = &self.media;
        if m.port_min > m.port_max {
            return invalid("media.port_min", "a port not above media.port_max");
        }
        if !(m.port_min..=m.port_max).any(|p| p % 2 == 0 && p < u16::MAX) {
            return invalid(
                "media.port_max",
                "a range holding at least one even port (RTP) and the odd port above (RTCP)",
            );
        }
        if m.port_min < 1024 {
            return invalid("media.port_min", "a port of 1024 or above");
        }
        if IoDriver::from_name(&m.io).is_none() {
            return invalid("media.io", "one of auto, uring, epoll");
        }
        if m.inactivity_secs == 0 {
            return invalid("media.inactivity_secs", "at least 1 second");
        }
        if self.api.danger_plaintext && !self.api.listen.ip().is_loopback() {
            return invalid(
                "api.listen",
                "a loopback address (127.0.0.1 or ::1) when api.danger_plaintext is set",
            );
        }
        if self.api.cert.is_some() != self.api.key.is_some() {
            return invalid("api.key", "api.cert and api.key given together, or neither");
        }
        if self.api.cert.is_some() && self.api.client_ca.is_none() && !self.api.danger_plaintext {
            return invalid(
                "api.client_ca",
                "the CA of client certificates (mutual TLS is required)",
            );
        }
        if !matches!(
            self.log.level.as_str(),
            "error" | "warn" | "info" | "debug" | "trace"
        ) {
            return invalid("log.level", "one of error, warn, info, debug, trace");
        }
        Ok(())
    }

    /// The state folder.
    pub fn state_dir(&self) -> PathBuf {
        self.state_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR))
    }

    /// The address put into SDP for media.
    pub fn media_address(&self) -> IpAddr {
        self.media.advertise.unwrap_or(self.media.bind)
    }

    /// The relay's I/O settings.
    pub fn relay_config(&self) -> RelayConfig {
        let m = &self.media;
        let mut relay = RelayConfig {
            bind: m.bind,
            ports: m.port_min..=m.port_max,
            port_guard: Duration::from_secs(m.port_guard_secs),
            io: IoDriver::from_name(&m.io).unwrap_or_default(),
            engine: EngineConfig {
                inactivity: Duration::from_secs(m.inactivity_secs),
                ..EngineConfig::default()
            },
            ..RelayConfig::default()
        };
        if m.workers > 0 {
            relay.workers = m.workers;
        }
        relay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(Config::from_toml_str("").unwrap(), Config::default());
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::from_toml_str("[media]\nport_minimum = 4\n").unwrap_err();
        assert!(e.to_string().contains("port_minimum"), "{e}");
    }

    #[test]
    fn wrong_type_names_key_and_expectation() {
        let e = Config::from_toml_str("[media]\nport_min = \"low\"\n").unwrap_err();
        let m = e.to_string();
        assert!(m.contains("port_min") && m.contains("u16"), "{m}");
    }

    #[test]
    fn inverted_port_range_is_refused() {
        let e = Config::from_toml_str("[media]\nport_min = 40000\nport_max = 30000\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "`media.port_min`: expected a port not above media.port_max"
        );
    }

    #[test]
    fn io_driver_is_named_or_refused() {
        let c = Config::from_toml_str("[media]\nio = \"epoll\"\n").unwrap();
        assert_eq!(c.relay_config().io, IoDriver::Epoll);
        let c = Config::from_toml_str("").unwrap();
        assert_eq!(c.relay_config().io, IoDriver::Auto);
        let e = Config::from_toml_str("[media]\nio = \"kqueue\"\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "`media.io`: expected one of auto, uring, epoll"
        );
    }

    #[test]
    fn plaintext_api_only_on_loopback() {
        let e =
            Config::from_toml_str("[api]\ndanger_plaintext = true\nlisten = \"0.0.0.0:8080\"\n")
                .unwrap_err();
        assert!(e.to_string().starts_with("`api.listen`"), "{e}");
    }

    #[test]
    fn roles_parse() {
        let c = Config::from_toml_str("[api.roles]\n\"sip-proxy-1\" = \"operator\"\n").unwrap();
        assert_eq!(c.api.roles["sip-proxy-1"], Role::Operator);
        let e = Config::from_toml_str("[api.roles]\nx = \"root\"\n").unwrap_err();
        assert!(e.to_string().contains("root"), "{e}");
    }
}
