//! `spec.successPolicy` of an Indexed Job (`pkg/controller/job/success_policy.go`): the rules
//! are tried in order and the first one the succeeded indexes meet makes the Job succeed early,
//! with reason `SuccessPolicy` and the message `Matched rules at index <i>`.
//!
//! A rule with `succeededIndexes` is met when all those indexes succeeded, or, with
//! `succeededCount` too, when that many of them did; a rule with only `succeededCount` when
//! that many indexes succeeded at all. Nothing is met before the first index succeeds.

use crate::api::SuccessPolicy;
use crate::api::intervals::Intervals;

/// The message of the first rule `succeeded` meets, if any.
pub fn matched(
    policy: Option<&SuccessPolicy>,
    completions: i32,
    succeeded: &Intervals,
) -> Option<String> {
    let policy = policy?;
    if succeeded.is_empty() {
        return None;
    }
    let met = |i: usize| Some(format!("Matched rules at index {i}"));
    for (i, rule) in policy.rules.iter().enumerate() {
        let count = rule.succeeded_count.map(i64::from);
        match rule.succeeded_indexes.as_deref() {
            Some(text) => {
                let wanted = Intervals::parse_lenient(text, completions);
                // A rule whose indexes cannot be read is skipped, as Kubernetes does.
                if wanted.is_empty() {
                    continue;
                }
                let done = succeeded.overlap(&wanted);
                if done == wanted.total() || count.is_some_and(|c| done >= c) {
                    return met(i);
                }
            }
            None => {
                if count.is_some_and(|c| succeeded.total() >= c) {
                    return met(i);
                }
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::SuccessPolicyRule;

    fn rule(indexes: Option<&str>, count: Option<i32>) -> SuccessPolicyRule {
        SuccessPolicyRule {
            succeeded_indexes: indexes.map(str::to_string),
            succeeded_count: count,
        }
    }

    /// The cases of `TestMatchSuccessPolicy` (`success_policy_test.go`), in our words:
    /// (name, rules or no policy, succeeded indexes, the rule met).
    #[test]
    fn first_rule_met_wins() {
        type Row = (
            &'static str,
            Option<Vec<SuccessPolicyRule>>,
            &'static str,
            Option<usize>,
        );
        #[rustfmt::skip]
        let rows: Vec<Row> = vec![
            ("no policy", None, "0", None),
            ("no rules", Some(vec![]), "0", None),
            ("unreadable indexes are skipped", Some(vec![rule(Some("invalid-form"), None)]), "0", None),
            ("indexes all succeeded", Some(vec![rule(Some("0-2"), None)]), "0-2,4-7", Some(0)),
            ("index not succeeded", Some(vec![rule(Some("3"), None)]), "0-2", None),
            ("count reached", Some(vec![rule(None, Some(2))]), "0-2", Some(0)),
            ("count not reached", Some(vec![rule(None, Some(4))]), "0-2", None),
            ("second rule met", Some(vec![rule(Some("9"), None), rule(Some("4,6"), None)]), "0-2,4-7", Some(1)),
            ("both met: the first wins", Some(vec![rule(Some("0,1"), None), rule(Some("5"), None)]), "0-2,4-7", Some(0)),
            ("count of listed indexes reached", Some(vec![rule(Some("3-6"), Some(2))]), "0-2,4-7", Some(0)),
            ("count of listed indexes not reached", Some(vec![rule(Some("3-6"), Some(2))]), "0-2,6,7", None),
            ("nothing succeeded yet", Some(vec![rule(None, Some(4))]), "", None),
            ("count 0 before any success", Some(vec![rule(None, Some(0))]), "", None),
            ("rule a proper subset", Some(vec![rule(Some("2-4,6-8"), None)]), "1-9", Some(0)),
            ("rule equal to the succeeded", Some(vec![rule(Some("2-4,6-9"), None)]), "2-4,6-9", Some(0)),
            ("rule a subset, cut at completions", Some(vec![rule(Some("2-4,8-12"), None)]), "2-5,7-9", Some(0)),
            ("empty rule indexes never match", Some(vec![rule(Some(""), None)]), "1-3", None),
            ("rule past the succeeded", Some(vec![rule(Some("10-12,14-16"), None)]), "1-3,5-7", None),
            ("rule overlapping at the start", Some(vec![rule(Some("1-3,5-7"), None)]), "2-4,6-8", None),
            ("... with a count it meets", Some(vec![rule(Some("1-3,5-7"), Some(4))]), "2-4,6-8", Some(0)),
            ("rule overlapping at the end", Some(vec![rule(Some("2-4,6-9"), None)]), "1-3,5-7", None),
            ("... with a count it meets", Some(vec![rule(Some("2-4,6-9"), Some(4))]), "1-3,5-7", Some(0)),
            ("rule covering the succeeded", Some(vec![rule(Some("0-4,6-9"), None)]), "1-3,7,8", None),
            ("... with a count it meets", Some(vec![rule(Some("0-4,6-9"), Some(5))]), "1-3,7,8", Some(0)),
            ("rule over several succeeded ranges", Some(vec![rule(Some("0-6,8,9"), None)]), "1-3,5-9", None),
            ("... with a count it meets", Some(vec![rule(Some("0-6,8,9"), Some(7))]), "1-3,5-9", Some(0)),
            ("first rule over the start", Some(vec![rule(Some("0-3,6-9"), None)]), "1-9", None),
            ("... with a count it meets", Some(vec![rule(Some("0-3,6-9"), Some(7))]), "1-9", Some(0)),
        ];
        for (name, rules, succeeded, want) in rows {
            let policy = rules.map(|rules| SuccessPolicy { rules });
            let succeeded = Intervals::parse_lenient(succeeded, 10);
            let got = matched(policy.as_ref(), 10, &succeeded);
            let want = want.map(|i| format!("Matched rules at index {i}"));
            assert_eq!(got, want, "{name}");
        }
    }
}
