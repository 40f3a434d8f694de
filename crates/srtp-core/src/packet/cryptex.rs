//! Cryptex (RFC 9335): an SRTP packet's CSRCs and RTP header extensions encrypted with its
//! payload.
//!
//! ```text
//!  fixed header (12 bytes)       | CSRCs  | preamble: profile, length | extensions | payload
//!  authenticated, never encrypted | encrypted | not encrypted         | encrypted  | encrypted
//! ```
//!
//! Everything after the fixed header is encrypted but the extension block's 4-byte preamble
//! (its "defined by profile" value and length, RFC 3550 §5.3.1), which stays readable so that
//! the header can still be parsed (RFC 9335 §6.1). The preamble's profile tells the receiver:
//! `0xC0DE` for one-byte extensions and `0xC2DE` for two-byte ones, instead of RFC 8285's
//! `0xBEDE` and `0x1000` (§5). A packet with CSRCs and no extension gets an empty `0xC0DE`
//! block, so that the receiver knows its CSRCs are encrypted (§5.1). For AEAD profiles the
//! fixed header and the preamble are the associated data (§6.2).
//!
//! While a packet is encrypted or decrypted, this module moves its preamble in front of the
//! CSRCs ([`Layout`]), so that the associated data and the encrypted bytes are each one run,
//! `[0, 16)` and `[16, end)`, as the ciphers take them; then it moves the preamble back. The
//! keystream (and the AEAD plaintext) then runs over the encrypted bytes in packet order, the
//! preamble skipped, as RFC 9335's vectors have it.

use super::rtp::FIXED_HEADER_LEN;

/// RFC 8285's one-byte header extension profile.
const ONE_BYTE: [u8; 2] = [0xBE, 0xDE];
/// RFC 8285's two-byte header extension profile (its low four "appbits" zero: cryptex has no
/// room for them, RFC 9335 §5).
const TWO_BYTE: [u8; 2] = [0x10, 0x00];
/// The one-byte profile of a packet encrypted with cryptex (RFC 9335 §5).
const CRYPTEX_ONE_BYTE: [u8; 2] = [0xC0, 0xDE];
/// The two-byte profile of a packet encrypted with cryptex (RFC 9335 §5).
const CRYPTEX_TWO_BYTE: [u8; 2] = [0xC2, 0xDE];

/// The extension block's preamble: profile and length.
const PREAMBLE: usize = 4;

/// Where the encrypted bytes start while a packet is laid out by [`Layout::apply`]: after the
/// fixed header and the preamble.
pub(crate) const START: usize = FIXED_HEADER_LEN + PREAMBLE;

/// The bytes a sender adds to a packet with CSRCs and no extension: an empty extension block.
pub(crate) const GROWTH: usize = PREAMBLE;

/// How a packet is laid out for cryptex: its CSRC count, which says where its preamble is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    csrcs: usize,
}

impl Layout {
    /// The preamble's range in the packet as it is on the wire.
    fn preamble(self) -> core::ops::Range<usize> {
        let at = FIXED_HEADER_LEN + 4 * self.csrcs;
        at..at + PREAMBLE
    }

    /// Moves the preamble in front of the CSRCs: the encrypted bytes are then
    /// `packet[START..]` and, for AEAD, the associated data `packet[..START]`.
    pub(crate) fn apply(self, packet: &mut [u8]) {
        packet[FIXED_HEADER_LEN..self.preamble().end].rotate_right(PREAMBLE);
    }

    /// Undoes [`apply`](Self::apply): the packet as it is on the wire again.
    pub(crate) fn undo(self, packet: &mut [u8]) {
        packet[FIXED_HEADER_LEN..self.preamble().end].rotate_left(PREAMBLE);
    }

    /// After a received packet was accepted (and decrypted): the preamble's profile back to
    /// RFC 8285's, so that the packet reads as if cryptex had never applied (RFC 9335 §6.3).
    pub(crate) fn unmark(self, packet: &mut [u8]) {
        let at = self.preamble().start;
        let profile = &mut packet[at..at + 2];
        if *profile == CRYPTEX_ONE_BYTE {
            profile.copy_from_slice(&ONE_BYTE);
        } else if *profile == CRYPTEX_TWO_BYTE {
            profile.copy_from_slice(&TWO_BYTE);
        }
    }
}

/// A received packet's layout if it says it was encrypted with cryptex (its extension
/// profile is `0xC0DE` or `0xC2DE`); `None` for any other packet. The packet's header must
/// have parsed ([`super::rtp::parse`]), so that its preamble lies inside it.
pub(crate) fn received(packet: &[u8]) -> Option<Layout> {
    if packet[0] & 0x10 == 0 {
        return None;
    }
    let layout = Layout {
        csrcs: usize::from(packet[0] & 0x0f),
    };
    let at = layout.preamble().start;
    let profile = [packet[at], packet[at + 1]];
    (profile == CRYPTEX_ONE_BYTE || profile == CRYPTEX_TWO_BYTE).then_some(layout)
}

/// What cryptex does to a packet about to be protected, decided before anything changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Plan {
    layout: Layout,
    /// The packet has CSRCs and no extension: an empty block is added.
    add_block: bool,
}

impl Plan {
    /// For a packet about to be protected with cryptex (its header parsed): what to do, or
    /// `None` when the packet goes out as RFC 3711 has it: cryptex has nothing to encrypt
    /// beyond the payload (no CSRC, no extension), or its extension is not RFC 8285's (or
    /// has two-byte "appbits"), which cryptex must not carry (RFC 9335 §5.1), and a sender
    /// may choose per packet (§4).
    pub(crate) fn new(packet: &[u8]) -> Option<Plan> {
        let csrcs = usize::from(packet[0] & 0x0f);
        let layout = Layout { csrcs };
        if packet[0] & 0x10 == 0 {
            return (csrcs > 0).then_some(Plan {
                layout,
                add_block: true,
            });
        }
        let at = layout.preamble().start;
        let profile = [packet[at], packet[at + 1]];
        (profile == ONE_BYTE || profile == TWO_BYTE).then_some(Plan {
            layout,
            add_block: false,
        })
    }

    /// How many bytes the packet grows by.
    pub(crate) fn growth(self) -> usize {
        if self.add_block {
            GROWTH
        } else {
            0
        }
    }

    /// Marks the packet `buf[..len]` for cryptex (adding the empty extension block if the
    /// plan says so, which needs [`growth`](Self::growth) bytes of room past `len`) and
    /// returns its layout; the caller then applies the layout, encrypts, and undoes it.
    pub(crate) fn mark(self, buf: &mut [u8], len: usize) -> Layout {
        let at = self.layout.preamble().start;
        if self.add_block {
            buf.copy_within(at..len, at + PREAMBLE);
            buf[at..at + PREAMBLE].copy_from_slice(&[
                CRYPTEX_ONE_BYTE[0],
                CRYPTEX_ONE_BYTE[1],
                0,
                0,
            ]);
            buf[0] |= 0x10;
        } else {
            let profile = if buf[at..at + 2] == ONE_BYTE {
                CRYPTEX_ONE_BYTE
            } else {
                CRYPTEX_TWO_BYTE
            };
            buf[at..at + 2].copy_from_slice(&profile);
        }
        self.layout
    }
}
