//! When a source is due: its `schedule` (cron with seconds, parsed by the `cron` crate)
//! read in the institution's time zone, such that daylight-saving changes neither skip
//! nor double a run.
//!
//! The cron expression is evaluated on local wall-clock time, then each due local time is
//! placed on the real time line:
//!
//! * a local time that happens twice (the hour repeated when clocks go back, 02:30 on the
//!   last Sunday of October in Paris) is due once, at its first occurrence;
//! * a local time that does not happen (the hour skipped when clocks go forward, 02:30 on
//!   the last Sunday of March) is due once, as soon as the clocks have jumped past it
//!   (03:00 local).
//!
//! This is the first part of `conpere serve` (issue 6): the daemon's scheduling loop and
//! `conpere check` both read due times here.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use conpere_connectors::SourceConfig;
use std::str::FromStr;

/// A source's schedule in a time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: cron::Schedule,
    zone: Tz,
}

impl Schedule {
    /// Parses `expression` (six or seven fields: seconds first, e.g. `0 30 2 * * *`) for
    /// the time zone named `zone` (`Europe/Paris`).
    pub fn parse(expression: &str, zone: &str) -> Result<Schedule, String> {
        let cron = cron::Schedule::from_str(expression).map_err(|e| {
            format!(
                "`{expression}` is not a cron schedule with seconds ({e}); e.g. \
                 \"0 30 2 * * *\" is 02:30:00 every day"
            )
        })?;
        let zone = Tz::from_str(zone).map_err(|_| {
            format!("`{zone}` is not a time zone name of the tz database (e.g. Europe/Paris)")
        })?;
        Ok(Schedule { cron, zone })
    }

    /// The schedule of `source` in the time zone `zone`, if it has one.
    pub fn of_source(source: &SourceConfig, zone: &str) -> Result<Option<Schedule>, String> {
        source
            .common
            .schedule
            .as_deref()
            .map(|expression| Schedule::parse(expression, zone))
            .transpose()
    }

    /// The first due instant strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Cron runs on wall-clock time: local times are carried as if they were UTC.
        let local = after.with_timezone(&self.zone).naive_local();
        let mut wall = Utc.from_utc_datetime(&local);
        // A few steps at most: a due local time already passed (the second pass of a
        // repeated hour) is skipped.
        for _ in 0..4 {
            let due = self.cron.after(&wall).next()?;
            let instant = self.place(due.naive_utc())?;
            if instant > after {
                return Some(instant);
            }
            wall = due;
        }
        None
    }

    /// `instant` on the institution's clock, for people.
    pub fn local(&self, instant: DateTime<Utc>) -> DateTime<Tz> {
        instant.with_timezone(&self.zone)
    }

    /// The latest due instant in `(since, now]`, if any: the run that was due while the
    /// daemon was down (`catch_up = "once"` runs it once at start-up).
    pub fn missed(&self, since: DateTime<Utc>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let mut last = None;
        let mut at = since;
        while let Some(due) = self.next_after(at).filter(|due| *due <= now) {
            last = Some(due);
            at = due;
        }
        last
    }

    /// The real instant of a due local time: its first occurrence, or the end of the gap
    /// it falls in.
    fn place(&self, local: NaiveDateTime) -> Option<DateTime<Utc>> {
        // Gaps are at most a few hours long (and usually one): walk a minute at a time,
        // on whole minutes past the due time (the first valid one is e.g. 03:00:00).
        let minute = local.with_second(0)?;
        let candidates =
            std::iter::once(local).chain((1..=24 * 60).map(|m| minute + Duration::minutes(m)));
        for candidate in candidates {
            match self.zone.from_local_datetime(&candidate) {
                LocalResult::Single(t) => return Some(t.with_timezone(&Utc)),
                LocalResult::Ambiguous(first, _) => return Some(first.with_timezone(&Utc)),
                LocalResult::None => continue,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paris(text: &str) -> DateTime<Utc> {
        let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap();
        chrono_tz::Europe::Paris
            .from_local_datetime(&naive)
            .earliest()
            .unwrap()
            .with_timezone(&Utc)
    }

    fn utc(text: &str) -> DateTime<Utc> {
        let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S").unwrap();
        Utc.from_utc_datetime(&naive)
    }

    /// Every due instant of `schedule` in `[from, to)`.
    fn runs(schedule: &Schedule, from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut out = Vec::new();
        let mut at = from - Duration::seconds(1);
        while let Some(due) = schedule.next_after(at).filter(|d| *d < to) {
            out.push(due);
            at = due;
        }
        out
    }

    #[test]
    fn an_ordinary_night_runs_at_the_local_time() {
        let schedule = Schedule::parse("0 30 2 * * *", "Europe/Paris").unwrap();
        // 14 January 2026: CET (UTC+1).
        let due = schedule.next_after(paris("2026-01-14 12:00:00")).unwrap();
        assert_eq!(due, utc("2026-01-15 01:30:00"));
    }

    #[test]
    fn spring_forward_runs_once_when_the_clocks_have_jumped() {
        // 29 March 2026: 02:00 CET becomes 03:00 CEST; 02:30 does not happen.
        let schedule = Schedule::parse("0 30 2 * * *", "Europe/Paris").unwrap();
        let day = runs(
            &schedule,
            utc("2026-03-28 12:00:00"),
            utc("2026-03-30 12:00:00"),
        );
        assert_eq!(
            day,
            [
                utc("2026-03-29 01:00:00"), // 03:00 CEST, the end of the gap
                utc("2026-03-30 00:30:00"), // 02:30 CEST the day after
            ]
        );
    }

    #[test]
    fn fall_back_runs_once_at_the_first_occurrence() {
        // 25 October 2026: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
        let schedule = Schedule::parse("0 30 2 * * *", "Europe/Paris").unwrap();
        let day = runs(
            &schedule,
            utc("2026-10-24 12:00:00"),
            utc("2026-10-26 12:00:00"),
        );
        assert_eq!(
            day,
            [
                utc("2026-10-25 00:30:00"), // 02:30 CEST, the first pass
                utc("2026-10-26 01:30:00"), // 02:30 CET the day after
            ]
        );
        // Started during the second pass of the hour, before 02:30 CET: not again today.
        let started = utc("2026-10-25 01:10:00"); // 02:10 CET
        assert_eq!(
            schedule.next_after(started),
            Some(utc("2026-10-26 01:30:00"))
        );
    }

    #[test]
    fn a_run_missed_while_down_is_found_once() {
        let schedule = Schedule::parse("0 30 2 * * *", "Europe/Paris").unwrap();
        let since = paris("2026-01-13 03:00:00");
        let now = paris("2026-01-15 09:00:00");
        assert_eq!(
            schedule.missed(since, now),
            Some(paris("2026-01-15 02:30:00"))
        );
        assert_eq!(schedule.missed(now, now + Duration::hours(1)), None);
    }

    #[test]
    fn bad_expressions_and_zones_are_explained() {
        let message = Schedule::parse("30 2 * * *", "Europe/Paris").unwrap_err();
        assert!(message.contains("seconds"), "{message}");
        let message = Schedule::parse("0 30 2 * * *", "Europe/Pariss").unwrap_err();
        assert!(message.contains("Europe/Paris"), "{message}");
    }
}
