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
