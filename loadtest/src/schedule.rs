//! When requests are sent: closed loop (fixed concurrency) or open loop (fixed rate).
//!
//! In the open loop every request has an intended send time, `start + n / rate`, fixed in
//! advance. A request that could not be sent on time because every connection was busy is
//! timed from its intended time, not from when it finally went out; otherwise a stalled
//! server would hide its own stall (coordinated omission). A request sent late only because
//! the timer woke late is timed from when it went out, since that delay is ours.

use std::time::{Duration, Instant};

/// How load is offered.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Mode {
    /// `concurrency` connections, each sending its next request as soon as the last is done.
    Closed { concurrency: usize },
    /// `rate` requests per second over up to `connections` connections.
    Open { rate: f64, connections: usize },
}

impl Mode {
    pub(crate) fn connections(&self) -> usize {
        match *self {
            Mode::Closed { concurrency } => concurrency,
            Mode::Open { connections, .. } => connections,
        }
    }
}

/// When a phase stops: after a duration, after a number of requests, or at whichever comes
/// first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stop {
    pub(crate) duration: Option<Duration>,
    pub(crate) requests: Option<u64>,
}

/// The fixed-rate timetable.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timetable {
    interval_ns: f64,
}

impl Timetable {
    pub(crate) fn new(rate_per_s: f64) -> Self {
        Self {
            interval_ns: 1e9 / rate_per_s.max(1e-9),
        }
    }

    /// Offset of request `ticket` (0-based) from the start of the phase.
    pub(crate) fn offset(&self, ticket: u64) -> Duration {
        Duration::from_nanos((ticket as f64 * self.interval_ns).round() as u64)
    }
}

/// What a worker does with the ticket it took.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pacing {
    /// The intended time is still ahead: wait until it, then time from the real send.
    WaitUntil(Instant),
    /// The intended time has passed (every connection was busy): send now, time from the
    /// intended time so the queueing delay counts.
    Late(Instant),
}

pub(crate) fn pace(intended: Instant, now: Instant) -> Pacing {
    if intended > now {
        Pacing::WaitUntil(intended)
    } else {
        Pacing::Late(intended)
    }
}

/// Whether a ticket is still part of the phase.
pub(crate) fn admits(stop: &Stop, ticket: u64, offset: Duration) -> bool {
    stop.requests.is_none_or(|n| ticket < n) && stop.duration.is_none_or(|d| offset < d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_evenly_spaced_without_drift() {
        let table = Timetable::new(3000.0);
        assert_eq!(table.offset(0), Duration::ZERO);
        assert_eq!(table.offset(3), Duration::from_millis(1));
        // No accumulated rounding error after millions of requests.
        assert_eq!(table.offset(3_000_000), Duration::from_secs(1000));
        assert_eq!(table.offset(1), Duration::from_nanos(333_333));
    }

    #[test]
    fn late_requests_are_timed_from_their_intended_time() {
        let start = Instant::now();
        let intended = start + Duration::from_millis(5);
        assert_eq!(
            pace(intended, start),
            Pacing::WaitUntil(intended),
            "early: wait"
        );
        let later = start + Duration::from_millis(9);
        assert_eq!(
            pace(intended, later),
            Pacing::Late(intended),
            "4 ms of queueing counts"
        );
        assert_eq!(pace(intended, intended), Pacing::Late(intended));
    }

    #[test]
    fn stop_by_count_duration_or_both() {
        let by_count = Stop {
            duration: None,
            requests: Some(2),
        };
        assert!(admits(&by_count, 1, Duration::from_secs(999)));
        assert!(!admits(&by_count, 2, Duration::ZERO));
        let by_time = Stop {
            duration: Some(Duration::from_secs(1)),
            requests: None,
        };
        assert!(admits(&by_time, 1_000_000, Duration::from_millis(999)));
        assert!(!admits(&by_time, 0, Duration::from_secs(1)));
        let both = Stop {
            duration: Some(Duration::from_secs(1)),
            requests: Some(10),
        };
        assert!(!admits(&both, 10, Duration::ZERO));
        assert!(!admits(&both, 0, Duration::from_secs(2)));
    }

    #[test]
    fn connections_per_mode() {
        assert_eq!(Mode::Closed { concurrency: 32 }.connections(), 32);
        assert_eq!(
            Mode::Open {
                rate: 100.0,
                connections: 64
            }
            .connections(),
            64
        );
    }
}
