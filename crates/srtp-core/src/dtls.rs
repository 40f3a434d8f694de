//! DTLS-SRTP keying (RFC 5764). (Being written.)
