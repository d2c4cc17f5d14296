//! A one-line progress bar on stderr for long phases.

use std::io::Write as _;
use std::time::Duration;

use crate::schedule::Stop;

const WIDTH: usize = 30;

#[derive(Debug)]
pub(crate) struct Progress {
    label: String,
    stop: Stop,
    drawn: bool,
}

impl Progress {
    pub(crate) fn new(label: String, stop: Stop) -> Self {
        Self {
            label,
            stop,
            drawn: false,
        }
    }

    /// How far the phase is, from 0 to 1: by time, by count, or by whichever is further.
    pub(crate) fn fraction(stop: &Stop, elapsed: Duration, completed: u64) -> f64 {
        let by_time = stop
            .duration
            .map(|d| elapsed.as_secs_f64() / d.as_secs_f64().max(1e-9));
        let by_count = stop.requests.map(|n| completed as f64 / n.max(1) as f64);
        by_time
            .into_iter()
            .chain(by_count)
            .fold(0.0_f64, f64::max)
            .clamp(0.0, 1.0)
    }

    pub(crate) fn line(&self, elapsed: Duration, completed: u64, failed: u64) -> String {
        let fraction = Self::fraction(&self.stop, elapsed, completed);
        let filled = (fraction * WIDTH as f64).round() as usize;
        let rate = completed as f64 / elapsed.as_secs_f64().max(1e-9);
        format!(
            "{:<28} [{}{}] {:>3.0}% {:>6.1}s {:>9.0} req/s  errors {}",
            self.label,
            "#".repeat(filled),
            ".".repeat(WIDTH - filled),
            fraction * 100.0,
            elapsed.as_secs_f64(),
            rate,
            failed
        )
    }

    pub(crate) fn draw(&mut self, elapsed: Duration, completed: u64, failed: u64) {
        let line = self.line(elapsed, completed, failed);
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{line}");
        let _ = err.flush();
        self.drawn = true;
    }

    pub(crate) fn clear(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r{}\r", " ".repeat(110));
            let _ = err.flush();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fraction_follows_the_nearest_limit() {
        let both = Stop {
            duration: Some(Duration::from_secs(10)),
            requests: Some(1000),
        };
        assert!((Progress::fraction(&both, Duration::from_secs(5), 100) - 0.5).abs() < 1e-9);
        assert!((Progress::fraction(&both, Duration::from_secs(1), 900) - 0.9).abs() < 1e-9);
        assert_eq!(
            Progress::fraction(&both, Duration::from_secs(30), 0),
            1.0,
            "clamped"
        );
    }

    #[test]
    fn line_shows_bar_rate_and_errors() {
        let bar = Progress::new(
            "query".into(),
            Stop {
                duration: Some(Duration::from_secs(4)),
                requests: None,
            },
        );
        let line = bar.line(Duration::from_secs(1), 2000, 3);
        assert!(line.contains("[########......................]"), "{line}");
        assert!(line.contains(" 25%"), "{line}");
        assert!(line.contains("2000 req/s"), "{line}");
        assert!(line.ends_with("errors 3"), "{line}");
    }
}
