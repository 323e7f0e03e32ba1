//! Fire times by wall clock: the clean rule of robfig's `SpecSchedule.Next` (`spec.go`).
//!
//! A fire time is an instant whose wall-clock time in the zone has second 0 and matches the
//! five fields. Wall times that a spring-forward gap skips never occur, so they never fire;
//! wall times that a fall-back repeats occur twice, so they fire twice. That is robfig's
//! result in every zone whose transitions are whole hours away from midnight; where robfig's
//! field-by-field walk goes wrong (DST starting at midnight, Lord Howe's 30-minute DST) this
//! keeps the rule (see docs/schedule.md).
//!
//! How: between two transitions a zone's offset is constant, so wall time is the instant
//! plus that offset. Each such segment is searched on plain civil arithmetic (days since
//! 1970-01-01, minutes of the day); jiff supplies only offsets and transition instants.
//!
//! The horizon: robfig gives up ("never") when nothing matches before the end of the year
//! five years after the one it starts in; the controller then reports `InvalidSchedule`. Kept,
//! including between consecutive fires in [`fires_between`], so it agrees with iterating
//! [`next_after`].

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::parse::Spec;

const MINUTES_PER_DAY: i64 = 1440;
const LAST_MINUTE: u32 = 1439;
/// robfig's search stops after the calendar year `start year + 5`.
const HORIZON_YEARS: i64 = 5;

/// The fire times in a half-open range `(after, until]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fires {
    pub count: u64,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

/// Seconds since the epoch, rounded down (jiff keeps the fraction of a negative timestamp
/// negative; Go and robfig floor it).
pub(crate) fn floor_second(t: Timestamp) -> i64 {
    let s = t.as_second();
    if t.subsec_nanosecond() < 0 { s - 1 } else { s }
}

/// The offset at an instant and the next transition after it (the end of its segment).
fn segment(zone: &TimeZone, at: i64) -> Option<(i64, Option<i64>)> {
    let ts = Timestamp::from_second(at).ok()?;
    let offset = i64::from(zone.to_offset(ts).seconds());
    let end = zone
        .following(ts)
        .next()
        .map(|t| floor_second(t.timestamp()));
    Some((offset, end))
}

/// The last local minute robfig's search may return, counted from a local year.
fn horizon_minute(year: i64) -> i64 {
    (days_from_civil(year + HORIZON_YEARS, 12, 31) + 1) * MINUTES_PER_DAY - 1
}

pub(crate) fn next_after(spec: &Spec, after: Timestamp, zone: &TimeZone) -> Option<Timestamp> {
    // Strictly after, in whole seconds: robfig rounds up to the next second first.
    let start = floor_second(after).checked_add(1)?;
    let (offset, _) = segment(zone, start)?;
    let limit = horizon_minute(year_of_local_second(start + offset));
    let mut at = start;
    loop {
        let (offset, end) = segment(zone, at)?;
        let from = ceil_div(at + offset, 60);
        if from > limit {
            return None;
        }
        let to = match end {
            Some(end) => floor_div(end - 1 + offset, 60).min(limit),
            None => limit,
        };
        if from <= to
            && let Some(minute) = spec.first_minute_between(from, to)
        {
            return Timestamp::from_second(minute * 60 - offset).ok();
        }
        at = end?;
    }
}

pub(crate) fn fires_between(
    spec: &Spec,
    after: Timestamp,
    until: Timestamp,
    zone: &TimeZone,
) -> Fires {
    let mut fires = Fires::default();
    let Some(start) = floor_second(after).checked_add(1) else {
        return fires;
    };
    // A fire time is a whole second, so `<= until` is `<= floor(until)`.
    let stop = floor_second(until);
    if start > stop {
        return fires;
    }
    let Some((offset, _)) = segment(zone, start) else {
        return fires;
    };
    // The last minute the next fire may fall in: robfig's horizon from `after`, then from
    // each fire in turn.
    let mut limit = horizon_minute(year_of_local_second(start + offset));
    let mut at = start;
    'segments: while let Some((offset, end)) = segment(zone, at) {
        let last_second = end.map_or(stop, |end| stop.min(end - 1));
        let mut from = ceil_div(at + offset, 60);
        let to = floor_div(last_second + offset, 60);
        while from <= to {
            if from > limit {
                break 'segments;
            }
            let upto = to.min(limit);
            let (first_day, last_day) = (day_of(from), day_of(upto));
            let Some(day) = spec.next_day(first_day, last_day) else {
                if upto < to {
                    // The horizon ended before the segment did: iteration stops here.
                    break 'segments;
                }
                break;
            };
            let lo = if day == first_day {
                minute_of_day(from)
            } else {
                0
            };
            let hi = if day == last_day {
                minute_of_day(upto)
            } else {
                LAST_MINUTE
            };
            let n = spec.count_in_day(lo, hi);
            if n > 0 {
                let instant = |m: u32| {
                    Timestamp::from_second((day * MINUTES_PER_DAY + i64::from(m)) * 60 - offset)
                        .ok()
                };
                if fires.first.is_none() {
                    fires.first = spec.first_minute_in_day(lo, hi).and_then(instant);
                }
                fires.last = spec.last_minute_in_day(lo, hi).and_then(instant);
                fires.count += n;
                limit = horizon_minute(civil_from_days(day).0);
            }
            from = (day + 1) * MINUTES_PER_DAY;
        }
        match end {
            Some(end) if end <= stop => at = end,
            _ => break,
        }
    }
    fires
}

/// `@every`: `floor(after) + k·period`, k = 1, 2, …
pub(crate) fn every_next(seconds: i64, after: Timestamp) -> Option<Timestamp> {
    Timestamp::from_second(floor_second(after).checked_add(seconds)?).ok()
}

pub(crate) fn every_between(seconds: i64, after: Timestamp, until: Timestamp) -> Fires {
    let base = floor_second(after);
    let span = floor_second(until).saturating_sub(base);
    if span < seconds {
        return Fires::default();
    }
    let count = span / seconds;
    let at = |k: i64| Timestamp::from_second(base + k * seconds).ok();
    Fires {
        count: count.unsigned_abs(),
        first: at(1),
        last: at(count),
    }
}

impl Spec {
    fn month_matches(&self, month: u32) -> bool {
        self.month & (1 << month) != 0
    }

    /// spec.go dayMatches.
    fn day_matches(&self, dom: u32, weekday: u32) -> bool {
        let dom_match = self.dom & (1 << dom) != 0;
        let dow_match = self.dow & (1 << weekday) != 0;
        if self.dom_star || self.dow_star {
            dom_match && dow_match
        } else {
            dom_match || dow_match
        }
    }

    /// The first day in `from..=to` (days since 1970-01-01) whose month and day match.
    fn next_day(&self, from: i64, to: i64) -> Option<i64> {
        let (mut year, mut month, mut dom) = civil_from_days(from);
        let mut first_of_month = from - i64::from(dom) + 1;
        while first_of_month <= to {
            if self.month_matches(month) {
                for d in dom..=days_in_month(year, month) {
                    let day = first_of_month + i64::from(d) - 1;
                    if day > to {
                        return None;
                    }
                    if self.day_matches(d, weekday(day)) {
                        return Some(day);
                    }
                }
            }
            first_of_month += i64::from(days_in_month(year, month));
            (year, month, dom) = if month == 12 {
                (year + 1, 1, 1)
            } else {
                (year, month + 1, 1)
            };
        }
        None
    }

    /// The first matching local minute in `from..=to` (minutes since 1970-01-01 00:00).
    fn first_minute_between(&self, from: i64, to: i64) -> Option<i64> {
        let (first_day, last_day) = (day_of(from), day_of(to));
        let mut next = first_day;
        while let Some(day) = self.next_day(next, last_day) {
            let lo = if day == first_day {
                minute_of_day(from)
            } else {
                0
            };
            let hi = if day == last_day {
                minute_of_day(to)
            } else {
                LAST_MINUTE
            };
            if let Some(m) = self.first_minute_in_day(lo, hi) {
                return Some(day * MINUTES_PER_DAY + i64::from(m));
            }
            next = day + 1;
        }
        None
    }

    /// The minutes of `hour` within minute-of-day `lo..=hi` that match.
    fn minutes_of(&self, hour: u32, lo: u32, hi: u32) -> u64 {
        if self.hour & (1 << hour) == 0 {
            return 0;
        }
        let from = if hour == lo / 60 { lo % 60 } else { 0 };
        let to = if hour == hi / 60 { hi % 60 } else { 59 };
        self.minute & (((1u64 << (to + 1)) - 1) & !((1u64 << from) - 1))
    }

    fn first_minute_in_day(&self, lo: u32, hi: u32) -> Option<u32> {
        (lo / 60..=hi / 60).find_map(|h| {
            let m = self.minutes_of(h, lo, hi);
            (m != 0).then(|| h * 60 + m.trailing_zeros())
        })
    }

    fn last_minute_in_day(&self, lo: u32, hi: u32) -> Option<u32> {
        (lo / 60..=hi / 60).rev().find_map(|h| {
            let m = self.minutes_of(h, lo, hi);
            (m != 0).then(|| h * 60 + 63 - m.leading_zeros())
        })
    }

    /// How many matching minutes-of-day lie in `lo..=hi`: a whole day is hours × minutes.
    fn count_in_day(&self, lo: u32, hi: u32) -> u64 {
        if lo == 0 && hi == LAST_MINUTE {
            return u64::from(self.hour.count_ones()) * u64::from(self.minute.count_ones());
        }
        (lo / 60..=hi / 60)
            .map(|h| u64::from(self.minutes_of(h, lo, hi).count_ones()))
            .sum()
    }
}

fn floor_div(a: i64, b: i64) -> i64 {
    a.div_euclid(b)
}

fn ceil_div(a: i64, b: i64) -> i64 {
    -(-a).div_euclid(b)
}

fn day_of(minute: i64) -> i64 {
    minute.div_euclid(MINUTES_PER_DAY)
}

fn minute_of_day(minute: i64) -> u32 {
    // In 0..1440 by rem_euclid.
    minute.rem_euclid(MINUTES_PER_DAY) as u32
}

fn year_of_local_second(local: i64) -> i64 {
    civil_from_days(local.div_euclid(86_400)).0
}

/// 0 = Sunday, as Go's `Weekday`; 1970-01-01 was a Thursday.
fn weekday(days: i64) -> u32 {
    (days + 4).rem_euclid(7) as u32
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
pub(crate) fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The inverse of [`days_from_civil`]: (year, month 1–12, day 1–31).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_days_round_trip_and_agree_with_jiff() {
        for days in (-4_000_000..2_900_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
            let date = Timestamp::from_second(days * 86_400)
                .unwrap()
                .to_zoned_datetime(TimeZone::UTC)
                .date();
            assert_eq!(
                (y, m, d),
                (
                    i64::from(date.year()),
                    date.month() as u32,
                    date.day() as u32
                )
            );
            assert_eq!(weekday(days), date.weekday().to_sunday_zero_offset() as u32);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_in_month(2100, 2), 28);
        assert_eq!(days_in_month(2000, 2), 29);
    }

    #[test]
    fn floor_second_rounds_down_before_the_epoch() {
        let t = |s, ns| Timestamp::new(s, ns).unwrap();
        assert_eq!(floor_second(t(5, 0)), 5);
        assert_eq!(floor_second(t(5, 1)), 5);
        assert_eq!(floor_second(t(-5, 0)), -5);
        assert_eq!(floor_second(t(-5, -1)), -6);
        assert_eq!(floor_second(t(0, -500_000_000)), -1);
    }
}
