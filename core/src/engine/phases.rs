//! How long each phase of a run took: printed by `conpere bench`, logged at debug level
//! by every run, so that a slow night says where its time went.

use std::fmt;
use std::time::{Duration, Instant};

/// The phases of a run, in order, each with its time.
#[derive(Debug, Clone)]
pub struct Phases {
    /// `(phase, time)`, in the order the run went through them.
    pub times: Vec<(&'static str, Duration)>,
    since: Instant,
}

impl Default for Phases {
    fn default() -> Self {
        Phases {
            times: Vec::new(),
            since: Instant::now(),
        }
    }
}

impl Phases {
    /// Phases counted from now.
    pub fn start() -> Phases {
        Phases::default()
    }

    /// Ends `phase`: the time since the previous phase ended.
    pub(crate) fn end(&mut self, phase: &'static str) {
        let now = Instant::now();
        self.add(phase, now - self.since);
        self.since = now;
    }

    /// The next phase starts now (after phases timed in parts).
    pub(crate) fn restart(&mut self) {
        self.since = Instant::now();
    }

    /// Adds `time` to `phase` (a phase timed in parts, e.g. each batch's COPY).
    pub(crate) fn add(&mut self, phase: &'static str, time: Duration) {
        match self.times.iter_mut().find(|(name, _)| *name == phase) {
            Some((_, total)) => *total += time,
            None => self.times.push((phase, time)),
        }
    }

    /// Moves `time` out of phase `from` into `part`, a phase of its own (a step of a phase
    /// timed inside it, e.g. the index builds of a first load's merge).
    pub(crate) fn carve(&mut self, from: &'static str, part: &'static str, time: Duration) {
        if time.is_zero() {
            return;
        }
        if let Some((_, total)) = self.times.iter_mut().find(|(name, _)| *name == from) {
            *total = total.saturating_sub(time);
        }
        self.add(part, time);
    }

    /// The time of `phase` (zero if the run did not go through it).
    pub fn of(&self, phase: &str) -> Duration {
        (self.times.iter())
            .find(|(name, _)| *name == phase)
            .map_or(Duration::ZERO, |(_, time)| *time)
    }

    /// Every phase's time together.
    pub fn total(&self) -> Duration {
        self.times.iter().map(|(_, time)| *time).sum()
    }
}

impl fmt::Display for Phases {
    /// `read 1.20 s, stage 0.80 s, …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (phase, time)) in self.times.iter().enumerate() {
            let separator = if i == 0 { "" } else { ", " };
            write!(f, "{separator}{phase} {:.2} s", time.as_secs_f64())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_timed_in_parts_is_one_line() {
        let mut phases = Phases::start();
        phases.add("stage", Duration::from_millis(300));
        phases.add("merge", Duration::from_millis(500));
        phases.add("stage", Duration::from_millis(200));
        assert_eq!(phases.of("stage"), Duration::from_millis(500));
        assert_eq!(phases.total(), Duration::from_secs(1));
        assert_eq!(phases.to_string(), "stage 0.50 s, merge 0.50 s");
        assert_eq!(phases.of("commit"), Duration::ZERO);
        phases.carve("merge", "index", Duration::from_millis(200));
        assert_eq!(
            phases.to_string(),
            "stage 0.50 s, merge 0.30 s, index 0.20 s"
        );
        assert_eq!(phases.total(), Duration::from_secs(1));
    }
}
