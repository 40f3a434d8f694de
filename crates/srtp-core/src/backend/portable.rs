//! SHA-1 compression in plain Rust (FIPS 180-4 §6.1.2), for any CPU.

use super::BLOCK;

/// The four round constants (FIPS 180-4 §4.2.1).
pub(super) const K: [u32; 4] = [0x5A82_7999, 0x6ED9_EBA1, 0x8F1B_BCDC, 0xCA62_C1D6];

/// Absorbs the whole blocks of `blocks` into `state`.
pub(super) fn compress(state: &mut [u32; 5], blocks: &[u8]) {
    for block in blocks.chunks_exact(BLOCK) {
        let mut w = [0u32; 16];
        for (w, b) in w.iter_mut().zip(block.chunks_exact(4)) {
            *w = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        }
        let [mut a, mut b, mut c, mut d, mut e] = *state;
        // Straight-line rounds: the five working variables change roles from one round to the
        // next instead of being moved (FIPS 180-4 §6.1.2 step 3).
        macro_rules! round {
            ($a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $t:expr) => {{
                let t: usize = $t;
                if t >= 16 {
                    let x = w[(t + 13) & 15] ^ w[(t + 8) & 15] ^ w[(t + 2) & 15] ^ w[t & 15];
                    w[t & 15] = x.rotate_left(1);
                }
                let f = match t / 20 {
                    0 => $d ^ ($b & ($c ^ $d)),
                    2 => ($b & $c) | ($d & ($b | $c)),
                    _ => $b ^ $c ^ $d,
                };
                $e = $e
                    .wrapping_add($a.rotate_left(5))
                    .wrapping_add(f)
                    .wrapping_add(K[t / 20])
                    .wrapping_add(w[t & 15]);
                $b = $b.rotate_left(30);
            }};
        }
        sha1_rounds!(round, a, b, c, d, e);
        for (s, v) in state.iter_mut().zip([a, b, c, d, e]) {
            *s = s.wrapping_add(v);
        }
    }
}

/// An HMAC's last two steps: the inner hash's padded `tail` into `inner`, then the outer
/// hash's only block, [`super::outer_block`] of the inner digest, into
/// `outer`.
pub(super) fn hmac_finish(inner: &mut [u32; 5], tail: &[u8], outer: &mut [u32; 5]) {
    compress(inner, tail);
    compress(outer, &super::outer_block(inner));
}
