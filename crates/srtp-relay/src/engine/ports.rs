//! Local port allocation with a guard time before a freed port is handed out again, so that
//! late packets of an ended call never reach the next call on the same port.

use std::collections::VecDeque;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

/// Default time a released port rests before reuse.
pub const DEFAULT_PORT_GUARD: Duration = Duration::from_secs(10);

/// A pool of UDP ports. Allocation hands out the least recently released port first.
#[derive(Debug)]
pub struct PortPool {
    free: VecDeque<u16>,
    resting: VecDeque<(Instant, u16)>,
    guard: Duration,
}

impl PortPool {
    /// A pool over `range` whose released ports rest for `guard`.
    pub fn new(range: RangeInclusive<u16>, guard: Duration) -> Self {
        Self {
            free: range.collect(),
            resting: VecDeque::new(),
            guard,
        }
    }

    /// A pool over the given ports, all free now.
    pub fn with_ports(ports: impl IntoIterator<Item = u16>, guard: Duration) -> Self {
        Self {
            free: ports.into_iter().collect(),
            resting: VecDeque::new(),
            guard,
        }
    }

    /// Takes a free port, or `None` when the range is exhausted.
    pub fn allocate(&mut self, now: Instant) -> Option<u16> {
        self.wake(now);
        self.free.pop_front()
    }

    /// Returns a port; it becomes available again after the guard time.
    pub fn release(&mut self, port: u16, now: Instant) {
        self.resting.push_back((now, port));
    }

    /// Ports available right now.
    pub fn available(&mut self, now: Instant) -> usize {
        self.wake(now);
        self.free.len()
    }

    fn wake(&mut self, now: Instant) {
        while let Some(&(at, port)) = self.resting.front() {
            if now.saturating_duration_since(at) < self.guard {
                break;
            }
            self.resting.pop_front();
            self.free.push_back(port);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn released_ports_rest_before_reuse() {
        let t0 = Instant::now();
        let mut pool = PortPool::new(40000..=40001, Duration::from_secs(5));
        assert_eq!(pool.allocate(t0), Some(40000));
        assert_eq!(pool.allocate(t0), Some(40001));
        assert_eq!(pool.allocate(t0), None);
        pool.release(40000, t0);
        assert_eq!(pool.allocate(t0 + Duration::from_secs(4)), None);
        assert_eq!(pool.allocate(t0 + Duration::from_secs(5)), Some(40000));
    }
}
