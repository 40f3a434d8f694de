//! The SRTP packet index and rollover counter (RFC 3711 §3.3.1 and Appendix A).

/// The 48-bit SRTP packet index: `2^16 * ROC + SEQ`.
pub(crate) const fn index(roc: u32, seq: u16) -> u64 {
    ((roc as u64) << 16) | seq as u64
}

/// The rollover counter the packet most likely belongs to, given the highest sequence number
/// `s_l` seen with rollover counter `roc` (RFC 3711 Appendix A). Returns `roc - 1`, `roc` or
/// `roc + 1`, as a signed value because `roc - 1` is negative for packets from before a
/// stream's first.
pub(crate) fn estimate_roc(roc: u32, s_l: u16, seq: u16) -> i64 {
    let roc = i64::from(roc);
    if s_l < 0x8000 {
        if seq > s_l && seq - s_l > 0x8000 {
            roc - 1
        } else {
            roc
        }
    } else if s_l - 0x8000 > seq {
        roc + 1
    } else {
        roc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appendix_a_estimation() {
        assert_eq!(estimate_roc(5, 100, 101), 5);
        assert_eq!(estimate_roc(5, 100, 50), 5);
        assert_eq!(estimate_roc(5, 100, 0xff00), 4);
        assert_eq!(estimate_roc(5, 0xff00, 0x0010), 6);
        assert_eq!(estimate_roc(5, 0xff00, 0xfe00), 5);
        assert_eq!(estimate_roc(0, 10, 0xfff0), -1);
        assert_eq!(estimate_roc(u32::MAX, 0xffff, 0), 1 << 32);
        assert_eq!(index(1, 2), 0x1_0002);
    }
}
