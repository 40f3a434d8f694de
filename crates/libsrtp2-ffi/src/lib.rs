//! Test-only bindings to the system libsrtp2 (2.x, as Debian's `libsrtp2-dev` 2.5.0 ships it).
//!
//! [`sys`] declares, by hand, exactly the C types and functions the cross-checks and
//! benchmarks need, with the layouts of `/usr/include/srtp2/srtp.h`. [`LibSrtp`] wraps one
//! `srtp_t` session for one direction behind a safe, allocation-free per-packet API:
//!
//! ```
//! use libsrtp2_ffi::{Config, Direction, LibSrtp, Suite};
//!
//! let material = [7u8; 30]; // master key || master salt
//! let mut tx = LibSrtp::new(&Config::new(Suite::Aes128CmSha1_80, Direction::Outbound, &material))?;
//! let mut rx = LibSrtp::new(&Config::new(Suite::Aes128CmSha1_80, Direction::Inbound, &material))?;
//!
//! let rtp = vec![0x80, 0, 0, 1, 0, 0, 0, 0, 0xca, 0xfe, 0xba, 0xbe, b'h', b'i'];
//! let mut buf = rtp.clone();
//! tx.protect(&mut buf)?;
//! assert_eq!(buf.len(), rtp.len() + 10);
//! rx.unprotect(&mut buf)?;
//! assert_eq!(buf, rtp);
//! # Ok::<(), libsrtp2_ffi::Error>(())
//! ```
//!
//! libsrtp reads the packet through `uint32_t` pointers and assumes 32-bit alignment; buffers
//! from the global allocator (a `Vec<u8>`) always are, on the platforms this is tested on.

use core::ffi::{c_int, c_uint, c_void};
use core::fmt;
use core::ptr::NonNull;
use std::sync::OnceLock;

/// Raw declarations from `srtp2/srtp.h` (libsrtp 2.5.0): only what this crate uses.
#[allow(non_camel_case_types, non_upper_case_globals, missing_docs)]
pub mod sys {
    use core::ffi::{c_int, c_uchar, c_uint, c_ulong, c_void};
    use core::marker::{PhantomData, PhantomPinned};

    /// `srtp_err_status_t` (a C enum; 0 is success).
    pub type srtp_err_status_t = c_int;
    pub const srtp_err_status_ok: srtp_err_status_t = 0;
    pub const srtp_err_status_fail: srtp_err_status_t = 1;
    pub const srtp_err_status_bad_param: srtp_err_status_t = 2;
    pub const srtp_err_status_alloc_fail: srtp_err_status_t = 3;
    pub const srtp_err_status_auth_fail: srtp_err_status_t = 7;
    pub const srtp_err_status_cipher_fail: srtp_err_status_t = 8;
    pub const srtp_err_status_replay_fail: srtp_err_status_t = 9;
    pub const srtp_err_status_replay_old: srtp_err_status_t = 10;
    pub const srtp_err_status_no_ctx: srtp_err_status_t = 13;
    pub const srtp_err_status_key_expired: srtp_err_status_t = 15;
    pub const srtp_err_status_parse_err: srtp_err_status_t = 21;
    pub const srtp_err_status_bad_mki: srtp_err_status_t = 25;
    pub const srtp_err_status_pkt_idx_old: srtp_err_status_t = 26;
    pub const srtp_err_status_pkt_idx_adv: srtp_err_status_t = 27;

    pub type srtp_cipher_type_id_t = u32;
    pub type srtp_auth_type_id_t = u32;
    /// Cipher ids from `srtp2/crypto_types.h`.
    pub const SRTP_NULL_CIPHER: srtp_cipher_type_id_t = 0;
    pub const SRTP_AES_ICM_128: srtp_cipher_type_id_t = 1;
    pub const SRTP_AES_ICM_192: srtp_cipher_type_id_t = 4;
    pub const SRTP_AES_ICM_256: srtp_cipher_type_id_t = 5;
    pub const SRTP_AES_GCM_128: srtp_cipher_type_id_t = 6;
    pub const SRTP_AES_GCM_256: srtp_cipher_type_id_t = 7;
    /// Authentication ids from `srtp2/crypto_types.h`.
    pub const SRTP_NULL_AUTH: srtp_auth_type_id_t = 0;
    pub const SRTP_HMAC_SHA1: srtp_auth_type_id_t = 3;

    /// `srtp_sec_serv_t` (a C enum).
    pub type srtp_sec_serv_t = c_uint;
    pub const sec_serv_none: srtp_sec_serv_t = 0;
    pub const sec_serv_conf: srtp_sec_serv_t = 1;
    pub const sec_serv_auth: srtp_sec_serv_t = 2;
    pub const sec_serv_conf_and_auth: srtp_sec_serv_t = 3;

    /// `srtp_ssrc_type_t` (a C enum).
    pub type srtp_ssrc_type_t = c_uint;
    pub const ssrc_undefined: srtp_ssrc_type_t = 0;
    pub const ssrc_specific: srtp_ssrc_type_t = 1;
    pub const ssrc_any_inbound: srtp_ssrc_type_t = 2;
    pub const ssrc_any_outbound: srtp_ssrc_type_t = 3;

    /// Largest MKI libsrtp supports (`SRTP_MAX_MKI_LEN`).
    pub const SRTP_MAX_MKI_LEN: usize = 128;
    /// Most master keys per policy (`SRTP_MAX_NUM_MASTER_KEYS`).
    pub const SRTP_MAX_NUM_MASTER_KEYS: usize = 16;

    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct srtp_crypto_policy_t {
        pub cipher_type: srtp_cipher_type_id_t,
        pub cipher_key_len: c_int,
        pub auth_type: srtp_auth_type_id_t,
        pub auth_key_len: c_int,
        pub auth_tag_len: c_int,
        pub sec_serv: srtp_sec_serv_t,
    }

    #[repr(C)]
    #[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
    pub struct srtp_ssrc_t {
        pub type_: srtp_ssrc_type_t,
        pub value: c_uint,
    }

    #[repr(C)]
    #[derive(Debug)]
    pub struct srtp_master_key_t {
        pub key: *mut c_uchar,
        pub mki_id: *mut c_uchar,
        pub mki_size: c_uint,
    }

    #[repr(C)]
    #[derive(Debug)]
    pub struct srtp_policy_t {
        pub ssrc: srtp_ssrc_t,
        pub rtp: srtp_crypto_policy_t,
        pub rtcp: srtp_crypto_policy_t,
        pub key: *mut c_uchar,
        pub keys: *mut *mut srtp_master_key_t,
        pub num_master_keys: c_ulong,
        pub deprecated_ekt: *mut c_void,
        pub window_size: c_ulong,
        pub allow_repeat_tx: c_int,
        pub enc_xtn_hdr: *mut c_int,
        pub enc_xtn_hdr_count: c_int,
        pub next: *mut srtp_policy_t,
    }

    /// The opaque session (`srtp_ctx_t`).
    #[repr(C)]
    #[derive(Debug)]
    pub struct srtp_ctx_t {
        _private: [u8; 0],
        _marker: PhantomData<(*mut u8, PhantomPinned)>,
    }

    pub type srtp_t = *mut srtp_ctx_t;

    // Linked by build.rs (pkg-config libsrtp2).
    extern "C" {
        pub fn srtp_init() -> srtp_err_status_t;
        pub fn srtp_create(session: *mut srtp_t, policy: *const srtp_policy_t)
            -> srtp_err_status_t;
        pub fn srtp_dealloc(s: srtp_t) -> srtp_err_status_t;

        pub fn srtp_protect(
            ctx: srtp_t,
            rtp_hdr: *mut c_void,
            len_ptr: *mut c_int,
        ) -> srtp_err_status_t;
        pub fn srtp_unprotect(
            ctx: srtp_t,
            srtp_hdr: *mut c_void,
            len_ptr: *mut c_int,
        ) -> srtp_err_status_t;
        pub fn srtp_protect_rtcp(
            ctx: srtp_t,
            rtcp_hdr: *mut c_void,
            pkt_octet_len: *mut c_int,
        ) -> srtp_err_status_t;
        pub fn srtp_unprotect_rtcp(
            ctx: srtp_t,
            srtcp_hdr: *mut c_void,
            pkt_octet_len: *mut c_int,
        ) -> srtp_err_status_t;

        pub fn srtp_protect_mki(
            ctx: srtp_t,
            rtp_hdr: *mut c_void,
            pkt_octet_len: *mut c_int,
            use_mki: c_uint,
            mki_index: c_uint,
        ) -> srtp_err_status_t;
        pub fn srtp_unprotect_mki(
            ctx: srtp_t,
            srtp_hdr: *mut c_void,
            len_ptr: *mut c_int,
            use_mki: c_uint,
        ) -> srtp_err_status_t;
        pub fn srtp_protect_rtcp_mki(
            ctx: srtp_t,
            rtcp_hdr: *mut c_void,
            pkt_octet_len: *mut c_int,
            use_mki: c_uint,
            mki_index: c_uint,
        ) -> srtp_err_status_t;
        pub fn srtp_unprotect_rtcp_mki(
            ctx: srtp_t,
            srtcp_hdr: *mut c_void,
            pkt_octet_len: *mut c_int,
            use_mki: c_uint,
        ) -> srtp_err_status_t;

        pub fn srtp_get_protect_trailer_length(
            session: srtp_t,
            use_mki: u32,
            mki_index: u32,
            length: *mut u32,
        ) -> srtp_err_status_t;
        pub fn srtp_get_protect_rtcp_trailer_length(
            session: srtp_t,
            use_mki: u32,
            mki_index: u32,
            length: *mut u32,
        ) -> srtp_err_status_t;
        pub fn srtp_set_stream_roc(session: srtp_t, ssrc: u32, roc: u32) -> srtp_err_status_t;
        pub fn srtp_get_stream_roc(session: srtp_t, ssrc: u32, roc: *mut u32) -> srtp_err_status_t;

        /// `srtp_crypto_policy_set_aes_cm_128_hmac_sha1_80` is a macro for this.
        pub fn srtp_crypto_policy_set_rtp_default(p: *mut srtp_crypto_policy_t);
        pub fn srtp_crypto_policy_set_rtcp_default(p: *mut srtp_crypto_policy_t);
        pub fn srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32(p: *mut srtp_crypto_policy_t);
        pub fn srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80(p: *mut srtp_crypto_policy_t);
        pub fn srtp_crypto_policy_set_aes_cm_192_hmac_sha1_32(p: *mut srtp_crypto_policy_t);
        pub fn srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80(p: *mut srtp_crypto_policy_t);
        pub fn srtp_crypto_policy_set_aes_cm_256_hmac_sha1_32(p: *mut srtp_crypto_policy_t);
        pub fn srtp_crypto_policy_set_aes_gcm_128_16_auth(p: *mut srtp_crypto_policy_t);
        pub fn srtp_crypto_policy_set_aes_gcm_256_16_auth(p: *mut srtp_crypto_policy_t);
        pub fn srtp_crypto_policy_set_null_cipher_hmac_sha1_80(p: *mut srtp_crypto_policy_t);
    }
}

use sys::srtp_crypto_policy_t as CryptoPolicy;

/// A libsrtp status code other than `srtp_err_status_ok`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status(pub i32);

impl Status {
    /// `srtp_err_status_fail`.
    pub const FAIL: Self = Self(sys::srtp_err_status_fail);
    /// `srtp_err_status_bad_param`.
    pub const BAD_PARAM: Self = Self(sys::srtp_err_status_bad_param);
    /// `srtp_err_status_auth_fail`: a wrong HMAC or AES-GCM tag.
    pub const AUTH_FAIL: Self = Self(sys::srtp_err_status_auth_fail);
    /// `srtp_err_status_cipher_fail`.
    pub const CIPHER_FAIL: Self = Self(sys::srtp_err_status_cipher_fail);
    /// `srtp_err_status_replay_fail`.
    pub const REPLAY_FAIL: Self = Self(sys::srtp_err_status_replay_fail);
    /// `srtp_err_status_replay_old`.
    pub const REPLAY_OLD: Self = Self(sys::srtp_err_status_replay_old);
    /// `srtp_err_status_parse_err`.
    pub const PARSE_ERR: Self = Self(sys::srtp_err_status_parse_err);
    /// `srtp_err_status_bad_mki`.
    pub const BAD_MKI: Self = Self(sys::srtp_err_status_bad_mki);

    /// The libsrtp name of the status.
    pub fn name(self) -> &'static str {
        match self.0 {
            0 => "ok",
            1 => "fail",
            2 => "bad_param",
            3 => "alloc_fail",
            4 => "dealloc_fail",
            5 => "init_fail",
            6 => "terminus",
            7 => "auth_fail",
            8 => "cipher_fail",
            9 => "replay_fail",
            10 => "replay_old",
            11 => "algo_fail",
            12 => "no_such_op",
            13 => "no_ctx",
            14 => "cant_check",
            15 => "key_expired",
            16 => "socket_err",
            17 => "signal_err",
            18 => "nonce_bad",
            19 => "read_fail",
            20 => "write_fail",
            21 => "parse_err",
            22 => "encode_err",
            23 => "semaphore_err",
            24 => "pfkey_err",
            25 => "bad_mki",
            26 => "pkt_idx_old",
            27 => "pkt_idx_adv",
            _ => "unknown",
        }
    }

    /// Whether this is one of the statuses libsrtp returns for a replayed or too old packet.
    pub fn is_replay(self) -> bool {
        matches!(self.0, 9 | 10 | 26)
    }

    /// Whether this is a failed integrity check (`auth_fail`, or `cipher_fail` which some
    /// crypto back-ends return for a bad AES-GCM tag).
    pub fn is_auth_failure(self) -> bool {
        matches!(self.0, 7 | 8)
    }
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "srtp_err_status_{} ({})", self.name(), self.0)
    }
}

/// Why a [`LibSrtp`] call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Error {
    /// libsrtp returned this status.
    Srtp(Status),
    /// The buffer has no room for the trailer libsrtp writes: it needs this many bytes.
    NoRoom {
        /// The buffer length needed.
        needed: usize,
    },
    /// There is no master key at this index.
    NoSuchKey(usize),
    /// The configuration cannot be expressed to libsrtp (the reason).
    Config(&'static str),
    /// The packet length does not fit libsrtp's `int`, or exceeds the buffer.
    Length,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Srtp(s) => write!(f, "libsrtp: {s:?}"),
            Self::NoRoom { needed } => write!(f, "buffer too small: {needed} bytes needed"),
            Self::NoSuchKey(i) => write!(f, "no master key at index {i}"),
            Self::Config(why) => write!(f, "bad configuration: {why}"),
            Self::Length => f.write_str("bad packet length"),
        }
    }
}

impl std::error::Error for Error {}

fn check(status: sys::srtp_err_status_t) -> Result<(), Error> {
    if status == sys::srtp_err_status_ok {
        Ok(())
    } else {
        Err(Error::Srtp(Status(status)))
    }
}

/// An SRTP protection profile as libsrtp configures it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Suite {
    /// `AES_CM_128_HMAC_SHA1_80`.
    Aes128CmSha1_80,
    /// `AES_CM_128_HMAC_SHA1_32` (SRTCP keeps an 80-bit tag).
    Aes128CmSha1_32,
    /// `AES_192_CM_HMAC_SHA1_80`.
    Aes192CmSha1_80,
    /// `AES_192_CM_HMAC_SHA1_32`.
    Aes192CmSha1_32,
    /// `AES_256_CM_HMAC_SHA1_80`.
    Aes256CmSha1_80,
    /// `AES_256_CM_HMAC_SHA1_32`.
    Aes256CmSha1_32,
    /// `AEAD_AES_128_GCM` (16-byte tag).
    AeadAes128Gcm,
    /// `AEAD_AES_256_GCM` (16-byte tag).
    AeadAes256Gcm,
    /// `NULL_HMAC_SHA1_80`: no encryption, 80-bit tag.
    NullSha1_80,
    /// `NULL_HMAC_SHA1_32`: no encryption, 32-bit SRTP tag (80-bit SRTCP tag).
    NullSha1_32,
}

impl Suite {
    /// Every suite.
    pub const ALL: [Suite; 10] = [
        Suite::Aes128CmSha1_80,
        Suite::Aes128CmSha1_32,
        Suite::Aes192CmSha1_80,
        Suite::Aes192CmSha1_32,
        Suite::Aes256CmSha1_80,
        Suite::Aes256CmSha1_32,
        Suite::AeadAes128Gcm,
        Suite::AeadAes256Gcm,
        Suite::NullSha1_80,
        Suite::NullSha1_32,
    ];

    /// Whether the suite is AES-GCM.
    pub fn is_aead(self) -> bool {
        matches!(self, Self::AeadAes128Gcm | Self::AeadAes256Gcm)
    }

    /// Length of the master key followed by the master salt.
    pub fn key_material_len(self) -> usize {
        match self {
            Self::Aes128CmSha1_80
            | Self::Aes128CmSha1_32
            | Self::NullSha1_80
            | Self::NullSha1_32 => 30,
            Self::Aes192CmSha1_80 | Self::Aes192CmSha1_32 => 38,
            Self::Aes256CmSha1_80 | Self::Aes256CmSha1_32 => 46,
            Self::AeadAes128Gcm => 28,
            Self::AeadAes256Gcm => 44,
        }
    }

    /// SRTP tag length in bytes.
    pub fn rtp_tag_len(self) -> usize {
        match self {
            Self::AeadAes128Gcm | Self::AeadAes256Gcm => 16,
            Self::Aes128CmSha1_32
            | Self::Aes192CmSha1_32
            | Self::Aes256CmSha1_32
            | Self::NullSha1_32 => 4,
            _ => 10,
        }
    }

    /// SRTCP tag length in bytes.
    pub fn rtcp_tag_len(self) -> usize {
        if self.is_aead() {
            16
        } else {
            10
        }
    }

    /// The SRTP and SRTCP crypto policies libsrtp's setters give this suite.
    pub fn crypto_policies(self) -> (CryptoPolicy, CryptoPolicy) {
        type Setter = unsafe extern "C" fn(*mut CryptoPolicy);
        let (rtp_set, rtcp_set): (Setter, Setter) = match self {
            Self::Aes128CmSha1_80 => (
                sys::srtp_crypto_policy_set_rtp_default,
                sys::srtp_crypto_policy_set_rtcp_default,
            ),
            Self::Aes128CmSha1_32 => (
                sys::srtp_crypto_policy_set_aes_cm_128_hmac_sha1_32,
                sys::srtp_crypto_policy_set_rtcp_default,
            ),
            Self::Aes192CmSha1_80 => (
                sys::srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80,
                sys::srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80,
            ),
            Self::Aes192CmSha1_32 => (
                sys::srtp_crypto_policy_set_aes_cm_192_hmac_sha1_32,
                sys::srtp_crypto_policy_set_aes_cm_192_hmac_sha1_80,
            ),
            Self::Aes256CmSha1_80 => (
                sys::srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80,
                sys::srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80,
            ),
            Self::Aes256CmSha1_32 => (
                sys::srtp_crypto_policy_set_aes_cm_256_hmac_sha1_32,
                sys::srtp_crypto_policy_set_aes_cm_256_hmac_sha1_80,
            ),
            Self::AeadAes128Gcm => (
                sys::srtp_crypto_policy_set_aes_gcm_128_16_auth,
                sys::srtp_crypto_policy_set_aes_gcm_128_16_auth,
            ),
            Self::AeadAes256Gcm => (
                sys::srtp_crypto_policy_set_aes_gcm_256_16_auth,
                sys::srtp_crypto_policy_set_aes_gcm_256_16_auth,
            ),
            Self::NullSha1_80 | Self::NullSha1_32 => (
                sys::srtp_crypto_policy_set_null_cipher_hmac_sha1_80,
                sys::srtp_crypto_policy_set_null_cipher_hmac_sha1_80,
            ),
        };
        let mut rtp = CryptoPolicy::default();
        let mut rtcp = CryptoPolicy::default();
        // SAFETY: each setter only writes the six fields of the `srtp_crypto_policy_t` it is
        // given, and both pointers come from live, exclusively borrowed locals of that type.
        unsafe {
            rtp_set(&mut rtp);
            rtcp_set(&mut rtcp);
        }
        if self == Self::NullSha1_32 {
            // libsrtp has no setter for NULL_HMAC_SHA1_32: the 80-bit one with a 4-byte tag.
            rtp.auth_tag_len = 4;
        }
        (rtp, rtcp)
    }
}

impl TryFrom<srtp_core::Profile> for Suite {
    type Error = srtp_core::Profile;

    /// The suite for an srtp-core profile; the profile back if libsrtp has none for it.
    fn try_from(p: srtp_core::Profile) -> Result<Self, Self::Error> {
        use srtp_core::Profile as P;
        Ok(match p {
            P::Aes128CmHmacSha1_80 => Self::Aes128CmSha1_80,
            P::Aes128CmHmacSha1_32 => Self::Aes128CmSha1_32,
            P::Aes192CmHmacSha1_80 => Self::Aes192CmSha1_80,
            P::Aes192CmHmacSha1_32 => Self::Aes192CmSha1_32,
            P::Aes256CmHmacSha1_80 => Self::Aes256CmSha1_80,
            P::Aes256CmHmacSha1_32 => Self::Aes256CmSha1_32,
            P::AeadAes128Gcm => Self::AeadAes128Gcm,
            P::AeadAes256Gcm => Self::AeadAes256Gcm,
            P::NullHmacSha1_80 => Self::NullSha1_80,
            P::NullHmacSha1_32 => Self::NullSha1_32,
            other => return Err(other),
        })
    }
}

impl From<Suite> for srtp_core::Profile {
    fn from(s: Suite) -> Self {
        match s {
            Suite::Aes128CmSha1_80 => Self::Aes128CmHmacSha1_80,
            Suite::Aes128CmSha1_32 => Self::Aes128CmHmacSha1_32,
            Suite::Aes192CmSha1_80 => Self::Aes192CmHmacSha1_80,
            Suite::Aes192CmSha1_32 => Self::Aes192CmHmacSha1_32,
            Suite::Aes256CmSha1_80 => Self::Aes256CmHmacSha1_80,
            Suite::Aes256CmSha1_32 => Self::Aes256CmHmacSha1_32,
            Suite::AeadAes128Gcm => Self::AeadAes128Gcm,
            Suite::AeadAes256Gcm => Self::AeadAes256Gcm,
            Suite::NullSha1_80 => Self::NullHmacSha1_80,
            Suite::NullSha1_32 => Self::NullHmacSha1_32,
        }
    }
}

/// Which way a session works: libsrtp binds a wildcard SSRC policy to one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Direction {
    /// `ssrc_any_outbound`: protect only.
    Outbound,
    /// `ssrc_any_inbound`: unprotect only.
    Inbound,
}

/// One master key (key followed by salt) with its MKI (empty for none).
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    material: Vec<u8>,
    mki: Vec<u8>,
}

impl Key {
    /// A master key without MKI from master key || master salt.
    pub fn new(material: &[u8]) -> Self {
        Self {
            material: material.to_vec(),
            mki: Vec::new(),
        }
    }

    /// A master key with an MKI (its bytes as on the wire).
    pub fn with_mki(material: &[u8], mki: &[u8]) -> Self {
        Self {
            material: material.to_vec(),
            mki: mki.to_vec(),
        }
    }

    /// The MKI bytes (empty for none).
    pub fn mki(&self) -> &[u8] {
        &self.mki
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("material_len", &self.material.len())
            .field("mki", &self.mki)
            .finish()
    }
}

/// Everything a [`LibSrtp`] session is built from.
#[derive(Clone, Debug)]
pub struct Config {
    /// The protection profile.
    pub suite: Suite,
    /// Protect (outbound) or unprotect (inbound), for any SSRC.
    pub direction: Direction,
    /// Master keys: one without MKI, or one or more all with MKIs of one length.
    pub keys: Vec<Key>,
    /// Replay window in packets (64 to 32767); 0 takes libsrtp's default of 128.
    pub window_size: u32,
    /// Encrypt SRTP payloads (`UNENCRYPTED_SRTP` clears it).
    pub encrypt_rtp: bool,
    /// Encrypt SRTCP (`UNENCRYPTED_SRTCP` clears it: E=0, still authenticated).
    pub encrypt_rtcp: bool,
    /// Authenticate SRTP (`UNAUTHENTICATED_SRTP` clears it).
    pub authenticate_rtp: bool,
    /// Let the sender protect the same sequence number twice (`allow_repeat_tx`).
    pub allow_repeat_tx: bool,
}

impl Config {
    /// A configuration with one master key (key || salt) and no MKI, all services on.
    pub fn new(suite: Suite, direction: Direction, material: &[u8]) -> Self {
        Self::with_keys(suite, direction, vec![Key::new(material)])
    }

    /// A configuration with several master keys, all services on.
    pub fn with_keys(suite: Suite, direction: Direction, keys: Vec<Key>) -> Self {
        Self {
            suite,
            direction,
            keys,
            window_size: 0,
            encrypt_rtp: true,
            encrypt_rtcp: true,
            authenticate_rtp: true,
            allow_repeat_tx: false,
        }
    }
}

/// The libsrtp2 entry points a session uses, as function pointers: either the system library
/// this crate links ([`Api::system`]), or another build of libsrtp2 loaded beside it
/// ([`Api::load`]), such as one built on OpenSSL for the benchmarks.
pub struct Api {
    name: String,
    init_status: OnceLock<sys::srtp_err_status_t>,
    init: unsafe extern "C" fn() -> sys::srtp_err_status_t,
    create:
        unsafe extern "C" fn(*mut sys::srtp_t, *const sys::srtp_policy_t) -> sys::srtp_err_status_t,
    dealloc: unsafe extern "C" fn(sys::srtp_t) -> sys::srtp_err_status_t,
    protect_mki: ProtectFn,
    protect_rtcp_mki: ProtectFn,
    unprotect_mki: UnprotectFn,
    unprotect_rtcp_mki: UnprotectFn,
    trailer_len: TrailerFn,
    rtcp_trailer_len: TrailerFn,
    set_stream_roc: unsafe extern "C" fn(sys::srtp_t, u32, u32) -> sys::srtp_err_status_t,
    get_stream_roc: unsafe extern "C" fn(sys::srtp_t, u32, *mut u32) -> sys::srtp_err_status_t,
}

type ProtectFn = unsafe extern "C" fn(
    sys::srtp_t,
    *mut c_void,
    *mut c_int,
    c_uint,
    c_uint,
) -> sys::srtp_err_status_t;
type UnprotectFn =
    unsafe extern "C" fn(sys::srtp_t, *mut c_void, *mut c_int, c_uint) -> sys::srtp_err_status_t;
type TrailerFn =
    unsafe extern "C" fn(sys::srtp_t, c_uint, c_uint, *mut c_uint) -> sys::srtp_err_status_t;

impl fmt::Debug for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Api")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

mod dl {
    use core::ffi::{c_char, c_int, c_void};
    pub const RTLD_NOW: c_int = 2;
    /// Resolve the library's own references to itself first, not to the system libsrtp2
    /// already linked into the process (glibc).
    pub const RTLD_DEEPBIND: c_int = 8;
    extern "C" {
        pub fn dlopen(filename: *const c_char, flags: c_int) -> *mut c_void;
        pub fn dlsym(handle: *mut c_void, symbol: *const c_char) -> *mut c_void;
        pub fn dlerror() -> *const c_char;
    }
}

impl Api {
    /// The libsrtp2 this crate links: the system's (Debian's build uses NSS).
    pub fn system() -> &'static Api {
        static SYSTEM: OnceLock<Api> = OnceLock::new();
        SYSTEM.get_or_init(|| Api {
            name: "libsrtp2 (system)".into(),
            init_status: OnceLock::new(),
            init: sys::srtp_init,
            create: sys::srtp_create,
            dealloc: sys::srtp_dealloc,
            protect_mki: sys::srtp_protect_mki,
            protect_rtcp_mki: sys::srtp_protect_rtcp_mki,
            unprotect_mki: sys::srtp_unprotect_mki,
            unprotect_rtcp_mki: sys::srtp_unprotect_rtcp_mki,
            trailer_len: sys::srtp_get_protect_trailer_length,
            rtcp_trailer_len: sys::srtp_get_protect_rtcp_trailer_length,
            set_stream_roc: sys::srtp_set_stream_roc,
            get_stream_roc: sys::srtp_get_stream_roc,
        })
    }

    /// Loads another build of libsrtp2 2.x (for example `target/libsrtp2-openssl/libsrtp2.so.1`,
    /// made by `scripts/build-libsrtp2-openssl.sh`) beside the system one, with its own symbols
    /// bound first. The library stays loaded for the life of the process.
    ///
    /// # Errors
    /// The loader's message if the file cannot be loaded or lacks a libsrtp2 symbol.
    pub fn load(path: &std::path::Path, name: &str) -> Result<&'static Api, String> {
        use std::os::unix::ffi::OsStrExt;
        let cpath =
            std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
        // SAFETY: `cpath` is a NUL-terminated path; dlopen has no other preconditions.
        let handle = unsafe { dl::dlopen(cpath.as_ptr(), dl::RTLD_NOW | dl::RTLD_DEEPBIND) };
        if handle.is_null() {
            return Err(format!("{}: {}", path.display(), last_dl_error()));
        }
        let sym = |name: &str| -> Result<*mut c_void, String> {
            let cname = std::ffi::CString::new(name).expect("no NUL in symbol names");
            // SAFETY: `handle` is a live library handle (never closed); `cname` is NUL-terminated.
            let p = unsafe { dl::dlsym(handle, cname.as_ptr()) };
            if p.is_null() {
                Err(format!("{}: no symbol {name}", path.display()))
            } else {
                Ok(p)
            }
        };
        #[allow(clippy::missing_transmute_annotations)]
        // SAFETY: each symbol is the libsrtp2 2.x function of that name, whose C signature is
        // the one declared in `sys` for the linked library and repeated in the field's type; a
        // data pointer and a function pointer have the same size and representation on the
        // platforms glibc's dlsym serves.
        let api = unsafe {
            Api {
                name: name.to_owned(),
                init_status: OnceLock::new(),
                init: core::mem::transmute(sym("srtp_init")?),
                create: core::mem::transmute(sym("srtp_create")?),
                dealloc: core::mem::transmute(sym("srtp_dealloc")?),
                protect_mki: core::mem::transmute(sym("srtp_protect_mki")?),
                protect_rtcp_mki: core::mem::transmute(sym("srtp_protect_rtcp_mki")?),
                unprotect_mki: core::mem::transmute(sym("srtp_unprotect_mki")?),
                unprotect_rtcp_mki: core::mem::transmute(sym("srtp_unprotect_rtcp_mki")?),
                trailer_len: core::mem::transmute(sym("srtp_get_protect_trailer_length")?),
                rtcp_trailer_len: core::mem::transmute(sym(
                    "srtp_get_protect_rtcp_trailer_length",
                )?),
                set_stream_roc: core::mem::transmute(sym("srtp_set_stream_roc")?),
                get_stream_roc: core::mem::transmute(sym("srtp_get_stream_roc")?),
            }
        };
        Ok(Box::leak(Box::new(api)))
    }

    /// What this library is called in reports.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `srtp_init` once per library; its status is remembered.
    fn init(&self) -> Result<(), Error> {
        // SAFETY: `srtp_init` takes no arguments; the OnceLock runs it once per library,
        // before any of its sessions is created, as libsrtp requires.
        check(*self.init_status.get_or_init(|| unsafe { (self.init)() }))
    }
}

fn last_dl_error() -> String {
    // SAFETY: dlerror returns NULL or a NUL-terminated message valid until the next dl call.
    let e = unsafe { dl::dlerror() };
    if e.is_null() {
        "unknown loader error".into()
    } else {
        // SAFETY: non-NULL, NUL-terminated, read before any other dl call.
        unsafe { std::ffi::CStr::from_ptr(e) }
            .to_string_lossy()
            .into_owned()
    }
}

/// Which packets a per-packet call is for: it picks the libsrtp function and the room left
/// for the trailer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Rtp,
    Rtcp,
}

/// One libsrtp session (`srtp_t`) for one direction with a wildcard SSRC.
///
/// The per-packet calls do not allocate: the `_in_place` ones work in the caller's buffer,
/// the `Vec` ones reuse its capacity after the first call.
pub struct LibSrtp {
    api: &'static Api,
    ctx: NonNull<sys::srtp_ctx_t>,
    suite: Suite,
    direction: Direction,
    use_mki: bool,
    num_keys: usize,
    rtp_trailer: usize,
    rtcp_trailer: usize,
}

impl fmt::Debug for LibSrtp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LibSrtp")
            .field("suite", &self.suite)
            .field("direction", &self.direction)
            .field("keys", &self.num_keys)
            .field("use_mki", &self.use_mki)
            .finish_non_exhaustive()
    }
}

impl LibSrtp {
    /// Creates the session (`srtp_create`).
    ///
    /// # Errors
    /// [`Error::Config`] for what libsrtp cannot express (no key, wrong key length, mixed MKI
    /// lengths), [`Error::Srtp`] if libsrtp refuses the policy.
    pub fn new(config: &Config) -> Result<Self, Error> {
        Self::with_api(Api::system(), config)
    }

    /// Creates the session in the given libsrtp2 build (see [`Api::load`]).
    ///
    /// # Errors
    /// As [`new`](Self::new).
    pub fn with_api(api: &'static Api, config: &Config) -> Result<Self, Error> {
        api.init()?;
        let suite = config.suite;
        let keys = &config.keys;
        if keys.is_empty() || keys.len() > sys::SRTP_MAX_NUM_MASTER_KEYS {
            return Err(Error::Config("1 to 16 master keys"));
        }
        if keys
            .iter()
            .any(|k| k.material.len() != suite.key_material_len())
        {
            return Err(Error::Config("key material length does not fit the suite"));
        }
        let mki_len = keys[0].mki.len();
        if mki_len > sys::SRTP_MAX_MKI_LEN || keys.iter().any(|k| k.mki.len() != mki_len) {
            return Err(Error::Config("MKIs must all have one length, at most 128"));
        }
        if mki_len == 0 && keys.len() > 1 {
            return Err(Error::Config("several master keys need MKIs"));
        }
        if suite.is_aead() && !config.authenticate_rtp {
            return Err(Error::Config("AES-GCM always authenticates"));
        }

        let (mut rtp, mut rtcp) = suite.crypto_policies();
        if !config.encrypt_rtp {
            rtp.sec_serv &= !sys::sec_serv_conf;
        }
        if !config.encrypt_rtcp {
            rtcp.sec_serv &= !sys::sec_serv_conf;
        }
        if !config.authenticate_rtp {
            // libsrtp strips `auth_tag_len` bytes on unprotect whatever `sec_serv` says, so
            // no authentication means the null transform with no tag.
            rtp.sec_serv &= !sys::sec_serv_auth;
            rtp.auth_type = sys::SRTP_NULL_AUTH;
            rtp.auth_key_len = 0;
            rtp.auth_tag_len = 0;
        }

        // libsrtp copies what it needs from these during srtp_create (it derives the session
        // keys and copies the MKIs), so they only have to live until it returns.
        let mut material: Vec<Vec<u8>> = keys.iter().map(|k| k.material.clone()).collect();
        let mut mkis: Vec<Vec<u8>> = keys.iter().map(|k| k.mki.clone()).collect();
        let mut master_keys: Vec<sys::srtp_master_key_t> = material
            .iter_mut()
            .zip(mkis.iter_mut())
            .map(|(key, mki)| sys::srtp_master_key_t {
                key: key.as_mut_ptr(),
                mki_id: mki.as_mut_ptr(),
                mki_size: mki_len as u32,
            })
            .collect();
        let mut key_ptrs: Vec<*mut sys::srtp_master_key_t> =
            master_keys.iter_mut().map(|k| k as *mut _).collect();
        let use_mki = mki_len > 0;
        let policy = sys::srtp_policy_t {
            ssrc: sys::srtp_ssrc_t {
                type_: match config.direction {
                    Direction::Outbound => sys::ssrc_any_outbound,
                    Direction::Inbound => sys::ssrc_any_inbound,
                },
                value: 0,
            },
            rtp,
            rtcp,
            // With a key array, `key` must be NULL; without MKI, the single key goes here.
            key: if use_mki {
                core::ptr::null_mut()
            } else {
                material[0].as_mut_ptr()
            },
            keys: if use_mki {
                key_ptrs.as_mut_ptr()
            } else {
                core::ptr::null_mut()
            },
            num_master_keys: if use_mki { keys.len() as _ } else { 0 },
            deprecated_ekt: core::ptr::null_mut(),
            window_size: config.window_size.into(),
            allow_repeat_tx: config.allow_repeat_tx.into(),
            enc_xtn_hdr: core::ptr::null_mut(),
            enc_xtn_hdr_count: 0,
            next: core::ptr::null_mut(),
        };
        let mut ctx: sys::srtp_t = core::ptr::null_mut();
        // SAFETY: `policy` is a fully initialised `srtp_policy_t` whose pointers (key
        // material of the suite's length, MKIs of `mki_size` bytes, the array of
        // `num_master_keys` key pointers) point into the vectors above, all alive until after
        // this call; `next` is NULL. libsrtp writes the new session into `ctx`.
        let status = unsafe { (api.create)(&mut ctx, &policy) };
        drop((key_ptrs, master_keys, mkis));
        for k in &mut material {
            k.fill(0);
        }
        check(status)?;
        let ctx = NonNull::new(ctx).ok_or(Error::Srtp(Status::FAIL))?;
        let mut session = Self {
            api,
            ctx,
            suite,
            direction: config.direction,
            use_mki,
            num_keys: keys.len(),
            // Upper bounds: without authentication libsrtp writes less, never more.
            rtp_trailer: mki_len + suite.rtp_tag_len(),
            rtcp_trailer: 4 + mki_len + suite.rtcp_tag_len(),
        };
        if config.direction == Direction::Outbound {
            // Never trust only our own arithmetic for how much libsrtp writes past a packet.
            for i in 0..session.num_keys {
                let (mut rtp_len, mut rtcp_len) = (0u32, 0u32);
                // SAFETY: `ctx` is the live session just created; the length pointers are to
                // locals.
                let (a, b) = unsafe {
                    (
                        (api.trailer_len)(ctx.as_ptr(), use_mki.into(), i as u32, &mut rtp_len),
                        (api.rtcp_trailer_len)(
                            ctx.as_ptr(),
                            use_mki.into(),
                            i as u32,
                            &mut rtcp_len,
                        ),
                    )
                };
                if a == sys::srtp_err_status_ok {
                    session.rtp_trailer = session.rtp_trailer.max(rtp_len as usize);
                }
                if b == sys::srtp_err_status_ok {
                    session.rtcp_trailer = session.rtcp_trailer.max(rtcp_len as usize);
                }
            }
        }
        Ok(session)
    }

    /// The suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The most bytes SRTP protection appends (MKI and tag).
    pub fn rtp_trailer_len(&self) -> usize {
        self.rtp_trailer
    }

    /// The most bytes SRTCP protection appends (E flag and index, MKI and tag).
    pub fn rtcp_trailer_len(&self) -> usize {
        self.rtcp_trailer
    }

    fn mki_args(&self, mki_index: Option<usize>) -> Result<(u32, u32), Error> {
        let i = mki_index.unwrap_or(0);
        if i >= self.num_keys {
            return Err(Error::NoSuchKey(i));
        }
        Ok((self.use_mki.into(), i as u32))
    }

    /// Protects the RTP packet in `buf` (appending the trailer) with the first master key.
    ///
    /// # Errors
    /// The libsrtp status; `buf` is unchanged on error.
    pub fn protect(&mut self, buf: &mut Vec<u8>) -> Result<(), Error> {
        self.protect_vec(Kind::Rtp, buf, None)
    }

    /// Protects the RTP packet in `buf` with master key `mki_index` (`None`: the first).
    ///
    /// # Errors
    /// As [`protect_in_place`](Self::protect_in_place); `buf` keeps its length on error.
    pub fn protect_mki(
        &mut self,
        buf: &mut Vec<u8>,
        mki_index: Option<usize>,
    ) -> Result<(), Error> {
        self.protect_vec(Kind::Rtp, buf, mki_index)
    }

    /// Protects the RTP packet in `buf[..len]` in place with master key `mki_index` (`None`:
    /// the first) and returns the SRTP length. `buf` needs
    /// [`rtp_trailer_len`](Self::rtp_trailer_len) bytes past `len`.
    ///
    /// # Errors
    /// [`Error::NoRoom`], [`Error::NoSuchKey`], or the libsrtp status (`replay_fail` for a
    /// sequence number protected before).
    pub fn protect_in_place(
        &mut self,
        buf: &mut [u8],
        len: usize,
        mki_index: Option<usize>,
    ) -> Result<usize, Error> {
        self.protect_slice(Kind::Rtp, buf, len, mki_index)
    }

    /// Verifies and decrypts the SRTP packet in `buf`, truncating it to the RTP packet.
    ///
    /// # Errors
    /// The libsrtp status (`auth_fail`, `cipher_fail` for GCM, `replay_fail`, `replay_old`,
    /// `bad_mki`, ...).
    pub fn unprotect(&mut self, buf: &mut Vec<u8>) -> Result<(), Error> {
        self.unprotect_vec(Kind::Rtp, buf)
    }

    /// Verifies and decrypts the SRTP packet that fills `packet`, in place, returning the RTP
    /// length. The master key is found by the packet's MKI when the keys have MKIs.
    ///
    /// # Errors
    /// As [`unprotect`](Self::unprotect).
    pub fn unprotect_in_place(&mut self, packet: &mut [u8]) -> Result<usize, Error> {
        self.unprotect_slice(Kind::Rtp, packet)
    }

    /// Protects the RTCP packet in `buf` with the first master key.
    ///
    /// # Errors
    /// The libsrtp status; `buf` is unchanged on error.
    pub fn protect_rtcp(&mut self, buf: &mut Vec<u8>) -> Result<(), Error> {
        self.protect_vec(Kind::Rtcp, buf, None)
    }

    /// Protects the RTCP packet in `buf` with master key `mki_index` (`None`: the first).
    ///
    /// # Errors
    /// As [`protect_rtcp_in_place`](Self::protect_rtcp_in_place).
    pub fn protect_rtcp_mki(
        &mut self,
        buf: &mut Vec<u8>,
        mki_index: Option<usize>,
    ) -> Result<(), Error> {
        self.protect_vec(Kind::Rtcp, buf, mki_index)
    }

    /// Protects the RTCP packet in `buf[..len]` in place and returns the SRTCP length. `buf`
    /// needs [`rtcp_trailer_len`](Self::rtcp_trailer_len) bytes past `len`.
    ///
    /// # Errors
    /// [`Error::NoRoom`], [`Error::NoSuchKey`], or the libsrtp status.
    pub fn protect_rtcp_in_place(
        &mut self,
        buf: &mut [u8],
        len: usize,
        mki_index: Option<usize>,
    ) -> Result<usize, Error> {
        self.protect_slice(Kind::Rtcp, buf, len, mki_index)
    }

    /// Verifies and decrypts the SRTCP packet in `buf`, truncating it to the RTCP packet.
    ///
    /// # Errors
    /// The libsrtp status.
    pub fn unprotect_rtcp(&mut self, buf: &mut Vec<u8>) -> Result<(), Error> {
        self.unprotect_vec(Kind::Rtcp, buf)
    }

    /// Verifies and decrypts the SRTCP packet that fills `packet`, in place, returning the
    /// RTCP length.
    ///
    /// # Errors
    /// The libsrtp status.
    pub fn unprotect_rtcp_in_place(&mut self, packet: &mut [u8]) -> Result<usize, Error> {
        self.unprotect_slice(Kind::Rtcp, packet)
    }

    /// The most bytes protecting a `kind` packet appends.
    fn trailer(&self, kind: Kind) -> usize {
        match kind {
            Kind::Rtp => self.rtp_trailer,
            Kind::Rtcp => self.rtcp_trailer,
        }
    }

    /// Protects the `kind` packet in `buf`, growing it by the trailer; `buf` keeps its length
    /// on error.
    fn protect_vec(
        &mut self,
        kind: Kind,
        buf: &mut Vec<u8>,
        mki_index: Option<usize>,
    ) -> Result<(), Error> {
        let len = buf.len();
        buf.resize(len + self.trailer(kind), 0);
        let r = self.protect_slice(kind, buf, len, mki_index);
        buf.truncate(*r.as_ref().unwrap_or(&len));
        r.map(drop)
    }

    /// Protects the `kind` packet in `buf[..len]` in place and returns the protected length.
    fn protect_slice(
        &mut self,
        kind: Kind,
        buf: &mut [u8],
        len: usize,
        mki_index: Option<usize>,
    ) -> Result<usize, Error> {
        let (use_mki, idx) = self.mki_args(mki_index)?;
        let mut n = self.len_arg(buf, len, self.trailer(kind))?;
        let protect = match kind {
            Kind::Rtp => self.api.protect_mki,
            Kind::Rtcp => self.api.protect_rtcp_mki,
        };
        // SAFETY: `ctx` is a live session; `protect` is `srtp_protect_mki` or
        // `srtp_protect_rtcp_mki`, as `kind` says; `buf` is valid for `len` bytes of packet
        // plus at least `self.trailer(kind)` bytes, the most that function writes past the
        // packet (SRTP: tag and MKI; SRTCP: index word, MKI and tag; cross-checked with
        // srtp_get_protect_trailer_length and srtp_get_protect_rtcp_trailer_length at
        // creation); `n` is a local.
        check(unsafe {
            protect(
                self.ctx.as_ptr(),
                buf.as_mut_ptr().cast(),
                &mut n,
                use_mki,
                idx,
            )
        })?;
        self.len_result(buf, n)
    }

    /// Verifies and decrypts the `kind` packet in `buf`, truncating it to the plain packet.
    fn unprotect_vec(&mut self, kind: Kind, buf: &mut Vec<u8>) -> Result<(), Error> {
        let n = self.unprotect_slice(kind, buf)?;
        buf.truncate(n);
        Ok(())
    }

    /// Verifies and decrypts the `kind` packet that fills `packet`, in place, returning the
    /// plain length.
    fn unprotect_slice(&mut self, kind: Kind, packet: &mut [u8]) -> Result<usize, Error> {
        let mut n = self.len_arg(packet, packet.len(), 0)?;
        let unprotect = match kind {
            Kind::Rtp => self.api.unprotect_mki,
            Kind::Rtcp => self.api.unprotect_rtcp_mki,
        };
        // SAFETY: `ctx` is a live session; `unprotect` is `srtp_unprotect_mki` or
        // `srtp_unprotect_rtcp_mki`, which read and write only within the `n` bytes of
        // `packet`, valid for them; `n` is a local.
        check(unsafe {
            unprotect(
                self.ctx.as_ptr(),
                packet.as_mut_ptr().cast(),
                &mut n,
                self.use_mki.into(),
            )
        })?;
        self.len_result(packet, n)
    }

    /// Sets the rollover counter of `ssrc` (`srtp_set_stream_roc`); the stream must exist.
    ///
    /// # Errors
    /// `bad_param` if the session has no stream for `ssrc` yet.
    pub fn set_stream_roc(&mut self, ssrc: u32, roc: u32) -> Result<(), Error> {
        // SAFETY: `ctx` is a live session; the call takes only integers.
        check(unsafe { (self.api.set_stream_roc)(self.ctx.as_ptr(), ssrc, roc) })
    }

    /// The rollover counter of `ssrc` (`srtp_get_stream_roc`).
    ///
    /// # Errors
    /// `bad_param` if the session has no stream for `ssrc`.
    pub fn stream_roc(&self, ssrc: u32) -> Result<u32, Error> {
        let mut roc = 0;
        // SAFETY: `ctx` is a live session; `roc` is a local it writes.
        check(unsafe { (self.api.get_stream_roc)(self.ctx.as_ptr(), ssrc, &mut roc) })?;
        Ok(roc)
    }

    /// `len` as libsrtp's `int`, checking `buf` holds it and `room` more bytes.
    fn len_arg(&self, buf: &[u8], len: usize, room: usize) -> Result<i32, Error> {
        let needed = len.checked_add(room).ok_or(Error::Length)?;
        if buf.len() < needed {
            return Err(if buf.len() < len {
                Error::Length
            } else {
                Error::NoRoom { needed }
            });
        }
        i32::try_from(needed).map_err(|_| Error::Length)?;
        Ok(len as i32)
    }

    /// The length libsrtp returned, which must lie within the buffer.
    fn len_result(&self, buf: &[u8], n: i32) -> Result<usize, Error> {
        let n = usize::try_from(n).map_err(|_| Error::Length)?;
        assert!(
            n <= buf.len(),
            "libsrtp reported {n} bytes in a {}-byte buffer",
            buf.len()
        );
        Ok(n)
    }
}

impl Drop for LibSrtp {
    fn drop(&mut self) {
        // SAFETY: `ctx` came from a successful srtp_create and is deallocated only here, once.
        unsafe {
            (self.api.dealloc)(self.ctx.as_ptr());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_match_srtp_h_2_5_0() {
        use core::mem::{offset_of, size_of};
        assert_eq!(size_of::<sys::srtp_crypto_policy_t>(), 24);
        assert_eq!(size_of::<sys::srtp_ssrc_t>(), 8);
        if size_of::<usize>() == 8 {
            assert_eq!(size_of::<sys::srtp_master_key_t>(), 24);
            assert_eq!(size_of::<sys::srtp_policy_t>(), 128);
            assert_eq!(offset_of!(sys::srtp_policy_t, rtcp), 32);
            assert_eq!(offset_of!(sys::srtp_policy_t, key), 56);
            assert_eq!(offset_of!(sys::srtp_policy_t, window_size), 88);
            assert_eq!(offset_of!(sys::srtp_policy_t, allow_repeat_tx), 96);
            assert_eq!(offset_of!(sys::srtp_policy_t, enc_xtn_hdr_count), 112);
            assert_eq!(offset_of!(sys::srtp_policy_t, next), 120);
        }
    }

    #[test]
    fn setters_give_the_header_ids() {
        let (rtp, rtcp) = Suite::NullSha1_32.crypto_policies();
        assert_eq!(
            (
                rtp.cipher_type,
                rtp.cipher_key_len,
                rtp.auth_type,
                rtp.auth_tag_len,
                rtp.sec_serv
            ),
            (
                sys::SRTP_NULL_CIPHER,
                30,
                sys::SRTP_HMAC_SHA1,
                4,
                sys::sec_serv_auth
            )
        );
        assert_eq!(rtcp.auth_tag_len, 10);
        let (rtp, _) = Suite::AeadAes256Gcm.crypto_policies();
        assert_eq!(
            (rtp.cipher_type, rtp.cipher_key_len),
            (sys::SRTP_AES_GCM_256, 44)
        );
        let (rtp, rtcp) = Suite::Aes192CmSha1_32.crypto_policies();
        assert_eq!(
            (rtp.cipher_type, rtp.auth_tag_len, rtcp.auth_tag_len),
            (4, 4, 10)
        );
    }

    #[test]
    fn round_trip_every_suite() {
        for suite in Suite::ALL {
            let material: Vec<u8> = (0..suite.key_material_len() as u8).collect();
            let mut tx = LibSrtp::new(&Config::new(suite, Direction::Outbound, &material)).unwrap();
            let mut rx = LibSrtp::new(&Config::new(suite, Direction::Inbound, &material)).unwrap();
            let rtp = vec![0x80, 0, 0, 1, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7];
            let mut buf = rtp.clone();
            tx.protect(&mut buf).unwrap();
            assert_eq!(buf.len(), rtp.len() + suite.rtp_tag_len(), "{suite:?}");
            rx.unprotect(&mut buf).unwrap();
            assert_eq!(buf, rtp);
            let rtcp = vec![0x80, 201, 0, 1, 0, 0, 0, 9];
            let mut buf = rtcp.clone();
            tx.protect_rtcp(&mut buf).unwrap();
            assert_eq!(
                buf.len(),
                rtcp.len() + 4 + suite.rtcp_tag_len(),
                "{suite:?}"
            );
            rx.unprotect_rtcp(&mut buf).unwrap();
            assert_eq!(buf, rtcp);
        }
    }

    #[test]
    fn in_place_without_room_is_refused() {
        let material = [1u8; 30];
        let mut tx = LibSrtp::new(&Config::new(
            Suite::Aes128CmSha1_80,
            Direction::Outbound,
            &material,
        ))
        .unwrap();
        let mut buf = [0u8; 12 + 9];
        buf[0] = 0x80;
        assert_eq!(
            tx.protect_in_place(&mut buf, 12, None),
            Err(Error::NoRoom { needed: 22 })
        );
        assert_eq!(
            tx.protect_in_place(&mut buf, 12, Some(1)),
            Err(Error::NoSuchKey(1))
        );
    }
}
