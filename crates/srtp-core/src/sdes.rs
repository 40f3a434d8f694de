//! SDES: the SDP `a=crypto` attribute (RFC 4568). (Being written.)
