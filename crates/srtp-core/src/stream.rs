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
///
/// The first stream is held inline, in the table itself: a session usually has one SSRC each
/// way, and a relay carrying thousands of calls finds that stream among the session's own
/// fields instead of through a hash table's control bytes and a bucket elsewhere in memory
/// (two cache misses per packet when the calls outnumber the cache). Only a second SSRC
/// allocates the map.
#[derive(Debug)]
pub(crate) struct StreamTable<T> {
    inline: Option<Slot<T>>,
    map: HashMap<u32, (T, u64), BuildHasherDefault<SsrcHasher>>,
    cap: usize,
    clock: u64,
}

/// The inline stream: its SSRC, its state and when it was last used.
#[derive(Debug)]
struct Slot<T> {
    ssrc: u32,
    stream: T,
    used: u64,
}

impl<T> StreamTable<T> {
    /// A table holding at most `cap` streams.
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            inline: None,
            map: HashMap::default(),
            cap,
            clock: 0,
        }
    }

    fn is_inline(&self, ssrc: u32) -> bool {
        self.inline.as_ref().is_some_and(|s| s.ssrc == ssrc)
    }

    pub(crate) fn get(&self, ssrc: u32) -> Option<&T> {
        match &self.inline {
            Some(s) if s.ssrc == ssrc => Some(&s.stream),
            _ if self.map.is_empty() => None,
            _ => self.map.get(&ssrc).map(|(t, _)| t),
        }
    }

    /// The stream for `ssrc`, created with `make` if absent (evicting the least recently used
    /// stream when full), marked as just used.
    pub(crate) fn entry(&mut self, ssrc: u32, make: impl FnOnce() -> T) -> &mut T {
        self.clock += 1;
        let now = self.clock;
        if !self.is_inline(ssrc) && !self.map.contains_key(&ssrc) {
            if self.len() >= self.cap {
                self.evict_one();
            }
            if self.inline.is_none() {
                self.inline = Some(Slot {
                    ssrc,
                    stream: make(),
                    used: now,
                });
                return &mut self.inline.as_mut().expect("just set").stream;
            }
            self.map.insert(ssrc, (make(), now));
        }
        match &mut self.inline {
            Some(s) if s.ssrc == ssrc => {
                s.used = now;
                &mut s.stream
            }
            _ => {
                let e = self.map.get_mut(&ssrc).expect("present or just inserted");
                e.1 = now;
                &mut e.0
            }
        }
    }

    /// The stream for `ssrc`, created with `make` if absent and there is room; `None` when the
    /// table is full. For send state, which must never be forgotten while its key lives: a
    /// forgotten sender would restart its index and reuse keystream.
    pub(crate) fn entry_no_evict(&mut self, ssrc: u32, make: impl FnOnce() -> T) -> Option<&mut T> {
        if self.len() >= self.cap && !self.is_inline(ssrc) && !self.map.contains_key(&ssrc) {
            return None;
        }
        Some(self.entry(ssrc, make))
    }

    fn evict_one(&mut self) {
        let oldest = self
            .map
            .iter()
            .min_by_key(|(_, (_, used))| *used)
            .map(|(&k, (_, used))| (k, *used));
        match (&self.inline, oldest) {
            (Some(s), Some((_, used))) if s.used < used => self.inline = None,
            (_, Some((k, _))) => {
                self.map.remove(&k);
            }
            (Some(_), None) => self.inline = None,
            (None, None) => {}
        }
    }

    pub(crate) fn remove(&mut self, ssrc: u32) -> Option<T> {
        if self.is_inline(ssrc) {
            return self.inline.take().map(|s| s.stream);
        }
        self.map.remove(&ssrc).map(|(t, _)| t)
    }

    pub(crate) fn len(&self) -> usize {
        usize::from(self.inline.is_some()) + self.map.len()
    }

    /// Every stream with its SSRC.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &T)> + '_ {
        let inline = self.inline.iter().map(|s| (s.ssrc, &s.stream));
        inline.chain(self.map.iter().map(|(&ssrc, (t, _))| (ssrc, t)))
    }

    /// The most streams the table holds.
    pub(crate) fn cap(&self) -> usize {
        self.cap
    }

    pub(crate) fn ssrcs(&self) -> impl Iterator<Item = u32> + '_ {
        self.iter().map(|(ssrc, _)| ssrc)
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
    /// What is added to the sequence numbers handed in to get the ones sent: zero until the
    /// sequence restarts under [`Policy::sequence_continuity`](crate::Policy).
    pub(crate) seq_offset: u16,
    /// The number handed in that looked like a restart, until the next one confirms it.
    pub(crate) restart: Option<u16>,
}

/// How far ahead of the highest number sent a packet counts as a restart under sequence
/// continuity, not as loss upstream: 4096 packets, over a minute of audio.
const FORWARD_RESTART: u16 = 4096;

/// What sequence continuity makes of a sequence number handed to the sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Continued {
    /// Send it as `seq`; once the packet is protected the stream's offset becomes `offset`
    /// (and a pending restart is settled).
    Send { seq: u16, offset: u16 },
    /// A restart's first packet (or a lone stray): refused, and remembered so that the next
    /// number confirms the restart.
    Probation,
}

impl TxStream {
    /// What to do with `seq` under sequence continuity, changing nothing: the caller commits
    /// [`Continued::Send`] with [`commit`](Self::commit) only once the packet is protected,
    /// so a packet refused later (a duplicate) leaves a pending restart as it was. `seq`
    /// moved by the stream's offset is sent, unless it lands at least `window` behind the
    /// highest number sent (where the replay check refuses it) or [`FORWARD_RESTART`] or
    /// more ahead: a restart, taken once the next number follows it (RFC 3550 §A.1
    /// probation). The first packet of a restart is refused, so one stray packet (very
    /// late, or from before a restart already taken) starts nothing; the second goes out as
    /// the number after the highest sent, and the run follows it.
    pub(crate) fn continued(&self, seq: u16, window: usize) -> Continued {
        let out = seq.wrapping_add(self.seq_offset);
        let keep = Continued::Send {
            seq: out,
            offset: self.seq_offset,
        };
        let Some((_, highest)) = self.rtp else {
            return keep;
        };
        let ahead = out.wrapping_sub(highest) as i16;
        let restart = if ahead < 0 {
            usize::from(ahead.unsigned_abs()) >= window
        } else {
            ahead.unsigned_abs() >= FORWARD_RESTART
        };
        if !restart {
            return keep;
        }
        if self.restart == Some(seq.wrapping_sub(1)) {
            let next = highest.wrapping_add(1);
            Continued::Send {
                seq: next,
                offset: next.wrapping_sub(seq),
            }
        } else {
            Continued::Probation
        }
    }

    /// Records what [`continued`](Self::continued) decided for a packet now protected.
    pub(crate) fn commit(&mut self, offset: u16) {
        self.seq_offset = offset;
        self.restart = None;
    }
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
        // The inline stream (the first one, 1) is evicted like any other when it is oldest.
        t.entry(3, || 0);
        t.entry(4, || 0);
        t.entry(5, || 50);
        assert!(t.get(1).is_none());
        assert_eq!(t.len(), 3);
        // Its place is taken by the next new stream.
        t.entry(6, || 60);
        assert!(t.get(3).is_none());
        assert_eq!(t.get(6), Some(&60));
        assert_eq!(t.get(5), Some(&50));
        let mut ssrcs: Vec<u32> = t.ssrcs().collect();
        ssrcs.sort_unstable();
        assert_eq!(ssrcs, [4, 5, 6]);
    }

    #[test]
    fn removes_inline_and_mapped_streams() {
        let mut t = StreamTable::new(4);
        t.entry(1, || 10);
        t.entry(2, || 20);
        assert_eq!(t.remove(1), Some(10));
        assert_eq!(t.remove(1), None);
        assert_eq!(t.len(), 1);
        t.entry(3, || 30);
        assert_eq!(t.remove(2), Some(20));
        assert_eq!(t.get(3), Some(&30));
        assert_eq!(
            t.iter().map(|(s, v)| (s, *v)).collect::<Vec<_>>(),
            [(3, 30)]
        );
        let mut full = StreamTable::new(1);
        *full.entry_no_evict(7, || 70).unwrap() += 1;
        assert!(full.entry_no_evict(8, || 80).is_none());
        assert_eq!(full.entry_no_evict(7, || 0).copied(), Some(71));
    }
}
