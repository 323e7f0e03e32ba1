//! The schedule grammar of robfig/cron v3.0.1 `ParseStandard` (`parser.go`), which the API
//! server validates with and the CronJob controller evaluates with, rule for rule:
//!
//! - five fields split on any whitespace, or a descriptor (`@daily`, `@every 1h30m`);
//! - a field is a comma list (empty items dropped: `1,,2` is `1,2`) of `*`, `?`, `N`, `N-M`,
//!   each with an optional `/STEP`; `N/STEP` means `N-max/STEP`;
//! - numbers are Go's `strconv.Atoi` (`+5` and `05` are 5); three-letter month and weekday
//!   names in any case; Sunday is only 0;
//! - only the text before the first `-` is checked for `*`/`?`, so `*-5` is `*`;
//! - `*` or `?` marks the field a "star" unless its step is above 1: that is what decides
//!   between AND and OR for day of month and day of week (`spec.go` `dayMatches`).
//!
//! Errors carry robfig's wording, prefixed with the field they are about.

use std::fmt;

/// The five fields of a standard schedule, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    Minute,
    Hour,
    DayOfMonth,
    Month,
    DayOfWeek,
}

const FIELDS: [Field; 5] = [
    Field::Minute,
    Field::Hour,
    Field::DayOfMonth,
    Field::Month,
    Field::DayOfWeek,
];

const MONTH_NAMES: [(&str, u64); 12] = [
    ("jan", 1),
    ("feb", 2),
    ("mar", 3),
    ("apr", 4),
    ("may", 5),
    ("jun", 6),
    ("jul", 7),
    ("aug", 8),
    ("sep", 9),
    ("oct", 10),
    ("nov", 11),
    ("dec", 12),
];

const DAY_NAMES: [(&str, u64); 7] = [
    ("sun", 0),
    ("mon", 1),
    ("tue", 2),
    ("wed", 3),
    ("thu", 4),
    ("fri", 5),
    ("sat", 6),
];

impl Field {
    pub fn name(self) -> &'static str {
        match self {
            Field::Minute => "minute",
            Field::Hour => "hour",
            Field::DayOfMonth => "day of month",
            Field::Month => "month",
            Field::DayOfWeek => "day of week",
        }
    }

    fn bounds(self) -> (u64, u64) {
        match self {
            Field::Minute => (0, 59),
            Field::Hour => (0, 23),
            Field::DayOfMonth => (1, 31),
            Field::Month => (1, 12),
            Field::DayOfWeek => (0, 6),
        }
    }

    fn names(self) -> &'static [(&'static str, u64)] {
        match self {
            Field::Month => &MONTH_NAMES,
            Field::DayOfWeek => &DAY_NAMES,
            _ => &[],
        }
    }
}

/// Why a schedule was refused. `Display` is the detail of the API server's field error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleError {
    kind: ErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ErrorKind {
    Empty,
    /// The API server refuses `TZ=`/`CRON_TZ=` (any `TZ` at all) on create.
    TimeZone,
    FieldCount(usize),
    UnknownDescriptor(String),
    Duration {
        spec: String,
        why: String,
    },
    Field {
        field: Field,
        problem: Problem,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Problem {
    NotAnInt { text: String, out_of_range: bool },
    Negative(i64),
    TooManyHyphens,
    TooManySlashes,
    BelowMinimum { start: u64, min: u64 },
    AboveMaximum { end: u64, max: u64 },
    Reversed { start: u64, end: u64 },
    ZeroStep,
}

impl ScheduleError {
    fn new(kind: ErrorKind) -> Self {
        ScheduleError { kind }
    }

    /// The field the error is about, if it is about one.
    pub fn field(&self) -> Option<Field> {
        match &self.kind {
            ErrorKind::Field { field, .. } => Some(*field),
            _ => None,
        }
    }

    /// An empty schedule: the API server says `Required value` for it, not `Invalid value`.
    pub fn is_empty_schedule(&self) -> bool {
        self.kind == ErrorKind::Empty
    }
}

impl fmt::Display for ScheduleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ErrorKind::Empty => f.write_str("empty spec string"),
            ErrorKind::TimeZone => {
                f.write_str("cannot use TZ or CRON_TZ in schedule, use timeZone field instead")
            }
            ErrorKind::FieldCount(n) => write!(f, "expected exactly 5 fields, found {n}"),
            ErrorKind::UnknownDescriptor(d) => write!(f, "unrecognized descriptor: {d}"),
            ErrorKind::Duration { spec, why } => {
                write!(f, "failed to parse duration {spec}: {why}")
            }
            ErrorKind::Field { field, problem } => {
                write!(f, "{}: ", field.name())?;
                match problem {
                    Problem::NotAnInt { text, out_of_range } => write!(
                        f,
                        "failed to parse int from {text}: {}",
                        if *out_of_range {
                            "value out of range"
                        } else {
                            "invalid syntax"
                        }
                    ),
                    Problem::Negative(n) => write!(f, "negative number ({n}) not allowed"),
                    Problem::TooManyHyphens => f.write_str("too many hyphens"),
                    Problem::TooManySlashes => f.write_str("too many slashes"),
                    Problem::BelowMinimum { start, min } => {
                        write!(f, "beginning of range ({start}) below minimum ({min})")
                    }
                    Problem::AboveMaximum { end, max } => {
                        write!(f, "end of range ({end}) above maximum ({max})")
                    }
                    Problem::Reversed { start, end } => write!(
                        f,
                        "beginning of range ({start}) beyond end of range ({end})"
                    ),
                    Problem::ZeroStep => f.write_str("step of range should be a positive number"),
                }
            }
        }
    }
}

impl std::error::Error for ScheduleError {}

/// The bit sets of a five-field schedule, as robfig keeps them: bit N set = value N matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Spec {
    pub minute: u64,
    pub hour: u64,
    pub dom: u64,
    pub month: u64,
    pub dow: u64,
    /// A star field matches every day, so the other day field alone decides (AND); when
    /// neither is a star a day matches if either does (OR).
    pub dom_star: bool,
    pub dow_star: bool,
}

/// What a schedule text means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rule {
    Spec(Spec),
    /// `@every`: a whole number of seconds, at least 1, after the previous time.
    Every {
        seconds: i64,
    },
}

pub(crate) fn parse(text: &str) -> Result<Rule, ScheduleError> {
    if text.is_empty() {
        return Err(ScheduleError::new(ErrorKind::Empty));
    }
    // validation.go validateScheduleFormat: `strings.Contains(schedule, "TZ")`, so robfig's
    // own `TZ=`/`CRON_TZ=` prefixes never reach the parser.
    if text.contains("TZ") {
        return Err(ScheduleError::new(ErrorKind::TimeZone));
    }
    // No trimming first: " @daily" is five-fields material and "@daily " no descriptor.
    if text.starts_with('@') {
        return descriptor(text);
    }
    // Go's strings.Fields splits on Unicode white space, as `split_whitespace` does.
    let fields: Vec<&str> = text.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(ScheduleError::new(ErrorKind::FieldCount(fields.len())));
    }
    let mut bits = [0u64; 5];
    let mut stars = [false; 5];
    for (i, (&field, text)) in FIELDS.iter().zip(&fields).enumerate() {
        let (b, star) = parse_field(text, field)
            .map_err(|problem| ScheduleError::new(ErrorKind::Field { field, problem }))?;
        bits[i] = b;
        stars[i] = star;
    }
    Ok(Rule::Spec(Spec {
        minute: bits[0],
        hour: bits[1],
        dom: bits[2],
        month: bits[3],
        dow: bits[4],
        dom_star: stars[2],
        dow_star: stars[4],
    }))
}

fn descriptor(text: &str) -> Result<Rule, ScheduleError> {
    let all = |field: Field| {
        let (min, max) = field.bounds();
        range_bits(min, max, 1)
    };
    let spec = |minute, hour, dom, dom_star, dow, dow_star| {
        Ok(Rule::Spec(Spec {
            minute,
            hour,
            dom,
            month: all(Field::Month),
            dow,
            dom_star,
            dow_star,
        }))
    };
    let (dom_all, dow_all) = (all(Field::DayOfMonth), all(Field::DayOfWeek));
    match text {
        // parser.go parseDescriptor; months are all in each, Jan alone in @yearly.
        "@yearly" | "@annually" => Ok(Rule::Spec(Spec {
            minute: 1,
            hour: 1,
            dom: 1 << 1,
            month: 1 << 1,
            dow: dow_all,
            dom_star: false,
            dow_star: true,
        })),
        "@monthly" => spec(1, 1, 1 << 1, false, dow_all, true),
        "@weekly" => spec(1, 1, dom_all, true, 1, false),
        "@daily" | "@midnight" => spec(1, 1, dom_all, true, dow_all, true),
        "@hourly" => spec(1, all(Field::Hour), dom_all, true, dow_all, true),
        _ => match text.strip_prefix("@every ") {
            Some(duration) => {
                let nanos = go_parse_duration(duration).map_err(|why| {
                    ScheduleError::new(ErrorKind::Duration {
                        spec: text.to_string(),
                        why,
                    })
                })?;
                // constantdelay.go Every: below a second is a second; the rest is truncated
                // to whole seconds.
                Ok(Rule::Every {
                    seconds: (nanos / NANOS_PER_SECOND).max(1),
                })
            }
            None => Err(ScheduleError::new(ErrorKind::UnknownDescriptor(
                text.to_string(),
            ))),
        },
    }
}

/// A comma list: the union of its items, and whether any item made it a star.
fn parse_field(text: &str, field: Field) -> Result<(u64, bool), Problem> {
    let mut bits = 0;
    let mut star = false;
    // strings.FieldsFunc drops empty items.
    for item in text.split(',').filter(|s| !s.is_empty()) {
        let (b, s) = parse_range(item, field)?;
        bits |= b;
        star |= s;
    }
    Ok((bits, star))
}

/// parser.go getRange, check for check and in the same order.
fn parse_range(expr: &str, field: Field) -> Result<(u64, bool), Problem> {
    let (min, max) = field.bounds();
    let range_and_step: Vec<&str> = expr.split('/').collect();
    let low_and_high: Vec<&str> = range_and_step[0].split('-').collect();
    let single = low_and_high.len() == 1;

    let (start, mut end, mut star) = if low_and_high[0] == "*" || low_and_high[0] == "?" {
        // Whatever follows a '-' here is never looked at: `*-5` is `*`.
        (min, max, true)
    } else {
        let start = int_or_name(low_and_high[0], field)?;
        let end = match low_and_high.len() {
            1 => start,
            2 => int_or_name(low_and_high[1], field)?,
            _ => return Err(Problem::TooManyHyphens),
        };
        (start, end, false)
    };

    let step = match range_and_step.len() {
        1 => 1,
        2 => {
            let step = go_uint(range_and_step[1])?;
            if single {
                end = max;
            }
            if step > 1 {
                star = false;
            }
            step
        }
        _ => return Err(Problem::TooManySlashes),
    };

    if start < min {
        return Err(Problem::BelowMinimum { start, min });
    }
    if end > max {
        return Err(Problem::AboveMaximum { end, max });
    }
    if start > end {
        return Err(Problem::Reversed { start, end });
    }
    if step == 0 {
        return Err(Problem::ZeroStep);
    }
    Ok((range_bits(start, end, step), star))
}

fn int_or_name(text: &str, field: Field) -> Result<u64, Problem> {
    let lower = go_lower(text);
    if let Some(&(_, value)) = field.names().iter().find(|(name, _)| *name == lower) {
        return Ok(value);
    }
    go_uint(text)
}

/// Go's `strings.ToLower` as far as the ASCII names can tell: its simple case mapping turns
/// `İ` (U+0130) and the Kelvin sign into plain `i` and `k` (Rust's `to_lowercase` gives `i̇`
/// for the first), so robfig reads `FRİ` as Friday.
fn go_lower(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{130}' => 'i',
            '\u{212a}' => 'k',
            c => c.to_ascii_lowercase(),
        })
        .collect()
}

/// parser.go mustParseInt: Go's `strconv.Atoi`, then no negatives.
fn go_uint(text: &str) -> Result<u64, Problem> {
    match go_atoi(text) {
        Ok(n) if n < 0 => Err(Problem::Negative(n)),
        Ok(n) => Ok(n.unsigned_abs()),
        Err(out_of_range) => Err(Problem::NotAnInt {
            text: text.to_string(),
            out_of_range,
        }),
    }
}

/// Go's `strconv.Atoi` on a 64-bit platform: an optional sign and decimal digits, nothing
/// else (no blanks, no underscores). Err(true) = out of range, Err(false) = bad syntax;
/// like Go, an overflow is reported as soon as it happens, before any later bad character.
fn go_atoi(text: &str) -> Result<i64, bool> {
    let (negative, digits) = match text.as_bytes().first() {
        Some(b'+') => (false, &text[1..]),
        Some(b'-') => (true, &text[1..]),
        _ => (false, text),
    };
    if digits.is_empty() {
        return Err(false);
    }
    let mut n: u64 = 0;
    for c in digits.bytes() {
        if !c.is_ascii_digit() {
            return Err(false);
        }
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(c - b'0')))
            .ok_or(true)?;
    }
    let limit = if negative {
        1u64 << 63
    } else {
        (1u64 << 63) - 1
    };
    if n > limit {
        return Err(true);
    }
    // In range by the check above; i64::MIN is the one value that needs the wrap.
    Ok(if negative {
        0i64.wrapping_sub_unsigned(n)
    } else {
        n as i64
    })
}

/// Bits `start..=end`, every `step`-th.
pub(crate) fn range_bits(start: u64, end: u64, step: u64) -> u64 {
    let mut bits = 0;
    let mut i = start;
    while i <= end {
        bits |= 1 << i;
        i = match i.checked_add(step) {
            Some(next) => next,
            None => break,
        };
    }
    bits
}

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// Go's `time.ParseDuration` (`[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, units ns us µs μs ms s m h,
/// a bare "0"), returning nanoseconds, or Go's error text.
fn go_parse_duration(orig: &str) -> Result<i64, String> {
    let invalid = || format!("time: invalid duration {}", go_time_quote(orig));
    let mut s = orig.as_bytes();
    let mut negative = false;
    if let Some(&c) = s.first()
        && (c == b'-' || c == b'+')
    {
        negative = c == b'-';
        s = &s[1..];
    }
    if s == b"0" {
        return Ok(0);
    }
    if s.is_empty() {
        return Err(invalid());
    }
    const LIMIT: u64 = 1 << 63;
    let mut total: u64 = 0;
    while !s.is_empty() {
        if !(s[0] == b'.' || s[0].is_ascii_digit()) {
            return Err(invalid());
        }
        // [0-9]*
        let before = s.len();
        let mut v: u64 = 0;
        while let Some(&c) = s.first()
            && c.is_ascii_digit()
        {
            if v > LIMIT / 10 {
                return Err(invalid());
            }
            v = v * 10 + u64::from(c - b'0');
            if v > LIMIT {
                return Err(invalid());
            }
            s = &s[1..];
        }
        let pre = before != s.len();
        // (\.[0-9]*)?  — precision stops accumulating where it would overflow.
        let mut post = false;
        let (mut f, mut scale) = (0u64, 1f64);
        if s.first() == Some(&b'.') {
            s = &s[1..];
            let before = s.len();
            let mut overflow = false;
            while let Some(&c) = s.first()
                && c.is_ascii_digit()
            {
                s = &s[1..];
                if overflow {
                    continue;
                }
                if f > (LIMIT - 1) / 10 {
                    overflow = true;
                    continue;
                }
                let y = f * 10 + u64::from(c - b'0');
                if y > LIMIT {
                    overflow = true;
                    continue;
                }
                f = y;
                scale *= 10.0;
            }
            post = before != s.len();
        }
        if !pre && !post {
            return Err(invalid());
        }
        // The unit: everything up to the next '.' or digit.
        let unit_len = s
            .iter()
            .position(|&c| c == b'.' || c.is_ascii_digit())
            .unwrap_or(s.len());
        if unit_len == 0 {
            return Err(format!(
                "time: missing unit in duration {}",
                go_time_quote(orig)
            ));
        }
        let (unit, rest) = s.split_at(unit_len);
        s = rest;
        let unit_nanos: u64 = match unit {
            b"ns" => 1,
            // "us", "µs" (U+00B5 micro sign), "μs" (U+03BC Greek mu)
            b"us" | b"\xc2\xb5s" | b"\xce\xbcs" => 1_000,
            b"ms" => 1_000_000,
            b"s" => 1_000_000_000,
            b"m" => 60_000_000_000,
            b"h" => 3_600_000_000_000,
            _ => {
                return Err(format!(
                    "time: unknown unit {} in duration {}",
                    go_time_quote(&String::from_utf8_lossy(unit)),
                    go_time_quote(orig)
                ));
            }
        };
        if v > LIMIT / unit_nanos {
            return Err(invalid());
        }
        v *= unit_nanos;
        if f > 0 {
            // As Go: a float64 is exact enough for a fraction of the largest unit.
            v += (f as f64 * (unit_nanos as f64 / scale)) as u64;
            if v > LIMIT {
                return Err(invalid());
            }
        }
        total += v;
        if total > LIMIT {
            return Err(invalid());
        }
    }
    if negative {
        // total <= 2^63, so the negation fits.
        return Ok(0i64.wrapping_sub_unsigned(total));
    }
    i64::try_from(total).map_err(|_| invalid())
}

/// The `quote` of Go's time package: ASCII printable kept (with `"` and `\` escaped), every
/// byte of anything else as `\xNN`.
fn go_time_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if (' '..='\u{7f}').contains(&c) {
            if c == '"' || c == '\\' {
                out.push('\\');
            }
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("\\x{b:02x}"));
            }
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    fn spec(text: &str) -> Spec {
        match parse(text).unwrap() {
            Rule::Spec(spec) => spec,
            other => panic!("{text}: {other:?}"),
        }
    }

    fn bits(values: &[u64]) -> u64 {
        values.iter().fold(0, |b, v| b | 1 << v)
    }

    #[test]
    fn errors_name_the_field_in_robfigs_words() {
        let cases = [
            ("", "empty spec string"),
            ("* * * *", "expected exactly 5 fields, found 4"),
            ("0 0 * * * *", "expected exactly 5 fields, found 6"),
            (" @daily", "expected exactly 5 fields, found 1"),
            ("xyz", "expected exactly 5 fields, found 1"),
            (
                "TZ=UTC 0 * * * *",
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ),
            (
                "CRON_TZ=Europe/Berlin 0 * * * *",
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ),
            (
                "0 0 * * TZ",
                "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
            ),
            ("60 0 * * *", "minute: end of range (60) above maximum (59)"),
            ("0 24 * * *", "hour: end of range (24) above maximum (23)"),
            (
                "0 0 0 * *",
                "day of month: beginning of range (0) below minimum (1)",
            ),
            (
                "0 0 32 * *",
                "day of month: end of range (32) above maximum (31)",
            ),
            (
                "0 0 1 0 *",
                "month: beginning of range (0) below minimum (1)",
            ),
            ("0 0 1 13 *", "month: end of range (13) above maximum (12)"),
            (
                "0 0 * * 7",
                "day of week: end of range (7) above maximum (6)",
            ),
            (
                "0 0 * * 1,8-9",
                "day of week: end of range (9) above maximum (6)",
            ),
            (
                "0 0 * * FRI-MON",
                "day of week: beginning of range (5) beyond end of range (1)",
            ),
            (
                "5-3 * * * *",
                "minute: beginning of range (5) beyond end of range (3)",
            ),
            ("1-2-3 * * * *", "minute: too many hyphens"),
            ("1/2/3 * * * *", "minute: too many slashes"),
            (
                "*/0 * * * *",
                "minute: step of range should be a positive number",
            ),
            ("0 */-2 * * *", "hour: negative number (-2) not allowed"),
            // '-' splits first, so "-1" is an empty start.
            (
                "-1 * * * *",
                "minute: failed to parse int from : invalid syntax",
            ),
            (
                "1.5 * * * *",
                "minute: failed to parse int from 1.5: invalid syntax",
            ),
            (
                "0 0 L * *",
                "day of month: failed to parse int from L: invalid syntax",
            ),
            (
                "0 0 15W * *",
                "day of month: failed to parse int from 15W: invalid syntax",
            ),
            (
                "0 0 * * 5L",
                "day of week: failed to parse int from 5L: invalid syntax",
            ),
            (
                "0 0 * * 5#3",
                "day of week: failed to parse int from 5#3: invalid syntax",
            ),
            (
                "0 0 * * XYZ",
                "day of week: failed to parse int from XYZ: invalid syntax",
            ),
            (
                "0 0 * * MONDAY",
                "day of week: failed to parse int from MONDAY: invalid syntax",
            ),
            // Names belong to their own field only.
            (
                "5 j * * *",
                "hour: failed to parse int from j: invalid syntax",
            ),
            (
                "0 0 * mon *",
                "month: failed to parse int from mon: invalid syntax",
            ),
            (
                "0 0 * * jan",
                "day of week: failed to parse int from jan: invalid syntax",
            ),
            (
                "99999999999999999999 * * * *",
                "minute: failed to parse int from 99999999999999999999: value out of range",
            ),
            (
                "9223372036854775807 * * * *",
                "minute: end of range (9223372036854775807) above maximum (59)",
            ),
            (
                "*/ * * * *",
                "minute: failed to parse int from : invalid syntax",
            ),
            ("@unrecognized", "unrecognized descriptor: @unrecognized"),
            ("@reboot", "unrecognized descriptor: @reboot"),
            ("@DAILY", "unrecognized descriptor: @DAILY"),
            ("@daily ", "unrecognized descriptor: @daily "),
            (
                "@every 1x",
                r#"failed to parse duration @every 1x: time: unknown unit "x" in duration "1x""#,
            ),
            (
                "@every 1",
                r#"failed to parse duration @every 1: time: missing unit in duration "1""#,
            ),
            (
                "@every ",
                r#"failed to parse duration @every : time: invalid duration """#,
            ),
            (
                "@every 1h ",
                r#"failed to parse duration @every 1h : time: unknown unit "h " in duration "1h ""#,
            ),
            (
                "@every 1d",
                r#"failed to parse duration @every 1d: time: unknown unit "d" in duration "1d""#,
            ),
            (
                "@every .s",
                r#"failed to parse duration @every .s: time: invalid duration ".s""#,
            ),
            (
                "@every 1é",
                r#"failed to parse duration @every 1é: time: unknown unit "\xc3\xa9" in duration "1\xc3\xa9""#,
            ),
            (
                "@every 9999999999h",
                r#"failed to parse duration @every 9999999999h: time: invalid duration "9999999999h""#,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(err(text), want, "{text:?}");
        }
        assert_eq!(
            parse("0 0 * * 7").unwrap_err().field(),
            Some(Field::DayOfWeek)
        );
        assert!(parse("").unwrap_err().is_empty_schedule());
        assert!(!parse("x").unwrap_err().is_empty_schedule());
    }

    #[test]
    fn fields_as_robfig_reads_them() {
        let s = spec("5/15 1/6 */10 Apr-Jun Mon/2");
        assert_eq!(s.minute, bits(&[5, 20, 35, 50]));
        assert_eq!(s.hour, bits(&[1, 7, 13, 19]));
        assert_eq!(s.dom, bits(&[1, 11, 21, 31]));
        assert_eq!(s.month, bits(&[4, 5, 6]));
        assert_eq!(s.dow, bits(&[1, 3, 5]));
        assert!(!s.dom_star && !s.dow_star);

        let s = spec("\t0\u{a0} 0  *\n*  sun,1 ");
        assert_eq!(s.dow, bits(&[0, 1]));
        assert!(s.dom_star && !s.dow_star);
        assert_eq!(spec("0 0 * * SUN-SAT").dow, bits(&[0, 1, 2, 3, 4, 5, 6]));
        assert_eq!(spec("0 0 * jAn,DEC *").month, bits(&[1, 12]));
        assert_eq!(spec("0 0 * * FRİ").dow, bits(&[5]));
        assert_eq!(spec("05 * * * *").minute, bits(&[5]));
    }

    #[test]
    fn the_star_bit_decides_and_or_or() {
        // (dom text, star?)
        for (dom, star) in [
            ("*", true),
            ("?", true),
            ("*/1", true),
            ("*/2", false),
            ("*/10", false),
            ("1-31", false),
            ("1-31/1", false),
            ("*/2,*", true),
            ("*-5", true),
        ] {
            assert_eq!(
                spec(&format!("0 0 {dom} * *")).dom_star,
                star,
                "{dom}: star"
            );
        }
        assert!(!spec("0 0 * * SUN-SAT").dow_star);
        assert!(!spec("0 0 * * 0-6").dow_star);
    }

    #[test]
    fn robfig_quirks_are_kept() {
        // A leading '+' is Atoi's; empty list items are dropped; `*-5` is `*`; `?` anywhere.
        assert_eq!(spec("+5 * * * *").minute, bits(&[5]));
        assert_eq!(spec("1,,2 * * * *").minute, bits(&[1, 2]));
        assert_eq!(spec("*-5 * * * *").minute, range_bits(0, 59, 1));
        assert_eq!(spec("*-5-6-x * * * *").minute, range_bits(0, 59, 1));
        let q = spec("? ? ? ? ?");
        assert_eq!(q, spec("* * * * *"));
        // A field of commas matches nothing: a schedule that parses and never fires.
        assert_eq!(spec(", * * * *").minute, 0);
        assert_eq!(spec("*/+2 * * * *").minute, range_bits(0, 59, 2));
        assert_eq!(spec("0 0 * * */100").dow, bits(&[0]));
        // @every below a second is a second, and is truncated to whole seconds.
        for (text, seconds) in [
            ("@every 0s", 1),
            ("@every 0", 1),
            ("@every -1h", 1),
            ("@every 999ms", 1),
            ("@every 1.9s", 1),
            ("@every 90s", 90),
            ("@every 1h30m", 5400),
            ("@every 1.5h", 5400),
            ("@every +2m", 120),
            ("@every 1m.5s", 60),
            ("@every 500000us1µs1μs", 1),
            ("@every 2562047h", 2562047 * 3600),
        ] {
            assert_eq!(parse(text), Ok(Rule::Every { seconds }), "{text}");
        }
    }

    #[test]
    fn descriptors_equal_their_five_fields() {
        for (macro_, fields) in [
            ("@yearly", "0 0 1 1 *"),
            ("@annually", "0 0 1 1 *"),
            ("@monthly", "0 0 1 * *"),
            ("@weekly", "0 0 * * 0"),
            ("@daily", "0 0 * * *"),
            ("@midnight", "0 0 * * *"),
            ("@hourly", "0 * * * *"),
        ] {
            assert_eq!(spec(macro_), spec(fields), "{macro_}");
        }
    }

    #[test]
    fn atoi_is_gos() {
        assert_eq!(go_atoi("+5"), Ok(5));
        assert_eq!(go_atoi("-0"), Ok(0));
        assert_eq!(go_atoi("007"), Ok(7));
        assert_eq!(go_atoi("9223372036854775807"), Ok(i64::MAX));
        assert_eq!(go_atoi("-9223372036854775808"), Ok(i64::MIN));
        assert_eq!(go_atoi("9223372036854775808"), Err(true));
        assert_eq!(go_atoi("99999999999999999999x"), Err(true));
        for bad in ["", "+", "-", " 1", "1 ", "1_000", "0x10", "١"] {
            assert_eq!(go_atoi(bad), Err(false), "{bad:?}");
        }
    }
}
