//! The I/O layer (being written).
