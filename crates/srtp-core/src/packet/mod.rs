//! Just enough RTP and RTCP parsing to find what SRTP protects.

pub(crate) mod rtcp;
pub(crate) mod rtp;
