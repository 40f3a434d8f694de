//! Just enough RTP and RTCP parsing to find what SRTP protects.

pub(crate) mod cryptex;
pub(crate) mod rtcp;
pub(crate) mod rtp;
