//! Validation of the Indexed-Job fields (`completionMode`, `backoffLimitPerIndex`,
//! `maxFailedIndexes`, `successPolicy`), in `validateJobSpec`'s, `validateSuccessPolicy`'s and
//! `ValidateJob`'s words (`pkg/apis/batch/validation/validation.go`), and the warning of
//! `WarningsForJobSpec` (`pkg/api/job/warnings.go`).

use super::{Findings, dns1123_label};
use crate::api::Job;
use crate::api::intervals::atoi;
use crate::manifest::parse::go_quote;

/// `maxParallelismForIndexedJob`, `maxFailedIndexesForIndexedJob`, `completionsSoftLimit`.
const MAX_INDEXED: i32 = 100_000;
/// `parallelismLimitForHighCompletions`, `maxFailedIndexesLimitForHighCompletions`,
/// `parallelismSoftLimitForUnlimitedCompletions`.
const LIMIT_HIGH_COMPLETIONS: i32 = 10_000;
const MAX_SUCCESS_RULES: usize = 20;
const MAX_SUCCEEDED_INDEXES_BYTES: usize = 64 * 1024;

/// The spec rules, in `validateJobSpec`'s order.
pub(super) fn spec(job: &Job, v: &mut Findings) {
    let s = &job.spec;
    v.non_negative("spec.backoffLimitPerIndex", s.backoff_limit_per_index);
    if s.max_failed_indexes.is_some() {
        v.non_negative("spec.maxFailedIndexes", s.max_failed_indexes);
        if s.backoff_limit_per_index.is_none() {
            v.required(
                "spec.backoffLimitPerIndex",
                "when maxFailedIndexes is specified",
            );
        }
    }
    let indexed = match s.completion_mode.as_deref() {
        None | Some("NonIndexed") => false,
        Some("Indexed") => true,
        Some(other) => {
            v.not_supported("spec.completionMode", other, &["NonIndexed", "Indexed"]);
            false
        }
    };
    if indexed {
        if s.completions.is_none() {
            v.required("spec.completions", "when completion mode is Indexed");
        }
        if let Some(p) = s.parallelism.filter(|p| *p > MAX_INDEXED) {
            let msg = format!(
                "must be less than or equal to {MAX_INDEXED} when completion mode is Indexed"
            );
            v.invalid("spec.parallelism", &p, &msg);
        }
        if let (Some(c), Some(m)) = (s.completions, s.max_failed_indexes)
            && m > c
        {
            v.invalid(
                "spec.maxFailedIndexes",
                &m,
                "must be less than or equal to completions",
            );
        }
        if let Some(m) = s.max_failed_indexes.filter(|m| *m > MAX_INDEXED) {
            let msg = format!("must be less than or equal to {MAX_INDEXED}");
            v.invalid("spec.maxFailedIndexes", &m, &msg);
        }
        if s.completions.is_some_and(|c| c > MAX_INDEXED) && s.backoff_limit_per_index.is_some() {
            let high = format!(
                "must be less than or equal to {LIMIT_HIGH_COMPLETIONS} when completions are above \
                 {MAX_INDEXED} and used with backoff limit per index"
            );
            if s.max_failed_indexes.is_none() {
                v.required(
                    "spec.maxFailedIndexes",
                    &format!("must be specified when completions is above {MAX_INDEXED}"),
                );
            }
            if let Some(p) = s.parallelism.filter(|p| *p > LIMIT_HIGH_COMPLETIONS) {
                v.invalid("spec.parallelism", &p, &high);
            }
            if let Some(m) = s.max_failed_indexes.filter(|m| *m > LIMIT_HIGH_COMPLETIONS) {
                v.invalid("spec.maxFailedIndexes", &m, &high);
            }
        }
    }
    let non_indexed = matches!(s.completion_mode.as_deref(), None | Some("NonIndexed"));
    if non_indexed {
        for (path, value) in [
            ("spec.backoffLimitPerIndex", s.backoff_limit_per_index),
            ("spec.maxFailedIndexes", s.max_failed_indexes),
        ] {
            if let Some(n) = value {
                v.invalid(path, &n, "requires indexed completion mode");
            }
        }
    }
}

/// `validateSuccessPolicy` and its rules; `validateJobSpec` checks them after the
/// podFailurePolicy.
pub(super) fn success_policy(job: &Job, v: &mut Findings) {
    let Some(policy) = &job.spec.success_policy else {
        return;
    };
    if job.spec.completion_mode.as_deref() != Some("Indexed") {
        // Kubernetes prints its internal struct here (`%#v`, with pointer addresses);
        // jobvisor prints the policy as JSON.
        let json = serde_json::to_string(policy).unwrap_or_default();
        v.errors.push(format!(
            "spec.successPolicy: Invalid value: {json}: requires indexed completion mode"
        ));
        return;
    }
    let path = "spec.successPolicy.rules";
    if policy.rules.is_empty() {
        v.required(
            path,
            "at least one rules must be specified when the successPolicy is specified",
        );
    }
    if policy.rules.len() > MAX_SUCCESS_RULES {
        v.errors.push(format!(
            "{path}: Too many: {}: must have at most {MAX_SUCCESS_RULES} items",
            policy.rules.len()
        ));
    }
    // Without completions (already an error) there is nothing to check the indexes against.
    let Some(completions) = job.spec.completions else {
        return;
    };
    for (i, rule) in policy.rules.iter().enumerate() {
        let rule_path = format!("{path}[{i}]");
        if rule.succeeded_count.is_none() && rule.succeeded_indexes.is_none() {
            v.required(
                &rule_path,
                "at least one of succeededCount or succeededIndexes must be specified",
            );
        }
        let mut total = 0i64;
        if let Some(text) = &rule.succeeded_indexes {
            let p = format!("{rule_path}.succeededIndexes");
            if text.len() > MAX_SUCCEEDED_INDEXES_BYTES {
                v.errors.push(format!(
                    "{p}: Too long: may not be more than {MAX_SUCCEEDED_INDEXES_BYTES} bytes"
                ));
            }
            match indexes_format(text, completions) {
                Ok(n) => total = n,
                Err(e) => v.invalid(&p, text, &format!("error parsing succeededIndexes: {e}")),
            }
        }
        if let Some(count) = rule.succeeded_count {
            let p = format!("{rule_path}.succeededCount");
            v.non_negative(&p, Some(count));
            if count > completions {
                let msg = format!(
                    "must be less than or equal to {completions} (the number of specified completions)"
                );
                v.invalid(&p, &count, &msg);
            }
            if rule.succeeded_indexes.is_some() && i64::from(count) > total {
                let msg = format!(
                    "must be less than or equal to {total} (the number of indexes in the specified succeededIndexes field)"
                );
                v.invalid(&p, &count, &msg);
            }
        }
    }
}

/// `ValidateJob`'s own rule: the hostname of the last index, `<name>-<completions-1>`, must
/// be a DNS label.
pub(super) fn name(job: &Job, v: &mut Findings) {
    let s = &job.spec;
    let Some(c) = s.completions.filter(|c| *c > 0) else {
        return;
    };
    if s.completion_mode.as_deref() != Some("Indexed") {
        return;
    }
    let name = job.metadata.name();
    let host = format!("{name}-{}", c - 1);
    if !dns1123_label(&host).is_empty() {
        v.invalid(
            "metadata.name",
            name,
            &format!("will not able to create pod with invalid DNS label: {host}"),
        );
    }
}

/// `WarningsForJobSpec`: an Indexed Job too big for its completed indexes to be tracked.
pub(super) fn warnings(job: &Job, v: &mut Findings) {
    let s = &job.spec;
    if s.completion_mode.as_deref() == Some("Indexed")
        && s.completions.unwrap_or(0) > MAX_INDEXED
        && s.parallelism.unwrap_or(0) > LIMIT_HIGH_COMPLETIONS
    {
        v.warn(
            "spec",
            "In Indexed Jobs with a number of completions higher than 10^5 and a parallelism \
             higher than 10^4, Kubernetes might not be able to track completedIndexes when a big \
             number of indexes fail",
        );
    }
}

/// `validateIndexesFormat`: the number of indexes, or why the text is not a valid list
/// of indexes below `completions`, in the API server's words.
pub(super) fn indexes_format(text: &str, completions: i32) -> Result<i64, String> {
    if text.is_empty() {
        return Ok(0);
    }
    let mut last: Option<i64> = None;
    let mut total = 0i64;
    for piece in text.split(',') {
        let (x, y) = parse_interval(piece, completions)?;
        if let Some(prev) = last
            && prev >= x
        {
            return Err(format!(
                "non-increasing order, previous: {prev}, current: {x}"
            ));
        }
        total += y - x + 1;
        last = Some(y);
    }
    Ok(total)
}

/// `parseIndexInterval`.
fn parse_interval(piece: &str, completions: i32) -> Result<(i64, i64), String> {
    let limits: Vec<&str> = piece.split('-').collect();
    if limits.len() > 2 {
        return Err(format!(
            "the fragment {} violates the requirement that an index interval can have at most two parts separated by '-'",
            go_quote(piece)
        ));
    }
    let number = |s: &str| {
        atoi(s).ok_or_else(|| {
            format!(
                "cannot convert string to integer for index: {}",
                go_quote(s)
            )
        })
    };
    let too_large = |s: &str| format!("too large index: {}", go_quote(s));
    let x = number(limits[0])?;
    if x >= i64::from(completions) {
        return Err(too_large(limits[0]));
    }
    let Some(second) = limits.get(1) else {
        return Ok((x, x));
    };
    let y = number(second)?;
    if y >= i64::from(completions) {
        return Err(too_large(second));
    }
    if x >= y {
        return Err(format!("non-increasing order, previous: {x}, current: {y}"));
    }
    Ok((x, y))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{SuccessPolicy, SuccessPolicyRule};
    use crate::images::Images;
    use crate::manifest::defaults;

    const BASE: &str = "\
apiVersion: batch/v1
kind: Job
metadata:
  name: idx
spec:
  completionMode: Indexed
  completions: 3
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: c
          image: busybox:1.36
          command: [\"true\"]
";

    fn check(edit: impl FnOnce(&mut Job)) -> Findings {
        let mut job: Job = serde_saphyr::from_str(BASE).expect("base manifest parses");
        edit(&mut job);
        defaults::apply(&mut job);
        super::super::validate(&job, Some(&Images::builtin()))
    }

    fn rules(rules: &[(Option<&str>, Option<i32>)]) -> Option<SuccessPolicy> {
        let rules = rules
            .iter()
            .map(|(i, c)| SuccessPolicyRule {
                succeeded_indexes: i.map(str::to_string),
                succeeded_count: *c,
            })
            .collect();
        Some(SuccessPolicy { rules })
    }

    type Edit = fn(&mut Job);

    /// `TestValidateJob`'s Indexed, backoffLimitPerIndex and successPolicy cases, in our
    /// words: every error in the API server's wording.
    #[test]
    fn indexed_fields_validate_as_kubernetes() {
        #[rustfmt::skip]
        let rows: Vec<(&str, Edit, Vec<&str>)> = vec![
            ("an Indexed Job", |_| {}, vec![]),
            ("Indexed without completions",
             |j| { j.spec.completions = None; j.spec.parallelism = Some(2); },
             vec!["spec.completions: Required value: when completion mode is Indexed"]),
            ("parallelism above 10^5",
             |j| { j.spec.parallelism = Some(100_001); },
             vec!["spec.parallelism: Invalid value: 100001: must be less than or equal to 100000 when completion mode is Indexed"]),
            ("unknown mode", |j| j.spec.completion_mode = Some("Ordered".into()),
             vec![r#"spec.completionMode: Unsupported value: "Ordered": supported values: "NonIndexed", "Indexed""#]),
            ("backoffLimitPerIndex", |j| j.spec.backoff_limit_per_index = Some(1), vec![]),
            ("backoffLimitPerIndex negative", |j| j.spec.backoff_limit_per_index = Some(-1),
             vec!["spec.backoffLimitPerIndex: Invalid value: -1: must be greater than or equal to 0"]),
            ("backoffLimitPerIndex on NonIndexed",
             |j| { j.spec.completion_mode = None; j.spec.backoff_limit_per_index = Some(1); },
             vec!["spec.backoffLimitPerIndex: Invalid value: 1: requires indexed completion mode"]),
            ("maxFailedIndexes on NonIndexed",
             |j| { j.spec.completion_mode = Some("NonIndexed".into()); j.spec.backoff_limit_per_index = Some(1); j.spec.max_failed_indexes = Some(1); },
             vec!["spec.backoffLimitPerIndex: Invalid value: 1: requires indexed completion mode",
                  "spec.maxFailedIndexes: Invalid value: 1: requires indexed completion mode"]),
            ("maxFailedIndexes without backoffLimitPerIndex", |j| j.spec.max_failed_indexes = Some(1),
             vec!["spec.backoffLimitPerIndex: Required value: when maxFailedIndexes is specified"]),
            ("maxFailedIndexes negative", |j| { j.spec.backoff_limit_per_index = Some(1); j.spec.max_failed_indexes = Some(-1); },
             vec!["spec.maxFailedIndexes: Invalid value: -1: must be greater than or equal to 0"]),
            ("maxFailedIndexes above completions", |j| { j.spec.backoff_limit_per_index = Some(1); j.spec.max_failed_indexes = Some(4); },
             vec!["spec.maxFailedIndexes: Invalid value: 4: must be less than or equal to completions"]),
            ("maxFailedIndexes equal to completions", |j| { j.spec.backoff_limit_per_index = Some(1); j.spec.max_failed_indexes = Some(3); }, vec![]),
            ("maxFailedIndexes above 10^5",
             |j| { j.metadata.name = Some("i".into()); j.spec.completions = Some(200_000); j.spec.backoff_limit_per_index = Some(1); j.spec.max_failed_indexes = Some(100_001); },
             vec!["spec.maxFailedIndexes: Invalid value: 100001: must be less than or equal to 100000",
                  "spec.maxFailedIndexes: Invalid value: 100001: must be less than or equal to 10000 when completions are above 100000 and used with backoff limit per index"]),
            ("completions above 10^5 with backoffLimitPerIndex need maxFailedIndexes",
             |j| { j.spec.completions = Some(100_001); j.spec.backoff_limit_per_index = Some(1); },
             vec!["spec.maxFailedIndexes: Required value: must be specified when completions is above 100000"]),
            ("... and parallelism at most 10^4",
             |j| { j.spec.completions = Some(100_001); j.spec.parallelism = Some(10_001); j.spec.backoff_limit_per_index = Some(1); j.spec.max_failed_indexes = Some(10); },
             vec!["spec.parallelism: Invalid value: 10001: must be less than or equal to 10000 when completions are above 100000 and used with backoff limit per index"]),
            ("completions above 10^5 without backoffLimitPerIndex",
             |j| { j.spec.completions = Some(100_001); j.spec.parallelism = Some(10_000); }, vec![]),
            ("the last index's hostname must be a DNS label",
             |j| { j.metadata.name = Some("a".repeat(62)); j.spec.completions = Some(10); },
             vec![concat!("metadata.name: Invalid value: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\": ",
                          "will not able to create pod with invalid DNS label: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-9")]),
            ("a name that just fits", |j| { j.metadata.name = Some("a".repeat(61)); j.spec.completions = Some(10); }, vec![]),
            ("dots in the name: a subdomain, not a label",
             |j| j.metadata.name = Some("a.b".into()),
             vec![r#"metadata.name: Invalid value: "a.b": will not able to create pod with invalid DNS label: a.b-2"#]),
            // ---- successPolicy
            ("successPolicy", |j| j.spec.success_policy = rules(&[(Some("0,2"), None), (None, Some(2))]), vec![]),
            ("successPolicy on NonIndexed",
             |j| { j.spec.completion_mode = None; j.spec.success_policy = rules(&[(None, Some(1))]); },
             vec![r#"spec.successPolicy: Invalid value: {"rules":[{"succeededCount":1}]}: requires indexed completion mode"#]),
            ("no rules", |j| j.spec.success_policy = rules(&[]),
             vec!["spec.successPolicy.rules: Required value: at least one rules must be specified when the successPolicy is specified"]),
            ("21 rules", |j| j.spec.success_policy = rules(&[(None, Some(1)); 21]),
             vec!["spec.successPolicy.rules: Too many: 21: must have at most 20 items"]),
            ("20 rules", |j| j.spec.success_policy = rules(&[(None, Some(1)); 20]), vec![]),
            ("an empty rule", |j| j.spec.success_policy = rules(&[(None, None)]),
             vec!["spec.successPolicy.rules[0]: Required value: at least one of succeededCount or succeededIndexes must be specified"]),
            ("succeededIndexes past completions", |j| j.spec.success_policy = rules(&[(Some("1-3"), None)]),
             vec![r#"spec.successPolicy.rules[0].succeededIndexes: Invalid value: "1-3": error parsing succeededIndexes: too large index: "3""#]),
            ("succeededIndexes out of order", |j| j.spec.success_policy = rules(&[(Some("2,1"), None)]),
             vec![r#"spec.successPolicy.rules[0].succeededIndexes: Invalid value: "2,1": error parsing succeededIndexes: non-increasing order, previous: 2, current: 1"#]),
            ("succeededCount negative", |j| j.spec.success_policy = rules(&[(None, Some(-1))]),
             vec!["spec.successPolicy.rules[0].succeededCount: Invalid value: -1: must be greater than or equal to 0"]),
            ("succeededCount above completions", |j| j.spec.success_policy = rules(&[(None, Some(4))]),
             vec!["spec.successPolicy.rules[0].succeededCount: Invalid value: 4: must be less than or equal to 3 (the number of specified completions)"]),
            ("succeededCount above the listed indexes", |j| j.spec.success_policy = rules(&[(Some("0,1"), Some(3))]),
             vec!["spec.successPolicy.rules[0].succeededCount: Invalid value: 3: must be less than or equal to 2 (the number of indexes in the specified succeededIndexes field)"]),
            ("succeededCount with unreadable indexes counts none",
             |j| j.spec.success_policy = rules(&[(Some("x"), Some(1))]),
             vec![r#"spec.successPolicy.rules[0].succeededIndexes: Invalid value: "x": error parsing succeededIndexes: cannot convert string to integer for index: "x""#,
                  "spec.successPolicy.rules[0].succeededCount: Invalid value: 1: must be less than or equal to 0 (the number of indexes in the specified succeededIndexes field)"]),
            // ---- order: `validateJobSpec` checks podFailurePolicy before successPolicy
            ("podFailurePolicy errors come before successPolicy errors",
             |j| {
                 j.spec.success_policy = rules(&[]);
                 j.spec.pod_failure_policy = Some(crate::api::PodFailurePolicy {
                     rules: vec![crate::api::PodFailurePolicyRule { action: "Ignore".into(), ..Default::default() }],
                 });
             },
             vec!["spec.podFailurePolicy.rules[0]: Invalid value: specifying one of OnExitCodes and OnPodConditions is required",
                  "spec.successPolicy.rules: Required value: at least one rules must be specified when the successPolicy is specified"]),
        ];
        for (name, edit, want) in rows {
            let got = check(edit);
            assert_eq!(got.errors, want, "{name}");
        }
    }

    #[test]
    fn succeeded_indexes_longer_than_64_kib() {
        let got = check(|j| j.spec.success_policy = rules(&[(Some(&"0,".repeat(32_769)), None)]));
        let first = got.errors.first().map(String::as_str);
        let want = "spec.successPolicy.rules[0].succeededIndexes: Too long: may not be more than 65536 bytes";
        // The value is too long to print.
        assert!(first == Some(want), "{:.200?}", got.errors);
    }

    #[test]
    fn a_huge_indexed_job_is_warned_about() {
        let got = check(|j| {
            j.spec.completions = Some(100_001);
            j.spec.parallelism = Some(10_001);
        });
        assert_eq!(
            got.warnings,
            [
                "spec: In Indexed Jobs with a number of completions higher than 10^5 and a parallelism higher than 10^4, Kubernetes might not be able to track completedIndexes when a big number of indexes fail"
            ]
        );
        assert!(
            check(|j| j.spec.parallelism = Some(10_001))
                .warnings
                .is_empty()
        );
    }

    /// `validateIndexesFormat` cases of `validation_test.go`.
    #[test]
    fn strict_validation_in_the_api_servers_words() {
        #[rustfmt::skip]
        let rows: &[(&str, i32, Result<i64, &str>)] = &[
            ("", 10, Ok(0)),
            ("0", 10, Ok(1)),
            ("0,1", 10, Ok(2)),
            ("0-2,5,7-9", 10, Ok(7)),
            ("1-3-5", 10, Err(r#"the fragment "1-3-5" violates the requirement that an index interval can have at most two parts separated by '-'"#)),
            ("a", 10, Err(r#"cannot convert string to integer for index: "a""#)),
            ("1-a", 10, Err(r#"cannot convert string to integer for index: "a""#)),
            ("-1", 10, Err(r#"cannot convert string to integer for index: """#)),
            ("10", 10, Err(r#"too large index: "10""#)),
            ("1-10", 10, Err(r#"too large index: "10""#)),
            ("3-3", 10, Err("non-increasing order, previous: 3, current: 3")),
            ("5-2", 10, Err("non-increasing order, previous: 5, current: 2")),
            ("5,2", 10, Err("non-increasing order, previous: 5, current: 2")),
            ("1-3,3", 10, Err("non-increasing order, previous: 3, current: 3")),
            ("1,", 10, Err(r#"cannot convert string to integer for index: """#)),
        ];
        for (text, completions, want) in rows {
            let got = indexes_format(text, *completions);
            assert_eq!(got, want.map_err(str::to_string), "{text:?}");
        }
    }
}
