//! Size-based rotation of one container run's log, named and pruned as the kubelet does it
//! (`pkg/kubelet/logs/container_log_manager.go`), decided by pure functions over a listing of
//! the container's log directory; the writer (`sink.rs`) and the readers carry them out.
//!
//! - `<n>.log` is the live file. Rotating renames it to `<n>.log.<stamp>`, the stamp the UTC
//!   time of the rotation in Go's layout `20060102-150405`. The writer rotates at the size
//!   bound itself, so two rotations can fall in one second: the second and later ones of a
//!   second get `.<seq>` after the stamp (`<n>.log.20261127-101112.1`), which the kubelet's
//!   10 s check never needs.
//! - All rotated files but the newest are gzip-compressed to `<name>.gz` (written as
//!   `<name>.gz.tmp`, then renamed), so the newest rotated file stays plain for shippers that
//!   are still reading it.
//! - At most `containerLogMaxFiles` files per run, the live one counted: the oldest rotated
//!   files go first.
//!
//! Files of other runs (`<m>.log*`) share the directory and are left alone.

use jiff::Timestamp;

/// `containerLogMaxSize` and `containerLogMaxFiles`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// The live file is rotated before a write would take it past this (a write larger than
    /// this on its own still lands whole, in an empty file).
    pub max_size: u64,
    /// Files kept per run, the live one counted; at least 2.
    pub max_files: usize,
}

impl Default for LogLimits {
    /// The kubelet's defaults: 10Mi and 5.
    fn default() -> Self {
        LogLimits {
            max_size: 10 << 20,
            max_files: 5,
        }
    }
}

/// Orders rotated files: the stamp, then the sequence within its second.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RotKey {
    /// `20060102-150405`
    pub stamp: String,
    pub seq: u32,
}

/// What a rotated file of a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    Plain,
    Gz,
    /// A compression in progress (or cut short by a crash).
    GzTmp,
}

/// One rotated file of the run whose live file is `base` (`0.log`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rotated {
    pub key: RotKey,
    pub form: Form,
    pub name: String,
}

/// `20261127-101112` for the time of a rotation (UTC).
pub fn stamp(now: Timestamp) -> String {
    now.strftime("%Y%m%d-%H%M%S").to_string()
}

fn is_stamp(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 15
        && b.iter().enumerate().all(|(i, c)| {
            if i == 8 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        })
}

/// The rotated file `name` of the run `base`, or `None` when it is something else (another
/// run's file, the live file, a stray name).
pub fn parse(base: &str, name: &str) -> Option<Rotated> {
    let rest = name.strip_prefix(base)?.strip_prefix('.')?;
    let (rest, form) = if let Some(r) = rest.strip_suffix(".gz.tmp") {
        (r, Form::GzTmp)
    } else if let Some(r) = rest.strip_suffix(".gz") {
        (r, Form::Gz)
    } else {
        (rest, Form::Plain)
    };
    let (stamp, seq) = match rest.split_once('.') {
        None => (rest, 0),
        Some((stamp, seq)) => {
            // `.0` is never written, so a name has one spelling only.
            if seq.is_empty() || seq.starts_with('0') || !seq.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            (stamp, seq.parse().ok()?)
        }
    };
    is_stamp(stamp).then(|| Rotated {
        key: RotKey {
            stamp: stamp.to_string(),
            seq,
        },
        form,
        name: name.to_string(),
    })
}

/// The file name of a rotated file.
pub fn name(base: &str, key: &RotKey, form: Form) -> String {
    let mut n = format!("{base}.{}", key.stamp);
    if key.seq > 0 {
        n.push_str(&format!(".{}", key.seq));
    }
    match form {
        Form::Plain => {}
        Form::Gz => n.push_str(".gz"),
        Form::GzTmp => n.push_str(".gz.tmp"),
    }
    n
}

/// The rotated files of `base` among a directory's names, oldest first (a key's plain file
/// before its `.gz`).
pub fn rotated<'a>(base: &str, names: impl IntoIterator<Item = &'a str>) -> Vec<Rotated> {
    let mut out: Vec<Rotated> = names.into_iter().filter_map(|n| parse(base, n)).collect();
    out.sort_by(|a, b| (&a.key, form_rank(a.form)).cmp(&(&b.key, form_rank(b.form))));
    out
}

fn form_rank(f: Form) -> u8 {
    match f {
        Form::Plain => 0,
        Form::Gz => 1,
        Form::GzTmp => 2,
    }
}

/// The key for a rotation at `stamp`: sequence 0, or one past the last of that second.
pub fn next_key(stamp: &str, existing: &[Rotated]) -> RotKey {
    let seq = existing
        .iter()
        .filter(|r| r.key.stamp == stamp)
        .map(|r| r.key.seq + 1)
        .max()
        .unwrap_or(0);
    RotKey {
        stamp: stamp.to_string(),
        seq,
    }
}

/// What to do after a rotation, given the rotated files then (the one just made among them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// File names to remove: keys past `max_files`, plain files whose `.gz` is complete, and
    /// stale `.gz.tmp` files.
    pub remove: Vec<String>,
    /// Plain files to compress, oldest first: every kept key but the newest.
    pub compress: Vec<String>,
}

/// The kubelet's `removeExcessLogs` and `compressLog` steps. `compressing`: a key whose
/// compression is in flight (its files are left to it).
pub fn plan(rotated: &[Rotated], max_files: usize, compressing: Option<&RotKey>) -> Plan {
    let mut keys: Vec<&RotKey> = rotated.iter().map(|r| &r.key).collect();
    keys.dedup();
    // The live file counts as one.
    let keep = max_files.saturating_sub(1);
    let first_kept = keys.len().saturating_sub(keep);
    let newest = keys.last().copied();
    let mut plan = Plan::default();
    for (i, key) in keys.iter().enumerate() {
        let files: Vec<&Rotated> = rotated.iter().filter(|r| &r.key == *key).collect();
        if i < first_kept {
            plan.remove.extend(files.iter().map(|r| r.name.clone()));
            continue;
        }
        if compressing == Some(*key) {
            continue;
        }
        let has = |f: Form| files.iter().any(|r| r.form == f);
        for r in &files {
            match r.form {
                Form::GzTmp => plan.remove.push(r.name.clone()),
                Form::Plain if has(Form::Gz) => plan.remove.push(r.name.clone()),
                Form::Plain if Some(*key) != newest => plan.compress.push(r.name.clone()),
                Form::Plain | Form::Gz => {}
            }
        }
    }
    plan
}

/// Where a reader goes after the rotated file `after` (`None`: from the start): the oldest
/// rotated file newer than it, the plain one when both forms are there, or `None` for the
/// live file.
pub fn successor<'a>(rotated: &'a [Rotated], after: Option<&RotKey>) -> Option<&'a Rotated> {
    rotated
        .iter()
        .filter(|r| r.form != Form::GzTmp && after.is_none_or(|a| r.key > *a))
        .min_by(|a, b| (&a.key, form_rank(a.form)).cmp(&(&b.key, form_rank(b.form))))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;

    fn key(stamp: &str, seq: u32) -> RotKey {
        RotKey {
            stamp: stamp.into(),
            seq,
        }
    }

    const S1: &str = "20261127-101112";
    const S2: &str = "20261127-101113";
    const S3: &str = "20261127-101114";

    #[test]
    fn names_parse_back_and_others_are_not_ours() {
        let rows: &[(&str, Option<(RotKey, Form)>)] = &[
            ("0.log.20261127-101112", Some((key(S1, 0), Form::Plain))),
            ("0.log.20261127-101112.gz", Some((key(S1, 0), Form::Gz))),
            ("0.log.20261127-101112.3", Some((key(S1, 3), Form::Plain))),
            ("0.log.20261127-101112.12.gz", Some((key(S1, 12), Form::Gz))),
            (
                "0.log.20261127-101112.gz.tmp",
                Some((key(S1, 0), Form::GzTmp)),
            ),
            ("0.log", None),
            ("1.log.20261127-101112", None),
            ("10.log.20261127-101112", None),
            ("0.log.2026112-101112", None),
            ("0.log.20261127_101112", None),
            ("0.log.20261127-101112.0", None),
            ("0.log.20261127-101112.x", None),
            ("0.log.20261127-101112.", None),
        ];
        for (n, want) in rows {
            let got = parse("0.log", n).map(|r| (r.key, r.form));
            assert_eq!(&got, want, "{n}");
            if let Some((k, f)) = want {
                assert_eq!(name("0.log", k, *f), *n, "round trip");
            }
        }
        assert_eq!(
            stamp("2026-11-27T10:11:12.9Z".parse().unwrap()),
            "20261127-101112"
        );
    }

    #[test]
    fn keys_order_by_stamp_then_sequence() {
        let names = [
            "0.log.20261127-101113",
            "0.log.20261127-101112.2.gz",
            "0.log.20261127-101112.gz",
            "0.log.20261127-101112.1.gz",
            "0.log",
            "1.log.20261127-101111",
        ];
        let got: Vec<String> = rotated("0.log", names)
            .into_iter()
            .map(|r| r.name)
            .collect();
        assert_eq!(
            got,
            [
                "0.log.20261127-101112.gz",
                "0.log.20261127-101112.1.gz",
                "0.log.20261127-101112.2.gz",
                "0.log.20261127-101113",
            ]
        );
    }

    #[test]
    fn next_key_counts_within_the_second() {
        let existing = rotated(
            "0.log",
            [
                "0.log.20261127-101112.gz",
                "0.log.20261127-101112.1",
                "0.log.20261127-101111.4.gz",
            ],
        );
        assert_eq!(next_key(S1, &existing), key(S1, 2));
        assert_eq!(next_key(S2, &existing), key(S2, 0));
        assert_eq!(next_key(S1, &[]), key(S1, 0));
    }

    struct Case {
        name: &'static str,
        files: &'static [&'static str],
        max_files: usize,
        compressing: Option<(&'static str, u32)>,
        remove: &'static [&'static str],
        compress: &'static [&'static str],
    }

    const CASES: &[Case] = &[
        Case {
            name: "one rotated file: kept plain",
            files: &["0.log.20261127-101112"],
            max_files: 5,
            compressing: None,
            remove: &[],
            compress: &[],
        },
        Case {
            name: "all but the newest are compressed",
            files: &[
                "0.log.20261127-101112",
                "0.log.20261127-101113",
                "0.log.20261127-101114",
            ],
            max_files: 5,
            compressing: None,
            remove: &[],
            compress: &["0.log.20261127-101112", "0.log.20261127-101113"],
        },
        Case {
            name: "past max files (the live one counted) the oldest go, whatever their form",
            files: &[
                "0.log.20261127-101112.gz",
                "0.log.20261127-101112.1.gz",
                "0.log.20261127-101113.gz",
                "0.log.20261127-101114",
                "0.log.20261127-101114.1",
            ],
            max_files: 3,
            compressing: None,
            remove: &[
                "0.log.20261127-101112.gz",
                "0.log.20261127-101112.1.gz",
                "0.log.20261127-101113.gz",
            ],
            compress: &["0.log.20261127-101114"],
        },
        Case {
            name: "max files 2: only the newest rotated stays, plain",
            files: &["0.log.20261127-101112", "0.log.20261127-101113"],
            max_files: 2,
            compressing: None,
            remove: &["0.log.20261127-101112"],
            compress: &[],
        },
        Case {
            name: "a crash left a plain file beside its complete .gz, and a stale .tmp",
            files: &[
                "0.log.20261127-101112",
                "0.log.20261127-101112.gz",
                "0.log.20261127-101113.gz.tmp",
                "0.log.20261127-101113",
                "0.log.20261127-101114",
            ],
            max_files: 5,
            compressing: None,
            remove: &["0.log.20261127-101112", "0.log.20261127-101113.gz.tmp"],
            compress: &["0.log.20261127-101113"],
        },
        Case {
            name: "a key being compressed is left to its compression",
            files: &[
                "0.log.20261127-101112",
                "0.log.20261127-101112.gz.tmp",
                "0.log.20261127-101113",
                "0.log.20261127-101114",
            ],
            max_files: 5,
            compressing: Some(("20261127-101112", 0)),
            remove: &[],
            compress: &["0.log.20261127-101113"],
        },
        Case {
            name: "a key being compressed that is past max files still goes",
            files: &[
                "0.log.20261127-101112",
                "0.log.20261127-101112.gz.tmp",
                "0.log.20261127-101113",
            ],
            max_files: 2,
            compressing: Some(("20261127-101112", 0)),
            remove: &["0.log.20261127-101112", "0.log.20261127-101112.gz.tmp"],
            compress: &[],
        },
    ];

    #[test]
    fn plan_table() {
        for c in CASES {
            let r = rotated("0.log", c.files.iter().copied());
            assert_eq!(r.len(), c.files.len(), "{}: all parse", c.name);
            let compressing = c.compressing.map(|(s, q)| key(s, q));
            let got = plan(&r, c.max_files, compressing.as_ref());
            assert_eq!(got.remove, c.remove, "{}", c.name);
            assert_eq!(got.compress, c.compress, "{}", c.name);
        }
    }

    #[test]
    fn successor_is_the_next_key_plain_first_then_live() {
        let r = rotated(
            "0.log",
            [
                "0.log.20261127-101112.gz",
                "0.log.20261127-101113",
                "0.log.20261127-101113.gz",
                "0.log.20261127-101114.gz.tmp",
                "0.log.20261127-101114",
            ],
        );
        let next = |after: Option<RotKey>| successor(&r, after.as_ref()).map(|r| r.name.as_str());
        assert_eq!(next(None), Some("0.log.20261127-101112.gz"));
        assert_eq!(next(Some(key(S1, 0))), Some("0.log.20261127-101113"));
        assert_eq!(next(Some(key(S2, 0))), Some("0.log.20261127-101114"));
        assert_eq!(next(Some(key(S3, 0))), None, "then the live file");
        assert_eq!(
            next(Some(key("20261127-101111", 0))),
            Some("0.log.20261127-101112.gz"),
            "a key deleted meanwhile: the next one there"
        );
    }
}
