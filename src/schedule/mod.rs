//! CronJob schedules, exactly as Kubernetes reads and evaluates them: the grammar of
//! robfig/cron v3.0.1 `ParseStandard` (what `pkg/apis/batch/validation/validation.go`
//! validates `spec.schedule` with, and `pkg/controller/cronjob/utils.go` evaluates it with),
//! the API server's `timeZone` validation, and fire times by wall clock in a zone.
//!
//! - [`Schedule::parse`]: robfig's grammar and quirks (`parse.rs`); any `TZ` in the text is
//!   refused, as the API server refuses it on create.
//! - [`Schedule::next_after`]: the first fire time strictly after an instant (`next.rs`):
//!   robfig's `Next`, with DST by the clean wall-clock rule (gap times never fire, repeated
//!   fall-back times fire twice) and robfig's 5-year horizon.
//! - [`Schedule::fires_between`]: how many fire times lie in a range, and the first and last,
//!   counted per matching day with arithmetic, so years of `* * * * *` cost milliseconds.
//!
//! Pure: no clock, no I/O but jiff's reading of the tz database (`/usr/share/zoneinfo`).
//! Where this differs from robfig, and why: docs/schedule.md.

mod next;
mod parse;

#[cfg(test)]
mod tests;

use jiff::Timestamp;
use jiff::tz::TimeZone;

pub use next::Fires;
use parse::Rule;
pub use parse::{Field, ScheduleError};

/// A parsed `spec.schedule`.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    text: String,
    rule: Rule,
}

impl Schedule {
    /// robfig `ParseStandard` exactly (5 fields, names, ranges, steps, `?`, macros, `@every`),
    /// except that any `TZ` substring is refused as the API server refuses it on create.
    pub fn parse(text: &str) -> Result<Schedule, ScheduleError> {
        Ok(Schedule {
            text: text.to_string(),
            rule: parse::parse(text)?,
        })
    }

    /// The first fire time strictly after `after`, by wall clock in `zone`. `@every d` is
    /// `after + d` with the sub-second part dropped, whatever the zone. None: nothing within
    /// robfig's horizon (the end of the year five years on), which Kubernetes reports as
    /// `InvalidSchedule`.
    pub fn next_after(&self, after: Timestamp, zone: &TimeZone) -> Option<Timestamp> {
        match &self.rule {
            Rule::Spec(spec) => next::next_after(spec, after, zone),
            Rule::Every { seconds } => next::every_next(*seconds, after),
        }
    }

    /// The fire times in `(after, until]`: exactly those that iterating [`Self::next_after`]
    /// from `after` yields up to `until` (so the horizon applies between fires too).
    pub fn fires_between(&self, after: Timestamp, until: Timestamp, zone: &TimeZone) -> Fires {
        match &self.rule {
            Rule::Spec(spec) => next::fires_between(spec, after, until, zone),
            Rule::Every { seconds } => next::every_between(*seconds, after, until),
        }
    }

    /// The schedule as written.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// The API server's error detail for a `timeZone` it refuses when `Local` is given.
const LOCAL_ZONE: &str =
    "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones";

/// `spec.timeZone` validated as the API server does it (`validateTimeZone` in
/// `pkg/apis/batch/validation/validation.go`), returning the loaded zone. Err is the detail of
/// the field error (`unknown time zone Mars/Olympus`).
pub fn time_zone(name: &str) -> Result<TimeZone, String> {
    if name.is_empty() {
        return Err("timeZone must be nil or non-empty string".into());
    }
    let unknown = || format!("unknown time zone {name}");
    // IANA's naming rules; digits and '+' are tolerated for names like Etc/GMT+5.
    let valid_part = |part: &str| {
        (1..=14).contains(&part.len())
            && part != "."
            && part != ".."
            && !part.starts_with('-')
            && part
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b".-_+".contains(&c))
    };
    if !name.split('/').all(valid_part) {
        return Err(unknown());
    }
    if name.eq_ignore_ascii_case("Local") {
        return Err(LOCAL_ZONE.into());
    }
    // Go's LoadLocation opens the file of that exact name; jiff looks names up ignoring case,
    // so a name that only differs in case is refused here, as Go refuses it.
    match TimeZone::get(name) {
        Ok(zone) if !zone.is_unknown() && zone.iana_name() == Some(name) => Ok(zone),
        _ => Err(unknown()),
    }
}

/// The zone of a CronJob without `timeZone`: the daemon's local zone (`TZ`, else
/// `/etc/localtime`), as kube-controller-manager's; UTC if none can be determined.
pub fn local_zone() -> TimeZone {
    TimeZone::try_system().unwrap_or(TimeZone::UTC)
}
