//! Per-SSRC state, capped and looked up in O(1).
//!
//! Receive state is inserted only after a packet authenticates, so a flood of packets naming
//! random SSRCs creates nothing. When the table is full the least recently used stream makes
//! room: an idle stream is the one evicted.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::replay::ReplayWindow;

/// A hasher for SSRCs: one multiply. Keys enter the table only after authentication, so an
/// attacker cannot choose colliding keys to fill it.
#[derive(Default)]
pub(crate) struct SsrcHasher(u64);

impl Hasher for SsrcHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = (u64::from(n) ^ self.0).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 ^= self.0 >> 29;
    }
}

/// Streams keyed by SSRC with a least-recently-used stamp.
#[derive(Debug)]
pub(crate) struct StreamTable<T> {
    map: HashMap<u32, (T, u64), BuildHasherDefault<SsrcHasher>>,
    cap: usize,
    clock: u64,
}

impl<T> StreamTable<T> {
    /// A table holding at most `cap` streams. Room for a modest number is reserved now so that
    /// the first streams need no reallocation.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            map: HashMap::with_capacity_and_hasher(cap.min(64), Default::default()),
            cap,
            clock: 0,
        }
    }

    pub(crate) fn get(&self, ssrc: u32) -> Option<&T> {
        self.map.get(&ssrc).map(|(t, _)| t)
    }

    /// The stream for `ssrc`, created with `make` if absent (evicting the least recently used
    /// stream when full), marked as just used.
    pub(crate) fn entry(&mut self, ssrc: u32, make: impl FnOnce() -> T) -> &mut T {
        self.clock += 1;
        let now = self.clock;
        if self.map.len() >= self.cap && !self.map.contains_key(&ssrc) {
            self.evict_one();
        }
        let e = self.map.entry(ssrc).or_insert_with(|| (make(), now));
        e.1 = now;
        &mut e.0
    }

    /// The stream for `ssrc`, created with `make` if absent and there is room; `None` when the
    /// table is full. For send state, which must never be forgotten while its key lives: a
    /// forgotten sender would restart its index and reuse keystream.
    pub(crate) fn entry_no_evict(&mut self, ssrc: u32, make: impl FnOnce() -> T) -> Option<&mut T> {
        if self.map.len() >= self.cap && !self.map.contains_key(&ssrc) {
            return None;
        }
        Some(self.entry(ssrc, make))
    }

    fn evict_one(&mut self) {
        if let Some(&oldest) = self
            .map
            .iter()
            .min_by_key(|(_, (_, used))| *used)
            .map(|(k, _)| k)
        {
            self.map.remove(&oldest);
        }
    }

    pub(crate) fn remove(&mut self, ssrc: u32) -> Option<T> {
        self.map.remove(&ssrc).map(|(t, _)| t)
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Every stream with its SSRC.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &T)> + '_ {
        self.map.iter().map(|(&ssrc, (t, _))| (ssrc, t))
    }

    /// The most streams the table holds.
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    pub(crate) fn ssrcs(&self) -> impl Iterator<Item = u32> + '_ {
        self.map.keys().copied()
    }
}

/// Receive state of one SSRC.
#[derive(Debug, Default)]
pub(crate) struct RxStream {
    pub(crate) rtp: Option<RtpRx>,
    pub(crate) rtcp: Option<ReplayWindow>,
    /// After a re-key that replaced every master key: the rollover counter and highest
    /// sequence number the stream had reached under the old keys, the first guess for the
    /// new ones until a packet authenticates under them (`rtp` is `None` until then).
    pub(crate) roc_hint: Option<(u32, u16)>,
}

/// Receive state of one SSRC's SRTP packets.
#[derive(Debug)]
pub(crate) struct RtpRx {
    /// Rollover counter of the highest index received.
    pub(crate) roc: u32,
    /// Highest sequence number received (`s_l`, RFC 3711 §3.3.1).
    pub(crate) s_l: u16,
    pub(crate) window: ReplayWindow,
    /// Packets accepted.
    pub(crate) received: u64,
}

/// Send state of one SSRC.
#[derive(Debug, Default)]
pub(crate) struct TxStream {
    /// Rollover counter and highest sequence number sent, once a packet was.
    pub(crate) rtp: Option<(u32, u16)>,
    /// Indices already protected, so that none is protected twice (keystream reuse).
    pub(crate) sent: Option<ReplayWindow>,
    /// Next SRTCP index.
    pub(crate) rtcp_index: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_least_recently_used_when_full() {
        let mut t = StreamTable::new(3);
        *t.entry(1, || 10) += 0;
        t.entry(2, || 20);
        t.entry(3, || 30);
        t.entry(1, || 0); // touch 1: 2 is now the oldest
        t.entry(4, || 40);
        assert_eq!(t.len(), 3);
        assert!(t.get(2).is_none());
        assert_eq!(t.get(1), Some(&10));
        assert_eq!(t.get(4), Some(&40));
    }
}
