//! Local-time schedules: every minute, hour, day, week, month or year.

use std::time::Duration;

use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Zoned};

#[derive(Debug, Clone, PartialEq, Eq)]
enum Every {
    Minute {
        second: i8,
    },
    Hour {
        minute: i8,
        second: i8,
    },
    Day,
    Week(Weekday),
    /// Day of month; negative counts from the end (-1 = last day).
    MonthDay(i8),
    /// n-th weekday of the month; negative counts from the end (-1 = last).
    MonthWeekday(i8, Weekday),
    Year {
        month: i8,
        day: i8,
    },
}

/// When a [scheduled timer](crate::Timer::scheduled) fires, in local (wall-clock) time.
///
/// Daily and longer schedules are computed on the civil calendar of the time zone (the system's
/// by default): a time that does not exist on a DST spring-forward day fires at the first
/// existing moment after it (02:30 → 03:30), and an ambiguous time on a fall-back day fires once,
/// at its first occurrence. Minute and hourly schedules follow physical time, so the repeated hour
/// of a fall-back day gets its ticks too. Half-hour and quarter-hour zones are handled by the
/// time-zone database (`jiff`).
///
/// # Examples
///
/// ```
/// use tasktonic_core::{Schedule, Weekday};
///
/// let daily = Schedule::daily(7, 30, 0);
/// let weekly = Schedule::weekly(Weekday::Monday, 9, 0, 0);
/// let last_friday = Schedule::monthly_weekday(-1, Weekday::Friday, 17, 0, 0);
/// let utc = Schedule::hourly(0, 0).in_zone(jiff::tz::TimeZone::UTC);
/// # let _ = (daily, weekly, last_friday, utc);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    every: Every,
    hour: i8,
    minute: i8,
    second: i8,
    zone: Option<TimeZone>,
}

impl Schedule {
    fn at(every: Every, hour: i8, minute: i8, second: i8) -> Schedule {
        Schedule {
            every,
            hour: hour.clamp(0, 23),
            minute: minute.clamp(0, 59),
            second: second.clamp(0, 59),
            zone: None,
        }
    }

    /// Every minute, at `second`.
    pub fn every_minute(second: i8) -> Schedule {
        let second = second.clamp(0, 59);
        Schedule::at(Every::Minute { second }, 0, 0, second)
    }

    /// Every hour, at `minute:second`.
    pub fn hourly(minute: i8, second: i8) -> Schedule {
        let (minute, second) = (minute.clamp(0, 59), second.clamp(0, 59));
        Schedule::at(Every::Hour { minute, second }, 0, minute, second)
    }

    /// Every day at `hour:minute:second`.
    pub fn daily(hour: i8, minute: i8, second: i8) -> Schedule {
        Schedule::at(Every::Day, hour, minute, second)
    }

    /// Every week on `weekday` at `hour:minute:second`.
    pub fn weekly(weekday: Weekday, hour: i8, minute: i8, second: i8) -> Schedule {
        Schedule::at(Every::Week(weekday), hour, minute, second)
    }

    /// Every month on `day` (1..=31; negative from the end: -1 is the last day) at the time.
    /// Months without that day are skipped (a `31` fires only in 31-day months).
    pub fn monthly(day: i8, hour: i8, minute: i8, second: i8) -> Schedule {
        Schedule::at(Every::MonthDay(day.clamp(-31, 31)), hour, minute, second)
    }

    /// Every month on the `nth` `weekday` (1..=5; negative from the end: -1 is the last) at the time.
    pub fn monthly_weekday(
        nth: i8,
        weekday: Weekday,
        hour: i8,
        minute: i8,
        second: i8,
    ) -> Schedule {
        Schedule::at(
            Every::MonthWeekday(nth.clamp(-5, 5), weekday),
            hour,
            minute,
            second,
        )
    }

    /// Every year on `month`/`day` at the time (29 February fires in leap years only).
    pub fn yearly(month: i8, day: i8, hour: i8, minute: i8, second: i8) -> Schedule {
        let every = Every::Year {
            month: month.clamp(1, 12),
            day: day.clamp(1, 31),
        };
        Schedule::at(every, hour, minute, second)
    }

    /// Use this time zone instead of the system's.
    pub fn in_zone(mut self, zone: TimeZone) -> Schedule {
        self.zone = Some(zone);
        self
    }

    pub(crate) fn zone(&self) -> TimeZone {
        self.zone.clone().unwrap_or_else(TimeZone::system)
    }

    /// The first firing strictly after `now`, or `None` if there is none within 8 years.
    pub fn next_after(&self, now: &Zoned) -> Option<Zoned> {
        match self.every {
            Every::Minute { second } => physical_next(now, Duration::from_secs(60), |z| {
                z.with().second(second).subsec_nanosecond(0).build().ok()
            }),
            Every::Hour { minute, second } => physical_next(now, Duration::from_secs(3600), |z| {
                z.with()
                    .minute(minute)
                    .second(second)
                    .subsec_nanosecond(0)
                    .build()
                    .ok()
            }),
            _ => self.civil_next(now),
        }
    }

    fn matches(&self, date: Date) -> bool {
        match self.every {
            Every::Day => true,
            Every::Week(w) => date.weekday() == w,
            Every::MonthDay(d) if d > 0 => date.day() == d,
            Every::MonthDay(d) => {
                let from_end = date.days_in_month() - date.day() + 1;
                from_end == -d
            }
            Every::MonthWeekday(n, w) => date.nth_weekday_of_month(n, w).ok() == Some(date),
            Every::Year { month, day } => date.month() == month && date.day() == day,
            Every::Minute { .. } | Every::Hour { .. } => true,
        }
    }

    fn civil_next(&self, now: &Zoned) -> Option<Zoned> {
        let tz = now.time_zone().clone();
        let mut date = now.date();
        // At most 8 years of days: enough for 29 February.
        for _ in 0..(366 * 8) {
            if self.matches(date) {
                let dt = date.at(self.hour, self.minute, self.second, 0);
                if let Ok(z) = dt.to_zoned(tz.clone())
                    && z.timestamp() > now.timestamp()
                {
                    return Some(z);
                }
            }
            date = date.tomorrow().ok()?;
        }
        None
    }
}

/// The next instant after `now` that `align` yields, stepping in physical time.
fn physical_next(
    now: &Zoned,
    step: Duration,
    align: impl Fn(&Zoned) -> Option<Zoned>,
) -> Option<Zoned> {
    let step = SignedDuration::try_from(step).ok()?;
    let mut probe = now.clone();
    for _ in 0..4 {
        if let Some(candidate) = align(&probe)
            && candidate.timestamp() > now.timestamp()
        {
            return Some(candidate);
        }
        probe = probe.checked_add(step).ok()?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zoned(s: &str) -> Zoned {
        s.parse().expect("valid zoned time")
    }

    fn next(s: &Schedule, now: &str) -> String {
        s.next_after(&zoned(now)).expect("a next time").to_string()
    }

    #[test]
    fn daily_across_spring_forward_skips_to_the_first_existing_moment() {
        // Europe/Amsterdam springs forward on 2026-03-29 at 02:00 → 03:00.
        let s = Schedule::daily(2, 30, 0);
        assert_eq!(
            next(&s, "2026-03-28T12:00:00+01:00[Europe/Amsterdam]"),
            "2026-03-29T03:30:00+02:00[Europe/Amsterdam]"
        );
        // And the day after, back to 02:30.
        assert_eq!(
            next(&s, "2026-03-29T12:00:00+02:00[Europe/Amsterdam]"),
            "2026-03-30T02:30:00+02:00[Europe/Amsterdam]"
        );
    }

    #[test]
    fn daily_across_fall_back_fires_once() {
        // 2026-10-25 03:00 CEST → 02:00 CET: 02:30 happens twice.
        let s = Schedule::daily(2, 30, 0);
        let first = next(&s, "2026-10-25T00:00:00+02:00[Europe/Amsterdam]");
        assert_eq!(first, "2026-10-25T02:30:00+02:00[Europe/Amsterdam]");
        assert_eq!(
            next(&s, &first),
            "2026-10-26T02:30:00+01:00[Europe/Amsterdam]"
        );
    }

    #[test]
    fn daily_keeps_local_time_across_dst() {
        let s = Schedule::daily(7, 0, 0);
        let a = zoned("2026-03-28T07:00:00+01:00[Europe/Amsterdam]");
        let b = s.next_after(&a).expect("next");
        // 23 physical hours that day.
        assert_eq!(b.to_string(), "2026-03-29T07:00:00+02:00[Europe/Amsterdam]");
        assert_eq!(
            b.timestamp().duration_since(a.timestamp()).as_secs(),
            23 * 3600
        );
    }

    #[test]
    fn hourly_ticks_twice_in_the_repeated_hour() {
        let s = Schedule::hourly(30, 0);
        let a = next(&s, "2026-10-25T02:00:00+02:00[Europe/Amsterdam]");
        assert_eq!(a, "2026-10-25T02:30:00+02:00[Europe/Amsterdam]");
        let b = next(&s, &a);
        assert_eq!(b, "2026-10-25T02:30:00+01:00[Europe/Amsterdam]");
    }

    #[test]
    fn half_hour_zone_hourly_and_daily() {
        // India is UTC+05:30 all year.
        let s = Schedule::hourly(0, 0);
        assert_eq!(
            next(&s, "2026-06-01T10:15:00+05:30[Asia/Kolkata]"),
            "2026-06-01T11:00:00+05:30[Asia/Kolkata]"
        );
        // Adelaide (UTC+09:30 / +10:30) starts DST on 2026-10-04 at 02:00 → 03:00.
        let d = Schedule::daily(8, 0, 0);
        let a = zoned("2026-10-03T08:00:00+09:30[Australia/Adelaide]");
        let b = d.next_after(&a).expect("next");
        assert_eq!(
            b.to_string(),
            "2026-10-04T08:00:00+10:30[Australia/Adelaide]"
        );
    }

    #[test]
    fn every_minute() {
        let s = Schedule::every_minute(5);
        assert_eq!(
            next(&s, "2026-01-01T00:00:05+00:00[UTC]"),
            "2026-01-01T00:01:05+00:00[UTC]"
        );
        assert_eq!(
            next(&s, "2026-01-01T00:00:04+00:00[UTC]"),
            "2026-01-01T00:00:05+00:00[UTC]"
        );
    }

    #[test]
    fn weekly_monthly_yearly() {
        // 2026-11-21 is a Saturday.
        let w = Schedule::weekly(Weekday::Monday, 9, 0, 0);
        assert_eq!(
            next(&w, "2026-11-21T10:00:00+00:00[UTC]"),
            "2026-11-23T09:00:00+00:00[UTC]"
        );
        let last = Schedule::monthly(-1, 0, 0, 0);
        assert_eq!(
            next(&last, "2026-02-10T00:00:00+00:00[UTC]"),
            "2026-02-28T00:00:00+00:00[UTC]"
        );
        let d31 = Schedule::monthly(31, 0, 0, 0);
        assert_eq!(
            next(&d31, "2026-04-01T00:00:00+00:00[UTC]"),
            "2026-05-31T00:00:00+00:00[UTC]"
        );
        let last_fri = Schedule::monthly_weekday(-1, Weekday::Friday, 17, 0, 0);
        assert_eq!(
            next(&last_fri, "2026-11-01T00:00:00+00:00[UTC]"),
            "2026-11-27T17:00:00+00:00[UTC]"
        );
        let second_tue = Schedule::monthly_weekday(2, Weekday::Tuesday, 12, 0, 0);
        assert_eq!(
            next(&second_tue, "2026-11-21T00:00:00+00:00[UTC]"),
            "2026-12-08T12:00:00+00:00[UTC]"
        );
        let leap = Schedule::yearly(2, 29, 0, 0, 0);
        assert_eq!(
            next(&leap, "2026-03-01T00:00:00+00:00[UTC]"),
            "2028-02-29T00:00:00+00:00[UTC]"
        );
    }
}
