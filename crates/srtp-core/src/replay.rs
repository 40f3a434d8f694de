//! Replay protection on the full packet index (RFC 3711 §3.3.2).
//!
//! The window covers the 48-bit SRTP index (or 31-bit SRTCP index), never the 16-bit sequence
//! number alone, so packets a whole rollover apart are never confused.

use crate::Error;

/// Default replay window size in packets, as libsrtp uses.
pub const DEFAULT_REPLAY_WINDOW: usize = 128;
/// Largest replay window size in packets.
pub const MAX_REPLAY_WINDOW: usize = 32768;

/// A sliding window of received packet indices: the highest index seen and a bitmap of the
/// `size` indices up to it.
#[derive(Clone, Debug)]
pub(crate) struct ReplayWindow {
    /// Highest index accepted so far.
    top: u64,
    /// Window size in packets.
    size: u64,
    /// A ring of at least `size` bits, a power of two so that a mask replaces a division:
    /// bit `i & mask` is set when index `i` in `(top - size, top]` was accepted.
    bits: Ring,
    mask: u64,
}

/// Words of a ring held inline: windows up to 256 packets (libsrtp's 128 among them) keep
/// their bits beside the rest of the stream's state, not behind a pointer.
const INLINE_WORDS: usize = 4;

/// The words of a window's ring.
#[derive(Clone, Debug)]
enum Ring {
    Inline([u64; INLINE_WORDS]),
    Heap(Box<[u64]>),
}

impl Ring {
    fn zeroed(words: usize) -> Self {
        if words <= INLINE_WORDS {
            Ring::Inline([0; INLINE_WORDS])
        } else {
            Ring::Heap(vec![0; words].into_boxed_slice())
        }
    }

    fn words(&self) -> &[u64] {
        match self {
            Ring::Inline(w) => w,
            Ring::Heap(w) => w,
        }
    }

    fn words_mut(&mut self) -> &mut [u64] {
        match self {
            Ring::Inline(w) => w,
            Ring::Heap(w) => w,
        }
    }
}

impl ReplayWindow {
    /// A window of `size` packets (a multiple of 64) whose first accepted index will be `first`.
    pub(crate) fn new(size: usize, first: u64) -> Self {
        let ring = size.next_power_of_two().max(64);
        let mut w = Self {
            top: first,
            size: size as u64,
            bits: Ring::zeroed(ring / 64),
            mask: ring as u64 - 1,
        };
        w.set(first);
        w
    }

    /// Whether `index` may be accepted. Reads only.
    pub(crate) fn check(&self, index: u64) -> Result<(), Error> {
        if index > self.top {
            return Ok(());
        }
        if self.top - index >= self.size {
            return Err(Error::TooOld);
        }
        if self.is_set(index) {
            return Err(Error::Replayed);
        }
        Ok(())
    }

    /// Records `index` as received; call only after [`check`](Self::check) passed and the
    /// packet authenticated.
    pub(crate) fn accept(&mut self, index: u64) {
        let (word, bit) = self.slot(index);
        let (top, mask) = (self.top, self.mask);
        let words = self.bits.words_mut();
        if index > top {
            // The indices skipped over leave the ring's memory of a cycle before (the bit of
            // `index` itself is set just below). In order, nothing is skipped.
            if index - top > mask {
                words.fill(0);
            } else {
                for i in top + 1..index {
                    let b = i & mask;
                    words[(b >> 6) as usize] &= !(1 << (b & 63));
                }
            }
            self.top = index;
        }
        words[word] |= bit;
    }

    /// The highest index accepted.
    pub(crate) fn top(&self) -> u64 {
        self.top
    }

    fn slot(&self, index: u64) -> (usize, u64) {
        let bit = index & self.mask;
        ((bit >> 6) as usize, 1 << (bit & 63))
    }

    fn is_set(&self, index: u64) -> bool {
        let (w, m) = self.slot(index);
        self.bits.words()[w] & m != 0
    }

    fn set(&mut self, index: u64) {
        let (w, m) = self.slot(index);
        self.bits.words_mut()[w] |= m;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_duplicates_and_old_accepts_reordered() {
        let mut w = ReplayWindow::new(128, 1000);
        assert_eq!(w.check(1000), Err(Error::Replayed));
        assert_eq!(w.check(999), Ok(()));
        w.accept(1005);
        assert_eq!(w.check(1003), Ok(()));
        w.accept(1003);
        assert_eq!(w.check(1003), Err(Error::Replayed));
        assert_eq!(w.check(1005 - 127), Ok(()));
        assert_eq!(w.check(1005 - 128), Err(Error::TooOld));
        w.accept(1005 + 128);
        assert_eq!(w.check(1005), Err(Error::TooOld));
        assert_eq!(w.check(1006), Ok(()));
        assert_eq!(w.check(1005 + 128), Err(Error::Replayed));
    }

    #[test]
    fn sizes_that_are_not_powers_of_two_keep_their_exact_span() {
        let mut w = ReplayWindow::new(192, 1000);
        w.accept(1100);
        assert_eq!(w.check(1100 - 191), Ok(()));
        assert_eq!(w.check(1100 - 192), Err(Error::TooOld));
        w.accept(1100 - 191);
        w.accept(1250);
        assert_eq!(w.check(1250 - 191), Ok(()));
        assert_eq!(w.check(1100), Err(Error::Replayed));
        assert_eq!(w.check(1250 - 192), Err(Error::TooOld));
    }

    #[test]
    fn large_jumps_clear_the_window() {
        let mut w = ReplayWindow::new(4096, 0);
        for i in 0..5000 {
            w.accept(i);
        }
        w.accept(1 << 40);
        assert_eq!(w.check((1 << 40) - 1), Ok(()));
        assert_eq!(w.check((1 << 40) - 4095), Ok(()));
        assert_eq!(w.check((1 << 40) - 4096), Err(Error::TooOld));
    }

    #[test]
    fn matches_a_set_model() {
        use std::collections::BTreeSet;
        let size = 64u64;
        let mut w = ReplayWindow::new(size as usize, 10);
        let mut seen = BTreeSet::from([10u64]);
        let mut top = 10u64;
        let mut x = 12345u64;
        for _ in 0..20000 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let delta = (x >> 33) % 100;
            let i = (top + 30).saturating_sub(delta);
            let want = if i > top {
                Ok(())
            } else if top - i >= size {
                Err(Error::TooOld)
            } else if seen.contains(&i) {
                Err(Error::Replayed)
            } else {
                Ok(())
            };
            assert_eq!(w.check(i), want, "index {i} top {top}");
            if want.is_ok() {
                w.accept(i);
                seen.insert(i);
                top = top.max(i);
            }
        }
    }
}
