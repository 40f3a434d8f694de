//! The RTCP header (RFC 3550 §6.4) and the SRTCP trailer (RFC 3711 §3.4).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |V=2|P|    RC   |   PT=SR=200   |             length            |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                         SSRC of sender                        |
//! +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
//! |                  ... (encrypted portion) ...                  |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |E|                         SRTCP index                         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ~                     SRTCP MKI (optional)                      ~
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! :                     authentication tag                        :
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use crate::Malformed;

/// The first eight octets, which SRTCP never encrypts.
pub(crate) const HEADER_LEN: usize = 8;
/// Length of the E flag and SRTCP index word.
pub(crate) const INDEX_LEN: usize = 4;
/// The E flag in the index word.
pub(crate) const E_FLAG: u32 = 0x8000_0000;

/// Checks that `packet` starts like RTCP and returns the sender SSRC.
pub(crate) fn parse(packet: &[u8]) -> Result<u32, Malformed> {
    if packet.len() < HEADER_LEN {
        return Err(Malformed::TooShort);
    }
    if packet[0] >> 6 != 2 {
        return Err(Malformed::BadVersion);
    }
    // RTCP packet types occupy 192..=223 (RFC 5761 §4); anything else is RTP or garbage.
    if !(192..=223).contains(&packet[1]) {
        return Err(Malformed::NotRtcp);
    }
    Ok(u32::from_be_bytes([
        packet[4], packet[5], packet[6], packet[7],
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_rtcp_types_only() {
        let rr = [0x81, 201, 0, 7, 1, 2, 3, 4];
        assert_eq!(parse(&rr), Ok(0x0102_0304));
        assert_eq!(parse(&rr[..7]), Err(Malformed::TooShort));
        assert_eq!(parse(&[0x80, 0, 0, 0, 0, 0, 0, 0]), Err(Malformed::NotRtcp));
        assert_eq!(
            parse(&[0x00, 200, 0, 0, 0, 0, 0, 0]),
            Err(Malformed::BadVersion)
        );
    }
}
