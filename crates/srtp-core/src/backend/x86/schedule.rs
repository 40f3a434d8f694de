//! SHA-1 of one message with the message schedule in AVX2 registers (placeholder: portable).

/// Absorbs the whole blocks of `blocks` into `state`. The caller has checked AVX2 and BMI2.
pub(super) fn compress(state: &mut [u32; 5], blocks: &[u8]) {
    super::super::portable::compress(state, blocks);
}
