//! TEMPORARY stand-in (lead's branch only) with the interface of the real module, which is
//! being written in the `sched` branch; replaced at merge.
#![allow(dead_code)]

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    text: String,
    every: Option<i64>,
    fields: Vec<Vec<u32>>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleError(String);

impl std::fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Fires {
    pub count: u64,
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
}

fn field(text: &str, min: u32, max: u32) -> Result<Vec<u32>, ScheduleError> {
    let mut out = Vec::new();
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => (
                r,
                s.parse::<u32>().map_err(|e| ScheduleError(e.to_string()))?,
            ),
            None => (part, 1),
        };
        let (lo, hi) = if range == "*" || range == "?" {
            (min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            let a = a
                .parse()
                .map_err(|_| ScheduleError(format!("failed to parse int from {a}")))?;
            let b = b
                .parse()
                .map_err(|_| ScheduleError(format!("failed to parse int from {b}")))?;
            (a, b)
        } else {
            let a: u32 = range
                .parse()
                .map_err(|_| ScheduleError(format!("failed to parse int from {range}")))?;
            (a, if step > 1 { max } else { a })
        };
        if lo < min || hi > max || lo > hi || step == 0 {
            return Err(ScheduleError(format!("bad range {part}")));
        }
        out.extend((lo..=hi).step_by(step as usize));
    }
    Ok(out)
}

impl Schedule {
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        if text.contains("TZ") {
            return Err(ScheduleError(
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead".into(),
            ));
        }
        let expanded = match text {
            "@hourly" => "0 * * * *",
            "@daily" | "@midnight" => "0 0 * * *",
            "@weekly" => "0 0 * * 0",
            "@monthly" => "0 0 1 * *",
            "@yearly" | "@annually" => "0 0 1 1 *",
            t => t,
        };
        if let Some(d) = expanded.strip_prefix("@every ") {
            let d: jiff::SignedDuration = d
                .parse::<jiff::Span>()
                .ok()
                .and_then(|s| SignedDuration::try_from(s).ok())
                .ok_or_else(|| ScheduleError(format!("failed to parse duration {d}")))?;
            return Ok(Schedule {
                text: text.into(),
                every: Some(d.as_secs().max(1)),
                fields: vec![],
            });
        }
        let parts: Vec<&str> = expanded.split_whitespace().collect();
        if parts.len() != 5 {
            return Err(ScheduleError(format!(
                "expected exactly 5 fields, found {}",
                parts.len()
            )));
        }
        let bounds = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)];
        let fields = parts
            .iter()
            .zip(bounds)
            .map(|(p, (lo, hi))| field(p, lo, hi))
            .collect::<Result<_, _>>()?;
        Ok(Schedule {
            text: text.into(),
            every: None,
            fields,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn next_after(&self, after: Timestamp, zone: &TimeZone) -> Option<Timestamp> {
        if let Some(secs) = self.every {
            return Timestamp::from_second(after.as_second() + secs).ok();
        }
        let mut t =
            Timestamp::from_second(after.as_second() - after.as_second().rem_euclid(60) + 60)
                .ok()?;
        for _ in 0..(60 * 24 * 366 * 5) {
            let z = t.to_zoned_datetime(zone.clone());
            let ok = self.fields[0].contains(&(z.minute() as u32))
                && self.fields[1].contains(&(z.hour() as u32))
                && self.fields[2].contains(&(z.day() as u32))
                && self.fields[3].contains(&(z.month() as u32))
                && self.fields[4].contains(&(z.weekday().to_sunday_zero_offset() as u32));
            if ok {
                return Some(t);
            }
            t = t.checked_add(SignedDuration::from_secs(60)).ok()?;
        }
        None
    }

    pub fn fires_between(&self, after: Timestamp, until: Timestamp, zone: &TimeZone) -> Fires {
        let mut f = Fires::default();
        let mut t = after;
        while let Some(n) = self.next_after(t, zone).filter(|n| *n <= until) {
            f.count += 1;
            f.first.get_or_insert(n);
            f.last = Some(n);
            t = n;
        }
        f
    }
}

pub fn time_zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name).map_err(|_| format!("unknown time zone {name}"))
}

pub fn local_zone() -> TimeZone {
    TimeZone::try_system().unwrap_or(TimeZone::UTC)
}
