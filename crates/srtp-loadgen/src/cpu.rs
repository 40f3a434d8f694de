//! CPU time of the relay under test, read from /proc: the sum over a process's threads (or
//! over this process's threads with a given name prefix) of the time they ran, in
//! nanoseconds (`schedstat`), independent of the load generator's own use.

use std::fs;

/// Which threads to account.
#[derive(Clone, Debug)]
pub enum CpuSource {
    /// Every thread of another process.
    Process(u32),
    /// Threads of this process whose name starts with the prefix.
    OwnThreads(&'static str),
}

impl CpuSource {
    /// Nanoseconds of CPU used so far.
    pub fn nanos(&self) -> u64 {
        let (dir, prefix) = match self {
            Self::Process(pid) => (format!("/proc/{pid}/task"), None),
            Self::OwnThreads(p) => ("/proc/self/task".to_string(), Some(*p)),
        };
        let Ok(entries) = fs::read_dir(&dir) else {
            return 0;
        };
        let mut total = 0;
        for e in entries.flatten() {
            let path = e.path();
            if let Some(p) = prefix {
                let comm = fs::read_to_string(path.join("comm")).unwrap_or_default();
                if !comm.trim_end().starts_with(p) {
                    continue;
                }
            }
            let stat = fs::read_to_string(path.join("schedstat")).unwrap_or_default();
            total += stat
                .split_whitespace()
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0);
        }
        total
    }
}

/// A core's time counters from `/proc/stat` (in clock ticks): all of it, and the part the
/// hypervisor gave to someone else while this virtual CPU had work (steal).
#[derive(Clone, Copy, Debug, Default)]
pub struct CoreTime {
    total: u64,
    steal: u64,
}

impl CoreTime {
    /// Core `core`'s counters now (zero where `/proc/stat` does not say).
    pub fn of(core: usize) -> Self {
        let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
        let name = format!("cpu{core}");
        let Some(fields) = stat.lines().find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next() == Some(name.as_str())).then_some(f)
        }) else {
            return Self::default();
        };
        // user nice system idle iowait irq softirq steal guest guest_nice; guest time is
        // already in user.
        let v: Vec<u64> = fields.take(8).filter_map(|n| n.parse().ok()).collect();
        Self {
            total: v.iter().sum(),
            steal: v.get(7).copied().unwrap_or(0),
        }
    }

    /// The share of the time since `earlier` that was stolen, in percent.
    pub fn steal_since(&self, earlier: &Self) -> f64 {
        let total = self.total.saturating_sub(earlier.total);
        100.0 * self.steal.saturating_sub(earlier.steal) as f64 / total.max(1) as f64
    }
}
