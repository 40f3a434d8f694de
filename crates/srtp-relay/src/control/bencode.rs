//! Bencode, the encoding of the rtpengine ng protocol (BitTorrent BEP 3): integers
//! `i42e`, byte strings `4:spam`, lists `l…e` and dictionaries `d…e` with byte-string keys.
//!
//! The decoder takes untrusted datagrams: it bounds nesting ([`MAX_DEPTH`]) and item count
//! ([`MAX_ITEMS`]), never panics, and refuses trailing bytes. Dictionary keys need not be
//! sorted on input (rtpengine clients do not always sort them); the encoder sorts them.

use std::collections::BTreeMap;
use std::fmt;

/// Deepest nesting of lists and dictionaries accepted.
pub const MAX_DEPTH: usize = 16;
/// Most values (of every level together) in one message.
pub const MAX_ITEMS: usize = 4096;

/// A bencoded value.
#[derive(Clone, PartialEq, Eq)]
pub enum Value {
    /// An integer.
    Int(i64),
    /// A byte string (usually UTF-8 text in ng).
    Bytes(Vec<u8>),
    /// A list.
    List(Vec<Value>),
    /// A dictionary.
    Dict(BTreeMap<Vec<u8>, Value>),
}

/// Values can hold SDP with keys: `Debug` shows structure and lengths only.
impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Int(i) => write!(f, "{i}"),
            Self::Bytes(b) => write!(f, "<{} bytes>", b.len()),
            Self::List(l) => f.debug_list().entries(l).finish(),
            Self::Dict(d) => f
                .debug_map()
                .entries(d.iter().map(|(k, v)| (String::from_utf8_lossy(k), v)))
                .finish(),
        }
    }
}

/// Why a message did not decode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The input ended inside a value.
    #[error("truncated")]
    Truncated,
    /// A byte that starts no value, or a malformed integer or length.
    #[error("invalid at byte {0}")]
    Invalid(usize),
    /// A dictionary key is not a byte string.
    #[error("dictionary key at byte {0} is not a string")]
    KeyNotString(usize),
    /// Too deep or too many items.
    #[error("too large")]
    TooLarge,
    /// Bytes after the value.
    #[error("trailing bytes at {0}")]
    Trailing(usize),
}

impl Value {
    /// A byte string from text.
    pub fn str(s: &str) -> Self {
        Self::Bytes(s.as_bytes().to_vec())
    }

    /// The text of a byte string (lossless UTF-8 only).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Bytes(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// A dictionary entry.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Self::Dict(d) => d.get(key.as_bytes()),
            _ => None,
        }
    }

    /// The text of a dictionary entry.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// The texts of a list entry (non-text items skipped); a single string counts as a
    /// one-item list, as clients send both.
    pub fn get_strs(&self, key: &str) -> Vec<&str> {
        match self.get(key) {
            Some(Self::List(l)) => l.iter().filter_map(Value::as_str).collect(),
            Some(v) => v.as_str().into_iter().collect(),
            None => Vec::new(),
        }
    }

    /// Decodes exactly one value from `input`.
    ///
    /// # Errors
    /// [`DecodeError`].
    pub fn decode(input: &[u8]) -> Result<Self, DecodeError> {
        let mut d = Decoder {
            input,
            pos: 0,
            items: 0,
        };
        let v = d.value(0)?;
        if d.pos != input.len() {
            return Err(DecodeError::Trailing(d.pos));
        }
        Ok(v)
    }

    /// Encodes, dictionary keys sorted.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode_into(&mut out);
        out
    }

    fn encode_into(&self, out: &mut Vec<u8>) {
        match self {
            Self::Int(i) => out.extend(format!("i{i}e").bytes()),
            Self::Bytes(b) => {
                out.extend(b.len().to_string().bytes());
                out.push(b':');
                out.extend(b);
            }
            Self::List(l) => {
                out.push(b'l');
                for v in l {
                    v.encode_into(out);
                }
                out.push(b'e');
            }
            Self::Dict(d) => {
                out.push(b'd');
                for (k, v) in d {
                    Self::Bytes(k.clone()).encode_into(out);
                    v.encode_into(out);
                }
                out.push(b'e');
            }
        }
    }
}

/// Builds a dictionary from `(key, value)` pairs.
pub fn dict<'a>(entries: impl IntoIterator<Item = (&'a str, Value)>) -> Value {
    Value::Dict(
        entries
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v))
            .collect(),
    )
}

struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    items: usize,
}

impl Decoder<'_> {
    fn peek(&self) -> Result<u8, DecodeError> {
        self.input
            .get(self.pos)
            .copied()
            .ok_or(DecodeError::Truncated)
    }

    fn value(&mut self, depth: usize) -> Result<Value, DecodeError> {
        self.items += 1;
        if depth > MAX_DEPTH || self.items > MAX_ITEMS {
            return Err(DecodeError::TooLarge);
        }
        match self.peek()? {
            b'i' => {
                self.pos += 1;
                let n = self.number(b'e')?;
                Ok(Value::Int(n))
            }
            b'0'..=b'9' => self.bytes().map(Value::Bytes),
            b'l' => {
                self.pos += 1;
                let mut list = Vec::new();
                while self.peek()? != b'e' {
                    list.push(self.value(depth + 1)?);
                }
                self.pos += 1;
                Ok(Value::List(list))
            }
            b'd' => {
                self.pos += 1;
                let mut map = BTreeMap::new();
                while self.peek()? != b'e' {
                    if !self.peek()?.is_ascii_digit() {
                        return Err(DecodeError::KeyNotString(self.pos));
                    }
                    let k = self.bytes()?;
                    let v = self.value(depth + 1)?;
                    map.insert(k, v);
                }
                self.pos += 1;
                Ok(Value::Dict(map))
            }
            _ => Err(DecodeError::Invalid(self.pos)),
        }
    }

    /// A decimal integer up to `end` (consumed): optional `-`, no leading zeros, not `-0`.
    fn number(&mut self, end: u8) -> Result<i64, DecodeError> {
        let start = self.pos;
        let rest = &self.input[start..];
        let len = rest
            .iter()
            .position(|&b| b == end)
            .ok_or(DecodeError::Truncated)?;
        let text = &rest[..len];
        let digits = text.strip_prefix(b"-").unwrap_or(text);
        let valid = !digits.is_empty()
            && digits.iter().all(u8::is_ascii_digit)
            && (digits == b"0" || digits[0] != b'0')
            && !(text.first() == Some(&b'-') && digits == b"0");
        if !valid {
            return Err(DecodeError::Invalid(start));
        }
        let n = std::str::from_utf8(text)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(DecodeError::Invalid(start))?;
        self.pos = start + len + 1;
        Ok(n)
    }

    fn bytes(&mut self) -> Result<Vec<u8>, DecodeError> {
        let start = self.pos;
        let len = self.number(b':')?;
        let len = usize::try_from(len).map_err(|_| DecodeError::Invalid(start))?;
        let end = self.pos.checked_add(len).ok_or(DecodeError::TooLarge)?;
        let b = self
            .input
            .get(self.pos..end)
            .ok_or(DecodeError::Truncated)?;
        self.pos = end;
        Ok(b.to_vec())
    }
}

/// The fuzz target's body: decode arbitrary bytes (must not panic); what decodes must encode
/// and decode back to the same value.
#[doc(hidden)]
pub fn fuzz(data: &[u8]) {
    if let Ok(v) = Value::decode(data) {
        let again = Value::decode(&v.encode()).expect("own encoding must decode");
        assert_eq!(again, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let text = b"d7:command4:ping5:flagsl3:foo3:bare3:numi-42ee";
        let v = Value::decode(text).unwrap();
        assert_eq!(v.get_str("command"), Some("ping"));
        assert_eq!(v.get_strs("flags"), vec!["foo", "bar"]);
        assert_eq!(v.get("num"), Some(&Value::Int(-42)));
        assert_eq!(v.encode(), text);
    }

    #[test]
    fn unsorted_keys_are_accepted() {
        let v = Value::decode(b"d1:bi1e1:ai2ee").unwrap();
        assert_eq!(v.encode(), b"d1:ai2e1:bi1ee");
    }

    #[test]
    fn malformed_input_is_refused() {
        for bad in [
            &b""[..],
            b"i",
            b"i-0e",
            b"i03e",
            b"ie",
            b"5:abc",
            b"l",
            b"di1ei2ee",
            b"x",
            b"i1ei2e",
            b"99999999999999999999:",
            b"-1:a",
        ] {
            assert!(
                Value::decode(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn depth_is_bounded() {
        let deep = "l".repeat(100) + &"e".repeat(100);
        assert_eq!(Value::decode(deep.as_bytes()), Err(DecodeError::TooLarge));
    }

    #[test]
    fn debug_hides_strings() {
        let v = dict([("sdp", Value::str("a=crypto:1 secret"))]);
        assert_eq!(format!("{v:?}"), "{\"sdp\": <17 bytes>}");
    }
}
