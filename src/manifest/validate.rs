//! Validation of a defaulted Job: the API server's rules (`ValidateJob`, pod-spec and
//! metadata validation) in its own wording, plus jobvisor's own limits: fields it does not
//! run yet are `Forbidden`, cluster-only fields are accepted with a warning, and a container
//! must have something to run: its `command`, or its image's entry in the daemon config's
//! `images:` table, which the caller passes in (`crate::images`).
//!
//! Every rule runs; the caller gets all errors at once, as `kubectl apply` shows them.
//! Messages follow `field/errors.go`: `<path>: <type>[: <value>][: <detail>]`, strings
//! quoted as Go's `%q`, numbers bare, other values as JSON.

use serde_json::Value;

use crate::api::{
    ConcurrencyPolicy, Container, CronJob, Job, LABEL_CONTROLLER_UID, LABEL_JOB_NAME,
    LABEL_LEGACY_CONTROLLER_UID, LABEL_LEGACY_JOB_NAME, LabelSelector, Labels, RestartPolicy,
};

use super::parse::go_quote;

#[path = "pod_failure_policy.rs"]
mod pod_failure_policy;
use crate::images::{Images, Reference, Unrunnable};

#[path = "validate_indexed.rs"]
mod indexed;

/// The detail of every error for a valid Kubernetes field that jobvisor cannot run yet.
pub(crate) const NOT_SUPPORTED_YET: &str = "not supported by jobvisor yet";

const JOB_CONTROLLER: &str = "kubernetes.io/job-controller";

/// What validation found; each entry is `<path>: <message>`, without file or object name.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Findings {
    pub errors: Vec<String>,
    pub warnings: Vec<String>,
}

/// `images`: the daemon's table, or `None` where it cannot be known (the CLI's `apply`,
/// which leaves a container without `command` for the daemon to judge).
pub(crate) fn validate(job: &Job, images: Option<&Images>) -> Findings {
    let mut v = Findings::default();
    metadata(job, &mut v);
    generated_selector(job, &mut v);
    spec(job, images, &mut v);
    selector(job, &mut v);
    indexed::name(job, &mut v);
    indexed::warnings(job, &mut v);
    // kubectl prints identical causes once (the API reports a long name once per
    // job-name label, for instance).
    dedup(&mut v.errors);
    dedup(&mut v.warnings);
    v
}

fn dedup(list: &mut Vec<String>) {
    // A set, not a scan: a 3 MiB manifest can carry a million errors (one per listed value).
    let mut seen = std::collections::HashSet::with_capacity(list.len());
    list.retain(|item| seen.insert(item.clone()));
}

// ---------------------------------------------------------------- error constructors

/// A bad value rendered as `field/errors.go` does.
trait BadValue {
    fn render(&self) -> String;
}

impl BadValue for str {
    fn render(&self) -> String {
        go_quote(self)
    }
}

impl BadValue for String {
    fn render(&self) -> String {
        go_quote(self)
    }
}

impl BadValue for i64 {
    fn render(&self) -> String {
        self.to_string()
    }
}

impl BadValue for i32 {
    fn render(&self) -> String {
        self.to_string()
    }
}

impl BadValue for Labels {
    fn render(&self) -> String {
        // Go marshals a nil map (no labels given) as null.
        if self.is_empty() {
            return "null".into();
        }
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

impl BadValue for LabelSelector {
    fn render(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

/// `<path>: Invalid value: "<value>": <detail>`, a bad string as validation reports it, for
/// messages outside a manifest that must read the same (`jobvisor cron next`).
pub fn invalid_value(path: &str, value: &str, detail: &str) -> String {
    invalid_rendered(path, &go_quote(value), detail)
}

/// `validateManagedBy`: a domain-prefixed path of at most 63 bytes. Only the built-in
/// controller's value is run: jobvisor is the one controller here, and Kubernetes' own skips a
/// Job managed by another, which would then never run at all.
fn managed_by(by: &str, v: &mut Findings) {
    const PATH: &str = "spec.managedBy";
    const MAX: usize = 63;
    let domain_prefixed = by
        .split_once('/')
        .is_some_and(|(host, rest)| dns1123_subdomain(host).is_empty() && !rest.is_empty());
    if !domain_prefixed {
        v.errors.push(invalid_value(
            PATH,
            by,
            "must be a domain-prefixed path (such as \"acme.io/foo\")",
        ));
    }
    if by.len() > MAX {
        v.errors.push(format!(
            "{PATH}: Too long: may not be more than {MAX} bytes"
        ));
    }
    if domain_prefixed && by.len() <= MAX && by != JOB_CONTROLLER {
        v.forbidden(
            PATH,
            &format!(
                "not supported by jobvisor: it runs every Job itself, so only {JOB_CONTROLLER:?}"
            ),
        );
    }
}

/// `<path>: Required value[: <detail>]`, as validation reports a missing value.
pub fn required_value(path: &str, detail: &str) -> String {
    with_detail(format!("{path}: Required value"), detail)
}

fn invalid_rendered(path: &str, value: &str, detail: &str) -> String {
    with_detail(format!("{path}: Invalid value: {value}"), detail)
}

impl Findings {
    fn required(&mut self, path: &str, detail: &str) {
        self.errors.push(required_value(path, detail));
    }

    fn invalid<V: BadValue + ?Sized>(&mut self, path: &str, value: &V, detail: &str) {
        self.errors
            .push(invalid_rendered(path, &value.render(), detail));
    }

    fn not_supported(&mut self, path: &str, value: &str, supported: &[&str]) {
        let list: Vec<String> = supported.iter().map(|s| go_quote(s)).collect();
        self.errors.push(format!(
            "{path}: Unsupported value: {}: supported values: {}",
            go_quote(value),
            list.join(", ")
        ));
    }

    /// `field.TooMany`: `<path>: Too many: <n>: must have at most <max> items`.
    fn too_many(&mut self, path: &str, n: usize, max: usize) {
        self.errors.push(format!(
            "{path}: Too many: {n}: must have at most {max} items"
        ));
    }

    fn duplicate(&mut self, path: &str, value: &str) {
        self.errors
            .push(format!("{path}: Duplicate value: {}", go_quote(value)));
    }

    fn forbidden(&mut self, path: &str, detail: &str) {
        self.errors
            .push(with_detail(format!("{path}: Forbidden"), detail));
    }

    fn not_yet(&mut self, path: &str) {
        self.forbidden(path, NOT_SUPPORTED_YET);
    }

    fn warn(&mut self, path: &str, text: &str) {
        self.warnings.push(format!("{path}: {text}"));
    }

    fn non_negative<N: Into<i64> + Copy>(&mut self, path: &str, value: Option<N>) {
        if let Some(n) = value
            && n.into() < 0
        {
            self.invalid(path, &n.into(), "must be greater than or equal to 0");
        }
    }
}

fn with_detail(mut head: String, detail: &str) -> String {
    if !detail.is_empty() {
        head.push_str(": ");
        head.push_str(detail);
    }
    head
}

// ---------------------------------------------------------------- metadata

fn metadata(job: &Job, v: &mut Findings) {
    object_meta(&job.metadata, "Job", v);
    let name = job.metadata.name();
    if !name.is_empty() && !dns1123_label(name).is_empty() && dns1123_subdomain(name).is_empty() {
        // strategy.go WarningsOnCreate: a subdomain is legal, a label is advised.
        v.warn(
            "metadata.name",
            &format!(
                "this is used in Pod names and hostnames, which can result in \
                 surprising behavior; a DNS label is recommended: [{}]",
                name_label_advice(name).join(" ")
            ),
        );
    }
}

/// `ValidateObjectMeta` with a DNS-subdomain name, as Jobs and Pods both have.
pub(crate) fn object_meta(meta: &crate::api::ObjectMeta, kind: &str, v: &mut Findings) {
    match meta.name.as_deref() {
        Some(name) if !name.is_empty() => {
            for msg in dns1123_subdomain(name) {
                v.invalid("metadata.name", name, &msg);
            }
        }
        _ if meta.generate_name.as_deref().is_some_and(|g| !g.is_empty()) => {
            // An object from a file is matched to its running one by name on every reload.
            v.forbidden(
                "metadata.generateName",
                &format!(
                    "not supported by jobvisor: a {kind} read from a file needs a fixed metadata.name"
                ),
            );
        }
        _ => v.required("metadata.name", "name or generateName is required"),
    }
    if let Some(ns) = meta.namespace.as_deref() {
        for msg in dns1123_label(ns) {
            v.invalid("metadata.namespace", ns, &msg);
        }
    }
    labels(&meta.labels, "metadata.labels", v);
    annotations(&meta.annotations, "metadata.annotations", v);
    // An object from a file is owned by its file, and nothing would ever remove a finalizer
    // a file put there (the object could never be deleted).
    if !meta.owner_references.is_empty() {
        v.forbidden(
            "metadata.ownerReferences",
            &format!("not supported by jobvisor: a {kind} read from a file is owned by its file"),
        );
    }
    if !meta.finalizers.is_empty() {
        v.forbidden(
            "metadata.finalizers",
            &format!(
                "not supported by jobvisor: nothing would remove them from a {kind} read from a file"
            ),
        );
    }
}

/// A bare Pod (`ValidatePodCreate`): its metadata and the pod-spec rules Job templates get,
/// where `restartPolicy: Always` (its default) is valid.
pub(crate) fn validate_pod(pod: &crate::api::Pod, images: Option<&Images>) -> Findings {
    let mut v = Findings::default();
    object_meta(&pod.metadata, "Pod", &mut v);
    pod_spec(&pod.spec, "spec", images, &mut v);
    dedup(&mut v.errors);
    dedup(&mut v.warnings);
    v
}

/// A CronJob (`ValidateCronJobCreate`, `validateCronJobSpec`): its metadata with the
/// 52-character name limit (11 are kept for `-<unix minutes>` within a Job's 63), the
/// schedule and time zone, the policies, and its Job template validated as a Job spec whose
/// selector is generated.
pub(crate) fn validate_cronjob(
    cj: &CronJob,
    template_defaulted: &Job,
    images: Option<&Images>,
) -> Findings {
    let mut v = Findings::default();
    object_meta(&cj.metadata, "CronJob", &mut v);
    let name = cj.metadata.name();
    if name.len() > MAX_CRONJOB_NAME {
        v.invalid(
            "metadata.name",
            name,
            &format!("must be no more than {MAX_CRONJOB_NAME} characters"),
        );
    }
    let s = &cj.spec;
    if s.schedule.is_empty() {
        v.required("spec.schedule", "");
    } else if let Err(e) = crate::schedule::Schedule::parse(&s.schedule) {
        v.invalid("spec.schedule", &s.schedule, &e.to_string());
    }
    if let Some(zone) = &s.time_zone
        && let Err(detail) = crate::schedule::time_zone(zone)
    {
        v.invalid("spec.timeZone", zone, &detail);
    }
    v.non_negative("spec.startingDeadlineSeconds", s.starting_deadline_seconds);
    v.non_negative(
        "spec.successfulJobsHistoryLimit",
        s.successful_jobs_history_limit,
    );
    v.non_negative("spec.failedJobsHistoryLimit", s.failed_jobs_history_limit);
    match &s.concurrency_policy {
        None => v.required("spec.concurrencyPolicy", ""),
        Some(ConcurrencyPolicy::Other(p)) if p.is_empty() => {
            v.required("spec.concurrencyPolicy", "")
        }
        Some(ConcurrencyPolicy::Other(p)) => {
            v.not_supported("spec.concurrencyPolicy", p, &["Allow", "Forbid", "Replace"])
        }
        Some(_) => {}
    }
    let template = &s.job_template;
    labels(
        &template.metadata.labels,
        "spec.jobTemplate.metadata.labels",
        &mut v,
    );
    annotations(
        &template.metadata.annotations,
        "spec.jobTemplate.metadata.annotations",
        &mut v,
    );
    if let Some(sel) = &template.spec.selector {
        v.invalid(
            "spec.jobTemplate.spec.selector",
            sel,
            "`selector` will be auto-generated",
        );
    }
    if template.spec.manual_selector == Some(true) {
        v.errors.push(
            "spec.jobTemplate.spec.manualSelector: Unsupported value: true: supported values: \"nil\", \"false\""
                .into(),
        );
    }
    // Each Job gets these labels with its own uid and name (`assign_identity`); a template
    // that sets them would give every Job a selector that does not select its pods (Kubernetes
    // accepts the CronJob and then refuses each of its Jobs; refused here at once).
    for key in [
        LABEL_LEGACY_CONTROLLER_UID,
        LABEL_CONTROLLER_UID,
        LABEL_LEGACY_JOB_NAME,
        LABEL_JOB_NAME,
    ] {
        if template.spec.template.metadata.labels.contains_key(key) {
            v.forbidden(
                &format!("spec.jobTemplate.spec.template.metadata.labels[{key}]"),
                "set by jobvisor to each Job's own uid and name",
            );
        }
    }
    // The template as a Job: its spec's findings, moved under spec.jobTemplate. Its name and
    // labels are each Job's own (checked above, or generated).
    let mut job = Findings::default();
    spec(template_defaulted, images, &mut job);
    for e in job.errors {
        if let Some(rest) = e.strip_prefix("spec.") {
            v.errors.push(format!("spec.jobTemplate.spec.{rest}"));
        }
    }
    for w in job.warnings {
        if let Some(rest) = w.strip_prefix("spec.") {
            v.warnings.push(format!("spec.jobTemplate.spec.{rest}"));
        }
    }
    dedup(&mut v.errors);
    dedup(&mut v.warnings);
    v
}

/// A CronJob's Jobs are named `<name>-<8 digits>` and must fit in 63 characters.
const MAX_CRONJOB_NAME: usize = 52;

/// The DNS-label problems of a name that is a valid subdomain, in newer apimachinery's
/// short form (`must not contain dots`).
fn name_label_advice(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    if name.len() > 63 {
        out.push("must be no more than 63 characters".to_string());
    }
    if name.contains('.') {
        out.push("must not contain dots".to_string());
    }
    out
}

fn labels(labels: &Labels, path: &str, v: &mut Findings) {
    for (key, value) in labels {
        for msg in qualified_name(key) {
            v.invalid(path, key, &msg);
        }
        for msg in label_value(value) {
            v.invalid(path, value, &msg);
        }
    }
}

fn annotations(annotations: &Labels, path: &str, v: &mut Findings) {
    let mut total = 0usize;
    for (key, value) in annotations {
        // Kubernetes checks annotation keys case-insensitively.
        for msg in qualified_name(&key.to_lowercase()) {
            v.invalid(path, key, &msg);
        }
        total += key.len() + value.len();
    }
    const MAX_ANNOTATIONS_BYTES: usize = 256 * 1024;
    if total > MAX_ANNOTATIONS_BYTES {
        v.errors.push(format!(
            "{path}: Too long: may not be more than {MAX_ANNOTATIONS_BYTES} bytes"
        ));
    }
}

// ---------------------------------------------------------------- selector

fn manual_selector(job: &Job) -> bool {
    job.spec.manual_selector == Some(true)
}

/// `validateGeneratedSelector`, before the uid exists: labels the generator will own must
/// not be set to something else, and a user selector must select only the generated labels.
fn generated_selector(job: &Job, v: &mut Findings) {
    if manual_selector(job) {
        return;
    }
    let name = job.metadata.name();
    let template = &job.spec.template.metadata.labels;
    for key in [LABEL_LEGACY_CONTROLLER_UID, LABEL_CONTROLLER_UID] {
        if template.contains_key(key) {
            v.forbidden(
                &format!("spec.template.metadata.labels[{key}]"),
                "set to the Job's uid by jobvisor; set manualSelector: true to choose labels \
                 and selector yourself",
            );
        }
    }
    for key in [LABEL_LEGACY_JOB_NAME, LABEL_JOB_NAME] {
        if template.get(key).is_some_and(|value| value != name) {
            v.invalid(
                &format!("spec.template.metadata.labels[{key}]"),
                template,
                &format!("must be '{name}'"),
            );
        }
    }
    if let Some(sel) = &job.spec.selector
        && !selector_is_empty(sel)
    {
        // The uid is not known yet; no user-written value can equal it.
        let uid = "\u{0}uid-assigned-later";
        let expected: Labels = [
            (LABEL_CONTROLLER_UID, uid),
            (LABEL_JOB_NAME, name),
            (LABEL_LEGACY_CONTROLLER_UID, uid),
            (LABEL_LEGACY_JOB_NAME, name),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        if selector_matches(sel, &expected) == Some(false) {
            v.invalid("spec.selector", sel, "`selector` not auto-generated");
        }
    }
}

fn selector(job: &Job, v: &mut Findings) {
    let spec = &job.spec;
    let Some(sel) = &spec.selector else {
        // Without manualSelector, jobvisor generates it in `assign_identity`.
        if manual_selector(job) {
            v.required("spec.selector", "");
        }
        return;
    };
    labels(&sel.match_labels, "spec.selector.matchLabels", v);
    for (i, req) in sel.match_expressions.iter().enumerate() {
        let path = format!("spec.selector.matchExpressions[{i}]");
        match req.operator.as_str() {
            "In" | "NotIn" if req.values.is_empty() => v.required(
                &format!("{path}.values"),
                "must be specified when `operator` is 'In' or 'NotIn'",
            ),
            "Exists" | "DoesNotExist" if !req.values.is_empty() => v.forbidden(
                &format!("{path}.values"),
                "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
            ),
            "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
            op => v.invalid(
                &format!("{path}.operator"),
                op,
                "not a valid selector operator",
            ),
        }
        for msg in qualified_name(&req.key) {
            v.invalid(&format!("{path}.key"), &req.key, &msg);
        }
        for (j, value) in req.values.iter().enumerate() {
            for msg in label_value(value) {
                v.invalid(&format!("{path}.values[{j}]"), value, &msg);
            }
        }
    }
    // With a generated selector the template gets the matching labels by construction.
    if manual_selector(job) && selector_matches(sel, &spec.template.metadata.labels) == Some(false)
    {
        v.invalid(
            "spec.template.metadata.labels",
            &spec.template.metadata.labels,
            "`selector` does not match template `labels`",
        );
    }
}

fn selector_is_empty(sel: &LabelSelector) -> bool {
    sel.match_labels.is_empty() && sel.match_expressions.is_empty()
}

/// `LabelSelectorAsSelector(sel).Matches(labels)`; `None` when the selector is malformed
/// (the conversion fails), in which case Kubernetes skips the comparison: the malformed
/// parts have their own errors.
pub(crate) fn selector_matches(sel: &LabelSelector, labels: &Labels) -> Option<bool> {
    let valid_pair = |k: &str, v: &str| qualified_name(k).is_empty() && label_value(v).is_empty();
    if !sel.match_labels.iter().all(|(k, v)| valid_pair(k, v)) {
        return None;
    }
    let mut all = sel
        .match_labels
        .iter()
        .all(|(k, want)| labels.get(k) == Some(want));
    for req in &sel.match_expressions {
        if !qualified_name(&req.key).is_empty()
            || !req.values.iter().all(|v| label_value(v).is_empty())
        {
            return None;
        }
        let got = labels.get(&req.key);
        all &= match (req.operator.as_str(), req.values.is_empty()) {
            ("In", false) => got.is_some_and(|g| req.values.contains(g)),
            ("NotIn", false) => got.is_none_or(|g| !req.values.contains(g)),
            ("Exists", true) => got.is_some(),
            ("DoesNotExist", true) => got.is_none(),
            _ => return None,
        };
    }
    Some(all)
}

// ---------------------------------------------------------------- spec

fn spec(job: &Job, images: Option<&Images>, v: &mut Findings) {
    let s = &job.spec;
    v.non_negative("spec.parallelism", s.parallelism);
    v.non_negative("spec.completions", s.completions);
    v.non_negative("spec.activeDeadlineSeconds", s.active_deadline_seconds);
    v.non_negative("spec.backoffLimit", s.backoff_limit);
    v.non_negative("spec.ttlSecondsAfterFinished", s.ttl_seconds_after_finished);
    indexed::spec(job, v);
    if let Some(policy) = &s.pod_failure_policy {
        pod_failure_policy::validate(job, policy, v);
    }
    indexed::success_policy(job, v);
    if let Some(by) = s.managed_by.as_deref() {
        managed_by(by, v);
    }
    if let Some(policy) = s.pod_replacement_policy.as_deref() {
        if s.pod_failure_policy.is_some() {
            if policy != "Failed" {
                v.not_supported("spec.podReplacementPolicy", policy, &["Failed"]);
            }
        } else if policy != "Failed" && policy != "TerminatingOrFailed" {
            v.not_supported(
                "spec.podReplacementPolicy",
                policy,
                &["Failed", "TerminatingOrFailed"],
            );
        }
    }

    template_metadata(job, v);
    pod_spec(&job.spec.template.spec, "spec.template.spec", images, v);

    // restartPolicy defaults to Always for pods, so Always and missing read the same.
    let path = "spec.template.spec.restartPolicy";
    match &s.template.spec.restart_policy {
        None | Some(RestartPolicy::Always) => {
            v.required(path, r#"valid values: "OnFailure", "Never""#)
        }
        Some(RestartPolicy::Other(s)) if s.is_empty() => {
            v.required(path, r#"valid values: "OnFailure", "Never""#)
        }
        Some(RestartPolicy::OnFailure) if s.pod_failure_policy.is_some() => v.invalid(
            path,
            "OnFailure",
            r#"only "Never" is supported when podFailurePolicy is specified"#,
        ),
        Some(RestartPolicy::OnFailure | RestartPolicy::Never) => {}
        Some(RestartPolicy::Other(other)) => v.not_supported(path, other, &["OnFailure", "Never"]),
    }
}

/// `ValidatePodTemplateSpec` checks template labels under `spec.template.labels` (sic),
/// including the generated `job-name` labels: a 64-character Job name fails here.
fn template_metadata(job: &Job, v: &mut Findings) {
    let meta = &job.spec.template.metadata;
    let mut template_labels = meta.labels.clone();
    if !manual_selector(job) {
        for key in [LABEL_LEGACY_JOB_NAME, LABEL_JOB_NAME] {
            template_labels
                .entry(key.to_string())
                .or_insert_with(|| job.metadata.name().to_string());
        }
    }
    labels(&template_labels, "spec.template.labels", v);
    annotations(&meta.annotations, "spec.template.annotations", v);
}

fn pod_spec(pod: &crate::api::PodSpec, base: &str, images: Option<&Images>, v: &mut Findings) {
    let p = |field: &str| format!("{base}.{field}");

    if pod.volumes.is_some() {
        v.not_yet(&p("volumes"));
    }
    if pod.containers.is_empty() {
        v.required(&p("containers"), "");
    }
    let mut seen: Vec<&str> = Vec::new();
    for (i, c) in pod.containers.iter().enumerate() {
        container(c, &format!("{base}.containers[{i}]"), &mut seen, images, v);
    }
    if pod.init_containers.is_some() {
        v.not_yet(&p("initContainers"));
    }
    match &pod.restart_policy {
        Some(RestartPolicy::Other(other)) if !other.is_empty() => v.not_supported(
            &p("restartPolicy"),
            other,
            &["Always", "OnFailure", "Never"],
        ),
        _ => {}
    }
    if let Some(dns) = pod.dns_policy.as_deref()
        && !["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"].contains(&dns)
    {
        v.not_supported(
            &p("dnsPolicy"),
            dns,
            &["ClusterFirst", "ClusterFirstWithHostNet", "Default", "None"],
        );
    }
    if let Some(hostname) = pod.hostname.as_deref() {
        for msg in dns1123_label(hostname) {
            v.invalid(&p("hostname"), hostname, &msg);
        }
    }
    // Core `ValidatePodSpec`: 1..=MaxUint32 (`InclusiveRangeError`); a Job's may be 0.
    if let Some(secs) = pod.active_deadline_seconds
        && !(1..=i64::from(u32::MAX)).contains(&secs)
    {
        v.invalid(
            &p("activeDeadlineSeconds"),
            &secs,
            "must be between 1 and 4294967295, inclusive",
        );
    }
    v.non_negative(
        &p("terminationGracePeriodSeconds"),
        pod.termination_grace_period_seconds,
    );
    security_context(
        pod.security_context.as_ref(),
        &p("securityContext"),
        &crate::api::security::POD_FIELDS,
        v,
    );

    // Cluster-only fields: accepted so that cluster manifests run unchanged.
    const ONE_HOST: &str = "ignored: jobvisor runs every pod on this host";
    let ignored = [
        ("nodeSelector", pod.node_selector.is_some(), ONE_HOST),
        ("affinity", pod.affinity.is_some(), ONE_HOST),
        ("tolerations", pod.tolerations.is_some(), ONE_HOST),
        ("nodeName", pod.node_name.is_some(), ONE_HOST),
        (
            "serviceAccountName",
            pod.service_account_name.is_some(),
            "ignored: jobvisor has no service accounts",
        ),
        (
            "imagePullSecrets",
            pod.image_pull_secrets.is_some(),
            "ignored: jobvisor never pulls images",
        ),
        (
            "priorityClassName",
            pod.priority_class_name.is_some(),
            "ignored: jobvisor does not schedule or preempt pods",
        ),
    ];
    for (field, present, text) in ignored {
        if present {
            v.warn(&p(field), text);
        }
    }
}

fn container<'a>(
    c: &'a Container,
    path: &str,
    seen: &mut Vec<&'a str>,
    images: Option<&Images>,
    v: &mut Findings,
) {
    let p = |field: &str| format!("{path}.{field}");
    if c.name.is_empty() {
        v.required(&p("name"), "");
    } else {
        for msg in dns1123_label(&c.name) {
            v.invalid(&p("name"), &c.name, &msg);
        }
        if seen.contains(&c.name.as_str()) {
            v.duplicate(&p("name"), &c.name);
        }
        seen.push(&c.name);
    }
    let has_command = c.command.as_ref().is_some_and(|l| !l.is_empty());
    match c.image.as_deref() {
        None | Some("") => v.required(&p("image"), ""),
        Some(image) if image.trim() != image => v.invalid(
            &p("image"),
            image,
            "must not have leading or trailing whitespace",
        ),
        Some(image) if has_command => {
            // Never run here, but a cluster's kubelet would refuse it (InvalidImageName).
            if let Err(e) = Reference::normalized(image) {
                v.warn(
                    &p("image"),
                    &format!(
                        "{} is not a valid image reference ({e}): jobvisor runs command and \
                         not the image, but a cluster's kubelet refuses the pod",
                        go_quote(image)
                    ),
                );
            }
        }
        Some(_) => {}
    }
    if !has_command {
        runnable(c, path, images, v);
    }
    if c.ports.is_some() {
        v.warn(&p("ports"), "ignored: pods share the host's network");
    }
    for (i, env) in c.env.iter().enumerate() {
        let ep = format!("{path}.env[{i}]");
        if env.name.is_empty() {
            v.required(&format!("{ep}.name"), "");
        } else if !env
            .name
            .bytes()
            .all(|b| (0x20..=0x7e).contains(&b) && b != b'=')
        {
            v.invalid(
                &format!("{ep}.name"),
                &env.name,
                "a valid environment variable name must consist only of printable ASCII \
                 characters other than '='",
            );
        }
        if env.value_from.is_some() {
            v.not_yet(&format!("{ep}.valueFrom"));
        }
    }
    if c.env_from.is_some() {
        v.not_yet(&p("envFrom"));
    }
    if c.volume_mounts.is_some() {
        v.not_yet(&p("volumeMounts"));
    }
    if let Some(r) = c.resources.as_ref().filter(|r| !is_empty_object(r)) {
        resources(r, &p("resources"), v);
    }
    security_context(
        c.security_context.as_ref(),
        &p("securityContext"),
        &crate::api::security::CONTAINER_FIELDS,
        v,
    );
    if c.stdin == Some(true) {
        v.not_yet(&p("stdin"));
    }
    if c.tty == Some(true) {
        v.not_yet(&p("tty"));
    }
    if let Some(policy) = c.termination_message_policy.as_deref()
        && policy != "File"
        && policy != "FallbackToLogsOnError"
    {
        v.not_supported(
            &p("terminationMessagePolicy"),
            policy,
            &["File", "FallbackToLogsOnError"],
        );
    }
    if let Some(policy) = c.image_pull_policy.as_deref()
        && !["Always", "IfNotPresent", "Never"].contains(&policy)
    {
        v.not_supported(
            &p("imagePullPolicy"),
            policy,
            &["Always", "IfNotPresent", "Never"],
        );
    }
}

/// A container without `command` runs what its image's entry says (`crate::images`), so the
/// image must be a valid reference with an entry that gives something to run.
fn runnable(c: &Container, path: &str, images: Option<&Images>, v: &mut Findings) {
    if c.image
        .as_deref()
        .is_some_and(|i| !i.is_empty() && i.trim() != i)
    {
        return; // already refused for its whitespace
    }
    let empty = Images::empty();
    match crate::images::resolve(images.unwrap_or(&empty), c) {
        Ok(_) => {}
        // Only the daemon knows its table.
        Err(Unrunnable::NoEntry { .. } | Unrunnable::NoCommand { .. }) if images.is_none() => {}
        Err(Unrunnable::InvalidReference { image, error }) => {
            v.invalid(&format!("{path}.image"), &image, &error.to_string());
        }
        Err(why) => v.required(&format!("{path}.command"), &why.to_string()),
    }
}

/// `resources`: `cpu` and `memory` limits and requests, checked as the API server does
/// (`crate::quantity::resource_limits`); anything else is named and ignored.
fn resources(r: &Value, path: &str, v: &mut Findings) {
    if let Err(errors) = crate::quantity::resource_limits(r) {
        for e in errors {
            v.errors.push(format!("{path}.{e}"));
        }
    }
    let Some(map) = r.as_object() else {
        v.invalid(path, "", "must be an object");
        return;
    };
    for (section, value) in map {
        match section.as_str() {
            "limits" | "requests" => {
                for name in value.as_object().into_iter().flat_map(|m| m.keys()) {
                    if name != "cpu" && name != "memory" {
                        v.warn(
                            &format!("{path}.{section}[{name}]"),
                            "ignored: only cpu and memory are enforced",
                        );
                    }
                }
            }
            other => v.not_yet(&format!("{path}.{other}")),
        }
    }
}

/// `securityContext`: the user and group fields, checked as the API server does
/// (`ValidatePodSecurityContext`, `ValidateSecurityContext`: ids non-negative); any other
/// field is refused as not supported yet, since ignoring a restriction would be unsafe.
fn security_context(sc: Option<&Value>, path: &str, known: &[&str], v: &mut Findings) {
    let Some(sc) = sc else { return };
    let Some(map) = sc.as_object() else {
        v.invalid(path, "", "must be an object");
        return;
    };
    for name in map.keys().filter(|k| !known.contains(&k.as_str())) {
        v.not_yet(&format!("{path}.{name}"));
    }
    match crate::api::security::SecurityContext::from_value(Some(sc)) {
        Err((field, msg)) => v.invalid(&format!("{path}.{field}"), "", &msg),
        Ok(s) => {
            for (field, value) in [
                ("runAsUser", s.run_as_user),
                ("runAsGroup", s.run_as_group),
                ("fsGroup", s.fs_group),
            ] {
                if let Some(n) = value.filter(|n| !(0..=i64::from(i32::MAX)).contains(n)) {
                    v.invalid(
                        &format!("{path}.{field}"),
                        &n,
                        "must be between 0 and 2147483647, inclusive",
                    );
                }
            }
            for (i, g) in s.supplemental_groups.iter().flatten().enumerate() {
                if !(0..=i64::from(i32::MAX)).contains(g) {
                    v.invalid(
                        &format!("{path}.supplementalGroups[{i}]"),
                        g,
                        "must be between 0 and 2147483647, inclusive",
                    );
                }
            }
        }
    }
}

/// `resources: {}` is what Kubernetes itself shows; only real requests or limits are news.
fn is_empty_object(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Object(m) => m.values().all(is_empty_object),
        _ => false,
    }
}

// ---------------------------------------------------------------- names (apimachinery)

const DNS1123_LABEL_MSG: &str = "a lowercase RFC 1123 label must consist of lower case \
     alphanumeric characters or '-', and must start and end with an alphanumeric character \
     (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";

const DNS1123_SUBDOMAIN_MSG: &str = "a lowercase RFC 1123 subdomain must consist of lower case \
     alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character \
     (e.g. 'example.com', regex used for validation is \
     '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";

const QUALIFIED_NAME_MSG: &str = "must consist of alphanumeric characters, '-', '_' or '.', and \
     must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or \
     '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";

const LABEL_VALUE_MSG: &str = "a valid label must be an empty string or consist of alphanumeric \
     characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. \
     'MyValue',  or 'my_value',  or '12345', regex used for validation is \
     '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

fn max_len(n: usize) -> String {
    format!("must be no more than {n} characters")
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn is_label_shape(s: &str) -> bool {
    let b = s.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            alnum(first) && alnum(last) && b.iter().all(|c| alnum(c) || *c == b'-')
        }
        _ => false,
    }
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_name_part_shape(s: &str) -> bool {
    let b = s.as_bytes();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

pub(crate) fn dns1123_label(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len(63));
    }
    if !is_label_shape(s) {
        errs.push(DNS1123_LABEL_MSG.into());
    }
    errs
}

pub(crate) fn dns1123_subdomain(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 253 {
        errs.push(max_len(253));
    }
    if !s.split('.').all(is_label_shape) {
        errs.push(DNS1123_SUBDOMAIN_MSG.into());
    }
    errs
}

fn qualified_name(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    let parts: Vec<&str> = s.split('/').collect();
    let name = match parts.as_slice() {
        [name] => *name,
        [prefix, name] => {
            if prefix.is_empty() {
                errs.push("prefix part must be non-empty".into());
            } else {
                errs.extend(
                    dns1123_subdomain(prefix)
                        .into_iter()
                        .map(|m| format!("prefix part {m}")),
                );
            }
            *name
        }
        _ => {
            return vec![format!(
                "a qualified name {QUALIFIED_NAME_MSG} with an optional DNS subdomain prefix \
                 and '/' (e.g. 'example.com/MyName')"
            )];
        }
    };
    if name.is_empty() {
        errs.push("name part must be non-empty".into());
    } else if name.len() > 63 {
        errs.push(format!("name part {}", max_len(63)));
    }
    if !is_name_part_shape(name) {
        errs.push(format!("name part {QUALIFIED_NAME_MSG}"));
    }
    errs
}

fn label_value(s: &str) -> Vec<String> {
    let mut errs = Vec::new();
    if s.len() > 63 {
        errs.push(max_len(63));
    }
    if !s.is_empty() && !is_name_part_shape(s) {
        errs.push(LABEL_VALUE_MSG.into());
    }
    errs
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::api::{EnvVar, LabelSelectorRequirement};
    use crate::manifest::defaults;

    const BASE: &str = "\
apiVersion: batch/v1
kind: Job
metadata:
  name: ok
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: c
          image: busybox:1.36
          command: [\"true\"]
";

    pub(super) fn check(edit: impl FnOnce(&mut Job)) -> Findings {
        let mut job: Job = serde_saphyr::from_str(BASE).expect("base manifest parses");
        edit(&mut job);
        defaults::apply(&mut job);
        validate(&job, Some(&Images::builtin()))
    }

    pub(super) fn c0(job: &mut Job) -> &mut Container {
        &mut job.spec.template.spec.containers[0]
    }

    fn labels_of(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    type Edit = fn(&mut Job);

    #[test]
    fn base_manifest_is_valid() {
        assert_eq!(check(|_| {}), Findings::default());
    }

    #[test]
    fn each_rule_has_its_exact_message() {
        let long = "a".repeat(64);
        let sub = DNS1123_SUBDOMAIN_MSG;
        let lbl = DNS1123_LABEL_MSG;
        let cases: Vec<(&str, Edit, Vec<String>)> = vec![
            // ---- metadata
            ("name missing", |j| j.metadata.name = None,
             vec!["metadata.name: Required value: name or generateName is required".into()]),
            ("name not a subdomain", |j| j.metadata.name = Some("MyJob".into()),
             vec![format!("metadata.name: Invalid value: \"MyJob\": {sub}")]),
            ("name over 63 characters", |j| j.metadata.name = Some("a".repeat(64)),
             vec![format!("spec.template.labels: Invalid value: \"{long}\": must be no more than 63 characters")]),
            ("generateName only", |j| { j.metadata.name = None; j.metadata.generate_name = Some("x-".into()) },
             vec!["metadata.generateName: Forbidden: not supported by jobvisor: a Job read from a file needs a fixed metadata.name".into()]),
            ("namespace not a label", |j| j.metadata.namespace = Some("Team_A".into()),
             vec![format!("metadata.namespace: Invalid value: \"Team_A\": {lbl}")]),
            ("label key", |j| j.metadata.labels = labels_of(&[("bad key", "v")]),
             vec![format!("metadata.labels: Invalid value: \"bad key\": name part {QUALIFIED_NAME_MSG}")]),
            ("label key prefix", |j| j.metadata.labels = labels_of(&[("Example.com/app", "v")]),
             vec![format!("metadata.labels: Invalid value: \"Example.com/app\": prefix part {sub}")]),
            ("label value", |j| j.metadata.labels = labels_of(&[("app", "-x")]),
             vec![format!("metadata.labels: Invalid value: \"-x\": {LABEL_VALUE_MSG}")]),
            ("template label value length", |j| j.spec.template.metadata.labels = labels_of(&[("app", &"v".repeat(64))]),
             vec![format!("spec.template.labels: Invalid value: \"{}\": must be no more than 63 characters", "v".repeat(64))]),
            ("annotation key", |j| { j.metadata.annotations = labels_of(&[("a/b/c", "v")]); },
             vec![format!("metadata.annotations: Invalid value: \"a/b/c\": a qualified name {QUALIFIED_NAME_MSG} with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')")]),
            // ---- containers
            ("no containers", |j| j.spec.template.spec.containers.clear(),
             vec!["spec.template.spec.containers: Required value".into()]),
            ("container name missing", |j| c0(j).name.clear(),
             vec!["spec.template.spec.containers[0].name: Required value".into()]),
            ("container name not a label", |j| c0(j).name = "Web_1".into(),
             vec![format!("spec.template.spec.containers[0].name: Invalid value: \"Web_1\": {lbl}")]),
            ("container names unique", |j| { let c = c0(j).clone(); j.spec.template.spec.containers.push(c) },
             vec!["spec.template.spec.containers[1].name: Duplicate value: \"c\"".into()]),
            ("image missing", |j| c0(j).image = None,
             vec!["spec.template.spec.containers[0].image: Required value".into()]),
            ("image empty", |j| c0(j).image = Some(String::new()),
             vec!["spec.template.spec.containers[0].image: Required value".into()]),
            ("image whitespace", |j| c0(j).image = Some(" busybox".into()),
             vec!["spec.template.spec.containers[0].image: Invalid value: \" busybox\": must not have leading or trailing whitespace".into()]),
            // A container without command runs its image's entry (busybox is built in).
            ("command missing, image with an alias", |j| c0(j).command = None, vec![]),
            ("command empty, image with an alias", |j| c0(j).command = Some(vec![]), vec![]),
            ("only args, image with an alias", |j| { c0(j).command = None; c0(j).args = Some(vec!["sh".into(), "-c".into(), "echo hi".into()]) }, vec![]),
            ("command missing, image without an alias", |j| { c0(j).command = None; c0(j).image = Some("nginx".into()) },
             vec![format!("spec.template.spec.containers[0].command: Required value: image \"docker.io/library/nginx:latest\" has no entry under images: in the daemon config; set command, or add the image there")]),
            ("only args, image without an alias", |j| { c0(j).command = None; c0(j).args = Some(vec!["x".into()]); c0(j).image = Some("registry.example.com:5000/x/y:1.2".into()) },
             vec!["spec.template.spec.containers[0].command: Required value: image \"registry.example.com:5000/x/y:1.2\" has no entry under images: in the daemon config; set command, or add the image there".into()]),
            ("command missing, image invalid", |j| { c0(j).command = None; c0(j).image = Some("Busybox".into()) },
             vec!["spec.template.spec.containers[0].image: Invalid value: \"Busybox\": invalid reference format: repository name (library/Busybox) must be lowercase".into()]),
            ("neither image nor command", |j| { c0(j).command = None; c0(j).image = None },
             vec!["spec.template.spec.containers[0].image: Required value".into(),
                  "spec.template.spec.containers[0].command: Required value: the container has no image to take a command from; set command".into()]),
            ("command missing, image whitespace", |j| { c0(j).command = None; c0(j).image = Some("busybox ".into()) },
             vec!["spec.template.spec.containers[0].image: Invalid value: \"busybox \": must not have leading or trailing whitespace".into()]),
            ("env name missing", |j| c0(j).env = vec![EnvVar { value: Some("x".into()), ..EnvVar::default() }],
             vec!["spec.template.spec.containers[0].env[0].name: Required value".into()]),
            ("env name with =", |j| c0(j).env = vec![EnvVar { name: "A=B".into(), ..EnvVar::default() }],
             vec!["spec.template.spec.containers[0].env[0].name: Invalid value: \"A=B\": a valid environment variable name must consist only of printable ASCII characters other than '='".into()]),
            ("env name not ASCII", |j| c0(j).env = vec![EnvVar { name: "É".into(), ..EnvVar::default() }],
             vec!["spec.template.spec.containers[0].env[0].name: Invalid value: \"É\": a valid environment variable name must consist only of printable ASCII characters other than '='".into()]),
            ("env names may repeat", |j| c0(j).env = vec![
                EnvVar { name: "A".into(), value: Some("1".into()), ..EnvVar::default() },
                EnvVar { name: "A".into(), value: Some("2".into()), ..EnvVar::default() },
                EnvVar { name: "my.env-name".into(), ..EnvVar::default() },
             ], vec![]),
            ("imagePullPolicy", |j| c0(j).image_pull_policy = Some("Sometimes".into()),
             vec!["spec.template.spec.containers[0].imagePullPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"IfNotPresent\", \"Never\"".into()]),
            ("terminationMessagePolicy", |j| c0(j).termination_message_policy = Some("Log".into()),
             vec!["spec.template.spec.containers[0].terminationMessagePolicy: Unsupported value: \"Log\": supported values: \"File\", \"FallbackToLogsOnError\"".into()]),
            // ---- restartPolicy
            ("restartPolicy missing", |j| j.spec.template.spec.restart_policy = None,
             vec!["spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"".into()]),
            ("restartPolicy Always", |j| j.spec.template.spec.restart_policy = Some("Always".into()),
             vec!["spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"".into()]),
            ("restartPolicy unknown", |j| j.spec.template.spec.restart_policy = Some("Sometimes".into()),
             vec![
                "spec.template.spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\"".into(),
                "spec.template.spec.restartPolicy: Unsupported value: \"Sometimes\": supported values: \"OnFailure\", \"Never\"".into(),
             ]),
            ("restartPolicy OnFailure", |j| j.spec.template.spec.restart_policy = Some("OnFailure".into()), vec![]),
            // ---- numbers
            ("parallelism", |j| j.spec.parallelism = Some(-1),
             vec!["spec.parallelism: Invalid value: -1: must be greater than or equal to 0".into()]),
            ("completions", |j| j.spec.completions = Some(-2),
             vec!["spec.completions: Invalid value: -2: must be greater than or equal to 0".into()]),
            ("activeDeadlineSeconds", |j| j.spec.active_deadline_seconds = Some(-1),
             vec!["spec.activeDeadlineSeconds: Invalid value: -1: must be greater than or equal to 0".into()]),
            ("activeDeadlineSeconds is supported", |j| j.spec.active_deadline_seconds = Some(30), vec![]),
            ("backoffLimit", |j| j.spec.backoff_limit = Some(-1),
             vec!["spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0".into()]),
            ("ttlSecondsAfterFinished negative", |j| j.spec.ttl_seconds_after_finished = Some(-1),
             vec!["spec.ttlSecondsAfterFinished: Invalid value: -1: must be greater than or equal to 0".into()]),
            ("terminationGracePeriodSeconds", |j| j.spec.template.spec.termination_grace_period_seconds = Some(-1),
             vec!["spec.template.spec.terminationGracePeriodSeconds: Invalid value: -1: must be greater than or equal to 0".into()]),
            ("zero is fine", |j| { j.spec.parallelism = Some(0); j.spec.backoff_limit = Some(0) }, vec![]),
            // ---- enums
            ("completionMode unknown", |j| j.spec.completion_mode = Some("Ordered".into()),
             vec!["spec.completionMode: Unsupported value: \"Ordered\": supported values: \"NonIndexed\", \"Indexed\"".into()]),
            ("podReplacementPolicy unknown", |j| j.spec.pod_replacement_policy = Some("Never".into()),
             vec!["spec.podReplacementPolicy: Unsupported value: \"Never\": supported values: \"Failed\", \"TerminatingOrFailed\"".into()]),
            ("podReplacementPolicy Failed", |j| j.spec.pod_replacement_policy = Some("Failed".into()), vec![]),
            ("dnsPolicy", |j| j.spec.template.spec.dns_policy = Some("Google".into()),
             vec!["spec.template.spec.dnsPolicy: Unsupported value: \"Google\": supported values: \"ClusterFirst\", \"ClusterFirstWithHostNet\", \"Default\", \"None\"".into()]),
            // ---- selector
            ("manualSelector without selector", |j| j.spec.manual_selector = Some(true),
             vec!["spec.selector: Required value".into()]),
            ("manual selector must match", |j| {
                j.spec.manual_selector = Some(true);
                j.spec.selector = Some(LabelSelector { match_labels: labels_of(&[("app", "y")]), ..LabelSelector::default() });
                j.spec.template.metadata.labels = labels_of(&[("app", "x")]);
             }, vec!["spec.template.metadata.labels: Invalid value: {\"app\":\"x\"}: `selector` does not match template `labels`".into()]),
            ("manual selector matching", |j| {
                j.spec.manual_selector = Some(true);
                j.spec.selector = Some(LabelSelector { match_expressions: vec![LabelSelectorRequirement {
                    key: "app".into(), operator: "In".into(), values: vec!["x".into(), "z".into()] }], ..LabelSelector::default() });
                j.spec.template.metadata.labels = labels_of(&[("app", "x")]);
             }, vec![]),
            ("selector operator", |j| {
                j.spec.manual_selector = Some(true);
                j.spec.selector = Some(LabelSelector { match_expressions: vec![LabelSelectorRequirement {
                    key: "app".into(), operator: "Is".into(), values: vec![] }], ..LabelSelector::default() });
             }, vec!["spec.selector.matchExpressions[0].operator: Invalid value: \"Is\": not a valid selector operator".into()]),
            ("selector In needs values", |j| {
                j.spec.manual_selector = Some(true);
                j.spec.selector = Some(LabelSelector { match_expressions: vec![LabelSelectorRequirement {
                    key: "app".into(), operator: "In".into(), values: vec![] }], ..LabelSelector::default() });
             }, vec!["spec.selector.matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'".into()]),
            ("manual selector, template without labels", |j| {
                j.spec.manual_selector = Some(true);
                j.spec.selector = Some(LabelSelector { match_labels: labels_of(&[("app", "x")]), ..LabelSelector::default() });
             }, vec!["spec.template.metadata.labels: Invalid value: null: `selector` does not match template `labels`".into()]),
            ("selector without manualSelector", |j| {
                j.spec.selector = Some(LabelSelector { match_labels: labels_of(&[("app", "x")]), ..LabelSelector::default() });
                j.spec.template.metadata.labels = labels_of(&[("app", "x")]);
             }, vec!["spec.selector: Invalid value: {\"matchLabels\":{\"app\":\"x\"}}: `selector` not auto-generated".into()]),
            ("selector on the generated job-name label", |j| {
                j.spec.selector = Some(LabelSelector { match_labels: labels_of(&[(LABEL_JOB_NAME, "ok")]), ..LabelSelector::default() });
             }, vec![]),
            ("template job-name label", |j| j.spec.template.metadata.labels = labels_of(&[("job-name", "other")]),
             vec!["spec.template.metadata.labels[job-name]: Invalid value: {\"job-name\":\"other\"}: must be 'ok'".into()]),
            ("template job-name label equal to the name", |j| j.spec.template.metadata.labels = labels_of(&[(LABEL_JOB_NAME, "ok")]), vec![]),
            ("template controller-uid label", |j| j.spec.template.metadata.labels = labels_of(&[(LABEL_CONTROLLER_UID, "123")]),
             vec!["spec.template.metadata.labels[batch.kubernetes.io/controller-uid]: Forbidden: set to the Job's uid by jobvisor; set manualSelector: true to choose labels and selector yourself".into()]),
            // ---- not run by jobvisor yet
            ("managedBy", |j| j.spec.managed_by = Some("example.com/other".into()),
             vec!["spec.managedBy: Forbidden: not supported by jobvisor: it runs every Job itself, so only \"kubernetes.io/job-controller\"".into()]),
            ("managedBy not a path", |j| j.spec.managed_by = Some("other".into()),
             vec!["spec.managedBy: Invalid value: \"other\": must be a domain-prefixed path (such as \"acme.io/foo\")".into()]),
            ("managedBy too long", |j| j.spec.managed_by = Some(format!("example.com/{}", "x".repeat(52))),
             vec!["spec.managedBy: Too long: may not be more than 63 bytes".into()]),
            ("managedBy job-controller", |j| j.spec.managed_by = Some("kubernetes.io/job-controller".into()), vec![]),
            ("ttlSecondsAfterFinished is supported", |j| j.spec.ttl_seconds_after_finished = Some(100), vec![]),
            ("ttlSecondsAfterFinished 0 is supported", |j| j.spec.ttl_seconds_after_finished = Some(0), vec![]),
            ("suspend is supported", |j| j.spec.suspend = Some(true), vec![]),
            ("suspend false", |j| j.spec.suspend = Some(false), vec![]),
            ("initContainers", |j| j.spec.template.spec.init_containers = Some(json!([])),
             vec!["spec.template.spec.initContainers: Forbidden: not supported by jobvisor yet".into()]),
            ("pod activeDeadlineSeconds is supported", |j| j.spec.template.spec.active_deadline_seconds = Some(5), vec![]),
            ("pod activeDeadlineSeconds 0", |j| j.spec.template.spec.active_deadline_seconds = Some(0),
             vec!["spec.template.spec.activeDeadlineSeconds: Invalid value: 0: must be between 1 and 4294967295, inclusive".into()]),
            ("pod activeDeadlineSeconds too big", |j| j.spec.template.spec.active_deadline_seconds = Some(4294967296),
             vec!["spec.template.spec.activeDeadlineSeconds: Invalid value: 4294967296: must be between 1 and 4294967295, inclusive".into()]),
            ("pod securityContext users", |j| j.spec.template.spec.security_context = Some(json!({
                "runAsUser": 1000, "runAsGroup": 3000, "supplementalGroups": [4000], "fsGroup": 2000, "runAsNonRoot": true})),
             vec![]),
            ("pod securityContext: other fields, negative ids", |j| j.spec.template.spec.security_context = Some(json!({
                "runAsUser": -1, "supplementalGroups": [5, -2], "seccompProfile": {"type": "RuntimeDefault"}})),
             vec![
                "spec.template.spec.securityContext.seccompProfile: Forbidden: not supported by jobvisor yet".into(),
                "spec.template.spec.securityContext.runAsUser: Invalid value: -1: must be between 0 and 2147483647, inclusive".into(),
                "spec.template.spec.securityContext.supplementalGroups[1]: Invalid value: -2: must be between 0 and 2147483647, inclusive".into(),
             ]),
            ("volumes", |j| j.spec.template.spec.volumes = Some(json!([])),
             vec!["spec.template.spec.volumes: Forbidden: not supported by jobvisor yet".into()]),
            ("envFrom", |j| c0(j).env_from = Some(json!([])),
             vec!["spec.template.spec.containers[0].envFrom: Forbidden: not supported by jobvisor yet".into()]),
            ("container securityContext", |j| c0(j).security_context = Some(json!({"runAsUser": 1000, "runAsNonRoot": true})),
             vec![]),
            ("container securityContext: pod-only field, bad type", |j| c0(j).security_context = Some(json!({"fsGroup": 1, "runAsGroup": "x"})),
             vec![
                "spec.template.spec.containers[0].securityContext.fsGroup: Forbidden: not supported by jobvisor yet".into(),
                "spec.template.spec.containers[0].securityContext.runAsGroup: Invalid value: \"\": must be an integer, not \"x\"".into(),
             ]),
            ("volumeMounts", |j| c0(j).volume_mounts = Some(json!([])),
             vec!["spec.template.spec.containers[0].volumeMounts: Forbidden: not supported by jobvisor yet".into()]),
            ("stdin", |j| c0(j).stdin = Some(true),
             vec!["spec.template.spec.containers[0].stdin: Forbidden: not supported by jobvisor yet".into()]),
            ("tty", |j| c0(j).tty = Some(true),
             vec!["spec.template.spec.containers[0].tty: Forbidden: not supported by jobvisor yet".into()]),
            ("stdin false", |j| { c0(j).stdin = Some(false); c0(j).tty = Some(false) }, vec![]),
            ("env valueFrom", |j| c0(j).env = vec![EnvVar { name: "POD".into(), value_from: Some(json!({"fieldRef": {"fieldPath": "metadata.name"}})), ..EnvVar::default() }],
             vec!["spec.template.spec.containers[0].env[0].valueFrom: Forbidden: not supported by jobvisor yet".into()]),
        ];
        for (name, edit, want) in cases {
            assert_eq!(check(edit).errors, want, "case {name:?}");
        }
    }

    /// Without the daemon's table (the CLI's apply), only what needs no table is judged.
    #[test]
    fn without_a_table_only_the_image_itself_is_judged() {
        let job = |image: Option<&str>| {
            let mut job: Job = serde_saphyr::from_str(BASE).expect("base manifest parses");
            c0(&mut job).command = None;
            c0(&mut job).image = image.map(String::from);
            defaults::apply(&mut job);
            validate(&job, None).errors
        };
        assert_eq!(job(Some("nginx")), Vec::<String>::new());
        assert_eq!(job(Some("Nginx")).len(), 1);
        assert_eq!(job(None).len(), 2);
    }

    /// An entry that gives nothing to run (say, only an `env`) needs `command` or `args`.
    #[test]
    fn an_entry_without_entrypoint_or_cmd_needs_command_or_args() {
        let images = Images::empty()
            .with([("envonly".to_string(), Default::default())].into())
            .expect("table");
        let found = |args: Option<Vec<String>>| {
            let mut job: Job = serde_saphyr::from_str(BASE).expect("base manifest parses");
            c0(&mut job).command = None;
            c0(&mut job).args = args;
            c0(&mut job).image = Some("envonly:1".into());
            defaults::apply(&mut job);
            validate(&job, Some(&images)).errors
        };
        assert_eq!(
            found(None),
            [
                "spec.template.spec.containers[0].command: Required value: image \"docker.io/library/envonly:1\" has neither entrypoint nor cmd under images: in the daemon config; set command or args"
            ]
        );
        assert_eq!(found(Some(vec!["run".into()])), Vec::<String>::new());
    }

    /// An image jobvisor does not use (command is set) but a cluster could not pull.
    #[test]
    fn an_invalid_image_reference_with_a_command_warns() {
        let found = check(|j| c0(j).image = Some("Busybox:1.36".into()));
        assert_eq!(found.errors, Vec::<String>::new());
        assert_eq!(
            found.warnings,
            [
                "spec.template.spec.containers[0].image: \"Busybox:1.36\" is not a valid image reference (invalid reference format: repository name (library/Busybox) must be lowercase): jobvisor runs command and not the image, but a cluster's kubelet refuses the pod"
            ]
        );
    }

    #[test]
    fn cluster_only_fields_warn() {
        let cases: Vec<(&str, Edit, &str)> = vec![
            (
                "nodeSelector",
                |j| {
                    j.spec.template.spec.node_selector =
                        Some([("disk".into(), "ssd".into())].into())
                },
                "spec.template.spec.nodeSelector: ignored: jobvisor runs every pod on this host",
            ),
            (
                "affinity",
                |j| j.spec.template.spec.affinity = Some(json!({})),
                "spec.template.spec.affinity: ignored: jobvisor runs every pod on this host",
            ),
            (
                "tolerations",
                |j| j.spec.template.spec.tolerations = Some(vec![]),
                "spec.template.spec.tolerations: ignored: jobvisor runs every pod on this host",
            ),
            (
                "serviceAccountName",
                |j| j.spec.template.spec.service_account_name = Some("sa".into()),
                "spec.template.spec.serviceAccountName: ignored: jobvisor has no service accounts",
            ),
            (
                "imagePullSecrets",
                |j| {
                    j.spec.template.spec.image_pull_secrets =
                        Some(vec![crate::api::LocalObjectReference {
                            name: Some("r".into()),
                        }])
                },
                "spec.template.spec.imagePullSecrets: ignored: jobvisor never pulls images",
            ),
            (
                "priorityClassName",
                |j| j.spec.template.spec.priority_class_name = Some("high".into()),
                "spec.template.spec.priorityClassName: ignored: jobvisor does not schedule or preempt pods",
            ),
            (
                "resources",
                |j| {
                    c0(j).resources =
                        Some(json!({"limits": {"cpu": "1", "ephemeral-storage": "1Gi"}}))
                },
                "spec.template.spec.containers[0].resources.limits[ephemeral-storage]: ignored: only cpu and memory are enforced",
            ),
            (
                "ports",
                |j| {
                    c0(j).ports = Some(vec![crate::api::ContainerPort {
                        container_port: 80,
                        ..Default::default()
                    }])
                },
                "spec.template.spec.containers[0].ports: ignored: pods share the host's network",
            ),
            (
                "name with dots",
                |j| j.metadata.name = Some("nightly.backup".into()),
                "metadata.name: this is used in Pod names and hostnames, which can result in surprising behavior; a DNS label is recommended: [must not contain dots]",
            ),
        ];
        for (name, edit, want) in cases {
            let found = check(edit);
            assert_eq!(found.errors, Vec::<String>::new(), "case {name:?}");
            assert_eq!(found.warnings, vec![want.to_string()], "case {name:?}");
        }
        // Kubernetes shows `resources: {}` on every container: not worth a warning.
        assert_eq!(
            check(|j| c0(j).resources = Some(json!({}))),
            Findings::default()
        );
    }

    #[test]
    fn all_errors_at_once() {
        let found = check(|j| {
            j.spec.backoff_limit = Some(-1);
            j.spec.template.spec.restart_policy = None;
            c0(j).image = None;
        });
        assert_eq!(found.errors.len(), 3, "{:?}", found.errors);
    }

    #[test]
    fn name_helpers() {
        assert!(dns1123_label("a-1").is_empty());
        assert!(!dns1123_label("-a").is_empty());
        assert!(!dns1123_label("a.b").is_empty());
        assert!(!dns1123_label("").is_empty());
        assert!(dns1123_subdomain("a.b-c.d").is_empty());
        assert!(!dns1123_subdomain("a..b").is_empty());
        assert_eq!(dns1123_subdomain(&"a".repeat(254)), vec![max_len(253)]);
        assert!(qualified_name("example.com/My_Name.1").is_empty());
        assert_eq!(
            qualified_name("/x"),
            vec!["prefix part must be non-empty".to_string()]
        );
        assert_eq!(
            qualified_name(""),
            vec![
                "name part must be non-empty".to_string(),
                format!("name part {QUALIFIED_NAME_MSG}")
            ]
        );
        assert!(label_value("").is_empty());
        assert!(label_value("My_Value.1").is_empty());
    }
}
