//! Validation of `spec.podFailurePolicy`, as the API server's `validatePodFailurePolicy*`
//! (`pkg/apis/batch/validation/validation.go`) checks it and words it. A child of
//! `validate`, whose error constructors it uses. The policy's effect on `restartPolicy`
//! (only `Never`) and `podReplacementPolicy` (only `Failed`) is checked with those fields.

use crate::api::{
    Job, PodFailurePolicy, PodFailurePolicyAction, PodFailurePolicyOnExitCodesOperator,
    PodFailurePolicyOnExitCodesRequirement, PodFailurePolicyOnPodConditionsPattern,
    PodFailurePolicyRule,
};

use super::{Findings, qualified_name, with_detail};

const MAX_RULES: usize = 20;
const MAX_VALUES: usize = 255;
const MAX_PATTERNS: usize = 20;

/// Sorted, as `sets.List` gives them to the messages.
const ACTIONS: [&str; 4] = ["Count", "FailIndex", "FailJob", "Ignore"];
const OPERATORS: [&str; 2] = ["In", "NotIn"];
const STATUSES: [&str; 3] = ["False", "True", "Unknown"];

pub(super) fn validate(job: &Job, policy: &PodFailurePolicy, v: &mut Findings) {
    let rules = "spec.podFailurePolicy.rules";
    if policy.rules.len() > MAX_RULES {
        v.too_many(rules, policy.rules.len(), MAX_RULES);
    }
    let pod = &job.spec.template.spec;
    // Init containers are refused for now; their names will belong here too.
    let names: Vec<&str> = pod.containers.iter().map(|c| c.name.as_str()).collect();
    for (i, rule) in policy.rules.iter().enumerate() {
        self::rule(job, rule, &format!("{rules}[{i}]"), &names, v);
    }
}

fn rule(job: &Job, rule: &PodFailurePolicyRule, path: &str, names: &[&str], v: &mut Findings) {
    let action = format!("{path}.action");
    match &rule.action {
        PodFailurePolicyAction::Other(a) if a.is_empty() => {
            v.required(&action, &format!("valid values: {}", go_list(&ACTIONS)))
        }
        PodFailurePolicyAction::FailIndex if job.spec.backoff_limit_per_index.is_none() => v
            .invalid(
                &action,
                "FailIndex",
                "requires the backoffLimitPerIndex to be set",
            ),
        PodFailurePolicyAction::Other(a) => v.not_supported(&action, a, &ACTIONS),
        _ => {}
    }
    if let Some(req) = &rule.on_exit_codes {
        on_exit_codes(req, &format!("{path}.onExitCodes"), names, v);
    }
    if !rule.on_pod_conditions.is_empty() {
        on_pod_conditions(
            &rule.on_pod_conditions,
            &format!("{path}.onPodConditions"),
            v,
        );
    }
    // field.OmitValueType: the message has no value.
    let omitted = |detail: &str| with_detail(format!("{path}: Invalid value"), detail);
    match (
        rule.on_exit_codes.is_some(),
        !rule.on_pod_conditions.is_empty(),
    ) {
        (true, true) => v.errors.push(omitted(
            "specifying both OnExitCodes and OnPodConditions is not supported",
        )),
        (false, false) => v.errors.push(omitted(
            "specifying one of OnExitCodes and OnPodConditions is required",
        )),
        _ => {}
    }
}

fn on_exit_codes(
    req: &PodFailurePolicyOnExitCodesRequirement,
    path: &str,
    names: &[&str],
    v: &mut Findings,
) {
    let operator = format!("{path}.operator");
    match &req.operator {
        PodFailurePolicyOnExitCodesOperator::Other(o) if o.is_empty() => {
            v.required(&operator, &format!("valid values: {}", go_list(&OPERATORS)))
        }
        PodFailurePolicyOnExitCodesOperator::Other(o) => v.not_supported(&operator, o, &OPERATORS),
        _ => {}
    }
    if let Some(name) = &req.container_name
        && !names.contains(&name.as_str())
    {
        v.invalid(
            &format!("{path}.containerName"),
            name,
            "must be one of the container or initContainer names in the pod template",
        );
    }
    let values_path = format!("{path}.values");
    // Go marshals a missing list as null and an empty one as [].
    let rendered = |values: Option<&Vec<i32>>| {
        serde_json::to_string(&values).unwrap_or_else(|_| "null".into())
    };
    let values = req.values.as_deref().unwrap_or(&[]);
    if values.is_empty() {
        v.errors.push(with_detail(
            format!(
                "{values_path}: Invalid value: {}",
                rendered(req.values.as_ref())
            ),
            "at least one value is required",
        ));
    } else if values.len() > MAX_VALUES {
        v.too_many(&values_path, values.len(), MAX_VALUES);
    }
    let is_in = req.operator == PodFailurePolicyOnExitCodesOperator::In;
    let mut seen = std::collections::HashSet::with_capacity(values.len());
    for (j, &value) in values.iter().enumerate() {
        let at = format!("{values_path}[{j}]");
        if is_in && value == 0 {
            v.invalid(&at, &value, "must not be 0 for the In operator");
        }
        if !seen.insert(value) {
            v.errors.push(format!("{at}: Duplicate value: {value}"));
        }
    }
    if values.windows(2).any(|w| w[0] > w[1]) {
        v.errors.push(with_detail(
            format!(
                "{values_path}: Invalid value: {}",
                rendered(req.values.as_ref())
            ),
            "must be ordered",
        ));
    }
}

fn on_pod_conditions(
    patterns: &[PodFailurePolicyOnPodConditionsPattern],
    path: &str,
    v: &mut Findings,
) {
    if patterns.len() > MAX_PATTERNS {
        v.too_many(path, patterns.len(), MAX_PATTERNS);
    }
    for (j, pattern) in patterns.iter().enumerate() {
        let at = format!("{path}[{j}]");
        let type_ = pattern.type_.as_str();
        for msg in qualified_name(type_) {
            v.invalid(&format!("{at}.type"), type_, &msg);
        }
        let status = format!("{at}.status");
        if pattern.status.is_empty() {
            v.required(&status, &format!("valid values: {}", go_list(&STATUSES)));
        } else if !STATUSES.contains(&pattern.status.as_str()) {
            v.not_supported(&status, &pattern.status, &STATUSES);
        }
    }
}

/// Go's `%q` of a `[]string`: `["A" "B"]`.
fn go_list(items: &[&str]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| format!("\"{s}\"")).collect();
    format!("[{}]", quoted.join(" "))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{c0, check};
    use crate::api::{
        PodFailurePolicy, PodFailurePolicyOnExitCodesRequirement,
        PodFailurePolicyOnPodConditionsPattern, PodFailurePolicyRule,
    };

    fn codes(action: &str, operator: &str, values: Option<Vec<i32>>) -> PodFailurePolicyRule {
        PodFailurePolicyRule {
            action: action.into(),
            on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                container_name: None,
                operator: operator.into(),
                values,
            }),
            on_pod_conditions: vec![],
        }
    }

    fn conditions(action: &str, patterns: &[(&str, &str)]) -> PodFailurePolicyRule {
        PodFailurePolicyRule {
            action: action.into(),
            on_exit_codes: None,
            on_pod_conditions: patterns
                .iter()
                .map(|(t, s)| PodFailurePolicyOnPodConditionsPattern {
                    type_: (*t).into(),
                    status: (*s).into(),
                })
                .collect(),
        }
    }

    fn policy(rules: Vec<PodFailurePolicyRule>) -> Option<PodFailurePolicy> {
        Some(PodFailurePolicy { rules })
    }

    const R0: &str = "spec.podFailurePolicy.rules[0]";

    /// Kubernetes' `validation_test.go` cases for podFailurePolicy, in our table.
    #[test]
    fn each_pod_failure_policy_rule_has_its_exact_message() {
        type Edit = Box<dyn Fn(&mut crate::api::Job)>;
        let set = |rules: Vec<PodFailurePolicyRule>| -> Edit {
            Box::new(move |j| j.spec.pod_failure_policy = policy(rules.clone()))
        };
        let qualified = "name part must consist of alphanumeric characters, '-', '_' or '.', \
             and must start and end with an alphanumeric character (e.g. 'MyName',  or \
             'my.name',  or '123-abc', regex used for validation is \
             '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
        #[rustfmt::skip]
        let cases: Vec<(&str, Edit, Vec<String>)> = vec![
            ("valid: every action and both kinds of rule", set(vec![
                codes("FailJob", "In", Some(vec![1, 2, 42])),
                codes("Ignore", "NotIn", Some(vec![0, 3])),
                codes("Count", "NotIn", Some(vec![5])),
                conditions("Ignore", &[("DisruptionTarget", "True"), ("example.com/Custom", "Unknown")]),
                conditions("FailJob", &[("ResourceLimitExceeded", "False")]),
             ]), vec![]),
            ("valid: no rules", set(vec![]), vec![]),
            ("valid: containerName names a container", set(vec![PodFailurePolicyRule {
                on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                    container_name: Some("c".into()), operator: "In".into(), values: Some(vec![42]) }),
                ..codes("FailJob", "In", None) }]), vec![]),
            ("valid: 255 values", set(vec![codes("Ignore", "In", Some((1..=255).collect()))]), vec![]),
            ("valid: a pattern's status defaults to True", set(vec![conditions("Ignore", &[("DisruptionTarget", "")])]), vec![]),
            ("too many rules", set(vec![codes("Ignore", "In", Some(vec![1])); 21]),
             vec!["spec.podFailurePolicy.rules: Too many: 21: must have at most 20 items".into()]),
            ("action missing", set(vec![codes("", "In", Some(vec![1]))]),
             vec![format!("{R0}.action: Required value: valid values: [\"Count\" \"FailIndex\" \"FailJob\" \"Ignore\"]")]),
            ("action unknown", set(vec![codes("UnknownAction", "In", Some(vec![1]))]),
             vec![format!("{R0}.action: Unsupported value: \"UnknownAction\": supported values: \"Count\", \"FailIndex\", \"FailJob\", \"Ignore\"")]),
            ("FailIndex without backoffLimitPerIndex", set(vec![codes("FailIndex", "In", Some(vec![1]))]),
             vec![format!("{R0}.action: Invalid value: \"FailIndex\": requires the backoffLimitPerIndex to be set")]),
            ("FailIndex with backoffLimitPerIndex of an Indexed Job", Box::new(|j| {
                j.spec.pod_failure_policy = policy(vec![codes("FailIndex", "In", Some(vec![1]))]);
                j.spec.backoff_limit_per_index = Some(1);
                j.spec.completion_mode = Some("Indexed".into());
                j.spec.completions = Some(2);
             }), vec![]),
            ("operator missing", set(vec![codes("Ignore", "", Some(vec![1]))]),
             vec![format!("{R0}.onExitCodes.operator: Required value: valid values: [\"In\" \"NotIn\"]")]),
            ("operator unknown", set(vec![codes("Ignore", "Between", Some(vec![1]))]),
             vec![format!("{R0}.onExitCodes.operator: Unsupported value: \"Between\": supported values: \"In\", \"NotIn\"")]),
            ("containerName not in the template", set(vec![PodFailurePolicyRule {
                on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                    container_name: Some("x".into()), operator: "In".into(), values: Some(vec![42]) }),
                ..codes("FailJob", "In", None) }]),
             vec![format!("{R0}.onExitCodes.containerName: Invalid value: \"x\": must be one of the container or initContainer names in the pod template")]),
            ("values missing", set(vec![codes("Ignore", "In", None)]),
             vec![format!("{R0}.onExitCodes.values: Invalid value: null: at least one value is required")]),
            ("values empty", set(vec![codes("Ignore", "In", Some(vec![]))]),
             vec![format!("{R0}.onExitCodes.values: Invalid value: []: at least one value is required")]),
            ("256 values", set(vec![codes("Ignore", "In", Some((1..=256).collect()))]),
             vec![format!("{R0}.onExitCodes.values: Too many: 256: must have at most 255 items")]),
            ("0 with In", set(vec![codes("Ignore", "In", Some(vec![0, 1]))]),
             vec![format!("{R0}.onExitCodes.values[0]: Invalid value: 0: must not be 0 for the In operator")]),
            ("0 with NotIn is fine", set(vec![codes("Ignore", "NotIn", Some(vec![0]))]), vec![]),
            ("duplicates", set(vec![codes("Ignore", "In", Some(vec![1, 3, 3]))]),
             vec![format!("{R0}.onExitCodes.values[2]: Duplicate value: 3")]),
            ("not ordered", set(vec![codes("Ignore", "In", Some(vec![2, 1]))]),
             vec![format!("{R0}.onExitCodes.values: Invalid value: [2,1]: must be ordered")]),
            ("duplicate and unordered, each said", set(vec![codes("Ignore", "In", Some(vec![5, 1, 5]))]),
             vec![format!("{R0}.onExitCodes.values[2]: Duplicate value: 5"),
                  format!("{R0}.onExitCodes.values: Invalid value: [5,1,5]: must be ordered")]),
            ("both kinds in one rule", set(vec![PodFailurePolicyRule {
                on_pod_conditions: conditions("Ignore", &[("DisruptionTarget", "True")]).on_pod_conditions,
                ..codes("Ignore", "In", Some(vec![1])) }]),
             vec![format!("{R0}: Invalid value: specifying both OnExitCodes and OnPodConditions is not supported")]),
            ("neither kind", set(vec![conditions("Ignore", &[])]),
             vec![format!("{R0}: Invalid value: specifying one of OnExitCodes and OnPodConditions is required")]),
            ("too many patterns", set(vec![conditions("Ignore", &[("DisruptionTarget", "True"); 21])]),
             vec![format!("{R0}.onPodConditions: Too many: 21: must have at most 20 items")]),
            ("pattern type not a qualified name", set(vec![conditions("Ignore", &[("Bad Type", "True")])]),
             vec![format!("{R0}.onPodConditions[0].type: Invalid value: \"Bad Type\": {qualified}")]),
            ("pattern type empty", set(vec![conditions("Ignore", &[("", "True")])]),
             vec![format!("{R0}.onPodConditions[0].type: Invalid value: \"\": name part must be non-empty"),
                  format!("{R0}.onPodConditions[0].type: Invalid value: \"\": {qualified}")]),
            ("pattern status unknown", set(vec![conditions("Ignore", &[("DisruptionTarget", "Maybe")])]),
             vec![format!("{R0}.onPodConditions[0].status: Unsupported value: \"Maybe\": supported values: \"False\", \"True\", \"Unknown\"")]),
            ("the rule's index is in the path", set(vec![
                codes("Ignore", "In", Some(vec![1])),
                codes("FailJob", "In", Some(vec![0])),
             ]), vec!["spec.podFailurePolicy.rules[1].onExitCodes.values[0]: Invalid value: 0: must not be 0 for the In operator".into()]),
            ("restartPolicy OnFailure", Box::new(|j| {
                j.spec.pod_failure_policy = policy(vec![]);
                j.spec.template.spec.restart_policy = Some("OnFailure".into());
             }), vec!["spec.template.spec.restartPolicy: Invalid value: \"OnFailure\": only \"Never\" is supported when podFailurePolicy is specified".into()]),
            ("podReplacementPolicy TerminatingOrFailed", Box::new(|j| {
                j.spec.pod_failure_policy = policy(vec![]);
                j.spec.pod_replacement_policy = Some("TerminatingOrFailed".into());
             }), vec!["spec.podReplacementPolicy: Unsupported value: \"TerminatingOrFailed\": supported values: \"Failed\"".into()]),
            ("a container renamed: containerName follows the template", Box::new(|j| {
                c0(j).name = "main".into();
                j.spec.pod_failure_policy = policy(vec![PodFailurePolicyRule {
                    on_exit_codes: Some(PodFailurePolicyOnExitCodesRequirement {
                        container_name: Some("main".into()), operator: "NotIn".into(), values: Some(vec![0]) }),
                    ..codes("FailJob", "In", None) }]);
             }), vec![]),
        ];
        for (name, edit, want) in cases {
            assert_eq!(check(|j| edit(j)).errors, want, "case {name:?}");
        }
    }
}

#[cfg(test)]
mod parse_tests {
    /// Misspelt or mistyped fields inside the policy are refused where they stand, as
    /// `kubectl --validate=strict` and the API server's decoder refuse them.
    #[test]
    fn the_policy_is_decoded_strictly() {
        let job = |policy: &str| {
            format!(
                "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: j\nspec:\n  podFailurePolicy:\n{policy}  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: busybox\n        command: [\"true\"]\n"
            )
        };
        let cases = [
            (
                "    rules:\n    - action: Ignore\n      onExitCode: {operator: In, values: [1]}\n",
                "x.yaml:9:7: spec.podFailurePolicy.rules[0]: unknown field \"onExitCode\"",
            ),
            (
                "    rules:\n    - action: Ignore\n      onExitCodes: {operator: In, values: [\"1\"]}\n",
                "spec.podFailurePolicy.rules[0].onExitCodes.values[0]: cannot unmarshal string into a field of type int32",
            ),
        ];
        for (policy, want) in cases {
            let r = crate::manifest::load(std::path::Path::new("x.yaml"), &job(policy), None);
            assert!(
                r.errors.iter().any(|e| e.contains(want)),
                "want {want:?} in {:?}",
                r.errors
            );
        }
        let ok = "    rules:\n    - action: Ignore\n      onPodConditions:\n      - type: DisruptionTarget\n";
        let r = crate::manifest::load(std::path::Path::new("x.yaml"), &job(ok), None);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
    }
}
