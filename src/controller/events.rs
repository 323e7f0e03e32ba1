//! Event de-duplication: an event that repeats one recorded shortly before is not recorded
//! again; the earlier one counts it (`count`, `lastTimestamp`), as Kubernetes' event
//! recorder does for repeats.

use std::collections::VecDeque;

use jiff::Timestamp;

use super::EventSpec;
use crate::api::{Event, ObjectReference};

/// How many of the newest events a new one is compared with.
pub const DEDUP_WINDOW: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dedup {
    /// The event at `index` says the same about the same object: it becomes `count`, last
    /// seen at `last_timestamp`.
    Repeat {
        index: usize,
        count: i32,
        last_timestamp: Timestamp,
    },
    /// Nothing recent says the same: a new Event.
    New,
}

/// Whether `new`, about `involved`, repeats one of the last [`DEDUP_WINDOW`] `events`: the
/// same object (by uid), reason and message.
pub fn dedupe(
    events: &VecDeque<Event>,
    involved: &ObjectReference,
    new: &EventSpec,
    now: Timestamp,
) -> Dedup {
    let repeated = events
        .iter()
        .enumerate()
        .rev()
        .take(DEDUP_WINDOW)
        .find(|(_, e)| {
            e.involved_object.uid == involved.uid
                && e.reason == new.reason
                && e.message == new.message
        });
    match repeated {
        Some((index, e)) => Dedup::Repeat {
            index,
            count: e.count.saturating_add(1),
            last_timestamp: now,
        },
        None => Dedup::New,
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;

    use super::*;

    fn now() -> Timestamp {
        "2026-01-01T12:00:00Z".parse().unwrap()
    }

    fn about(uid: &str) -> ObjectReference {
        ObjectReference {
            kind: "Pod".into(),
            namespace: "default".into(),
            name: format!("pod-{uid}"),
            uid: uid.into(),
            api_version: Some("v1".into()),
        }
    }

    fn event(uid: &str, reason: &str, message: &str, count: i32) -> Event {
        let at = now() - SignedDuration::from_secs(60);
        Event {
            involved_object: about(uid),
            reason: reason.into(),
            message: message.into(),
            type_: "Normal".into(),
            first_timestamp: Some(at),
            last_timestamp: Some(at),
            count,
            ..Default::default()
        }
    }

    fn repeat(index: usize, count: i32) -> Dedup {
        Dedup::Repeat {
            index,
            count,
            last_timestamp: now(),
        }
    }

    /// A new event: involved uid, reason, message.
    type New<'a> = (&'a str, &'a str, &'a str);

    #[test]
    fn dedupe_table() {
        let started = || event("a", "Started", "Started container main", 1);
        let others = |n: usize| (0..n).map(|i| event(&format!("o{i}"), "Started", "x", 1));
        #[rustfmt::skip]
        let rows: Vec<(&str, Vec<Event>, New, Dedup)> = vec![
            ("no events yet", vec![],
             ("a", "Started", "Started container main"), Dedup::New),
            ("the same event again counts twice", vec![started()],
             ("a", "Started", "Started container main"), repeat(0, 2)),
            ("a count goes on from where it is",
             vec![event("a", "Started", "Started container main", 7)],
             ("a", "Started", "Started container main"), repeat(0, 8)),
            ("another object", vec![started()],
             ("b", "Started", "Started container main"), Dedup::New),
            ("another reason", vec![started()],
             ("a", "Killing", "Started container main"), Dedup::New),
            ("another message", vec![started()],
             ("a", "Started", "Started container sidecar"), Dedup::New),
            ("found among others, by its index",
             [event("a", "Started", "x", 1), started()].into_iter().chain(others(3)).collect(),
             ("a", "Started", "Started container main"), repeat(1, 2)),
            ("the newest of two alike",
             vec![event("a", "Started", "Started container main", 5), started()],
             ("a", "Started", "Started container main"), repeat(1, 2)),
            ("still within the last 16",
             std::iter::once(started()).chain(others(15)).collect(),
             ("a", "Started", "Started container main"), repeat(0, 2)),
            ("older than the last 16: a new event",
             std::iter::once(started()).chain(others(16)).collect(),
             ("a", "Started", "Started container main"), Dedup::New),
            ("a count at its limit stays there",
             vec![event("a", "Started", "Started container main", i32::MAX)],
             ("a", "Started", "Started container main"), repeat(0, i32::MAX)),
        ];
        for (name, events, (uid, reason, message), want) in rows {
            let events = VecDeque::from(events);
            let new = EventSpec::normal(reason, message);
            assert_eq!(dedupe(&events, &about(uid), &new, now()), want, "{name}");
        }
    }
}
