//! The acceptance table (`tests/data/cron-vectors.yaml`, checked against the real robfig
//! code), DST cases, the horizon, `timeZone` validation, and two property tests:
//! `fires_between` against iterating `next_after`, and `next_after` against a minute-by-minute
//! brute force of the wall-clock rule over jiff's own civil conversion.

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde::Deserialize;

use super::parse::{Rule, Spec};
use super::*;

const VECTORS: &str = include_str!("../../tests/data/cron-vectors.yaml");

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct VectorFile {
    version: u32,
    #[allow(dead_code)]
    semantics: String,
    vectors: Vec<Vector>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Vector {
    id: String,
    schedule: String,
    tz: Option<String>,
    from: Option<String>,
    #[serde(default)]
    next: Vec<String>,
    wall_clock_next: Option<Vec<String>>,
    #[serde(default)]
    error: bool,
    layer: Option<String>,
    #[serde(default)]
    quirk: bool,
    #[serde(default)]
    robfig_bug: bool,
    #[serde(default)]
    unsatisfiable: bool,
    #[allow(dead_code)]
    source: Option<String>,
    #[allow(dead_code)]
    note: Option<String>,
}

fn ts(text: &str) -> Timestamp {
    text.parse()
        .unwrap_or_else(|e| panic!("timestamp {text}: {e}"))
}

fn zone(name: &str) -> TimeZone {
    time_zone(name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn sched(text: &str) -> Schedule {
    Schedule::parse(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

/// `n` fire times after `from`, each from the previous one, as the controller iterates.
fn next_n(s: &Schedule, from: Timestamp, z: &TimeZone, n: usize) -> Vec<Timestamp> {
    let mut out = Vec::new();
    let mut at = from;
    while out.len() < n {
        match s.next_after(at, z) {
            Some(t) => {
                out.push(t);
                at = t;
            }
            None => break,
        }
    }
    out
}

/// Checks one vector; Err says how it failed.
fn check(v: &Vector) -> Result<(), String> {
    let parsed = Schedule::parse(&v.schedule);
    if v.error {
        return match parsed {
            Err(_) => Ok(()),
            Ok(_) => Err(format!("accepted ({:?} layer)", v.layer)),
        };
    }
    let s = parsed.map_err(|e| format!("refused: {e}"))?;
    let z = time_zone(v.tz.as_deref().ok_or("no tz")?)?;
    let from = ts(v.from.as_deref().ok_or("no from")?);
    // robfig-bug zones: the clean wall-clock rule, not robfig's output. Quirks: robfig's.
    let expected = match (&v.wall_clock_next, v.robfig_bug) {
        (Some(clean), true) => clean,
        (None, true) => return Err("robfig_bug without wall_clock_next".into()),
        _ => &v.next,
    };
    let want: Vec<Timestamp> = expected.iter().map(|t| ts(t)).collect();
    if v.unsatisfiable != want.is_empty() {
        return Err("unsatisfiable disagrees with next".into());
    }
    let got = next_n(&s, from, &z, 3);
    if got != want {
        let show = |l: &[Timestamp]| {
            l.iter()
                .map(|t| t.display_with_offset(z.to_offset(*t)).to_string())
                .collect::<Vec<_>>()
        };
        return Err(format!(
            "next: got {:?}, want {:?}",
            show(&got),
            show(&want)
        ));
    }
    // The counting path must tell the same story.
    let until = want
        .last()
        .copied()
        .unwrap_or_else(|| ts("2100-01-01T00:00:00Z"));
    let fires = s.fires_between(from, until, &z);
    let expect = Fires {
        count: want.len() as u64,
        first: want.first().copied(),
        last: want.last().copied(),
    };
    if fires != expect {
        return Err(format!("fires_between: got {fires:?}, want {expect:?}"));
    }
    Ok(())
}

#[test]
fn every_vector_passes() {
    let file: VectorFile = serde_saphyr::from_str(VECTORS).expect("vector file parses");
    assert_eq!(file.version, 1);
    let failures: Vec<String> = file
        .vectors
        .iter()
        .filter_map(|v| check(v).err().map(|e| format!("{}: {e}", v.id)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} vectors fail:\n{}",
        failures.len(),
        file.vectors.len(),
        failures.join("\n")
    );
    // The table is what it says it is: a file cut short would pass vacuously.
    let count = |f: fn(&Vector) -> bool| file.vectors.iter().filter(|v| f(v)).count();
    assert_eq!(file.vectors.len(), 91);
    assert_eq!(count(|v| v.error), 26);
    assert_eq!(count(|v| v.layer.as_deref() == Some("apiserver")), 2);
    assert_eq!(count(|v| v.robfig_bug), 4);
    assert_eq!(count(|v| v.unsatisfiable), 3);
    assert_eq!(count(|v| v.quirk), 0);
}

#[test]
fn robfig_quirks_fire_as_robfig_does() {
    let utc = TimeZone::UTC;
    let from = ts("2024-01-01T10:00:00Z");
    assert_eq!(
        next_n(&sched("+5 * * * *"), from, &utc, 2),
        [ts("2024-01-01T10:05:00Z"), ts("2024-01-01T11:05:00Z")]
    );
    assert_eq!(
        next_n(&sched("1,,2 10 * * *"), from, &utc, 3),
        [
            ts("2024-01-01T10:01:00Z"),
            ts("2024-01-01T10:02:00Z"),
            ts("2024-01-02T10:01:00Z")
        ]
    );
    assert_eq!(
        next_n(&sched("*-5 * * * *"), from, &utc, 2),
        [ts("2024-01-01T10:01:00Z"), ts("2024-01-01T10:02:00Z")]
    );
    assert_eq!(
        next_n(&sched("? ? ? ? ?"), from, &utc, 1),
        [ts("2024-01-01T10:01:00Z")]
    );
    // A field of only commas parses and never fires.
    assert_eq!(sched(", * * * *").next_after(from, &utc), None);
}

#[test]
fn every_adds_whole_seconds_to_the_previous_time() {
    let berlin = zone("Europe/Berlin");
    let from = ts("2024-10-27T00:30:15.75Z");
    // @every 0s runs every second; the fraction of `from` is dropped.
    assert_eq!(
        next_n(&sched("@every 0s"), from, &berlin, 2),
        [ts("2024-10-27T00:30:16Z"), ts("2024-10-27T00:30:17Z")]
    );
    // Not wall-clock aligned and blind to DST: 02:30+02:00 + 1h is 02:30+01:00.
    assert_eq!(
        next_n(
            &sched("@every 1h"),
            ts("2024-10-27T02:30:00+02:00"),
            &berlin,
            2
        ),
        [
            ts("2024-10-27T02:30:00+01:00"),
            ts("2024-10-27T03:30:00+01:00")
        ]
    );
    assert_eq!(
        sched("@every 1.5s").next_after(ts("1969-12-31T23:59:59.5Z"), &berlin),
        Some(ts("1970-01-01T00:00:00Z"))
    );
    let f = sched("@every 90m").fires_between(
        ts("2024-01-01T00:00:30.5Z"),
        ts("2024-01-02T00:00:30Z"),
        &berlin,
    );
    assert_eq!(
        f,
        Fires {
            count: 16,
            first: Some(ts("2024-01-01T01:30:30Z")),
            last: Some(ts("2024-01-02T00:00:30Z")),
        }
    );
    assert_eq!(
        sched("@every 1h").fires_between(from, from, &berlin),
        Fires::default()
    );
    assert_eq!(
        sched("@every 1h").fires_between(from, ts("2024-10-27T01:30:14Z"), &berlin),
        Fires::default()
    );
}

#[test]
fn dst_gap_is_skipped_and_the_repeated_hour_fires_twice() {
    let ny = zone("America/New_York");
    // Spring forward, 2024-03-10: 02:30 does not exist that day.
    let f = sched("30 2 * * *").fires_between(
        ts("2024-03-09T12:00:00-05:00"),
        ts("2024-03-12T12:00:00-04:00"),
        &ny,
    );
    assert_eq!(
        f,
        Fires {
            count: 2,
            first: Some(ts("2024-03-11T02:30:00-04:00")),
            last: Some(ts("2024-03-12T02:30:00-04:00")),
        }
    );
    // Fall back, 2024-11-03: 01:00 happens twice.
    let s = sched("0 1 * * *");
    let from = ts("2024-11-02T12:00:00-04:00");
    assert_eq!(
        next_n(&s, from, &ny, 3),
        [
            ts("2024-11-03T01:00:00-04:00"),
            ts("2024-11-03T01:00:00-05:00"),
            ts("2024-11-04T01:00:00-05:00")
        ]
    );
    assert_eq!(
        s.fires_between(from, ts("2024-11-04T00:00:00-05:00"), &ny)
            .count,
        2
    );
    let berlin = zone("Europe/Berlin");
    assert_eq!(
        next_n(
            &sched("*/30 * * * *"),
            ts("2024-10-27T01:45:00+02:00"),
            &berlin,
            4
        ),
        [
            ts("2024-10-27T02:00:00+02:00"),
            ts("2024-10-27T02:30:00+02:00"),
            ts("2024-10-27T02:00:00+01:00"),
            ts("2024-10-27T02:30:00+01:00")
        ]
    );
    // Every minute: the spring day has 23 hours of minutes, the autumn day 25.
    let every = sched("* * * * *");
    let day = |d: &str, next: &str| every.fires_between(ts(d), ts(next), &ny).count;
    assert_eq!(
        day("2024-03-10T00:00:00-05:00", "2024-03-11T00:00:00-04:00"),
        23 * 60
    );
    assert_eq!(
        day("2024-11-03T00:00:00-04:00", "2024-11-04T00:00:00-05:00"),
        25 * 60
    );
    // Lord Howe moves by 30 minutes: 02:00-02:29 does not exist on 2024-10-06.
    let lh = zone("Australia/Lord_Howe");
    assert_eq!(
        every
            .fires_between(
                ts("2024-10-06T00:00:00+10:30"),
                ts("2024-10-07T00:00:00+11:00"),
                &lh
            )
            .count,
        24 * 60 - 30
    );
    // Samoa skipped 2011-12-30 altogether (-10:00 to +14:00 at midnight).
    let apia = zone("Pacific/Apia");
    let noon = sched("0 12 * * *");
    assert_eq!(
        next_n(&noon, ts("2011-12-29T00:00:00-10:00"), &apia, 2),
        [
            ts("2011-12-29T12:00:00-10:00"),
            ts("2011-12-31T12:00:00+14:00")
        ]
    );
    assert_eq!(
        sched("0 0 30 12 *").next_after(ts("2011-12-01T00:00:00-10:00"), &apia),
        Some(ts("2012-12-30T00:00:00+14:00"))
    );
}

#[test]
fn the_five_year_horizon_is_robfigs() {
    let utc = TimeZone::UTC;
    let leap = sched("0 0 29 2 *");
    // From 2096-03-01 the search ends with 2101; 2100 is no leap year.
    assert_eq!(leap.next_after(ts("2096-03-01T00:00:00Z"), &utc), None);
    assert_eq!(
        leap.next_after(ts("2095-03-01T00:00:00Z"), &utc),
        Some(ts("2096-02-29T00:00:00Z"))
    );
    // The horizon counts from the start rounded up to the next second, in the zone: one
    // second earlier is another year, hence a year less of search.
    assert_eq!(
        leap.next_after(ts("2098-12-31T23:59:59Z"), &utc),
        Some(ts("2104-02-29T00:00:00Z"))
    );
    assert_eq!(leap.next_after(ts("2098-12-31T23:59:58Z"), &utc), None);
    let ny = zone("America/New_York");
    assert_eq!(leap.next_after(ts("2099-01-01T03:00:00Z"), &ny), None);
    assert_eq!(
        leap.next_after(ts("2099-01-01T05:00:00Z"), &ny),
        Some(ts("2104-02-29T00:00:00-05:00"))
    );
    // Iterating stops at the first gap longer than the horizon: 2096, then nothing, though
    // 2104 would match.
    let f = leap.fires_between(ts("2090-01-01T00:00:00Z"), ts("2120-01-01T00:00:00Z"), &utc);
    assert_eq!(
        f,
        Fires {
            count: 2,
            first: Some(ts("2092-02-29T00:00:00Z")),
            last: Some(ts("2096-02-29T00:00:00Z")),
        }
    );
    // A start past that gap counts again from its own horizon.
    assert_eq!(
        leap.fires_between(ts("2099-06-01T00:00:00Z"), ts("2110-01-01T00:00:00Z"), &utc)
            .count,
        2
    );
    for s in ["0 0 30 2 *", "0 0 31 4 *", "59 23 31 2 *"] {
        let s = sched(s);
        assert_eq!(s.next_after(ts("2024-01-01T00:00:00Z"), &utc), None);
        assert_eq!(
            s.fires_between(ts("2024-01-01T00:00:00Z"), ts("2999-01-01T00:00:00Z"), &utc),
            Fires::default()
        );
    }
}

#[test]
fn the_ends_of_time_are_none_not_a_panic() {
    let utc = TimeZone::UTC;
    let ny = zone("America/New_York");
    let max = Timestamp::MAX;
    for s in ["* * * * *", "@every 1h", "0 0 29 2 *"] {
        let s = sched(s);
        assert_eq!(s.next_after(max, &ny), None, "{}", s.text());
        assert_eq!(s.fires_between(max, max, &utc), Fires::default());
        assert!(s.next_after(Timestamp::MIN, &utc).is_some());
    }
    // jiff's last instant is 9999-12-30T22:00:00.999999999Z.
    assert_eq!(
        sched("* * * * *").next_after(ts("9999-12-30T21:58:30Z"), &utc),
        Some(ts("9999-12-30T21:59:00Z"))
    );
    assert_eq!(
        sched("* * * * *").next_after(ts("9999-12-30T21:59:30Z"), &utc),
        Some(ts("9999-12-30T22:00:00Z"))
    );
    assert_eq!(
        sched("* * * * *").next_after(ts("9999-12-30T22:00:00Z"), &utc),
        None
    );
}

#[test]
fn time_zones_are_validated_as_the_api_server_does() {
    for ok in [
        "America/New_York",
        "Europe/Berlin",
        "UTC",
        "Etc/UTC",
        "Etc/GMT+5",
        "Asia/Kolkata",
        "America/Argentina/Buenos_Aires",
        "EST5EDT",
    ] {
        assert_eq!(
            time_zone(ok).map(|z| z.iana_name().map(String::from)),
            Ok(Some(ok.into()))
        );
    }
    let explicit =
        "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones";
    for (bad, why) in [
        ("", "timeZone must be nil or non-empty string".to_string()),
        ("Local", explicit.to_string()),
        ("local", explicit.to_string()),
        ("Mars/Olympus", "unknown time zone Mars/Olympus".into()),
        // Go opens the file by its exact name; jiff would find it ignoring case.
        (
            "america/new_york",
            "unknown time zone america/new_york".into(),
        ),
        ("utc", "unknown time zone utc".into()),
        ("/etc/localtime", "unknown time zone /etc/localtime".into()),
        (
            "../zoneinfo/UTC",
            "unknown time zone ../zoneinfo/UTC".into(),
        ),
        (
            "Europe/./Berlin",
            "unknown time zone Europe/./Berlin".into(),
        ),
        ("-Europe", "unknown time zone -Europe".into()),
        ("Europe/Berlin ", "unknown time zone Europe/Berlin ".into()),
        ("Europe//Berlin", "unknown time zone Europe//Berlin".into()),
        (
            "America/Abcdefghijklmno",
            "unknown time zone America/Abcdefghijklmno".into(),
        ),
        ("Etc/Unknown", "unknown time zone Etc/Unknown".into()),
        ("Europe", "unknown time zone Europe".into()),
    ] {
        assert_eq!(time_zone(bad).err(), Some(why), "{bad:?}");
    }
}

#[test]
fn the_local_zone_is_a_zone() {
    // Whatever the host says; never a panic, never "unknown".
    assert!(!local_zone().is_unknown());
}

// ---------------------------------------------------------------- property tests

/// splitmix64: small, seedable, good enough to pick test cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A random valid field in robfig's grammar, dense or sparse.
fn random_field(rng: &mut Rng, min: i64, max: i64, names: &[&str]) -> String {
    let value = |rng: &mut Rng| {
        let v = rng.range(min, max);
        if !names.is_empty() && rng.below(3) == 0 {
            let name = names[(v - min) as usize];
            if rng.below(2) == 0 {
                name.to_uppercase()
            } else {
                name.to_string()
            }
        } else {
            v.to_string()
        }
    };
    let item = |rng: &mut Rng| match rng.below(8) {
        0 => "*".to_string(),
        1 => "?".to_string(),
        2 => format!("*/{}", rng.range(1, (max - min + 1).min(12))),
        3 => value(rng),
        4 | 5 => {
            let a = rng.range(min, max);
            let b = rng.range(a, max);
            format!("{a}-{b}")
        }
        6 => {
            let a = rng.range(min, max);
            let b = rng.range(a, max);
            format!("{a}-{b}/{}", rng.range(1, 7))
        }
        _ => format!("{}/{}", value(rng), rng.range(1, 9)),
    };
    let n = 1 + rng.below(3);
    (0..n).map(|_| item(rng)).collect::<Vec<_>>().join(",")
}

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

fn random_schedule(rng: &mut Rng) -> String {
    match rng.below(20) {
        0 => rng
            .pick(&["@hourly", "@daily", "@weekly", "@monthly", "@yearly"])
            .to_string(),
        1 => format!("@every {}m{}s", rng.below(300), rng.below(60)),
        2 => "0 0 29 2 *".to_string(),
        _ => {
            let mut f = [
                random_field(rng, 0, 59, &[]),
                random_field(rng, 0, 23, &[]),
                random_field(rng, 1, 31, &[]),
                random_field(rng, 1, 12, &MONTHS),
                random_field(rng, 0, 6, &DAYS),
            ];
            // Mostly every day or every month, so schedules fire often enough to compare.
            if rng.below(3) != 0 {
                f[3] = "*".into();
            }
            if rng.below(2) == 0 {
                f[2] = "*".into();
            }
            f.join(" ")
        }
    }
}

const ZONES: [&str; 7] = [
    "UTC",
    "America/New_York",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "America/Santiago",
    "Asia/Kolkata",
    "Pacific/Apia",
];

/// A random instant: anywhere in 2000–2040, or within two days of one of the zone's
/// transitions, with a random fraction of a second.
fn random_instant(rng: &mut Rng, z: &TimeZone) -> Timestamp {
    let base = if rng.below(3) == 0 {
        rng.range(946_684_800, 2_208_988_800)
    } else {
        let start = Timestamp::from_second(rng.range(1_262_304_000, 1_893_456_000)).unwrap();
        let pivot = z
            .following(start)
            .next()
            .map_or(start.as_second(), |t| t.timestamp().as_second());
        pivot + rng.range(-2 * 86_400, 2 * 86_400)
    };
    // Mostly whole minutes, so "strictly after a fire time" is exercised.
    let (second, nanos) = match rng.below(3) {
        0 => (base - base.rem_euclid(60), 0),
        1 => (base, 0),
        _ => (base, rng.below(1_000_000_000) as i32),
    };
    Timestamp::new(second, nanos).unwrap()
}

#[test]
fn fires_between_agrees_with_iterating_next_after() {
    let mut rng = Rng(0x5eed_cafe);
    let zones: Vec<TimeZone> = ZONES.iter().map(|n| zone(n)).collect();
    let lengths = [
        600,
        86_400,
        2 * 86_400,
        4 * 86_400,
        40 * 86_400,
        400 * 86_400,
        12 * 365 * 86_400,
    ];
    let (mut compared, mut nonzero) = (0, 0);
    for case in 0..1_500 {
        let text = random_schedule(&mut rng);
        let s = sched(&text);
        let z = rng.pick(&zones).clone();
        let after = random_instant(&mut rng, &z);
        let until = after
            .checked_add(jiff::SignedDuration::from_secs(
                *rng.pick(&lengths) + rng.range(0, 59),
            ))
            .unwrap();
        // The reference: next_after, one fire time at a time, with a cap on the work.
        let mut want = Fires::default();
        let mut at = after;
        let mut capped = false;
        while let Some(t) = s.next_after(at, &z) {
            if t > until {
                break;
            }
            if want.count == 20_000 {
                capped = true;
                break;
            }
            want.count += 1;
            want.first.get_or_insert(t);
            want.last = Some(t);
            assert!(t > at, "case {case}: {text:?} went backwards at {at}");
            at = t;
        }
        if capped {
            continue;
        }
        let got = s.fires_between(after, until, &z);
        assert_eq!(
            got,
            want,
            "case {case}: {text:?} in {} over ({after}, {until}]",
            z.iana_name().unwrap_or("?")
        );
        compared += 1;
        nonzero += usize::from(want.count > 0);
    }
    // Most cases compared, and most of those had fire times to count.
    assert!(compared > 1_000, "only {compared} cases compared");
    assert!(nonzero > 600, "only {nonzero} cases had fire times");
}

/// The wall-clock rule, literally: jiff's local time of the instant, second 0, all five
/// fields, DOM/DOW by robfig's star rule.
fn matches_wall_clock(spec: &Spec, t: Timestamp, z: &TimeZone) -> bool {
    let dt = z.to_datetime(t);
    let bit = |set: u64, v: i64| set & (1 << v) != 0;
    let dom = bit(spec.dom, i64::from(dt.day()));
    let dow = bit(spec.dow, i64::from(dt.weekday().to_sunday_zero_offset()));
    let day = if spec.dom_star || spec.dow_star {
        dom && dow
    } else {
        dom || dow
    };
    dt.second() == 0
        && dt.subsec_nanosecond() == 0
        && bit(spec.minute, i64::from(dt.minute()))
        && bit(spec.hour, i64::from(dt.hour()))
        && bit(spec.month, i64::from(dt.month()))
        && day
}

#[test]
fn next_after_is_the_wall_clock_rule_minute_by_minute() {
    let mut rng = Rng(0xface_b00c);
    // Whole-minute offsets only, so every fire time is a whole UTC minute.
    let zones: Vec<TimeZone> = ZONES.iter().map(|n| zone(n)).collect();
    let window = 3 * 1_440;
    let mut found = 0;
    for case in 0..400 {
        let text = loop {
            let t = random_schedule(&mut rng);
            if !t.starts_with("@every") {
                break t;
            }
        };
        let s = sched(&text);
        let Rule::Spec(spec) = s.rule else {
            unreachable!()
        };
        let z = rng.pick(&zones).clone();
        let after = random_instant(&mut rng, &z);
        let first = super::next::floor_second(after) + 1;
        let first_minute = first + (60 - first.rem_euclid(60)) % 60;
        let brute = (0..window)
            .map(|k| Timestamp::from_second(first_minute + 60 * k).unwrap())
            .find(|t| matches_wall_clock(&spec, *t, &z));
        let got = s.next_after(after, &z);
        let window_end = Timestamp::from_second(first_minute + 60 * window).unwrap();
        match brute {
            Some(t) => {
                found += 1;
                assert_eq!(got, Some(t), "case {case}: {text:?} in {z:?} after {after}");
            }
            None => assert!(
                got.is_none_or(|g| g >= window_end),
                "case {case}: {text:?} in {z:?} after {after}: got {got:?}, brute force found none"
            ),
        }
    }
    assert!(found > 250, "only {found} cases fired within the window");
}

/// Not a test: the figures for the README. `cargo test --release --lib schedule::tests::timing
/// -- --ignored --nocapture`.
#[test]
#[ignore = "prints timings; run by hand"]
fn timing() {
    use std::time::Instant;
    let file: VectorFile = serde_saphyr::from_str(VECTORS).unwrap();
    let rounds = 100;
    let t0 = Instant::now();
    for _ in 0..rounds {
        for v in &file.vectors {
            let _ = check(v);
        }
    }
    let per_file = t0.elapsed() / rounds;
    let ny = zone("America/New_York");
    let s = sched("* * * * *");
    let (from, until) = (ts("2024-01-01T00:00:00Z"), ts("2034-01-01T00:00:00Z"));
    let t0 = Instant::now();
    let f = s.fires_between(from, until, &ny);
    let ten_years = t0.elapsed();
    let t0 = Instant::now();
    let f_utc = s.fires_between(from, until, &TimeZone::UTC);
    let ten_years_utc = t0.elapsed();
    println!(
        "vector file ({} vectors, 3 next_after + 1 fires_between each): {per_file:?}",
        file.vectors.len()
    );
    println!(
        "fires_between '* * * * *' over 10 years, America/New_York: {ten_years:?} ({} fires)",
        f.count
    );
    println!(
        "fires_between '* * * * *' over 10 years, UTC: {ten_years_utc:?} ({} fires)",
        f_utc.count
    );
}
