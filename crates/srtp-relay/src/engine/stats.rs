//! Counters per leg and per process. Plain integers: the engine is single-threaded per worker.

use std::time::Instant;

/// Why a packet was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum DropReason {
    /// The SRTP/SRTCP tag did not verify (forged or corrupted), or the MKI is unknown.
    Auth,
    /// Replayed, too old for the replay window, or the relay's own packet sent back to it
    /// (an endpoint that echoed the relay's key).
    Replay,
    /// Not allowed by the call: direction (hold), no remote known yet, key exhausted.
    Policy,
    /// From a source the leg does not accept.
    UnknownSource,
    /// Not RTP or RTCP, or truncated.
    Malformed,
}

/// Drops by reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Drops {
    /// See [`DropReason::Auth`].
    pub auth: u64,
    /// See [`DropReason::Replay`].
    pub replay: u64,
    /// See [`DropReason::Policy`].
    pub policy: u64,
    /// See [`DropReason::UnknownSource`].
    pub unknown_source: u64,
    /// See [`DropReason::Malformed`].
    pub malformed: u64,
}

impl Drops {
    pub(crate) fn count(&mut self, reason: DropReason) {
        *match reason {
            DropReason::Auth => &mut self.auth,
            DropReason::Replay => &mut self.replay,
            DropReason::Policy => &mut self.policy,
            DropReason::UnknownSource => &mut self.unknown_source,
            DropReason::Malformed => &mut self.malformed,
        } += 1;
    }

    /// All drops.
    pub fn total(&self) -> u64 {
        self.auth + self.replay + self.policy + self.unknown_source + self.malformed
    }

    fn add(&mut self, o: &Drops) {
        self.auth += o.auth;
        self.replay += o.replay;
        self.policy += o.policy;
        self.unknown_source += o.unknown_source;
        self.malformed += o.malformed;
    }
}

/// Traffic counters of one leg (or, summed, of the process).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Packets received on the leg's ports.
    pub packets_in: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Packets sent from the leg's ports.
    pub packets_out: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Packets received and dropped, by reason.
    pub drops: Drops,
}

impl Counters {
    pub(crate) fn add(&mut self, o: &Counters) {
        self.packets_in += o.packets_in;
        self.bytes_in += o.bytes_in;
        self.packets_out += o.packets_out;
        self.bytes_out += o.bytes_out;
        self.drops.add(&o.drops);
    }
}

/// A leg's counters with the time it last received a packet that was accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LegStats {
    /// Traffic counters.
    pub counters: Counters,
    /// When the leg last received an accepted packet (or was created).
    pub last_activity: Instant,
}
