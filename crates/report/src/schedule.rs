//! When the daily report runs and which day it covers, in the configured time zone.
//!
//! Pure calendar arithmetic: the caller passes `now`; nothing here reads a clock. The rules,
//! which hold across daylight-saving changes:
//! - A report runs once per local date, at the configured local time (default 00:05).
//! - If that local time does not exist on a date (it falls in a spring-forward gap), the run
//!   happens at the end of the gap, the first local instant that exists after it.
//! - If it exists twice (fall-back), the run happens at the first of the two.
//! - A run reports on the local date before the run's own local date (where a zone skipped a
//!   whole date, the last date that happened).
//! - A local day is `[midnight, next midnight)` in the zone, so it lasts 23 or 25 hours on
//!   the days the clocks change; the report's window is that span in UTC.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

/// The default local run time, 00:05: just after the day closes, as the document's stats
/// server ran "每日凌晨" (early every morning).
pub const DEFAULT_RUN_AT: NaiveTime = match NaiveTime::from_hms_opt(0, 5, 0) {
    Some(t) => t,
    None => NaiveTime::MIN,
};

/// The first instant strictly after `now` at which the report runs: local time `at` in
/// `tz`, on the earliest local date where that instant is still ahead.
pub fn next_run(now: DateTime<Utc>, tz: Tz, at: NaiveTime) -> DateTime<Utc> {
    let mut date = now
        .with_timezone(&tz)
        .date_naive()
        .pred_opt()
        .unwrap_or(NaiveDate::MIN);
    // A handful of dates always suffices: some date among today and tomorrow has the run time
    // ahead, unless a zone skipped a whole date (Samoa, 30 Dec 2011), which costs one more.
    for _ in 0..8 {
        if let Some(t) = run_instant(date, at, tz) {
            if t > now {
                return t;
            }
        }
        match date.succ_opt() {
            Some(d) => date = d,
            None => break,
        }
    }
    now + Duration::days(1)
}

/// The local date a run at `run_time` reports on: the last local date that ended before the
/// run's own local date began (the day before, except where a zone skipped a date).
pub fn report_day_for(run_time: DateTime<Utc>, tz: Tz) -> NaiveDate {
    let (start, _) = day_window(run_time.with_timezone(&tz).date_naive(), tz);
    (start - Duration::seconds(1))
        .with_timezone(&tz)
        .date_naive()
}

/// The UTC span `[start, end)` of the local date `date` in `tz`.
pub fn day_window(date: NaiveDate, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let start = first_instant_at_or_after(date.and_time(NaiveTime::MIN), tz);
    let end = match date.succ_opt() {
        Some(next) => first_instant_at_or_after(next.and_time(NaiveTime::MIN), tz),
        None => DateTime::<Utc>::MAX_UTC,
    };
    (start, end.max(start))
}

/// The run instant on `date`, or `None` when the zone skipped past the whole date there.
fn run_instant(date: NaiveDate, at: NaiveTime, tz: Tz) -> Option<DateTime<Utc>> {
    let t = first_instant_at_or_after(date.and_time(at), tz);
    (t.with_timezone(&tz).date_naive() == date).then_some(t)
}

/// The earliest instant whose local time in `tz` is `local`, or, when `local` falls in a
/// gap, the first instant after the gap.
fn first_instant_at_or_after(local: NaiveDateTime, tz: Tz) -> DateTime<Utc> {
    let mut probe = local;
    // Gaps are whole minutes in every zone since standard time began, and at most a day
    // long; stepping by minutes finds the end of the gap in a bounded number of steps.
    for _ in 0..=(2 * 24 * 60) {
        match tz.from_local_datetime(&probe) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => return first.with_timezone(&Utc),
            LocalResult::None => match probe.checked_add_signed(Duration::minutes(1)) {
                Some(p) => probe = p,
                None => break,
            },
        }
    }
    // Unreachable for the zones of the tz database; reading the time as UTC is the least
    // surprising answer if it ever happens.
    local.and_utc()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::America::New_York;
    use chrono_tz::Europe::Berlin;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_else(|e| panic!("{s}: {e}"))
    }
    fn date(s: &str) -> NaiveDate {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }
    fn hm(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN)
    }

    #[test]
    fn utc_runs_at_five_past_midnight_and_reports_yesterday() {
        let now = utc("2026-11-22T10:00:00Z");
        let run = next_run(now, Tz::UTC, DEFAULT_RUN_AT);
        assert_eq!(run, utc("2026-11-23T00:05:00Z"));
        assert_eq!(report_day_for(run, Tz::UTC), date("2026-11-22"));
    }

    #[test]
    fn a_run_at_exactly_now_is_not_repeated() {
        let now = utc("2026-11-23T00:05:00Z");
        assert_eq!(
            next_run(now, Tz::UTC, DEFAULT_RUN_AT),
            utc("2026-11-24T00:05:00Z")
        );
        let just_before = utc("2026-11-23T00:04:59Z");
        assert_eq!(next_run(just_before, Tz::UTC, DEFAULT_RUN_AT), now);
    }

    #[test]
    fn berlin_spring_forward_day_is_23_hours_and_runs_stay_at_local_0005() {
        // 29 March 2026: 02:00 CET jumps to 03:00 CEST.
        let (s, e) = day_window(date("2026-03-29"), Berlin);
        assert_eq!(
            (s, e),
            (utc("2026-03-28T23:00:00Z"), utc("2026-03-29T22:00:00Z"))
        );
        let run = next_run(utc("2026-03-28T23:10:00Z"), Berlin, DEFAULT_RUN_AT);
        assert_eq!(run, utc("2026-03-29T22:05:00Z"));
        assert_eq!(report_day_for(run, Berlin), date("2026-03-29"));
    }

    #[test]
    fn berlin_fall_back_day_is_25_hours() {
        // 25 October 2026: 03:00 CEST falls back to 02:00 CET.
        let (s, e) = day_window(date("2026-10-25"), Berlin);
        assert_eq!(
            (s, e),
            (utc("2026-10-24T22:00:00Z"), utc("2026-10-25T23:00:00Z"))
        );
    }

    #[test]
    fn a_run_time_inside_the_gap_runs_when_the_gap_ends() {
        let run = next_run(utc("2026-03-28T12:00:00Z"), Berlin, hm(2, 30));
        // 02:30 does not exist on 29 March; 03:00 CEST is 01:00 UTC.
        assert_eq!(run, utc("2026-03-29T01:00:00Z"));
        assert_eq!(report_day_for(run, Berlin), date("2026-03-28"));
        assert_eq!(
            next_run(run, Berlin, hm(2, 30)),
            utc("2026-03-30T00:30:00Z")
        );
    }

    #[test]
    fn a_run_time_that_happens_twice_runs_once() {
        // 02:30 happens at 00:30 UTC (CEST) and again at 01:30 UTC (CET) on 25 October.
        let first = next_run(utc("2026-10-24T12:00:00Z"), Berlin, hm(2, 30));
        assert_eq!(first, utc("2026-10-25T00:30:00Z"));
        assert_eq!(
            next_run(first, Berlin, hm(2, 30)),
            utc("2026-10-26T01:30:00Z")
        );
    }

    #[test]
    fn new_york_transitions() {
        // 8 March 2026: 02:00 EST jumps to 03:00 EDT; 1 November 2026: 02:00 EDT back to 01:00 EST.
        let run = next_run(utc("2026-03-08T04:00:00Z"), New_York, DEFAULT_RUN_AT);
        assert_eq!(run, utc("2026-03-08T05:05:00Z"));
        let next = next_run(run, New_York, DEFAULT_RUN_AT);
        assert_eq!(next, utc("2026-03-09T04:05:00Z"));
        assert_eq!(next - run, Duration::hours(23));
        assert_eq!(report_day_for(next, New_York), date("2026-03-08"));
        let (s, e) = day_window(date("2026-11-01"), New_York);
        assert_eq!(e - s, Duration::hours(25));
        assert_eq!(s, utc("2026-11-01T04:00:00Z"));
    }

    #[test]
    fn runs_over_two_years_cover_every_day_once() {
        for tz in [Berlin, New_York, Tz::UTC, chrono_tz::Australia::Lord_Howe] {
            let mut now = utc("2026-01-01T12:00:00Z");
            let mut expected = date("2026-01-01");
            for _ in 0..730 {
                let run = next_run(now, tz, DEFAULT_RUN_AT);
                assert!(run > now);
                assert_eq!(run.with_timezone(&tz).time(), DEFAULT_RUN_AT, "{tz} {run}");
                assert_eq!(report_day_for(run, tz), expected, "{tz} {run}");
                let (s, e) = day_window(expected, tz);
                assert_eq!(s.with_timezone(&tz).date_naive(), expected);
                assert_eq!(
                    e.with_timezone(&tz).date_naive(),
                    expected.succ_opt().unwrap_or(expected)
                );
                expected = expected.succ_opt().unwrap_or(expected);
                now = run;
            }
        }
    }

    #[test]
    fn a_date_the_zone_skipped_gets_no_run_and_no_day_goes_unreported() {
        // Samoa moved across the date line: 30 December 2011 never happened in Apia.
        let tz = chrono_tz::Pacific::Apia;
        let first = next_run(utc("2011-12-28T12:00:00Z"), tz, DEFAULT_RUN_AT);
        assert_eq!(first.with_timezone(&tz).date_naive(), date("2011-12-29"));
        assert_eq!(report_day_for(first, tz), date("2011-12-28"));
        let second = next_run(first, tz, DEFAULT_RUN_AT);
        assert_eq!(second.with_timezone(&tz).date_naive(), date("2011-12-31"));
        assert_eq!(report_day_for(second, tz), date("2011-12-29"));
        let (s, e) = day_window(date("2011-12-30"), tz);
        assert_eq!(s, e);
    }
}
