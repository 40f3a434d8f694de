//! The RTP header (RFC 3550 §5.1).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |V=2|P|X|  CC   |M|     PT      |       sequence number         |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                           timestamp                           |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |           synchronization source (SSRC) identifier            |
//! +=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+=+
//! |            contributing source (CSRC) identifiers             |
//! |                             ....                              |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |      defined by profile       |           length              |
//! |                        header extension                       |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! ```

use crate::Malformed;

/// Length of the fixed RTP header.
pub(crate) const FIXED_HEADER_LEN: usize = 12;

/// The fields of an RTP header SRTP needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) seq: u16,
    pub(crate) ssrc: u32,
    /// Length of the header including CSRCs and extension: where the payload starts.
    pub(crate) len: usize,
}

/// Parses the header of `packet`, checking that it fits.
pub(crate) fn parse(packet: &[u8]) -> Result<Header, Malformed> {
    if packet.len() < FIXED_HEADER_LEN {
        return Err(Malformed::TooShort);
    }
    if packet[0] >> 6 != 2 {
        return Err(Malformed::BadVersion);
    }
    let csrc_count = usize::from(packet[0] & 0x0f);
    let mut len = FIXED_HEADER_LEN + 4 * csrc_count;
    if packet[0] & 0x10 != 0 {
        let ext = packet.get(len..len + 4).ok_or(Malformed::HeaderOverrun)?;
        len += 4 + 4 * usize::from(u16::from_be_bytes([ext[2], ext[3]]));
    }
    if len > packet.len() {
        return Err(Malformed::HeaderOverrun);
    }
    Ok(Header {
        seq: u16::from_be_bytes([packet[2], packet[3]]),
        ssrc: u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]),
        len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_csrcs_and_extension() {
        let mut p = vec![
            0x80 | 0x10 | 2,
            0,
            0x12,
            0x34,
            0,
            0,
            0,
            0,
            0xca,
            0xfe,
            0xba,
            0xbe,
        ];
        p.extend([0; 8]); // two CSRCs
        p.extend([0xbe, 0xde, 0, 1, 1, 2, 3, 4]); // one-word extension
        p.extend([9; 5]);
        let h = parse(&p).unwrap();
        assert_eq!((h.seq, h.ssrc, h.len), (0x1234, 0xcafe_babe, 28));
    }

    #[test]
    fn rejects_truncated_headers() {
        assert_eq!(parse(&[0x80; 11]), Err(Malformed::TooShort));
        assert_eq!(parse(&[0x40; 12]), Err(Malformed::BadVersion));
        assert_eq!(parse(&[0x81; 12]), Err(Malformed::HeaderOverrun));
        let mut p = vec![0x90, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(parse(&p), Err(Malformed::HeaderOverrun));
        p.extend([0, 0, 0, 2, 0, 0, 0, 0]);
        assert_eq!(parse(&p), Err(Malformed::HeaderOverrun));
    }
}
