//! What a run did, per stream, and the summary table printed from it.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::time::Duration;

use crate::engine::Mode;
use crate::net::{Flow, Skip};

/// RTP or RTCP.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// RTP (SRTP).
    Rtp,
    /// RTCP (SRTCP).
    Rtcp,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rtp => "RTP",
            Self::Rtcp => "RTCP",
        })
    }
}

/// What became of one selected packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Decrypted (or encrypted) and rewritten.
    Done,
    /// No key authenticated it (or, encrypting, it could not be protected).
    Failed,
    /// A key knows the packet's index already, and the packet is not a copy of one decrypted
    /// before: kept or dropped as failed ones are.
    Replayed,
    /// An exact copy of a packet decrypted before (captured twice): counted as replayed, and
    /// written decrypted.
    Duplicate,
}

/// One row of the summary: an SSRC sending RTP or RTCP in one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    /// The SSRC (for RTCP, the sender's SSRC of the first packet of the compound).
    pub ssrc: u32,
    /// RTP or RTCP.
    pub kind: Kind,
    /// The direction.
    pub flow: Flow,
}

/// The counters of one stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// Packets seen.
    pub packets: u64,
    /// Packets decrypted (or encrypted).
    pub done: u64,
    /// Packets that failed authentication (or protection).
    pub failed: u64,
    /// Packets whose index was seen already (the copies included).
    pub replayed: u64,
    /// Of those, exact copies of a packet decrypted before, written decrypted.
    pub copies: u64,
    /// Timestamp of the first packet.
    pub first: Option<Duration>,
    /// Timestamp of the last packet.
    pub last: Option<Duration>,
}

/// The counters of a run: per stream, and for the records that were not SRTP.
#[derive(Clone, Debug)]
pub struct Report {
    mode: Mode,
    records: u64,
    start: Option<Duration>,
    streams: Vec<(StreamKey, StreamStats)>,
    index: HashMap<StreamKey, usize>,
    skipped: BTreeMap<Skip, u64>,
    not_rtp: u64,
    not_selected: u64,
    truncated: u64,
}

impl Report {
    pub(crate) fn new(mode: Mode) -> Self {
        Self {
            mode,
            records: 0,
            start: None,
            streams: Vec::new(),
            index: HashMap::new(),
            skipped: BTreeMap::new(),
            not_rtp: 0,
            not_selected: 0,
            truncated: 0,
        }
    }

    pub(crate) fn record(&mut self, time: Option<Duration>) {
        self.records += 1;
        if self.start.is_none() {
            self.start = time;
        }
    }

    pub(crate) fn skip(&mut self, why: Skip) {
        *self.skipped.entry(why).or_default() += 1;
    }

    pub(crate) fn not_rtp(&mut self) {
        self.not_rtp += 1;
    }

    pub(crate) fn not_selected(&mut self) {
        self.not_selected += 1;
    }

    pub(crate) fn truncated(&mut self) {
        self.truncated += 1;
    }

    pub(crate) fn count(&mut self, key: StreamKey, time: Option<Duration>, outcome: Outcome) {
        let i = *self.index.entry(key).or_insert_with(|| {
            self.streams.push((key, StreamStats::default()));
            self.streams.len() - 1
        });
        let s = &mut self.streams[i].1;
        s.packets += 1;
        match outcome {
            Outcome::Done => s.done += 1,
            Outcome::Failed => s.failed += 1,
            Outcome::Replayed => s.replayed += 1,
            Outcome::Duplicate => {
                s.replayed += 1;
                s.copies += 1;
            }
        }
        if s.first.is_none() {
            s.first = time;
        }
        if time.is_some() {
            s.last = time;
        }
    }

    /// Packet records read (every frame, SRTP or not).
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The streams, in the order their first packet came.
    pub fn streams(&self) -> impl Iterator<Item = (&StreamKey, &StreamStats)> {
        self.streams.iter().map(|(k, s)| (k, s))
    }

    /// The counters of one stream.
    pub fn stream(&self, key: &StreamKey) -> Option<&StreamStats> {
        self.index.get(key).map(|&i| &self.streams[i].1)
    }

    /// The sums over every stream.
    pub fn totals(&self) -> StreamStats {
        let mut t = StreamStats::default();
        for (_, s) in &self.streams {
            t.packets += s.packets;
            t.done += s.done;
            t.failed += s.failed;
            t.replayed += s.replayed;
            t.copies += s.copies;
        }
        t
    }

    /// Records written as they came because they are not RTP/RTCP (or could not be looked
    /// into): not IP, not UDP, fragments, malformed headers, UDP that is not RTP.
    pub fn other(&self) -> u64 {
        self.skipped.values().sum::<u64>() + self.not_rtp
    }

    /// RTP/RTCP packets the filters did not select.
    pub fn not_selected_count(&self) -> u64 {
        self.not_selected
    }

    /// Records captured shorter than they were on the wire.
    pub fn truncated_count(&self) -> u64 {
        self.truncated
    }

    /// Whether no packet at all was decrypted (or encrypted).
    pub fn nothing_done(&self) -> bool {
        self.totals().done == 0
    }
}

/// The summary table: one row per stream, then the totals and what was left alone.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (verb, done, failed) = match self.mode {
            Mode::Decrypt => ("decrypt", "DECRYPTED", "failed authentication"),
            Mode::Encrypt => ("encrypt", "ENCRYPTED", "failed"),
        };
        write!(f, "srtp-pcap {verb}: {} records", self.records)?;
        if let Some(start) = self.start {
            write!(f, ", the first at {} UTC", Utc(start))?;
        }
        writeln!(f)?;
        let flows: Vec<String> = self
            .streams
            .iter()
            .map(|(k, _)| k.flow.to_string())
            .collect();
        let w = flows.iter().map(String::len).max().unwrap_or(0).max(4);
        let replayed = self.mode == Mode::Decrypt;
        if !self.streams.is_empty() {
            write!(
                f,
                "{:<10}  {:<4}  {:<w$}  {:>8}  {:>9}  {:>6}",
                "SSRC", "KIND", "FLOW", "PACKETS", done, "FAILED"
            )?;
            if replayed {
                write!(f, "  {:>8}", "REPLAYED")?;
            }
            writeln!(f, "  {:>12}  {:>12}", "FIRST (s)", "LAST (s)")?;
        }
        for ((key, s), flow) in self.streams.iter().zip(&flows) {
            write!(
                f,
                "0x{:08x}  {:<4}  {flow:<w$}  {:>8}  {:>9}  {:>6}",
                key.ssrc,
                key.kind.to_string(),
                s.packets,
                s.done,
                s.failed
            )?;
            if replayed {
                write!(f, "  {:>8}", s.replayed)?;
            }
            writeln!(
                f,
                "  {:>12}  {:>12}",
                Relative(s.first, self.start).to_string(),
                Relative(s.last, self.start).to_string()
            )?;
        }
        let t = self.totals();
        write!(
            f,
            "total: {} streams, {} SRTP/SRTCP packets: {} {}, {} {failed}",
            self.streams.len(),
            t.packets,
            t.done,
            done.to_lowercase(),
            t.failed
        )?;
        if replayed {
            write!(f, ", {} replayed", t.replayed)?;
            if t.copies > 0 {
                write!(
                    f,
                    " ({} of them copies of decrypted packets, written decrypted)",
                    t.copies
                )?;
            }
        }
        writeln!(f)?;
        write!(f, "left as they were: {} other records", self.other())?;
        let mut parts: Vec<String> = self
            .skipped
            .iter()
            .map(|(why, n)| format!("{n} {}", why.describe()))
            .collect();
        if self.not_rtp > 0 {
            parts.push(format!("{} UDP but not RTP/RTCP", self.not_rtp));
        }
        if !parts.is_empty() {
            write!(f, " ({})", parts.join(", "))?;
        }
        write!(f, ", {} not selected by --filter/--ssrc", self.not_selected)?;
        writeln!(f, ", {} captured shorter than on the wire", self.truncated)
    }
}

/// Seconds since the first record, as Wireshark's default time column shows them.
struct Relative(Option<Duration>, Option<Duration>);

impl fmt::Display for Relative {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (Some(t), Some(start)) = (self.0, self.1) else {
            return f.write_str("-");
        };
        let (sign, d) = match t.checked_sub(start) {
            Some(d) => ("", d),
            None => ("-", start - t),
        };
        write!(f, "{sign}{}.{:06}", d.as_secs(), d.subsec_micros())
    }
}

/// A time since the Unix epoch as `YYYY-MM-DD HH:MM:SS.ffffff` (UTC).
struct Utc(Duration);

impl fmt::Display for Utc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs();
        let (days, rem) = (secs / 86_400, secs % 86_400);
        let (y, m, d) = civil_from_days(days);
        write!(
            f,
            "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{:06}",
            rem / 3600,
            rem / 60 % 60,
            rem % 60,
            self.0.subsec_micros()
        )
    }
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (the era-based method: 400-year
/// eras of 146097 days, years starting in March so that the leap day comes last).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_relative_times_format() {
        assert_eq!(
            Utc(Duration::ZERO).to_string(),
            "1970-01-01 00:00:00.000000"
        );
        assert_eq!(
            Utc(Duration::new(951_782_400 + 3661, 5_000)).to_string(),
            "2000-02-29 01:01:01.000005"
        );
        assert_eq!(
            Utc(Duration::from_secs(1_735_689_599)).to_string(),
            "2024-12-31 23:59:59.000000"
        );
        let start = Some(Duration::from_secs(10));
        assert_eq!(
            Relative(Some(Duration::from_millis(10_020)), start).to_string(),
            "0.020000"
        );
        assert_eq!(
            Relative(Some(Duration::from_secs(9)), start).to_string(),
            "-1.000000"
        );
        assert_eq!(Relative(None, start).to_string(), "-");
    }
}
