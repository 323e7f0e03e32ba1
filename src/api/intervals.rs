//! Sets of completion indexes in Kubernetes' interval form (`1,3-5,7`), as
//! `status.completedIndexes`, `status.failedIndexes` and `successPolicy.rules[].succeededIndexes`
//! write them (`orderedIntervals` in `pkg/controller/job/indexed_job_utils.go`).
//!
//! Three or more consecutive indexes print as `first-last`; two stay `a,b`. Reading back a
//! status is lenient (a bad piece is skipped, indexes past `completions` are dropped, as the
//! controller does); a manifest's `succeededIndexes` is validated strictly in
//! `manifest/validate_indexed.rs`.

use std::fmt;

/// Ascending, disjoint, non-adjacent `[first, last]` intervals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Intervals(Vec<(i32, i32)>);

impl Intervals {
    pub fn new() -> Intervals {
        Intervals(Vec::new())
    }

    /// From intervals already ascending and disjoint (adjacent ones are joined).
    pub fn from_pairs(pairs: &[(i32, i32)]) -> Intervals {
        Intervals::new().merge(&Intervals(pairs.to_vec()))
    }

    /// `parseIndexesFromString`: the controller's reading of its own status. A piece that is
    /// not a number is skipped; the first piece at or past `completions` ends the list, and a
    /// range reaching past it is cut at `completions - 1` (an Indexed Job scaled down).
    pub fn parse_lenient(text: &str, completions: i32) -> Intervals {
        let mut out: Vec<(i32, i32)> = Vec::new();
        if text.is_empty() {
            return Intervals(out);
        }
        for piece in text.split(',') {
            let mut limits = piece.split('-');
            let Some(first) = limits.next().and_then(atoi) else {
                continue;
            };
            if first >= i64::from(completions) {
                break;
            }
            let last = match limits.next() {
                Some(l) => match atoi(l) {
                    Some(l) => l.min(i64::from(completions) - 1),
                    None => continue,
                },
                None => first,
            };
            let (first, last) = (first as i32, last as i32);
            match out.last_mut() {
                Some(prev) if prev.1 == first - 1 => prev.1 = last,
                _ => out.push((first, last)),
            }
        }
        Intervals(out)
    }

    /// This set with `indexes` (ascending) added.
    pub fn with(&self, indexes: &[i32]) -> Intervals {
        let single: Vec<(i32, i32)> = indexes.iter().map(|&i| (i, i)).collect();
        self.merge(&Intervals(single))
    }

    /// The union of two sets.
    pub fn merge(&self, other: &Intervals) -> Intervals {
        let mut all: Vec<(i32, i32)> = self.0.iter().chain(&other.0).copied().collect();
        all.sort_unstable();
        let mut out: Vec<(i32, i32)> = Vec::with_capacity(all.len());
        for (first, last) in all {
            match out.last_mut() {
                Some(prev) if first <= prev.1.saturating_add(1) => prev.1 = prev.1.max(last),
                _ => out.push((first, last)),
            }
        }
        Intervals(out)
    }

    /// How many indexes the set holds.
    pub fn total(&self) -> i64 {
        self.0
            .iter()
            .map(|(f, l)| i64::from(*l) - i64::from(*f) + 1)
            .sum()
    }

    pub fn has(&self, ix: i32) -> bool {
        let i = self.0.partition_point(|(_, last)| *last < ix);
        self.0.get(i).is_some_and(|(first, _)| *first <= ix)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn pairs(&self) -> &[(i32, i32)] {
        &self.0
    }

    /// How many indexes of `rule` this set holds.
    pub fn overlap(&self, rule: &Intervals) -> i64 {
        let (mut i, mut j, mut n) = (0, 0, 0i64);
        while i < rule.0.len() && j < self.0.len() {
            let (rf, rl) = rule.0[i];
            let (sf, sl) = self.0[j];
            n += (i64::from(rl.min(sl)) - i64::from(rf.max(sf)) + 1).max(0);
            match sl.cmp(&rl) {
                std::cmp::Ordering::Less => j += 1,
                std::cmp::Ordering::Greater => i += 1,
                std::cmp::Ordering::Equal => {
                    i += 1;
                    j += 1;
                }
            }
        }
        n
    }
}

impl fmt::Display for Intervals {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, (first, last)) in self.0.iter().enumerate() {
            if n > 0 {
                f.write_str(",")?;
            }
            write!(f, "{first}")?;
            if last > first {
                let sep = if *last == first + 1 { ',' } else { '-' };
                write!(f, "{sep}{last}")?;
            }
        }
        Ok(())
    }
}

/// Go's `strconv.Atoi` on a 64-bit machine: an optional sign and decimal digits.
pub(crate) fn atoi(s: &str) -> Option<i64> {
    s.parse::<i64>().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `TestCalculateSucceededIndexes`/`TestIntervalsHaveIndex`/`withOrderedIndexes` cases
    /// of `indexed_job_utils_test.go`, in our words.
    #[test]
    fn status_text_round_trips_in_kubernetes_form() {
        #[rustfmt::skip]
        let rows: &[(&str, &str, i32, &[i32], &str)] = &[
            ("nothing yet", "", 5, &[], ""),
            ("one new", "", 5, &[1], "1"),
            ("two consecutive stay apart", "", 5, &[0, 1], "0,1"),
            ("three consecutive compress", "", 5, &[0, 1, 2], "0-2"),
            ("1,3-5,7 as the API docs say", "", 10, &[1, 3, 4, 5, 7], "1,3-5,7"),
            ("new joins an old range", "1,3-5", 10, &[2], "1-5"),
            ("new fills between two", "0,1,3,4", 10, &[2], "0-4"),
            ("new at both ends", "3-5", 10, &[2, 6], "2-6"),
            ("already there", "2-4", 10, &[3], "2-4"),
            ("old range cut at completions (scaled down)", "0-8", 5, &[], "0-4"),
            ("old pieces past completions dropped", "1,3,6-8", 5, &[], "1,3"),
            ("corrupt piece skipped", "1,x,3", 5, &[], "1,3"),
            ("corrupt range end skipped", "1,3-y,4", 5, &[], "1,4"),
            ("two and one are three", "0,1", 5, &[2], "0-2"),
        ];
        for (name, old, completions, new, want) in rows {
            let got = Intervals::parse_lenient(old, *completions).with(new);
            assert_eq!(got.to_string(), *want, "{name}");
            let total: i64 = Intervals::parse_lenient(want, *completions).total();
            assert_eq!(got.total(), total, "{name}: total");
        }
    }

    #[test]
    fn membership() {
        let set = Intervals::from_pairs(&[(1, 1), (3, 5), (8, 9)]);
        for (ix, want) in [
            (0, false),
            (1, true),
            (2, false),
            (3, true),
            (5, true),
            (6, false),
            (9, true),
            (10, false),
        ] {
            assert_eq!(set.has(ix), want, "{ix}");
        }
        assert!(!Intervals::new().has(0));
    }

    #[test]
    fn overlap_counts_shared_indexes() {
        let s = |t: &str| Intervals::parse_lenient(t, 100);
        assert_eq!(s("0-2,4-7").overlap(&s("3-6")), 3);
        assert_eq!(s("1-10").overlap(&s("0-3,6-9")), 7);
        assert_eq!(s("").overlap(&s("1")), 0);
    }
}
