//! SDES: the SDP `a=crypto` attribute (RFC 4568) that carries SRTP master keys in signalling.
//!
//! [`CryptoAttribute`] parses one attribute (`"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:…"`),
//! formats it back, and turns it into a [`Policy`] for [`Session::new`](crate::Session::new).
//! [`parse_all`] walks every `a=crypto` line of a media section so a caller can pick the first
//! line it supports.
//!
//! The parser follows the grammar of RFC 4568 §9.1 and §9.2 and accepts what deployments send:
//! runs of spaces or tabs between fields, a trailing `\r\n`, padded or unpadded base64, an MKI
//! without a lifetime, and the Microsoft form `inline:<key||salt>|2^31|1:1`. It never panics,
//! bounds its work ([`MAX_LINE_LEN`], [`MAX_KEYS`]), zeroizes decoded key bytes, and never puts
//! key material in an error message.
//!
//! Choices where the RFC leaves room or where this crate is narrower:
//! - An unknown session parameter that does not start with `-` makes the whole attribute
//!   invalid, as RFC 4568 §6.3.7 requires; unknown parameters starting with `-` are optional,
//!   kept in [`SessionParams::extensions`] and otherwise ignored.
//! - `FEC_KEY` (separate master keys for an FEC stream, §6.3.5) is rejected with
//!   [`SdesError::FecKeyUnsupported`]: this crate has no FEC stream to key, and accepting the
//!   line while silently dropping keys the peer expects to be used would be worse than letting
//!   the caller move on to the next line. The key inside it is never decoded or printed.
//! - MKIs of every length RFC 4568 allows (1 to 128 bytes, [`MAX_MKI_LEN`]) are accepted, so
//!   its own example `|2^20|1:32` works; their values are read up to 2^32 - 1.
//! - Lifetimes above 2^63 packets are rejected; RFC 3711 caps what a key may protect far below
//!   that anyway (2^48 SRTP, 2^31 SRTCP packets), and the session enforces those caps.
//! - Suite names, the key method and session parameter names are matched without regard to
//!   ASCII case, as ABNF quoted strings are (RFC 5234 §2.3); formatting uses the registered
//!   spelling.

use core::fmt;
use core::str::FromStr;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine as _;
use zeroize::Zeroizing;

use crate::key::{MAX_KEY_LEN, MAX_SALT_LEN};
use crate::replay::DEFAULT_REPLAY_WINDOW;
use crate::{MasterKey, Mki, Policy, PolicyError, Profile, MAX_MKI_LEN, MAX_REPLAY_WINDOW};

/// Longest input [`CryptoAttribute::from_str`] accepts, in bytes.
///
/// Sixteen AES-256 keys with lifetimes and MKIs fit in about 1.5 KB; anything much longer is
/// not an attribute anyone sends, so it is refused before any work is done on it.
pub const MAX_LINE_LEN: usize = 4096;

/// Most key parameters (`inline:` keys separated by `;`) one attribute may carry.
///
/// RFC 4568 §6.1 sets no limit; every key becomes a master key of the session, so the count is
/// capped to keep a hostile offer from making the session large.
pub const MAX_KEYS: usize = 16;

/// Base64 text of the longest key material (46 bytes) is 64 characters; the decoder wants room
/// for its rounded-up estimate too.
const B64_BUF_LEN: usize = 64;

/// Tokens echoed in error messages are cut to this many characters.
const MAX_ECHO_LEN: usize = 48;

/// The order in which FEC and SRTP are applied (RFC 4568 §6.3.4, `FEC_ORDER=`).
///
/// Parsed and kept so an answer can echo it; it does not change how this crate protects
/// packets, since FEC itself is not this crate's business.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FecOrder {
    /// `FEC_SRTP`: FEC is applied before SRTP processing by the sender (the RFC's default).
    FecSrtp,
    /// `SRTP_FEC`: FEC is applied after SRTP processing by the sender.
    SrtpFec,
}

impl FecOrder {
    /// The spelling used in `FEC_ORDER=`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::FecSrtp => "FEC_SRTP",
            Self::SrtpFec => "SRTP_FEC",
        }
    }
}

impl fmt::Display for FecOrder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The SRTP session parameters of an `a=crypto` line (RFC 4568 §6.3).
///
/// All of them are optional; the default is none given. `FEC_KEY` is not represented: lines
/// with it are rejected (see the [module documentation](crate::sdes)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SessionParams {
    /// `KDR=n` (§6.3.1): re-derive session keys every 2^n packets, n from 1 to 24. `None`
    /// derives them once; so does `KDR=0`, which the RFC does not allow and which senders
    /// use for RFC 3711's rate zero (kept here as given, so the line prints back the same).
    pub kdr: Option<u8>,
    /// `UNENCRYPTED_SRTP` (§6.3.2): SRTP payloads are sent in the clear (still authenticated).
    pub unencrypted_srtp: bool,
    /// `UNENCRYPTED_SRTCP` (§6.3.2): SRTCP packets are sent in the clear (still
    /// authenticated).
    pub unencrypted_srtcp: bool,
    /// `UNAUTHENTICATED_SRTP` (§6.3.3): SRTP packets carry no authentication tag. SRTCP is
    /// always authenticated.
    pub unauthenticated_srtp: bool,
    /// `WSH=n` (§6.3.6): the replay window size the sender suggests, at least 64.
    pub wsh: Option<u32>,
    /// `FEC_ORDER=` (§6.3.4).
    pub fec_order: Option<FecOrder>,
    /// Unknown parameters starting with `-`, verbatim: optional by RFC 4568 §6.3.7, so they
    /// are kept for the caller and otherwise ignored.
    pub extensions: Vec<String>,
}

/// One SDES `a=crypto` attribute (RFC 4568 §4, §6): a tag, a crypto suite, one or more master
/// keys and the session parameters.
///
/// Parse one with [`str::parse`] (see [`FromStr`](#impl-FromStr-for-CryptoAttribute) for the
/// forms accepted), format one with `Display` (the attribute without the `a=` prefix), and log
/// one with [`redacted`](Self::redacted). `Debug` never shows key bytes.
///
/// ```
/// use srtp_core::{sdes::CryptoAttribute, Profile};
///
/// let line = "a=crypto:1 AES_CM_128_HMAC_SHA1_80 \
///             inline:WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz|2^31|1:1";
/// let attr: CryptoAttribute = line.parse()?;
/// assert_eq!(attr.profile, Profile::Aes128CmHmacSha1_80);
/// assert_eq!(format!("a={attr}"), line);
/// assert_eq!(
///     attr.redacted().to_string(),
///     "crypto:1 AES_CM_128_HMAC_SHA1_80 inline:<redacted>|2^31|1:1"
/// );
/// # Ok::<(), srtp_core::sdes::SdesError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CryptoAttribute {
    /// The tag that identifies this line in an offer and its answer (RFC 4568 §4.1, §9.1:
    /// up to 9 decimal digits).
    pub tag: u32,
    /// The crypto suite.
    pub profile: Profile,
    /// The master keys, each with its optional MKI and lifetime, in the order given. With more
    /// than one, every key has an MKI of the same length (RFC 4568 §6.1).
    pub keys: Vec<MasterKey>,
    /// The session parameters.
    pub params: SessionParams,
}

impl CryptoAttribute {
    /// An attribute with one master key and no session parameters.
    pub fn new(tag: u32, profile: Profile, key: MasterKey) -> Self {
        Self {
            tag,
            profile,
            keys: vec![key],
            params: SessionParams::default(),
        }
    }

    /// An attribute with a fresh random master key for `profile` (no MKI, no lifetime), as an
    /// offer or answer would send it.
    ///
    /// # Panics
    /// If the operating system has no random source (see [`MasterKey::generate`]).
    pub fn generate(tag: u32, profile: Profile) -> Self {
        Self::new(tag, profile, MasterKey::generate(profile))
    }

    /// The [`Policy`] this attribute describes: its profile and keys, with the session
    /// parameters applied (RFC 4568 §6.3).
    ///
    /// `UNENCRYPTED_SRTP`, `UNENCRYPTED_SRTCP` and `UNAUTHENTICATED_SRTP` clear
    /// [`encrypt_rtp`](Policy::encrypt_rtp), [`encrypt_rtcp`](Policy::encrypt_rtcp) and
    /// [`authenticate_rtp`](Policy::authenticate_rtp); `KDR` sets
    /// [`key_derivation_rate`](Policy::key_derivation_rate), except `KDR=0`, which derives
    /// the keys once (RFC 3711 §4.3.1's rate zero; RFC 4568 allows only 1 to 24, and reading
    /// 0 as 2^0 would re-derive on every packet, matching no peer). `WSH` is only a hint (§6.3.6): the
    /// replay window is enlarged to it, rounded up to a multiple of 64 and capped at
    /// [`MAX_REPLAY_WINDOW`], but never made smaller than the default of
    /// [`DEFAULT_REPLAY_WINDOW`] packets. The other options keep
    /// the [`Policy::new`] defaults.
    ///
    /// # Errors
    /// [`SdesError::Policy`] if a key's length does not fit the profile or its lifetime is
    /// zero, there is no key, `KDR` is above 24, or `UNAUTHENTICATED_SRTP` is set on an AEAD
    /// profile; [`SdesError::InconsistentMki`] or [`SdesError::DuplicateMki`] if several keys
    /// do not carry distinct MKIs of one length. Parsing already refuses all of these except
    /// `UNAUTHENTICATED_SRTP` with an AEAD suite, which is well-formed but cannot be honoured.
    pub fn policy(&self) -> Result<Policy, SdesError> {
        if self.keys.is_empty() {
            return Err(SdesError::Policy(PolicyError::NoMasterKey));
        }
        for key in &self.keys {
            key.check(self.profile)?;
        }
        check_mkis(&self.keys)?;
        let params = &self.params;
        if let Some(n) = params.kdr.filter(|&n| n > MAX_KDR) {
            return Err(SdesError::Policy(PolicyError::KeyDerivationRate(n)));
        }
        if params.unauthenticated_srtp && self.profile.is_aead() {
            return Err(SdesError::Policy(PolicyError::UnauthenticatedAead));
        }
        // As `Session::new` refuses it: a line that passes here makes a session.
        if params.unencrypted_srtp && self.profile.is_aead() {
            return Err(SdesError::Policy(PolicyError::UnencryptedAead));
        }
        let mut policy = Policy::with_keys(self.profile, self.keys.clone());
        policy.encrypt_rtp = !params.unencrypted_srtp;
        policy.encrypt_rtcp = !params.unencrypted_srtcp;
        policy.authenticate_rtp = !params.unauthenticated_srtp;
        policy.key_derivation_rate = params.kdr.filter(|&n| n > 0);
        if let Some(wsh) = params.wsh {
            policy.replay_window = replay_window_for(wsh);
        }
        Ok(policy)
    }

    /// The attribute as `Display` writes it, but with every key shown as `inline:<redacted>`:
    /// for logs, which must never hold key material.
    #[must_use]
    pub fn redacted(&self) -> impl fmt::Display + '_ {
        Redacted(self)
    }

    fn write(&self, f: &mut fmt::Formatter<'_>, redact: bool) -> fmt::Result {
        write!(f, "crypto:{} {} ", self.tag, self.profile.sdes_name())?;
        for (i, key) in self.keys.iter().enumerate() {
            if i > 0 {
                f.write_str(";")?;
            }
            f.write_str("inline:")?;
            if redact {
                f.write_str("<redacted>")?;
            } else {
                write_key_base64(f, key)?;
            }
            match key.lifetime() {
                Some(n) if n > 1 && n.is_power_of_two() => write!(f, "|2^{}", n.trailing_zeros())?,
                Some(n) => write!(f, "|{n}")?,
                None => {}
            }
            if let Some(mki) = key.mki() {
                write!(f, "|{mki}")?;
            }
        }
        let p = &self.params;
        if let Some(n) = p.kdr {
            write!(f, " KDR={n}")?;
        }
        if p.unencrypted_srtp {
            f.write_str(" UNENCRYPTED_SRTP")?;
        }
        if p.unencrypted_srtcp {
            f.write_str(" UNENCRYPTED_SRTCP")?;
        }
        if p.unauthenticated_srtp {
            f.write_str(" UNAUTHENTICATED_SRTP")?;
        }
        if let Some(n) = p.wsh {
            write!(f, " WSH={n}")?;
        }
        if let Some(order) = p.fec_order {
            write!(f, " FEC_ORDER={order}")?;
        }
        for ext in &p.extensions {
            write!(f, " {ext}")?;
        }
        Ok(())
    }
}

/// Writes `key || salt` as padded base64 (baresip 1.0 reads only padded keys), going through
/// buffers that are zeroized afterwards.
fn write_key_base64(f: &mut fmt::Formatter<'_>, key: &MasterKey) -> fmt::Result {
    let mut material = Zeroizing::new([0u8; MAX_KEY_LEN + MAX_SALT_LEN]);
    let len = key.write_key_material(&mut material);
    let mut text = Zeroizing::new([0u8; B64_BUF_LEN]);
    let written = STANDARD
        .encode_slice(&material[..len], &mut text[..])
        .map_err(|_| fmt::Error)?;
    f.write_str(core::str::from_utf8(&text[..written]).map_err(|_| fmt::Error)?)
}

/// Formats as `crypto:<tag> <suite> inline:<base64 key||salt>[|lifetime][|mki:len][;inline:…]
/// [params]`, without the `a=` prefix (RFC 4568 §9.1). Keys are padded base64; a lifetime that
/// is a power of two is written `2^N`; session parameters come in the order `KDR`,
/// `UNENCRYPTED_SRTP`, `UNENCRYPTED_SRTCP`, `UNAUTHENTICATED_SRTP`, `WSH`, `FEC_ORDER`, then the
/// extensions.
///
/// This output carries the keys: use [`CryptoAttribute::redacted`] for logs.
impl fmt::Display for CryptoAttribute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, false)
    }
}

/// What [`CryptoAttribute::redacted`] returns.
struct Redacted<'a>(&'a CryptoAttribute);

impl fmt::Display for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.write(f, true)
    }
}

/// Parses one attribute. Accepted forms: the whole SDP line `a=crypto:<value>`, `crypto:<value>`,
/// or the attribute value alone (`1 AES_CM_128_HMAC_SHA1_80 inline:…`). Leading and trailing
/// whitespace (a `\r\n` included) and runs of spaces or tabs between fields are tolerated.
///
/// # Errors
/// An [`SdesError`] naming what is wrong; [`SdesError::UnknownSuite`] for a suite this crate
/// does not implement, so a caller can try the next line.
impl FromStr for CryptoAttribute {
    type Err = SdesError;

    fn from_str(s: &str) -> Result<Self, SdesError> {
        parse(s)
    }
}

/// Every `a=crypto:` line of `sdp`, parsed, in order: give it one media section and take the
/// first `Ok` (or the first whose profile you support) to answer an offer (RFC 4568 §7.1.2).
///
/// Other lines are skipped. Lines may end in `\n` or `\r\n`. An error for one line does not
/// stop the iteration. Given a whole SDP body, it yields the lines of every media section.
pub fn parse_all(sdp: &str) -> impl Iterator<Item = Result<CryptoAttribute, SdesError>> + '_ {
    sdp.lines()
        .map(str::trim_start)
        .filter(|line| strip_prefix_ci(line, "a=crypto:").is_some())
        .map(parse)
}

// ------------------------------------------------------------------------------- parsing

/// Largest `KDR` exponent (RFC 4568 §6.3.1, RFC 3711 §4.3.1).
const MAX_KDR: u8 = 24;

/// Smallest `WSH` (RFC 4568 §6.3.6).
const MIN_WSH: u32 = 64;

fn parse(input: &str) -> Result<CryptoAttribute, SdesError> {
    if input.len() > MAX_LINE_LEN {
        return Err(SdesError::TooLong { len: input.len() });
    }
    let body = input.trim_end();
    let start = body.len() - body.trim_start().len();
    let body = body.trim_start();
    if let Some(i) = body.bytes().position(|b| !(is_vchar(b) || is_wsp(b))) {
        return Err(SdesError::InvalidCharacter {
            position: start + i,
        });
    }
    let value = if let Some(rest) = strip_prefix_ci(body, "a=crypto:") {
        rest
    } else if let Some(rest) = strip_prefix_ci(body, "crypto:") {
        rest
    } else if body.starts_with(|c: char| c.is_ascii_digit()) {
        body
    } else {
        return Err(SdesError::NotCrypto);
    };

    let mut fields = value.split([' ', '\t']).filter(|t| !t.is_empty());
    let tag = fields.next().ok_or(SdesError::Missing("tag"))?;
    let tag = digits::<u32>(tag, 9).ok_or_else(|| SdesError::BadTag(echo(tag)))?;
    let suite = fields.next().ok_or(SdesError::Missing("crypto suite"))?;
    let profile = Profile::ALL
        .into_iter()
        .find(|p| p.sdes_name().eq_ignore_ascii_case(suite))
        .ok_or_else(|| SdesError::UnknownSuite(echo(suite)))?;
    let key_params = fields.next().ok_or(SdesError::Missing("key parameters"))?;
    let keys = parse_keys(profile, key_params)?;
    let mut params = SessionParams::default();
    for token in fields {
        parse_param(&mut params, token)?;
    }
    Ok(CryptoAttribute {
        tag,
        profile,
        keys,
        params,
    })
}

/// Parses `key-param *(";" key-param)` (RFC 4568 §9.1) into master keys and checks their MKIs.
fn parse_keys(profile: Profile, text: &str) -> Result<Vec<MasterKey>, SdesError> {
    let count = text.split(';').count();
    if count > MAX_KEYS {
        return Err(SdesError::TooManyKeys(count));
    }
    // Sized up front: a growing Vec would free its old buffer, key bytes and all, without
    // zeroizing it.
    let mut keys = Vec::with_capacity(count);
    for (i, param) in text.split(';').enumerate() {
        keys.push(parse_key(profile, param, i + 1)?);
    }
    check_mkis(&keys)?;
    Ok(keys)
}

/// Parses one `inline:<key||salt>[|lifetime][|MKI:length]` (RFC 4568 §6.1, §9.2); `index`
/// counts from 1 for error messages.
fn parse_key(profile: Profile, param: &str, index: usize) -> Result<MasterKey, SdesError> {
    let (method, info) = param
        .split_once(':')
        .ok_or(SdesError::MalformedKeyParam { key: index })?;
    if method.is_empty() {
        return Err(SdesError::MalformedKeyParam { key: index });
    }
    if !method.eq_ignore_ascii_case("inline") {
        return Err(SdesError::UnknownKeyMethod(echo(method)));
    }
    let mut parts = info.split('|');
    let key_salt = parts.next().unwrap_or_default();
    let mut lifetime = None;
    let mut mki = None;
    for part in parts {
        if part.contains(':') {
            if mki.is_some() {
                return Err(SdesError::KeyInfo { key: index });
            }
            mki = Some(parse_mki(part)?);
        } else {
            // The grammar puts the lifetime first; two lifetimes or one after the MKI is a
            // mistake we do not guess about.
            if lifetime.is_some() || mki.is_some() || part.is_empty() {
                return Err(SdesError::KeyInfo { key: index });
            }
            lifetime = Some(parse_lifetime(part)?);
        }
    }
    let mut key = decode_key(profile, key_salt, index)?;
    if let Some(mki) = mki {
        key = key.with_mki(mki);
    }
    if let Some(lifetime) = lifetime {
        key = key.with_lifetime(lifetime);
    }
    Ok(key)
}

/// Decodes base64 `key || salt`, padded or not, into a master key; the decoded bytes live only
/// in a buffer that is zeroized on return.
fn decode_key(profile: Profile, text: &str, index: usize) -> Result<MasterKey, SdesError> {
    let bad = SdesError::Base64 { key: index };
    let unpadded = text.trim_end_matches('=');
    let padding = text.len() - unpadded.len();
    if unpadded.is_empty()
        || !unpadded.bytes().all(is_base64_symbol)
        || (padding > 0 && (padding > 2 || !text.len().is_multiple_of(4)))
    {
        return Err(bad);
    }
    let actual = match unpadded.len() % 4 {
        1 => return Err(bad),
        rem => unpadded.len() / 4 * 3 + rem.saturating_sub(1),
    };
    let expected = profile.key_material_len();
    if actual != expected {
        return Err(SdesError::KeyLength {
            key: index,
            expected,
            actual,
        });
    }
    let mut buf = Zeroizing::new([0u8; B64_BUF_LEN]);
    let written = STANDARD_NO_PAD
        .decode_slice(unpadded, &mut buf[..])
        .map_err(|_| bad.clone())?;
    if written != expected {
        return Err(bad);
    }
    buf.get(..written)
        .ok_or(bad)
        .and_then(|m| MasterKey::from_key_material(profile, m).map_err(SdesError::Policy))
}

/// Parses a lifetime: `2^N` or a decimal number of packets (RFC 4568 §6.1), 1 to 2^63.
fn parse_lifetime(text: &str) -> Result<u64, SdesError> {
    let value = if let Some(exp) = text.strip_prefix("2^") {
        let exp = digits::<u32>(exp, 3).ok_or_else(|| SdesError::Lifetime(echo(text)))?;
        if exp > 63 {
            return Err(SdesError::LifetimeRange(echo(text)));
        }
        1u64 << exp
    } else {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SdesError::Lifetime(echo(text)));
        }
        // Only digits: a parse failure is an overflow.
        text.parse::<u64>()
            .map_err(|_| SdesError::LifetimeRange(echo(text)))?
    };
    if value == 0 || value > 1 << 63 {
        return Err(SdesError::LifetimeRange(echo(text)));
    }
    Ok(value)
}

/// Parses `MKI-value ":" MKI-length` (RFC 4568 §9.2).
fn parse_mki(text: &str) -> Result<Mki, SdesError> {
    let syntax = || SdesError::Mki(echo(text));
    let (value, len) = text.split_once(':').ok_or_else(syntax)?;
    let len = digits::<usize>(len, 3).ok_or_else(syntax)?;
    if !(1..=MAX_MKI_LEN).contains(&len) {
        return Err(syntax());
    }
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(syntax());
    }
    let too_big = || SdesError::MkiValue(echo(text));
    // Only digits: a parse failure is an overflow.
    let value = value.parse::<u32>().map_err(|_| too_big())?;
    Mki::new(value, len).map_err(|_| too_big())
}

/// RFC 4568 §6.1 with RFC 3711 §3.1: with several keys each needs an MKI, all of one length,
/// and no two alike.
fn check_mkis(keys: &[MasterKey]) -> Result<(), SdesError> {
    if keys.len() < 2 {
        return Ok(());
    }
    let len = keys.first().and_then(MasterKey::mki).map(|m| m.len());
    for (i, key) in keys.iter().enumerate() {
        let mki = key.mki().ok_or(SdesError::InconsistentMki)?;
        if Some(mki.len()) != len {
            return Err(SdesError::InconsistentMki);
        }
        if keys[..i].iter().any(|other| other.mki() == Some(mki)) {
            return Err(SdesError::DuplicateMki);
        }
    }
    Ok(())
}

/// The session parameters this crate knows, in their registered spelling (RFC 4568 §10.3.2.2).
const KNOWN_PARAMS: [&str; 7] = [
    "KDR",
    "UNENCRYPTED_SRTP",
    "UNENCRYPTED_SRTCP",
    "UNAUTHENTICATED_SRTP",
    "WSH",
    "FEC_ORDER",
    "FEC_KEY",
];

/// Parses one session parameter (RFC 4568 §6.3, §9.2) into `params`.
fn parse_param(params: &mut SessionParams, token: &str) -> Result<(), SdesError> {
    if token.starts_with('-') {
        params.extensions.push(token.to_owned());
        return Ok(());
    }
    if strip_prefix_ci(token, "inline:").is_some() {
        return Err(SdesError::MisplacedKeyParam);
    }
    let (name, value) = match token.split_once('=') {
        Some((name, value)) => (name, Some(value)),
        None => (token, None),
    };
    let Some(name) = KNOWN_PARAMS
        .into_iter()
        .find(|known| known.eq_ignore_ascii_case(name))
    else {
        return Err(SdesError::UnknownParam(echo(name)));
    };
    let bad = || SdesError::BadParam {
        name,
        value: echo(value.unwrap_or_default()),
    };
    let duplicate = SdesError::DuplicateParam(name);
    match name {
        "KDR" => {
            if params.kdr.is_some() {
                return Err(duplicate);
            }
            let n = value
                .and_then(|v| digits::<u8>(v, 2))
                .filter(|&n| n <= MAX_KDR)
                .ok_or_else(bad)?;
            params.kdr = Some(n);
        }
        "WSH" => {
            if params.wsh.is_some() {
                return Err(duplicate);
            }
            let n = value
                .and_then(|v| digits::<u32>(v, 10))
                .filter(|&n| n >= MIN_WSH)
                .ok_or_else(bad)?;
            params.wsh = Some(n);
        }
        "FEC_ORDER" => {
            if params.fec_order.is_some() {
                return Err(duplicate);
            }
            let order = match value {
                Some(v) if v.eq_ignore_ascii_case("FEC_SRTP") => FecOrder::FecSrtp,
                Some(v) if v.eq_ignore_ascii_case("SRTP_FEC") => FecOrder::SrtpFec,
                _ => return Err(bad()),
            };
            params.fec_order = Some(order);
        }
        // Its value is key material: never decoded, never echoed.
        "FEC_KEY" => return Err(SdesError::FecKeyUnsupported),
        _ => {
            let flag = match name {
                "UNENCRYPTED_SRTP" => &mut params.unencrypted_srtp,
                "UNENCRYPTED_SRTCP" => &mut params.unencrypted_srtcp,
                _ => &mut params.unauthenticated_srtp,
            };
            if value.is_some() {
                return Err(bad());
            }
            if *flag {
                return Err(duplicate);
            }
            *flag = true;
        }
    }
    Ok(())
}

/// The replay window for a `WSH` hint: rounded up to a multiple of 64, at most
/// [`MAX_REPLAY_WINDOW`], at least the default.
fn replay_window_for(wsh: u32) -> usize {
    let wsh = usize::try_from(wsh).unwrap_or(MAX_REPLAY_WINDOW);
    (wsh.min(MAX_REPLAY_WINDOW).div_ceil(64) * 64).max(DEFAULT_REPLAY_WINDOW)
}

/// `1*max` ASCII digits as a number (no sign, unlike `str::parse`).
fn digits<T: FromStr>(text: &str, max: usize) -> Option<T> {
    if text.is_empty() || text.len() > max || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `s` without `prefix`, compared without regard to ASCII case.
fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

/// RFC 5234 VCHAR: visible ASCII.
fn is_vchar(b: u8) -> bool {
    (0x21..=0x7e).contains(&b)
}

/// RFC 5234 WSP: space or horizontal tab.
fn is_wsp(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn is_base64_symbol(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'+' || b == b'/'
}

/// A token for an error message, made safe to log: tokens that look like base64 key material
/// (16 or more characters mixing upper and lower case, as a key in the wrong place would) are
/// replaced by their length, and long tokens are cut.
fn echo(token: &str) -> String {
    let mixed_case = token.bytes().any(|b| b.is_ascii_lowercase())
        && token.bytes().any(|b| b.is_ascii_uppercase());
    if mixed_case && token.len() >= 16 {
        return format!("<{} characters not shown>", token.chars().count());
    }
    match token.char_indices().nth(MAX_ECHO_LEN) {
        Some((cut, _)) => format!("{}...", &token[..cut]),
        None => token.to_owned(),
    }
}

// -------------------------------------------------------------------------------- errors

/// Why an `a=crypto` attribute could not be parsed or turned into a policy.
///
/// Messages name the offending token or key position but never contain key material: a token
/// that could be a misplaced key is replaced by its length.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SdesError {
    /// The input is longer than [`MAX_LINE_LEN`] bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The input starts with neither `a=crypto:`, `crypto:` nor a tag.
    NotCrypto,
    /// A byte that is neither visible ASCII nor a space or tab (RFC 4568 §9.1).
    InvalidCharacter {
        /// Its byte offset in the input.
        position: usize,
    },
    /// A mandatory field is missing: the tag, the crypto suite or the key parameters.
    Missing(&'static str),
    /// The tag is not 1 to 9 decimal digits (RFC 4568 §9.1).
    BadTag(String),
    /// A crypto suite this crate does not implement (such as `F8_128_HMAC_SHA1_80`): skip the
    /// line and try the next one.
    UnknownSuite(String),
    /// More than [`MAX_KEYS`] key parameters.
    TooManyKeys(usize),
    /// A key parameter is not `method:info` (an empty one, say, from a stray `;`).
    MalformedKeyParam {
        /// Which key parameter, counting from 1.
        key: usize,
    },
    /// A key method other than `inline` (RFC 4568 §6.1, the only one registered).
    UnknownKeyMethod(String),
    /// The key and salt are not valid base64 (RFC 4648 §4, padded or not).
    Base64 {
        /// Which key parameter, counting from 1.
        key: usize,
    },
    /// The key and salt decode to the wrong number of bytes for the suite.
    KeyLength {
        /// Which key parameter, counting from 1.
        key: usize,
        /// Bytes the suite needs (its [`key_material_len`](Profile::key_material_len)).
        expected: usize,
        /// Bytes given.
        actual: usize,
    },
    /// The `|`-separated fields after the key are not `[|lifetime][|MKI:length]`: an empty
    /// field, two lifetimes or MKIs, or a lifetime after the MKI.
    KeyInfo {
        /// Which key parameter, counting from 1.
        key: usize,
    },
    /// A lifetime that is neither `2^N` nor a decimal number.
    Lifetime(String),
    /// A lifetime of zero or above 2^63 packets.
    LifetimeRange(String),
    /// An MKI that is not `value:length` with a length of 1 to 128 (RFC 4568 §9.2).
    Mki(String),
    /// An MKI value that does not fit in its length.
    MkiValue(String),
    /// Several keys, not all with an MKI of the same length (RFC 4568 §6.1).
    InconsistentMki,
    /// Two keys with the same MKI.
    DuplicateMki,
    /// An unknown session parameter without the `-` prefix: RFC 4568 §6.3.7 makes the whole
    /// attribute invalid.
    UnknownParam(String),
    /// A known session parameter with a bad or missing value, or a value where none belongs.
    BadParam {
        /// The parameter.
        name: &'static str,
        /// Its value as given.
        value: String,
    },
    /// A session parameter given twice.
    DuplicateParam(&'static str),
    /// A token in the session parameters that is a key parameter: keys must be separated by
    /// `;`, not whitespace.
    MisplacedKeyParam,
    /// `FEC_KEY` is not supported (see the [module documentation](crate::sdes)).
    FecKeyUnsupported,
    /// The attribute does not make a valid policy (see [`CryptoAttribute::policy`]).
    Policy(PolicyError),
}

impl From<PolicyError> for SdesError {
    fn from(e: PolicyError) -> Self {
        Self::Policy(e)
    }
}

impl fmt::Display for SdesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLong { len } => write!(
                f,
                "crypto attribute of {len} bytes: longer than the limit of {MAX_LINE_LEN}"
            ),
            Self::NotCrypto => {
                f.write_str("not a crypto attribute: expected \"a=crypto:\", \"crypto:\" or a tag")
            }
            Self::InvalidCharacter { position } => write!(
                f,
                "invalid character at byte {position}: only visible ASCII, spaces and tabs \
                 are allowed"
            ),
            Self::Missing(what) => write!(f, "missing {what}"),
            Self::BadTag(t) => write!(f, "tag \"{t}\": expected 1 to 9 decimal digits"),
            Self::UnknownSuite(s) => write!(f, "unknown crypto suite \"{s}\""),
            Self::TooManyKeys(n) => {
                write!(f, "{n} key parameters: at most {MAX_KEYS} are supported")
            }
            Self::MalformedKeyParam { key } => {
                write!(f, "key parameter {key}: expected \"inline:\" and the key")
            }
            Self::UnknownKeyMethod(m) => {
                write!(f, "key method \"{m}\": only \"inline\" is supported")
            }
            Self::Base64 { key } => {
                write!(f, "key parameter {key}: key and salt are not valid base64")
            }
            Self::KeyLength {
                key,
                expected,
                actual,
            } => write!(
                f,
                "key parameter {key}: key and salt are {actual} bytes, the suite needs {expected}"
            ),
            Self::KeyInfo { key } => write!(
                f,
                "key parameter {key}: expected key and salt, then optionally |lifetime, then \
                 optionally |MKI:length"
            ),
            Self::Lifetime(t) => write!(f, "lifetime \"{t}\": expected 2^N or a decimal number"),
            Self::LifetimeRange(t) => {
                write!(f, "lifetime \"{t}\": must be from 1 to 2^63 packets")
            }
            Self::Mki(t) => write!(
                f,
                "MKI \"{t}\": expected value:length with a length from 1 to 128 bytes"
            ),
            Self::MkiValue(t) => write!(f, "MKI \"{t}\": the value does not fit in the length"),
            Self::InconsistentMki => {
                f.write_str("with several keys every key needs an MKI, all of the same length")
            }
            Self::DuplicateMki => f.write_str("two keys have the same MKI"),
            Self::UnknownParam(p) => write!(
                f,
                "unknown session parameter \"{p}\": only unknown parameters starting with \"-\" \
                 may be ignored"
            ),
            Self::BadParam { name, value } => {
                let expected = match *name {
                    "KDR" => "expected an exponent from 0 to 24",
                    "WSH" => "expected a window size of at least 64 packets",
                    "FEC_ORDER" => "expected FEC_SRTP or SRTP_FEC",
                    _ => "this parameter takes no value",
                };
                write!(f, "session parameter \"{name}={value}\": {expected}")
            }
            Self::DuplicateParam(p) => write!(f, "session parameter {p} is given twice"),
            Self::MisplacedKeyParam => {
                f.write_str("key parameter among the session parameters: separate keys with \";\"")
            }
            Self::FecKeyUnsupported => {
                f.write_str("FEC_KEY (separate master keys for FEC) is not supported")
            }
            Self::Policy(e) => write!(f, "the attribute does not make a valid policy: {e}"),
        }
    }
}

impl std::error::Error for SdesError {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Error, Session, MAX_TRAILER_LEN};
    use proptest::prelude::*;

    /// 30 bytes of key and salt, from RFC 4568's examples.
    const KEY_A: &str = "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz";
    const KEY_B: &str = "PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBR";
    const SUITE: &str = "AES_CM_128_HMAC_SHA1_80";

    fn attr(s: &str) -> CryptoAttribute {
        s.parse()
            .unwrap_or_else(|e| panic!("{s:?} should parse: {e}"))
    }

    fn err(s: &str) -> SdesError {
        match s.parse::<CryptoAttribute>() {
            Ok(a) => panic!("{s:?} should not parse, got {a:?}"),
            Err(e) => e,
        }
    }

    fn line(key_params: &str, params: &str) -> String {
        format!("a=crypto:1 {SUITE} {key_params} {params}")
    }

    fn pattern_key(profile: Profile, start: u8) -> MasterKey {
        let material: Vec<u8> = (0..profile.key_material_len())
            .map(|i| start.wrapping_add(i as u8))
            .collect();
        MasterKey::from_key_material(profile, &material).unwrap()
    }

    /// A 172-byte RTP packet (G.711, 20 ms) in a buffer with room for the trailer.
    fn rtp_packet(seq: u16) -> [u8; 172 + MAX_TRAILER_LEN] {
        let mut buf = [0u8; 172 + MAX_TRAILER_LEN];
        buf[0] = 0x80;
        buf[2..4].copy_from_slice(&seq.to_be_bytes());
        buf[8..12].copy_from_slice(&0x1234_5678u32.to_be_bytes());
        buf[12..172].fill(0xd5);
        buf
    }

    /// Protects a packet with a session from `tx`, unprotects it with one from `rx`; returns
    /// the SRTP length.
    fn send(tx: &Policy, rx: &Policy) -> Result<usize, Error> {
        let mut sender = Session::new(tx).unwrap();
        let mut receiver = Session::new(rx).unwrap();
        let mut buf = rtp_packet(7);
        let len = sender.protect_rtp(&mut buf, 172)?;
        let plain = receiver.unprotect_rtp(&mut buf[..len])?;
        assert_eq!(plain, &rtp_packet(7)[..172]);
        Ok(len)
    }

    // ---------------------------------------------------------------- accepted forms

    #[test]
    fn accepts_line_attribute_and_value_forms() {
        let want = attr(&format!("a=crypto:1 {SUITE} inline:{KEY_A}"));
        for s in [
            format!("crypto:1 {SUITE} inline:{KEY_A}"),
            format!("1 {SUITE} inline:{KEY_A}"),
            format!("a=crypto:1 {SUITE} inline:{KEY_A}\r\n"),
            format!("a=crypto:1 {SUITE} inline:{KEY_A} \t \n"),
            format!("  a=crypto:1 {SUITE} inline:{KEY_A}"),
            format!("a=crypto:1\t\t{SUITE}   \tinline:{KEY_A}"),
            format!("a=crypto: 1 {SUITE} inline:{KEY_A}"),
            format!("A=CRYPTO:1 {SUITE} inline:{KEY_A}"),
        ] {
            assert_eq!(attr(&s), want, "{s:?}");
        }
        assert_eq!(want.tag, 1);
        assert_eq!(want.profile, Profile::Aes128CmHmacSha1_80);
        assert_eq!(want.keys.len(), 1);
        assert_eq!(want.keys[0].mki(), None);
        assert_eq!(want.keys[0].lifetime(), None);
        assert_eq!(want.params, SessionParams::default());
    }

    #[test]
    fn matches_names_without_regard_to_case() {
        let a = attr(&format!(
            "1 aes_cm_128_hmac_sha1_32 INLINE:{KEY_A} unencrypted_srtcp kdr=3 Fec_Order=srtp_fec"
        ));
        assert_eq!(a.profile, Profile::Aes128CmHmacSha1_32);
        assert!(a.params.unencrypted_srtcp);
        assert_eq!(a.params.kdr, Some(3));
        assert_eq!(a.params.fec_order, Some(FecOrder::SrtpFec));
        assert_eq!(
            a.to_string(),
            format!(
                "crypto:1 AES_CM_128_HMAC_SHA1_32 inline:{KEY_A} KDR=3 UNENCRYPTED_SRTCP \
                 FEC_ORDER=SRTP_FEC"
            )
        );
    }

    #[test]
    fn accepts_tag_bounds() {
        assert_eq!(
            attr(&format!("999999999 {SUITE} inline:{KEY_A}")).tag,
            999_999_999
        );
        assert_eq!(attr(&format!("0 {SUITE} inline:{KEY_A}")).tag, 0);
        assert_eq!(attr(&format!("007 {SUITE} inline:{KEY_A}")).tag, 7);
    }

    // ---------------------------------------------------------------- round trips

    #[test]
    fn round_trips_every_profile() {
        for (i, profile) in Profile::ALL.into_iter().enumerate() {
            let key = pattern_key(profile, i as u8 * 17)
                .with_lifetime(1 << 31)
                .with_mki(Mki::new(1, 1).unwrap());
            let a = CryptoAttribute::new(i as u32 + 1, profile, key);
            let text = a.to_string();
            assert!(text.starts_with(&format!("crypto:{} {} inline:", i + 1, profile)));
            assert!(text.ends_with("|2^31|1:1"), "{text}");
            assert_eq!(attr(&text), a, "{text}");
            assert_eq!(attr(&format!("a={text}")), a);

            let g = CryptoAttribute::generate(7, profile);
            assert_eq!(attr(&g.to_string()), g);
        }
    }

    #[test]
    fn every_profile_keys_sessions_that_interoperate() {
        for profile in Profile::ALL {
            let a = attr(&CryptoAttribute::generate(1, profile).to_string());
            let policy = a.policy().unwrap();
            let len = send(&policy, &policy).unwrap();
            assert_eq!(len, 172 + profile.rtp_tag_len(), "{profile}");
        }
    }

    #[test]
    fn display_pads_base64() {
        // 30 bytes (AES-128) need no padding; 28 (GCM-128), 38 (AES-192), 44 (GCM-256) and 46
        // (AES-256) bytes do.
        for profile in Profile::ALL {
            let text = CryptoAttribute::new(1, profile, pattern_key(profile, 0)).to_string();
            let b64 = text.rsplit("inline:").next().unwrap();
            assert_eq!(b64.len() % 4, 0, "{profile}: {b64}");
            assert_eq!(b64.len(), profile.key_material_len().div_ceil(3) * 4);
            if profile.key_material_len() % 3 != 0 {
                assert!(b64.ends_with('='), "{profile}: {b64}");
            }
        }
    }

    #[test]
    fn padded_and_unpadded_base64_decode_the_same() {
        for profile in [
            Profile::AeadAes128Gcm,
            Profile::Aes192CmHmacSha1_80,
            Profile::AeadAes256Gcm,
            Profile::Aes256CmHmacSha1_32,
        ] {
            let a = CryptoAttribute::new(3, profile, pattern_key(profile, 9));
            let padded = a.to_string();
            let unpadded = padded.trim_end_matches('=');
            assert_ne!(padded, unpadded);
            assert_eq!(attr(unpadded), a);
            assert_eq!(attr(&padded), a);
            assert_eq!(attr(unpadded).to_string(), padded);
        }
    }

    #[test]
    fn displays_lifetime_as_power_of_two_or_decimal() {
        let key = || pattern_key(Profile::Aes128CmHmacSha1_80, 0);
        let b64 = STANDARD.encode((0..30u8).collect::<Vec<_>>());
        for (lifetime, shown) in [
            (1u64 << 20, "2^20".to_owned()),
            (1 << 48, "2^48".to_owned()),
            (1 << 63, "2^63".to_owned()),
            (1000, "1000".to_owned()),
            (3, "3".to_owned()),
            (1, "1".to_owned()),
            (u64::MAX >> 1, (u64::MAX >> 1).to_string()),
        ] {
            let a = CryptoAttribute::new(
                1,
                Profile::Aes128CmHmacSha1_80,
                key().with_lifetime(lifetime),
            );
            assert_eq!(
                a.to_string(),
                format!("crypto:1 {SUITE} inline:{b64}|{shown}")
            );
            assert_eq!(attr(&a.to_string()).keys[0].lifetime(), Some(lifetime));
        }
        let a = attr(&line(&format!("inline:{KEY_A}|1048576"), ""));
        assert_eq!(a.keys[0].lifetime(), Some(1 << 20));
        assert!(a.to_string().ends_with("|2^20"));
        assert_eq!(
            attr(&line(&format!("inline:{KEY_A}|2^0"), "")).keys[0].lifetime(),
            Some(1)
        );
    }

    #[test]
    fn displays_session_params_in_canonical_order() {
        let s = format!(
            "a=crypto:5 {SUITE} inline:{KEY_A} -x-vendor=1 FEC_ORDER=FEC_SRTP WSH=256 \
             UNAUTHENTICATED_SRTP UNENCRYPTED_SRTCP UNENCRYPTED_SRTP KDR=0 -y"
        );
        let a = attr(&s);
        assert_eq!(
            a.to_string(),
            format!(
                "crypto:5 {SUITE} inline:{KEY_A} KDR=0 UNENCRYPTED_SRTP UNENCRYPTED_SRTCP \
                 UNAUTHENTICATED_SRTP WSH=256 FEC_ORDER=FEC_SRTP -x-vendor=1 -y"
            )
        );
        assert_eq!(attr(&a.to_string()), a);
    }

    // ---------------------------------------------------------------- Microsoft dialect

    #[test]
    fn microsoft_pair_parses_and_keys_sessions() {
        let with_mki = attr(&format!("a=crypto:2 {SUITE} inline:{KEY_A}|2^31|1:1\r\n"));
        let without = attr(&format!("a=crypto:3 {SUITE} inline:{KEY_A}|2^31\r\n"));
        assert_eq!((with_mki.tag, without.tag), (2, 3));
        assert_eq!(with_mki.keys[0].mki(), Some(Mki::new(1, 1).unwrap()));
        assert_eq!(without.keys[0].mki(), None);
        assert_eq!(with_mki.keys[0].lifetime(), Some(1 << 31));
        assert_eq!(without.keys[0].lifetime(), Some(1 << 31));
        assert_eq!(with_mki.keys[0].key(), without.keys[0].key());
        assert_eq!(
            with_mki.to_string(),
            format!("crypto:2 {SUITE} inline:{KEY_A}|2^31|1:1")
        );
        assert_eq!(
            without.to_string(),
            format!("crypto:3 {SUITE} inline:{KEY_A}|2^31")
        );

        let (p1, p2) = (with_mki.policy().unwrap(), without.policy().unwrap());
        assert_eq!(send(&p1, &p1), Ok(172 + 1 + 10));
        assert_eq!(send(&p2, &p2), Ok(172 + 10));
        // The MKI is on the wire: a receiver expecting none fails to authenticate.
        assert!(send(&p1, &p2).is_err());
    }

    #[test]
    fn microsoft_aes_cm_32_line_parses() {
        let a = attr(&format!(
            "a=crypto:4 AES_CM_128_HMAC_SHA1_32 inline:{KEY_A}|2^31|1:1"
        ));
        assert_eq!(a.profile, Profile::Aes128CmHmacSha1_32);
        let p = a.policy().unwrap();
        assert_eq!(send(&p, &p), Ok(172 + 1 + 4));
    }

    // ---------------------------------------------------------------- RFC 4568 examples

    /// RFC 4568 §4's own example: MKI value 1 in 32 bytes, carried in every packet.
    #[test]
    fn rfc4568_example_with_32_byte_mki_parses_and_protects() {
        let text = format!("crypto:1 {SUITE} inline:{KEY_B}|2^20|1:32");
        let a = attr(&format!("a={text}"));
        let mki = a.keys[0].mki().unwrap();
        assert_eq!(mki.len(), 32);
        assert_eq!(mki.as_bytes()[..31], [0; 31]);
        assert_eq!(mki.as_bytes()[31], 1);
        assert_eq!(a.to_string(), text);
        let p = a.policy().unwrap();
        assert_eq!(send(&p, &p), Ok(172 + 32 + 10));
        let a = attr(
            "a=crypto:1 AES_CM_128_HMAC_SHA1_32 \
             inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:32",
        );
        let p = a.policy().unwrap();
        assert_eq!(send(&p, &p), Ok(172 + 32 + 4));
        // The longest RFC 4568 allows, with a value in its last four bytes.
        let a = attr(&format!("a=crypto:1 {SUITE} inline:{KEY_B}|4294967295:128"));
        assert!(a.to_string().ends_with("|4294967295:128"));
        assert_eq!(
            send(&a.policy().unwrap(), &a.policy().unwrap()),
            Ok(172 + 128 + 10)
        );
    }

    #[test]
    fn rfc4568_example_with_4_byte_mki_parses() {
        let a = attr(&format!("a=crypto:1 {SUITE} inline:{KEY_B}|2^20|1:4"));
        assert_eq!(a.keys[0].mki(), Some(Mki::new(1, 4).unwrap()));
        assert_eq!(a.keys[0].lifetime(), Some(1 << 20));
        assert_eq!(
            a.to_string(),
            format!("crypto:1 {SUITE} inline:{KEY_B}|2^20|1:4")
        );
        let p = a.policy().unwrap();
        assert_eq!(send(&p, &p), Ok(172 + 4 + 10));
    }

    #[test]
    fn rfc4568_f8_example_is_an_unknown_suite() {
        let e = err("a=crypto:2 F8_128_HMAC_SHA1_80 \
             inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|1:4;\
             inline:QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5|2^20|2:4 FEC_ORDER=FEC_SRTP");
        assert_eq!(e, SdesError::UnknownSuite("F8_128_HMAC_SHA1_80".into()));
        assert_eq!(
            e.to_string(),
            "unknown crypto suite \"F8_128_HMAC_SHA1_80\""
        );
    }

    #[test]
    fn multiple_keys_with_mkis() {
        let s = format!(
            "a=crypto:2 {SUITE} \
             inline:MTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5QUJjZGVm|2^20|1:4;\
             inline:QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5|2^20|2:4 FEC_ORDER=FEC_SRTP"
        );
        let a = attr(&s);
        assert_eq!(a.keys.len(), 2);
        assert_eq!(a.keys[0].key(), b"123456789ABCDE01");
        assert_eq!(a.keys[0].salt(), b"23456789ABcdef");
        assert_eq!(a.keys[1].key(), b"ABcdef123456789A");
        assert_eq!(a.keys[1].mki(), Some(Mki::new(2, 4).unwrap()));
        assert_eq!(a.params.fec_order, Some(FecOrder::FecSrtp));
        assert_eq!(format!("a={a}"), s);

        // Each key protects for its MKI; the receiver picks the key by MKI.
        let p = a.policy().unwrap();
        let mut tx = Session::new(&p).unwrap();
        let mut rx = Session::new(&p).unwrap();
        tx.select_sender_key(Mki::new(2, 4).unwrap()).unwrap();
        let mut buf = rtp_packet(1);
        let len = tx.protect_rtp(&mut buf, 172).unwrap();
        assert_eq!(&buf[172..176], &[0, 0, 0, 2]);
        assert_eq!(rx.unprotect_rtp(&mut buf[..len]).unwrap().len(), 172);
    }

    #[test]
    fn accepts_mki_without_lifetime() {
        let a = attr(&line(&format!("inline:{KEY_A}|1:4"), ""));
        assert_eq!(a.keys[0].mki(), Some(Mki::new(1, 4).unwrap()));
        assert_eq!(a.keys[0].lifetime(), None);
        assert_eq!(
            a.to_string(),
            format!("crypto:1 {SUITE} inline:{KEY_A}|1:4")
        );
        let a = attr(&line(&format!("inline:{KEY_A}|4294967295:4"), ""));
        assert_eq!(a.keys[0].mki().map(|m| m.value()), Some(u32::MAX));
        let a = attr(&line(
            &format!("inline:{KEY_A}|255:1;inline:{KEY_B}|0:1"),
            "",
        ));
        assert_eq!(
            a.keys[1].mki().map(|m| m.as_bytes().to_vec()),
            Some(vec![0])
        );
    }

    // ---------------------------------------------------------------- session params

    #[test]
    fn parses_kdr() {
        for n in [1u8, 9, 24] {
            let a = attr(&line(&format!("inline:{KEY_A}"), &format!("KDR={n}")));
            assert_eq!(a.params.kdr, Some(n));
            assert_eq!(a.policy().unwrap().key_derivation_rate, Some(n));
        }
        // KDR=0 (outside RFC 4568's 1-24) is RFC 3711's rate zero: keys derived once, so a
        // line with it and one without interoperate past the first packet.
        let zero = attr(&line(&format!("inline:{KEY_A}"), "KDR=0"));
        assert_eq!(zero.params.kdr, Some(0), "kept as given");
        let zero = zero.policy().unwrap();
        assert_eq!(zero.key_derivation_rate, None);
        let once = attr(&line(&format!("inline:{KEY_A}"), ""))
            .policy()
            .unwrap();
        let mut sender = Session::new(&zero).unwrap();
        let mut receiver = Session::new(&once).unwrap();
        for seq in 7..12u16 {
            let mut buf = rtp_packet(seq);
            let len = sender.protect_rtp(&mut buf, 172).unwrap();
            assert!(
                receiver.unprotect_rtp(&mut buf[..len]).is_ok(),
                "packet {seq}"
            );
        }
        let a = attr(&line(&format!("inline:{KEY_A}"), "KDR=4"));
        let p = a.policy().unwrap();
        assert_eq!(send(&p, &p), Ok(182));
    }

    #[test]
    fn parses_unencrypted_srtp() {
        let a = attr(&line(&format!("inline:{KEY_A}"), "UNENCRYPTED_SRTP"));
        assert!(a.params.unencrypted_srtp);
        let p = a.policy().unwrap();
        assert!(!p.encrypt_rtp && p.encrypt_rtcp && p.authenticate_rtp);
        let mut tx = Session::new(&p).unwrap();
        let mut buf = rtp_packet(3);
        let len = tx.protect_rtp(&mut buf, 172).unwrap();
        assert_eq!(len, 182);
        assert_eq!(
            &buf[..172],
            &rtp_packet(3)[..172],
            "payload stays in the clear"
        );
        assert_eq!(send(&p, &p), Ok(182));
    }

    #[test]
    fn parses_unencrypted_srtcp() {
        let a = attr(&line(&format!("inline:{KEY_A}"), "UNENCRYPTED_SRTCP"));
        assert!(a.params.unencrypted_srtcp);
        let p = a.policy().unwrap();
        assert!(p.encrypt_rtp && !p.encrypt_rtcp && p.authenticate_rtp);
    }

    #[test]
    fn parses_unauthenticated_srtp() {
        let a = attr(&line(&format!("inline:{KEY_A}"), "UNAUTHENTICATED_SRTP"));
        assert!(a.params.unauthenticated_srtp);
        let p = a.policy().unwrap();
        assert!(p.encrypt_rtp && p.encrypt_rtcp && !p.authenticate_rtp);
        assert_eq!(send(&p, &p), Ok(172), "no tag");
    }

    #[test]
    fn parses_wsh_and_sizes_the_replay_window() {
        for (wsh, window) in [
            (64u32, DEFAULT_REPLAY_WINDOW),
            (128, 128),
            (129, 192),
            (1000, 1024),
            (32768, MAX_REPLAY_WINDOW),
            (100_000, MAX_REPLAY_WINDOW),
            (u32::MAX, MAX_REPLAY_WINDOW),
        ] {
            let a = attr(&line(&format!("inline:{KEY_A}"), &format!("WSH={wsh}")));
            assert_eq!(a.params.wsh, Some(wsh));
            let p = a.policy().unwrap();
            assert_eq!(p.replay_window, window, "WSH={wsh}");
            Session::new(&p).unwrap();
        }
        let p = attr(&line(&format!("inline:{KEY_A}"), ""))
            .policy()
            .unwrap();
        assert_eq!(p.replay_window, DEFAULT_REPLAY_WINDOW);
    }

    #[test]
    fn parses_fec_order() {
        let a = attr(&line(&format!("inline:{KEY_A}"), "FEC_ORDER=SRTP_FEC"));
        assert_eq!(a.params.fec_order, Some(FecOrder::SrtpFec));
        let a = attr(&line(&format!("inline:{KEY_A}"), "FEC_ORDER=FEC_SRTP"));
        assert_eq!(a.params.fec_order, Some(FecOrder::FecSrtp));
        a.policy().unwrap();
    }

    #[test]
    fn keeps_dash_extensions() {
        let a = attr(&line(&format!("inline:{KEY_A}"), "-FOO -bar=baz,1 -"));
        assert_eq!(a.params.extensions, ["-FOO", "-bar=baz,1", "-"]);
        assert!(a.to_string().ends_with(" -FOO -bar=baz,1 -"));
        a.policy().unwrap();
    }

    // ---------------------------------------------------------------- errors

    #[test]
    fn rejects_too_long_input() {
        let s = format!(
            "{} {}",
            line(&format!("inline:{KEY_A}"), ""),
            "-x".repeat(3000)
        );
        assert_eq!(err(&s), SdesError::TooLong { len: s.len() });
    }

    #[test]
    fn rejects_non_crypto_attribute() {
        for s in [
            "",
            "   ",
            "a=rtpmap:0 PCMU/8000",
            "a=cryptox:1",
            "x 1",
            "\r\n",
        ] {
            assert_eq!(err(s), SdesError::NotCrypto, "{s:?}");
        }
    }

    #[test]
    fn rejects_invalid_character() {
        let s = format!("a=crypto:1 {SUITE} inline:{KEY_A}\r\na=crypto:2");
        let position = s.find('\r').unwrap();
        assert_eq!(err(&s), SdesError::InvalidCharacter { position });
        let s = format!("  1 {SUITE} inline:{KEY_A} -é \r\n");
        let position = s.find('é').unwrap();
        assert_eq!(err(&s), SdesError::InvalidCharacter { position });
        assert!(matches!(
            err("1 AES\0"),
            SdesError::InvalidCharacter { position: 5 }
        ));
    }

    #[test]
    fn rejects_missing_fields() {
        assert_eq!(err("a=crypto:"), SdesError::Missing("tag"));
        assert_eq!(err("a=crypto:1"), SdesError::Missing("crypto suite"));
        assert_eq!(
            err(&format!("a=crypto:1 {SUITE}  ")),
            SdesError::Missing("key parameters")
        );
    }

    #[test]
    fn rejects_bad_tag() {
        for tag in ["1000000000", "1a", "-1", "+1", "12345678901234567890"] {
            let e = err(&format!("a=crypto:{tag} {SUITE} inline:{KEY_A}"));
            assert_eq!(e, SdesError::BadTag(tag.into()), "{tag}");
        }
        assert_eq!(
            err(&format!("a=crypto:1a {SUITE} inline:{KEY_A}")).to_string(),
            "tag \"1a\": expected 1 to 9 decimal digits"
        );
    }

    #[test]
    fn rejects_unknown_suite() {
        for suite in [
            "F8_128_HMAC_SHA1_80",
            "SEED_CTR_128_HMAC_SHA1_80",
            "AES_CM_128",
        ] {
            let e = err(&format!("a=crypto:1 {suite} inline:{KEY_A}"));
            assert_eq!(e, SdesError::UnknownSuite(suite.into()));
        }
    }

    #[test]
    fn rejects_too_many_keys() {
        let keys: Vec<String> = (1..=17).map(|i| format!("inline:{KEY_A}|{i}:1")).collect();
        assert_eq!(err(&line(&keys.join(";"), "")), SdesError::TooManyKeys(17));
        let a = attr(&line(&keys[..16].join(";"), ""));
        assert_eq!(a.keys.len(), MAX_KEYS);
    }

    #[test]
    fn rejects_malformed_key_param() {
        assert_eq!(
            err(&line(KEY_A, "")),
            SdesError::MalformedKeyParam { key: 1 }
        );
        assert_eq!(
            err(&line(&format!(":{KEY_A}"), "")),
            SdesError::MalformedKeyParam { key: 1 }
        );
        assert_eq!(
            err(&line(&format!("inline:{KEY_A}|1:1;"), "")),
            SdesError::MalformedKeyParam { key: 2 }
        );
    }

    #[test]
    fn rejects_unknown_key_method() {
        let e = err(&line(&format!("uri:{KEY_A}"), ""));
        assert_eq!(e, SdesError::UnknownKeyMethod("uri".into()));
        assert_eq!(
            e.to_string(),
            "key method \"uri\": only \"inline\" is supported"
        );
    }

    #[test]
    fn rejects_invalid_base64() {
        for bad in [
            "",
            "=",
            "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGV*",
            "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz=",
            "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGVz===",
            "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVu=bGV",
            "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVubGV-",
            "WVNfX19zZW1jdGwgKCkgewkyMjA7fQp9CnVub",
        ] {
            assert_eq!(
                err(&line(&format!("inline:{bad}"), "")),
                SdesError::Base64 { key: 1 },
                "{bad}"
            );
        }
        // 28 bytes with non-zero trailing bits ("...A" would be canonical for GCM-128).
        let gcm = STANDARD_NO_PAD.encode([7u8; 28]);
        let mut noncanonical = gcm.clone().into_bytes();
        *noncanonical.last_mut().unwrap() = b'B';
        let noncanonical = String::from_utf8(noncanonical).unwrap();
        assert_ne!(gcm, noncanonical);
        assert!(attr(&format!("1 AEAD_AES_128_GCM inline:{gcm}")).keys.len() == 1);
        assert_eq!(
            err(&format!("1 AEAD_AES_128_GCM inline:{noncanonical}")),
            SdesError::Base64 { key: 1 }
        );
        assert_eq!(
            err(&line(
                &format!("inline:{KEY_A}|1:1;inline:{KEY_B}!|2:1"),
                ""
            )),
            SdesError::Base64 { key: 2 }
        );
    }

    #[test]
    fn rejects_wrong_key_length() {
        // An AES-256 key under an AES-128 suite, and a short one.
        let long = STANDARD.encode([1u8; 46]);
        let e = err(&line(&format!("inline:{long}"), ""));
        assert_eq!(
            e,
            SdesError::KeyLength {
                key: 1,
                expected: 30,
                actual: 46
            }
        );
        assert_eq!(
            e.to_string(),
            "key parameter 1: key and salt are 46 bytes, the suite needs 30"
        );
        let short = STANDARD_NO_PAD.encode([1u8; 29]);
        assert_eq!(
            err(&line(&format!("inline:{short}"), "")),
            SdesError::KeyLength {
                key: 1,
                expected: 30,
                actual: 29
            }
        );
        let gcm = STANDARD.encode([1u8; 30]);
        assert_eq!(
            err(&format!("1 AEAD_AES_256_GCM inline:{gcm}")),
            SdesError::KeyLength {
                key: 1,
                expected: 44,
                actual: 30
            }
        );
        let huge = "A".repeat(2000);
        assert_eq!(
            err(&line(&format!("inline:{huge}"), "")),
            SdesError::KeyLength {
                key: 1,
                expected: 30,
                actual: 1500
            }
        );
    }

    #[test]
    fn rejects_bad_lifetime() {
        for lt in [
            "2^x", "2^", "2^-1", "x", "2**20", "+5", "0x10", "2^1000", " ",
        ] {
            let e = err(&line(&format!("inline:{KEY_A}|{lt}"), ""));
            if lt == " " {
                // The space ends the key parameter; "|" leaves an empty field.
                assert_eq!(e, SdesError::KeyInfo { key: 1 });
            } else {
                assert_eq!(e, SdesError::Lifetime(lt.into()), "{lt}");
            }
        }
        assert_eq!(
            err(&line(&format!("inline:{KEY_A}|2^x"), "")).to_string(),
            "lifetime \"2^x\": expected 2^N or a decimal number"
        );
    }

    #[test]
    fn rejects_lifetime_out_of_range() {
        for lt in [
            "0",
            "2^64",
            "2^99",
            "18446744073709551615",
            "99999999999999999999",
        ] {
            assert_eq!(
                err(&line(&format!("inline:{KEY_A}|{lt}"), "")),
                SdesError::LifetimeRange(lt.into()),
                "{lt}"
            );
        }
        assert_eq!(
            attr(&line(&format!("inline:{KEY_A}|9223372036854775808"), "")).keys[0].lifetime(),
            Some(1 << 63)
        );
    }

    #[test]
    fn rejects_malformed_key_info() {
        for info in [
            "|",
            "|2^20|2^20",
            "|1:1|2^20",
            "|1:1|1:1",
            "||1:1",
            "|2^20|1:1|",
        ] {
            assert_eq!(
                err(&line(&format!("inline:{KEY_A}{info}"), "")),
                SdesError::KeyInfo { key: 1 },
                "{info}"
            );
        }
    }

    #[test]
    fn rejects_bad_mki() {
        for mki in [
            "1:0", "1:129", "1:", ":1", "x:1", "1:x", "1:4:4", "1:0004", "-1:1",
        ] {
            assert_eq!(
                err(&line(&format!("inline:{KEY_A}|{mki}"), "")),
                SdesError::Mki(mki.into()),
                "{mki}"
            );
        }
        for len in [5usize, 16, 128] {
            let a = attr(&line(&format!("inline:{KEY_A}|1:{len}"), ""));
            assert_eq!(a.keys[0].mki().map(|m| m.len()), Some(len));
        }
    }

    #[test]
    fn rejects_mki_value_that_does_not_fit() {
        for mki in [
            "256:1",
            "65536:2",
            "16777216:3",
            "4294967296:4",
            "99999999999999999999:4",
        ] {
            let e = err(&line(&format!("inline:{KEY_A}|{mki}"), ""));
            assert_eq!(e, SdesError::MkiValue(mki.into()), "{mki}");
        }
        assert_eq!(
            err(&line(&format!("inline:{KEY_A}|256:1"), "")).to_string(),
            "MKI \"256:1\": the value does not fit in the length"
        );
    }

    #[test]
    fn rejects_several_keys_without_mkis() {
        for keys in [
            format!("inline:{KEY_A};inline:{KEY_B}"),
            format!("inline:{KEY_A}|1:1;inline:{KEY_B}"),
            format!("inline:{KEY_A};inline:{KEY_B}|2:1"),
        ] {
            assert_eq!(err(&line(&keys, "")), SdesError::InconsistentMki, "{keys}");
        }
    }

    #[test]
    fn rejects_mixed_mki_lengths() {
        let keys = format!("inline:{KEY_A}|1:1;inline:{KEY_B}|2:2");
        assert_eq!(err(&line(&keys, "")), SdesError::InconsistentMki);
    }

    #[test]
    fn rejects_duplicate_mki() {
        let keys = format!("inline:{KEY_A}|2^20|7:2;inline:{KEY_B}|2^30|7:2");
        assert_eq!(err(&line(&keys, "")), SdesError::DuplicateMki);
    }

    #[test]
    fn rejects_unknown_param() {
        let key = format!("inline:{KEY_A}");
        assert_eq!(
            err(&line(&key, "FOO")),
            SdesError::UnknownParam("FOO".into())
        );
        assert_eq!(
            err(&line(&key, "FOO=1")),
            SdesError::UnknownParam("FOO".into())
        );
        assert_eq!(
            err(&line(&key, "KDR=1 X")),
            SdesError::UnknownParam("X".into())
        );
        assert_eq!(
            err(&line(&key, "=1")),
            SdesError::UnknownParam(String::new())
        );
        assert_eq!(
            err(&line(&key, "FOO")).to_string(),
            "unknown session parameter \"FOO\": only unknown parameters starting with \"-\" \
             may be ignored"
        );
    }

    #[test]
    fn rejects_duplicate_param() {
        let key = format!("inline:{KEY_A}");
        for (params, name) in [
            ("KDR=1 KDR=1", "KDR"),
            ("UNENCRYPTED_SRTP UNENCRYPTED_SRTP", "UNENCRYPTED_SRTP"),
            ("UNENCRYPTED_SRTCP unencrypted_srtcp", "UNENCRYPTED_SRTCP"),
            (
                "UNAUTHENTICATED_SRTP UNAUTHENTICATED_SRTP",
                "UNAUTHENTICATED_SRTP",
            ),
            ("WSH=64 WSH=128", "WSH"),
            ("FEC_ORDER=FEC_SRTP FEC_ORDER=SRTP_FEC", "FEC_ORDER"),
        ] {
            assert_eq!(err(&line(&key, params)), SdesError::DuplicateParam(name));
        }
    }

    #[test]
    fn rejects_bad_param_values() {
        let key = format!("inline:{KEY_A}");
        for (params, name, value) in [
            ("KDR=25", "KDR", "25"),
            ("KDR=100", "KDR", "100"),
            ("KDR=", "KDR", ""),
            ("KDR", "KDR", ""),
            ("KDR=-1", "KDR", "-1"),
            ("WSH=63", "WSH", "63"),
            ("WSH=0", "WSH", "0"),
            ("WSH=4294967296", "WSH", "4294967296"),
            ("WSH=x", "WSH", "x"),
            ("WSH", "WSH", ""),
            ("FEC_ORDER=FEC", "FEC_ORDER", "FEC"),
            ("FEC_ORDER", "FEC_ORDER", ""),
            ("UNENCRYPTED_SRTP=1", "UNENCRYPTED_SRTP", "1"),
            ("UNENCRYPTED_SRTCP=", "UNENCRYPTED_SRTCP", ""),
            ("UNAUTHENTICATED_SRTP=yes", "UNAUTHENTICATED_SRTP", "yes"),
        ] {
            assert_eq!(
                err(&line(&key, params)),
                SdesError::BadParam {
                    name,
                    value: value.into()
                },
                "{params}"
            );
        }
        assert_eq!(
            err(&line(&key, "KDR=25")).to_string(),
            "session parameter \"KDR=25\": expected an exponent from 0 to 24"
        );
        assert_eq!(
            err(&line(&key, "WSH=32")).to_string(),
            "session parameter \"WSH=32\": expected a window size of at least 64 packets"
        );
    }

    #[test]
    fn rejects_fec_key() {
        let e = err(&line(
            &format!("inline:{KEY_A}"),
            &format!("FEC_ORDER=FEC_SRTP FEC_KEY=inline:{KEY_B}|2^20|1:4"),
        ));
        assert_eq!(e, SdesError::FecKeyUnsupported);
        assert!(!e.to_string().contains(KEY_B));
    }

    #[test]
    fn rejects_key_param_after_whitespace() {
        let e = err(&line(
            &format!("inline:{KEY_A}|1:1"),
            &format!("inline:{KEY_B}|2:1"),
        ));
        assert_eq!(e, SdesError::MisplacedKeyParam);
    }

    #[test]
    fn errors_never_show_key_material() {
        let k256 = STANDARD.encode((100..146u8).collect::<Vec<_>>());
        for key in [KEY_A, KEY_B, k256.as_str()] {
            let unpadded = key.trim_end_matches('=');
            let lines = [
                format!("1 {SUITE} inline:{KEY_A}|1:1 inline:{key}|2:1"),
                format!("1 {SUITE} inline:{KEY_A} FEC_KEY=inline:{key}"),
                format!("1 {SUITE} {key}"),
                format!("1 {SUITE} {key}:{key}"),
                format!("1 {SUITE} inline:{KEY_A} {key}"),
                format!("1 {SUITE} inline:{KEY_A} {unpadded}=x"),
                format!("1 {SUITE} inline:{KEY_A}|{key}"),
                format!("1 {SUITE} inline:{KEY_A}|2^{key}"),
                format!("1 {SUITE} inline:{KEY_A}|1:{key}"),
                format!("1 {SUITE} inline:{KEY_A}|{key}:1"),
                format!("1 {key} inline:{KEY_A}"),
                format!("{key} {SUITE} inline:{KEY_A}"),
                format!("1{key} {SUITE} inline:{KEY_A}"),
                format!("1 {SUITE} inline:{key}x"),
                format!("1 {SUITE} inline:{key}é"),
                format!("1 {SUITE} inline:{KEY_A} KDR={key}"),
                format!("1 {SUITE} inline:{KEY_A} FEC_ORDER={key}"),
            ];
            for s in &lines {
                let e = err(s).to_string();
                for start in 0..unpadded.len().saturating_sub(12) {
                    let piece = &unpadded[start..start + 12];
                    assert!(!e.contains(piece), "{s:?} gave {e:?}");
                }
                assert!(!format!("{:?}", err(s)).contains(&unpadded[..12]));
            }
        }
    }

    #[test]
    fn error_messages_are_lowercase_sentences() {
        let samples = [
            err(&"x".repeat(MAX_LINE_LEN + 1)),
            err("a=rtpmap"),
            err("1\0"),
            err("a=crypto:1"),
            err(&line(&format!("inline:{KEY_A}"), "FOO")),
            err(&line(&format!("inline:{KEY_A}"), "KDR=1 KDR=2")),
            err(&line(&format!("inline:{KEY_A};inline:{KEY_B}"), "")),
        ];
        for e in samples {
            let text = e.to_string();
            assert!(
                text.starts_with(|c: char| !c.is_ascii_uppercase()),
                "{text}"
            );
            assert!(!text.ends_with('.'), "{text}");
        }
    }

    // ---------------------------------------------------------------- redaction

    #[test]
    fn redacted_hides_every_key() {
        let s = format!("a=crypto:9 {SUITE} inline:{KEY_A}|2^20|1:4;inline:{KEY_B}|2:4 KDR=2 -ext");
        let a = attr(&s);
        let shown = a.redacted().to_string();
        assert_eq!(
            shown,
            format!("crypto:9 {SUITE} inline:<redacted>|2^20|1:4;inline:<redacted>|2:4 KDR=2 -ext")
        );
        assert!(a.to_string().contains(KEY_A) && a.to_string().contains(KEY_B));
        for key in [KEY_A, KEY_B] {
            assert!(!shown.contains(&key[..8]));
        }
    }

    #[test]
    fn debug_hides_key_bytes() {
        let a = attr(&format!("a=crypto:9 {SUITE} inline:{KEY_A}|2^20|1:4"));
        let debug = format!("{a:?} {:?}", a.params);
        assert!(!debug.contains(&KEY_A[..8]), "{debug}");
        // No byte of the key in decimal or hex either.
        let key = a.keys[0].key();
        assert!(
            !debug.contains(&format!("{}, {}", key[0], key[1])),
            "{debug}"
        );
        assert!(!debug
            .to_lowercase()
            .contains(&format!("{:02x}{:02x}", key[0], key[1])));
        assert!(debug.contains("Aes128CmHmacSha1_80"));
    }

    // ---------------------------------------------------------------- policy

    #[test]
    fn policy_checks_keys_against_the_profile() {
        let a = CryptoAttribute::new(
            1,
            Profile::Aes128CmHmacSha1_80,
            pattern_key(Profile::Aes256CmHmacSha1_80, 0),
        );
        assert_eq!(
            a.policy().unwrap_err(),
            SdesError::Policy(PolicyError::KeyLength {
                expected: 16,
                actual: 32
            })
        );
        let gcm = CryptoAttribute::new(
            1,
            Profile::AeadAes128Gcm,
            pattern_key(Profile::Aes128CmHmacSha1_80, 0),
        );
        assert_eq!(
            gcm.policy().unwrap_err(),
            SdesError::Policy(PolicyError::SaltLength {
                expected: 12,
                actual: 14
            })
        );
    }

    #[test]
    fn policy_rejects_what_parsing_would_have() {
        let base = CryptoAttribute::generate(1, Profile::Aes128CmHmacSha1_80);
        let mut a = base.clone();
        a.keys.clear();
        assert_eq!(
            a.policy().unwrap_err(),
            SdesError::Policy(PolicyError::NoMasterKey)
        );

        let mut a = base.clone();
        a.keys[0] = a.keys[0].clone().with_lifetime(0);
        assert_eq!(
            a.policy().unwrap_err(),
            SdesError::Policy(PolicyError::ZeroLifetime)
        );

        let mut a = base.clone();
        a.params.kdr = Some(25);
        assert_eq!(
            a.policy().unwrap_err(),
            SdesError::Policy(PolicyError::KeyDerivationRate(25))
        );

        let mut a = base.clone();
        a.keys
            .push(MasterKey::generate(Profile::Aes128CmHmacSha1_80));
        assert_eq!(a.policy().unwrap_err(), SdesError::InconsistentMki);

        let mut a = base.clone();
        let mki = Mki::new(3, 1).unwrap();
        a.keys[0] = a.keys[0].clone().with_mki(mki);
        a.keys
            .push(MasterKey::generate(Profile::Aes128CmHmacSha1_80).with_mki(mki));
        assert_eq!(a.policy().unwrap_err(), SdesError::DuplicateMki);

        let mut gcm = CryptoAttribute::generate(1, Profile::AeadAes256Gcm);
        gcm.params.unauthenticated_srtp = true;
        assert_eq!(
            gcm.policy().unwrap_err(),
            SdesError::Policy(PolicyError::UnauthenticatedAead)
        );
        assert!(gcm
            .policy()
            .unwrap_err()
            .to_string()
            .starts_with("the attribute does not make a valid policy: "));
        let mut gcm = CryptoAttribute::generate(1, Profile::AeadAes128Gcm);
        gcm.params.unencrypted_srtp = true;
        assert_eq!(
            gcm.policy().unwrap_err(),
            SdesError::Policy(PolicyError::UnencryptedAead)
        );
    }

    #[test]
    fn policy_of_parsed_line_protects_and_unprotects() {
        let offer = attr(&format!("a=crypto:1 {SUITE} inline:{KEY_A}|2^31|1:1"));
        let policy = offer.policy().unwrap();
        assert_eq!(policy.profile, Profile::Aes128CmHmacSha1_80);
        assert_eq!(policy.keys, offer.keys);
        let mut tx = Session::new(&policy).unwrap();
        let mut rx = Session::new(&policy).unwrap();
        let mut buf = rtp_packet(0x1234);
        let len = tx.protect_rtp(&mut buf, 172).unwrap();
        assert_eq!(len, 183);
        assert_ne!(
            &buf[12..172],
            &rtp_packet(0x1234)[12..172],
            "payload is encrypted"
        );
        let mut forged = buf;
        forged[20] ^= 1;
        assert_eq!(
            rx.unprotect_rtp(&mut forged[..len]).unwrap_err(),
            Error::AuthenticationFailed
        );
        assert_eq!(
            rx.unprotect_rtp(&mut buf[..len]).unwrap(),
            &rtp_packet(0x1234)[..172]
        );

        // A different key does not verify.
        let other = attr(&format!("a=crypto:1 {SUITE} inline:{KEY_B}|2^31|1:1"));
        assert_eq!(
            send(&policy, &other.policy().unwrap()),
            Err(Error::AuthenticationFailed)
        );
    }

    // ---------------------------------------------------------------- parse_all

    #[test]
    fn parse_all_yields_every_crypto_line() {
        let sdp = format!(
            "m=audio 49170 RTP/SAVP 0\r\n\
             c=IN IP4 192.0.2.1\r\n\
             a=crypto:1 F8_128_HMAC_SHA1_80 inline:{KEY_A}\r\n\
             a=crypto:2 {SUITE} inline:{KEY_A}|2^31|1:1\r\n\
             a=rtpmap:0 PCMU/8000\r\n\
             a=crypto:3 {SUITE} inline:{KEY_B}|2^31\r\n\
             a=crypto-ish:4\n\
             a=crypto:5 AES_CM_128_HMAC_SHA1_32 inline:{KEY_A} BOGUS\n"
        );
        let all: Vec<_> = parse_all(&sdp).collect();
        assert_eq!(all.len(), 4);
        assert_eq!(
            all[0],
            Err(SdesError::UnknownSuite("F8_128_HMAC_SHA1_80".into()))
        );
        assert_eq!(all[1].as_ref().unwrap().tag, 2);
        assert_eq!(all[2].as_ref().unwrap().tag, 3);
        assert_eq!(all[3], Err(SdesError::UnknownParam("BOGUS".into())));
        let first = parse_all(&sdp).find_map(Result::ok).unwrap();
        assert_eq!(first.keys[0].mki(), Some(Mki::new(1, 1).unwrap()));
        assert_eq!(parse_all("v=0\r\ns=-\r\n").count(), 0);
    }

    // ---------------------------------------------------------------- fuzzing

    #[test]
    fn fuzz_seed_lines_parse_format_and_parse_again() {
        // The lines of fuzz/corpus/sdes_parse: what parses formats to a line that parses to
        // the same attribute and formats to the same text.
        let good = [
            format!("a=crypto:1 {SUITE} inline:{KEY_A}|2^31|1:1"),
            format!("a=crypto:2 {SUITE} inline:{KEY_A}|2^31"),
            "a=crypto:1 AES_CM_128_HMAC_SHA1_32 \
             inline:NzB4d1BINUAvLEw6UzF3WSJ+PSdFcGdUJShpX1Zj|2^20|1:4;\
             inline:QUJjZGVmMTIzNDU2Nzg5QUJDREUwMTIzNDU2Nzg5|2^20|2:4"
                .to_owned(),
            "a=crypto:3 AES_256_CM_HMAC_SHA1_80 \
             inline:PS1uQCVeeCFCanVmcjkpPywjNWhcYD0mXXtxaVBRWTQxYWFhYWFhYWFhYWFhYQ== KDR=1 \
             UNENCRYPTED_SRTCP"
                .to_owned(),
            format!(
                "1 {SUITE} inline:{KEY_A} UNENCRYPTED_SRTP UNAUTHENTICATED_SRTP \
                 FEC_ORDER=FEC_SRTP"
            ),
        ];
        for s in &good {
            let a = attr(s);
            let text = a.to_string();
            let again = attr(&text);
            assert_eq!(again, a, "{s}");
            assert_eq!(again.to_string(), text);
            again.policy().unwrap();
        }
        // This seed's key is 29 bytes (0x00 to 0x1c): one too many for AEAD_AES_128_GCM.
        assert_eq!(
            err("crypto:4 AEAD_AES_128_GCM inline:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxw WSH=256"),
            SdesError::KeyLength {
                key: 1,
                expected: 28,
                actual: 29
            }
        );
        assert!(matches!(
            err(&format!(
                "a=crypto:1 F8_128_HMAC_SHA1_80 inline:{KEY_A}|2^20|1:4"
            )),
            SdesError::UnknownSuite(_)
        ));
        assert_eq!(
            err(&format!("a=crypto:x {SUITE} inline:|")),
            SdesError::BadTag("x".into())
        );
        assert_eq!(
            err(&format!("a=crypto:1 {SUITE} inline:|")),
            SdesError::KeyInfo { key: 1 }
        );
    }

    fn arb_attribute() -> impl Strategy<Value = CryptoAttribute> {
        (
            0u32..=999_999_999,
            0usize..Profile::ALL.len(),
            1usize..=4,
            1usize..=4,
            proptest::option::of(0u32..63),
            any::<u8>(),
            (
                proptest::option::of(0u8..=24),
                any::<(bool, bool, bool)>(),
                proptest::option::of(64u32..=100_000),
                proptest::option::of(any::<bool>()),
                proptest::collection::vec("-[A-Za-z0-9_=.,]{0,8}", 0..3),
            ),
        )
            .prop_map(|(tag, p, nkeys, mki_len, exp, seed, params)| {
                let profile = Profile::ALL[p];
                let max = if mki_len == 4 {
                    u32::MAX
                } else {
                    (1 << (8 * mki_len)) - 1
                };
                let keys = (0..nkeys)
                    .map(|i| {
                        let mut k = pattern_key(profile, seed.wrapping_add(i as u8 * 31));
                        if nkeys > 1 || seed % 2 == 0 {
                            k = k.with_mki(Mki::new(max - i as u32, mki_len).unwrap());
                        }
                        if let Some(e) = exp {
                            k = k.with_lifetime((1u64 << e) + u64::from(seed % 3));
                        }
                        k
                    })
                    .collect();
                let (kdr, (a, b, c), wsh, fec, extensions) = params;
                CryptoAttribute {
                    tag,
                    profile,
                    keys,
                    params: SessionParams {
                        kdr,
                        unencrypted_srtp: a,
                        unencrypted_srtcp: b,
                        unauthenticated_srtp: c,
                        wsh,
                        fec_order: fec.map(|x| {
                            if x {
                                FecOrder::FecSrtp
                            } else {
                                FecOrder::SrtpFec
                            }
                        }),
                        extensions,
                    },
                }
            })
    }

    proptest! {
        // No regression files: the interesting inputs are pinned as unit tests above.
        #![proptest_config(ProptestConfig {
            cases: 512,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        #[test]
        fn display_then_parse_round_trips(a in arb_attribute()) {
            let text = a.to_string();
            prop_assert_eq!(&text.parse::<CryptoAttribute>().unwrap(), &a);
            prop_assert_eq!(format!("a={}", a).parse::<CryptoAttribute>().unwrap(), a.clone());
            let redacted = a.redacted().to_string();
            prop_assert_eq!(redacted.matches("inline:<redacted>").count(), a.keys.len());
        }

        #[test]
        fn arbitrary_strings_never_panic(s in "\\PC{0,300}") {
            let _ = s.parse::<CryptoAttribute>();
            let _ = parse_all(&s).count();
        }

        #[test]
        fn near_miss_lines_never_panic(
            tail in "[0-9A-Za-z_:;|^=+/ \t-]{0,120}",
            suite in 0usize..Profile::ALL.len(),
        ) {
            let s = format!("a=crypto:1 {} inline:{}", Profile::ALL[suite], tail);
            if let Ok(a) = s.parse::<CryptoAttribute>() {
                // Whatever parses formats to something that parses to the same.
                prop_assert_eq!(a.to_string().parse::<CryptoAttribute>().unwrap(), a);
            }
        }

        #[test]
        fn mutated_lines_never_panic(
            edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        ) {
            let mut bytes = format!(
                "a=crypto:1 {SUITE} inline:{KEY_A}|2^20|1:4;inline:{KEY_B}|2^20|2:4 KDR=1 WSH=128"
            )
            .into_bytes();
            for (at, b) in edits {
                let i = at.index(bytes.len());
                bytes[i] = b;
            }
            let s = String::from_utf8_lossy(&bytes);
            if let Ok(a) = s.parse::<CryptoAttribute>() {
                prop_assert_eq!(a.to_string().parse::<CryptoAttribute>().unwrap(), a);
            }
        }
    }
}
