//! The retention rule for the logs of deleted pods, the one rule every later feature that
//! takes logs away follows (Job TTL, CronJob history limits, a spool cap): the logs of a pod
//! removed from the store stay `logs.retainDeleted` after its removal, and all of them
//! together within `logs.retainDeletedBytes`; past either, they go oldest deletion first.
//! The spool cap ([`over_spool`], `logs.spoolMaxSize`) bounds all logs together: past it,
//! deleted pods' logs go first, then finished pods'.
//!
//! Pure: the daemon measures the sizes and removes the directories (`daemon/retention.rs`,
//! on the blocking pool); this only says which go, why, and when to look again.

use std::time::Duration;

use jiff::Timestamp;

use crate::controller::pod::go_duration;
use crate::controller::{add, elapsed};

/// The logs of one deleted pod, as the daemon knows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    pub uid: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    /// When the pod was removed from the store.
    pub deleted_at: Timestamp,
    /// The size of its log files, as last measured.
    pub bytes: u64,
}

/// `logs.retainDeleted` and `logs.retainDeletedBytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub retain: Duration,
    pub max_bytes: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// Kept `logs.retainDeleted` after the deletion.
    Expired,
    /// The deleted pods' logs together exceeded `logs.retainDeletedBytes`.
    OverBudget,
    /// All logs in the spool together exceeded `logs.spoolMaxSize`.
    OverSpool(u64),
}

impl Reason {
    /// The `LogsRemoved` event's message.
    pub fn message(self, limits: Limits) -> String {
        match self {
            Reason::Expired => format!(
                "retained {} after the pod was deleted",
                go_duration(limits.retain)
            ),
            Reason::OverBudget => format!(
                "the logs of deleted pods exceeded logs.retainDeletedBytes ({})",
                crate::quantity::format_bytes(limits.max_bytes)
            ),
            Reason::OverSpool(cap) => format!(
                "the logs in the spool exceeded logs.spoolMaxSize ({})",
                crate::quantity::format_bytes(cap)
            ),
        }
    }
}

/// What a pod's logs in the spool belong to, for the spool cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Holder {
    /// A pod removed from the store, at this time.
    Deleted(Timestamp),
    /// A pod that has finished (Succeeded or Failed); its logs were last written then.
    Finished(Timestamp),
    /// A pod that may still run: never removed by the cap (its runs' logs are bounded by
    /// `containerLogMaxSize` × `containerLogMaxFiles`).
    Active,
}

/// One pod log directory in the spool, as last measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpoolEntry<'a> {
    pub uid: &'a str,
    pub namespace: &'a str,
    pub name: &'a str,
    pub bytes: u64,
    pub holder: Holder,
}

/// The spool cap (`logs.spoolMaxSize`): while all logs together exceed `cap`, the logs of
/// deleted pods go first (oldest deletion first), then those of finished pods (oldest last
/// write first); ties by namespace, name and uid. Logs of active pods count but never go, so
/// the spool can stay above the cap when they alone exceed it. Returns the uids to remove,
/// in order.
pub fn over_spool<'a>(entries: &[SpoolEntry<'a>], cap: u64) -> Vec<&'a str> {
    let mut total = entries
        .iter()
        .fold(0u64, |sum, e| sum.saturating_add(e.bytes));
    let mut order: Vec<(u8, Timestamp, &SpoolEntry<'a>)> = entries
        .iter()
        .filter_map(|e| match e.holder {
            Holder::Deleted(at) => Some((0, at, e)),
            Holder::Finished(at) => Some((1, at, e)),
            Holder::Active => None,
        })
        .collect();
    order.sort_by_key(|(rank, at, e)| (*rank, *at, e.namespace, e.name, e.uid));
    let mut remove = Vec::new();
    for (_, _, e) in order {
        if total <= cap {
            break;
        }
        total -= e.bytes;
        remove.push(e.uid);
    }
    remove
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision<'a> {
    /// Uids whose logs go now, oldest deletion first.
    pub remove: Vec<(&'a str, Reason)>,
    /// When the oldest entry kept expires: the next time there is anything to do, unless
    /// another pod is deleted first.
    pub next_due: Option<Timestamp>,
}

/// Which logs go at `now`. Entries are taken oldest deletion first; equal deletion times are
/// ordered by namespace, name and uid, so the same state always gives the same answer. An
/// entry expires once `retain` has passed since its deletion, to the instant (a sweep timed
/// for that instant removes it). Then, while the rest exceed `max_bytes` together, the oldest
/// of them go, so the newest logs are the ones kept; an entry bigger than the whole budget goes
/// too.
pub fn decide<'a>(entries: &[Entry<'a>], limits: Limits, now: Timestamp) -> Decision<'a> {
    let mut order: Vec<&Entry<'a>> = entries.iter().collect();
    order.sort_by_key(|e| (e.deleted_at, e.namespace, e.name, e.uid));
    let expires = |e: &Entry| add(e.deleted_at, limits.retain);
    let (expired, mut kept): (Vec<&Entry<'a>>, Vec<&Entry<'a>>) =
        order.into_iter().partition(|e| expires(e) <= now);
    let mut remove: Vec<(&'a str, Reason)> =
        expired.iter().map(|e| (e.uid, Reason::Expired)).collect();
    let mut total = kept.iter().fold(0u64, |sum, e| sum.saturating_add(e.bytes));
    let mut over = 0;
    while total > limits.max_bytes && over < kept.len() {
        total -= kept[over].bytes;
        remove.push((kept[over].uid, Reason::OverBudget));
        over += 1;
    }
    kept.drain(..over);
    // Kept entries are in deletion order, so the first expires first.
    let next_due = kept.first().map(|e| expires(e));
    Decision { remove, next_due }
}

/// How long until `due`, zero when it has passed.
pub fn until(due: Timestamp, now: Timestamp) -> Duration {
    elapsed(now, due)
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;

    fn now() -> Timestamp {
        "2026-01-08T00:00:00Z".parse().unwrap()
    }

    const H: i64 = 3600;

    /// `(name, deleted this many seconds before now, bytes)`; the uid is `u-<name>`.
    type Row = (&'static str, i64, u64);

    struct Case {
        name: &'static str,
        entries: &'static [Row],
        retain_secs: u64,
        max_bytes: u64,
        /// `(name, reason)` in the order removed.
        remove: &'static [(&'static str, Reason)],
        /// Seconds from now to the next due time.
        next_due: Option<i64>,
    }

    use Reason::{Expired, OverBudget};

    const WEEK: u64 = 168 * 3600;
    const GI: u64 = 1 << 30;

    const CASES: &[Case] = &[
        Case {
            name: "nothing retained: nothing to do, no wake-up",
            entries: &[],
            retain_secs: WEEK,
            max_bytes: GI,
            remove: &[],
            next_due: None,
        },
        Case {
            name: "young and small: kept, woken when the oldest expires",
            entries: &[("a", 2 * H, 10), ("b", 30 * H, 10)],
            retain_secs: WEEK,
            max_bytes: GI,
            remove: &[],
            next_due: Some(168 * H - 30 * H),
        },
        Case {
            name: "past the time: removed, whatever the size",
            entries: &[("old", 169 * H, 1), ("new", H, 1)],
            retain_secs: WEEK,
            max_bytes: GI,
            remove: &[("old", Expired)],
            next_due: Some(167 * H),
        },
        Case {
            name: "exactly at the time: removed (the sweep timed for it removes it)",
            entries: &[("edge", 168 * H, 1)],
            retain_secs: WEEK,
            max_bytes: GI,
            remove: &[("edge", Expired)],
            next_due: None,
        },
        Case {
            name: "a second before the time: kept",
            entries: &[("edge", 168 * H - 1, 1)],
            retain_secs: WEEK,
            max_bytes: GI,
            remove: &[],
            next_due: Some(1),
        },
        Case {
            name: "over the budget: the oldest go until the rest fit",
            entries: &[("c", H, 400), ("a", 3 * H, 400), ("b", 2 * H, 400)],
            retain_secs: WEEK,
            max_bytes: 500,
            remove: &[("a", OverBudget), ("b", OverBudget)],
            next_due: Some(167 * H),
        },
        Case {
            name: "exactly the budget: kept",
            entries: &[("a", 2 * H, 250), ("b", H, 250)],
            retain_secs: WEEK,
            max_bytes: 500,
            remove: &[],
            next_due: Some(166 * H),
        },
        Case {
            name: "one entry bigger than the whole budget goes, even the newest",
            entries: &[("huge", H, 2000)],
            retain_secs: WEEK,
            max_bytes: 500,
            remove: &[("huge", OverBudget)],
            next_due: None,
        },
        Case {
            name: "both: the expired go first and no longer count against the budget",
            entries: &[
                ("expired", 200 * H, 900),
                ("older", 3 * H, 300),
                ("newer", H, 300),
            ],
            retain_secs: WEEK,
            max_bytes: 500,
            remove: &[("expired", Expired), ("older", OverBudget)],
            next_due: Some(167 * H),
        },
        Case {
            name: "equal deletion times: taken in name order",
            entries: &[("b", 2 * H, 300), ("a", 2 * H, 300), ("c", H, 100)],
            retain_secs: WEEK,
            max_bytes: 450,
            remove: &[("a", OverBudget)],
            next_due: Some(166 * H),
        },
        Case {
            name: "retainDeleted 0s: everything goes at once",
            entries: &[("a", 0, 1), ("b", 5, 1)],
            retain_secs: 0,
            max_bytes: GI,
            remove: &[("b", Expired), ("a", Expired)],
            next_due: None,
        },
        Case {
            name: "retainDeletedBytes 0: once any byte is kept, everything older goes too",
            entries: &[("empty", 2 * H, 0), ("full", H, 1)],
            retain_secs: WEEK,
            max_bytes: 0,
            remove: &[("empty", OverBudget), ("full", OverBudget)],
            next_due: None,
        },
    ];

    #[test]
    fn table() {
        for case in CASES {
            let uids: Vec<String> = case
                .entries
                .iter()
                .map(|(name, _, _)| format!("u-{name}"))
                .collect();
            let entries: Vec<Entry> = case
                .entries
                .iter()
                .zip(&uids)
                .map(|((name, ago, bytes), uid)| Entry {
                    uid,
                    namespace: "default",
                    name,
                    deleted_at: now() - SignedDuration::from_secs(*ago),
                    bytes: *bytes,
                })
                .collect();
            let limits = Limits {
                retain: Duration::from_secs(case.retain_secs),
                max_bytes: case.max_bytes,
            };
            let got = decide(&entries, limits, now());
            let want_remove: Vec<(String, Reason)> = case
                .remove
                .iter()
                .map(|(name, r)| (format!("u-{name}"), *r))
                .collect();
            let got_remove: Vec<(String, Reason)> = got
                .remove
                .iter()
                .map(|(uid, r)| (uid.to_string(), *r))
                .collect();
            assert_eq!(got_remove, want_remove, "{}", case.name);
            let want_due = case.next_due.map(|s| now() + SignedDuration::from_secs(s));
            assert_eq!(got.next_due, want_due, "{}", case.name);
        }
    }

    #[test]
    fn spool_cap_table() {
        use Holder::{Active, Deleted, Finished};
        let at = |ago: i64| now() - SignedDuration::from_secs(ago);
        // (name, bytes, holder)
        type SpoolRow = (&'static str, u64, Holder);
        let cases: &[(&str, &[SpoolRow], u64, &[&str])] = &[
            (
                "within the cap: nothing goes",
                &[("a", 10, Finished(at(5))), ("b", 10, Active)],
                20,
                &[],
            ),
            (
                "deleted pods' logs go before finished pods', oldest first",
                &[
                    ("f-old", 10, Finished(at(100))),
                    ("d-new", 10, Deleted(at(1))),
                    ("d-old", 10, Deleted(at(50))),
                    ("run", 10, Active),
                ],
                25,
                &["d-old", "d-new"],
            ),
            (
                "then finished pods', the longest finished first",
                &[
                    ("f-new", 10, Finished(at(1))),
                    ("f-old", 10, Finished(at(100))),
                    ("d", 10, Deleted(at(1))),
                    ("run", 10, Active),
                ],
                15,
                &["d", "f-old", "f-new"],
            ),
            (
                "active pods alone over the cap: everything else goes, they stay",
                &[("run", 100, Active), ("f", 1, Finished(at(1)))],
                50,
                &["f"],
            ),
            (
                "equal times: by name",
                &[("b", 10, Finished(at(5))), ("a", 10, Finished(at(5)))],
                10,
                &["a"],
            ),
        ];
        for (name, rows, cap, want) in cases {
            let uids: Vec<String> = rows.iter().map(|(n, _, _)| format!("u-{n}")).collect();
            let entries: Vec<SpoolEntry> = rows
                .iter()
                .zip(&uids)
                .map(|((n, bytes, holder), uid)| SpoolEntry {
                    uid,
                    namespace: "default",
                    name: n,
                    bytes: *bytes,
                    holder: *holder,
                })
                .collect();
            let got = over_spool(&entries, *cap);
            let want: Vec<String> = want.iter().map(|n| format!("u-{n}")).collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn messages_say_why_in_the_config_s_terms() {
        let limits = Limits {
            retain: Duration::from_secs(168 * 3600),
            max_bytes: GI,
        };
        assert_eq!(
            Expired.message(limits),
            "retained 168h0m0s after the pod was deleted"
        );
        assert_eq!(
            OverBudget.message(limits),
            "the logs of deleted pods exceeded logs.retainDeletedBytes (1Gi)"
        );
        assert_eq!(
            Reason::OverSpool(10 << 30).message(limits),
            "the logs in the spool exceeded logs.spoolMaxSize (10Gi)"
        );
    }

    #[test]
    fn until_is_never_negative() {
        assert_eq!(
            until(now(), now() + SignedDuration::from_secs(5)),
            Duration::ZERO
        );
        assert_eq!(
            until(now() + SignedDuration::from_secs(5), now()),
            Duration::from_secs(5)
        );
    }
}
