//! Which packets to work on: `--filter SRC_IP:PORT-DST_IP:PORT` and `--ssrc`.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use crate::net::Flow;

/// One direction of a UDP conversation to select, each part optionally a wildcard `*`:
/// `10.0.0.1:4000-10.0.0.2:5004`, `[2001:db8::1]:4000-*:*`, `*:*-10.0.0.2:5004`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowFilter {
    src: Endpoint,
    dst: Endpoint,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Endpoint {
    ip: Option<IpAddr>,
    port: Option<u16>,
}

impl FlowFilter {
    /// Whether `flow` is the direction this filter names.
    pub fn matches(&self, flow: &Flow) -> bool {
        self.src.matches(flow.src) && self.dst.matches(flow.dst)
    }
}

impl Endpoint {
    fn matches(&self, addr: SocketAddr) -> bool {
        (self.ip.is_none() || self.ip == Some(addr.ip()))
            && (self.port.is_none() || self.port == Some(addr.port()))
    }
}

/// Why a filter could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected SRC_IP:PORT-DST_IP:PORT (IPv6 in brackets, '*' for any part): {0}")]
pub struct FilterError(&'static str);

impl FromStr for FlowFilter {
    type Err = FilterError;

    fn from_str(s: &str) -> Result<Self, FilterError> {
        let (src, dst) = s
            .trim()
            .split_once('-')
            .ok_or(FilterError("no '-' between source and destination"))?;
        Ok(Self {
            src: endpoint(src)?,
            dst: endpoint(dst)?,
        })
    }
}

fn endpoint(s: &str) -> Result<Endpoint, FilterError> {
    let s = s.trim();
    if s == "*" {
        return Ok(Endpoint {
            ip: None,
            port: None,
        });
    }
    let (ip, port) = if let Some(rest) = s.strip_prefix('[') {
        let (ip, port) = rest
            .split_once("]:")
            .ok_or(FilterError("an IPv6 address needs ']:PORT' after it"))?;
        (ip, port)
    } else {
        let (ip, port) = s
            .rsplit_once(':')
            .ok_or(FilterError("an address needs ':PORT' (or ':*')"))?;
        if ip.contains(':') {
            return Err(FilterError("put an IPv6 address in brackets: [::1]:5004"));
        }
        (ip, port)
    };
    let ip = match ip {
        "*" => None,
        ip => Some(
            ip.parse()
                .map_err(|_| FilterError("not an IPv4 or IPv6 address"))?,
        ),
    };
    let port = match port {
        "*" => None,
        port => Some(port.parse().map_err(|_| FilterError("not a port number"))?),
    };
    Ok(Endpoint { ip, port })
}

impl fmt::Display for FlowFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.src, self.dst)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.ip {
            None => f.write_str("*")?,
            Some(IpAddr::V4(ip)) => write!(f, "{ip}")?,
            Some(IpAddr::V6(ip)) => write!(f, "[{ip}]")?,
        }
        match self.port {
            None => f.write_str(":*"),
            Some(p) => write!(f, ":{p}"),
        }
    }
}

/// Parses an SSRC: decimal, or hexadecimal with `0x`.
///
/// # Errors
/// [`SsrcError`] when it is neither or does not fit 32 bits.
pub fn parse_ssrc(s: &str) -> Result<u32, SsrcError> {
    let s = s.trim();
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => s.parse(),
    }
    .map_err(|_| SsrcError)
}

/// Why an SSRC could not be parsed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("expected a 32-bit SSRC, decimal or 0x-prefixed hexadecimal")]
pub struct SsrcError;

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(src: &str, dst: &str) -> Flow {
        Flow {
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
        }
    }

    #[test]
    fn filters_match_one_direction_with_wildcards() {
        let f: FlowFilter = "10.0.0.1:4000-10.0.0.2:5004".parse().unwrap();
        assert!(f.matches(&flow("10.0.0.1:4000", "10.0.0.2:5004")));
        assert!(!f.matches(&flow("10.0.0.2:5004", "10.0.0.1:4000")));
        let f: FlowFilter = "*-[::1]:*".parse().unwrap();
        assert!(f.matches(&flow("[::2]:1", "[::1]:9")));
        assert!(!f.matches(&flow("[::2]:1", "127.0.0.1:9")));
        assert_eq!(f.to_string(), "*:*-[::1]:*");
    }

    #[test]
    fn malformed_filters_are_refused() {
        for bad in [
            "",
            "10.0.0.1:4000",
            "::1:4-::2:5",
            "1.2.3.4:x-*",
            "[::1]-*",
            "a:1-*",
        ] {
            assert!(bad.parse::<FlowFilter>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ssrcs_parse_in_hex_and_decimal() {
        assert_eq!(parse_ssrc("0xCAFEBABE"), Ok(0xCAFE_BABE));
        assert_eq!(parse_ssrc("42"), Ok(42));
        assert_eq!(parse_ssrc("0x1_0000_0000"), Err(SsrcError));
        assert_eq!(parse_ssrc("-1"), Err(SsrcError));
    }
}
