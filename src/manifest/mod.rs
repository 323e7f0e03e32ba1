//! Manifest files → validated, defaulted Jobs, all or nothing per file; and the identity the
//! API server would give a new Job ([`assign_identity`]).
//!
//! The pipeline per file: `parse` (text → typed objects, kind dispatch, strict fields) →
//! `defaults` (what the API server fills in) → `validate` (its rules and jobvisor's) →
//! here: kubectl-style reports and duplicate names. Nothing here touches the store or the
//! clock; the caller passes uid and time to [`assign_identity`].

pub mod applied;
mod configmap;
pub mod declared;
mod defaults;
mod parse;
mod strict;
mod validate;

use std::path::Path;

use jiff::Timestamp;
use serde_json::Value;

use crate::api::{
    ANNOTATION_SOURCE, CronJob, JOB_API_VERSION, Job, Kind, LABEL_CONTROLLER_UID, LABEL_JOB_NAME,
    LABEL_LEGACY_CONTROLLER_UID, LABEL_LEGACY_JOB_NAME, LabelSelector, Pod,
};

use crate::images::Images;
pub use applied::ObjectId;
use parse::{Format, Origin, go_quote, object_prefix};
pub use validate::{invalid_value, required_value};

/// The API server refuses larger requests; a manifest file gets the same limit.
pub const MAX_FILE_BYTES: usize = 3 * 1024 * 1024;

/// What one file yields. All or nothing: `jobs` is empty whenever `errors` is not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileReport {
    /// Parsed, defaulted, validated Jobs in file order; identity (uid, generated labels) not yet assigned.
    pub jobs: Vec<Job>,
    /// Parsed, defaulted, validated bare Pods in file order, identity not yet assigned.
    pub pods: Vec<Pod>,
    /// Parsed, defaulted, validated CronJobs in file order, identity not yet assigned.
    pub cronjobs: Vec<CronJob>,
    /// Parsed, defaulted, validated objects of declared kinds (`declared`) in file order.
    pub declared: Vec<declared::DeclaredObject>,
    /// Every object of `jobs` and `pods` in file order, by identity and as written: untyped,
    /// without defaults, what kubectl would send (and what `apply` stores).
    pub objects: Vec<(ObjectId, Value)>,
    /// Each error fully formatted and naming the file (and line, or field path).
    pub errors: Vec<String>,
    /// Accepted but worth saying (ignored cluster-only fields, DNS-label advice, …).
    pub warnings: Vec<String>,
}

/// Parses, defaults and validates the text of one manifest file.
///
/// `*.json` is read as JSON (one object, or a `kind: List`); anything else as a YAML stream
/// of `---`-separated documents, where empty documents are skipped. Each Job gets the
/// [`ANNOTATION_SOURCE`] annotation naming `path`. `images` is the daemon config's image
/// table, against which containers without `command` are judged; `None` leaves that to the
/// daemon (a client that cannot know its table).
pub fn load(path: &Path, text: &str, images: Option<&Images>) -> FileReport {
    let file = path.display().to_string();
    if text.len() > MAX_FILE_BYTES {
        return too_large(&file);
    }
    let parsed = parse::parse(&file, text, format_of(path));
    let multi = parsed.multi_document;
    let mut report = FileReport {
        errors: parsed.errors,
        ..FileReport::default()
    };

    let mut seen = Seen::default();
    let mut objects = Vec::new();
    for (origin, mut job, written) in parsed.jobs {
        defaults::apply(&mut job);
        let findings = validate::validate(&job, images);
        let object = Checked {
            kind: "Job",
            origin,
            meta: &job.metadata,
            findings,
        };
        seen.check(&file, multi, object, &mut report);
        job.metadata
            .annotations
            .insert(ANNOTATION_SOURCE.to_string(), file.clone());
        objects.push((origin, ObjectId::new(Kind::Job, &job.metadata), written));
        report.jobs.push(job);
    }
    for (origin, mut pod, written) in parsed.pods {
        defaults::apply_pod(&mut pod);
        let findings = validate::validate_pod(&pod, images);
        let object = Checked {
            kind: "Pod",
            origin,
            meta: &pod.metadata,
            findings,
        };
        seen.check(&file, multi, object, &mut report);
        pod.metadata
            .annotations
            .insert(ANNOTATION_SOURCE.to_string(), file.clone());
        objects.push((origin, ObjectId::new(Kind::Pod, &pod.metadata), written));
        report.pods.push(pod);
    }
    for (origin, mut cj, written) in parsed.cronjobs {
        defaults::apply_cronjob(&mut cj);
        let findings = validate::validate_cronjob(&cj, &template_as_job(&cj), images);
        let object = Checked {
            kind: "CronJob",
            origin,
            meta: &cj.metadata,
            findings,
        };
        seen.check(&file, multi, object, &mut report);
        cj.metadata
            .annotations
            .insert(ANNOTATION_SOURCE.to_string(), file.clone());
        objects.push((origin, ObjectId::new(Kind::CronJob, &cj.metadata), written));
        report.cronjobs.push(cj);
    }
    for (origin, kind, typed, written) in parsed.declared {
        let (object, findings) = match declared::admit(kind, typed, &file) {
            Ok(admitted) => admitted,
            Err(e) => {
                report.errors.push(format!("{file}: {e}"));
                continue;
            }
        };
        let checked = Checked {
            kind: kind.resource().name,
            origin,
            meta: &object.metadata,
            findings,
        };
        seen.check(&file, multi, checked, &mut report);
        objects.push((origin, ObjectId::new(kind, &object.metadata), written));
        report.declared.push(object);
    }
    if !report.errors.is_empty() {
        report.jobs.clear();
        report.pods.clear();
        report.cronjobs.clear();
        report.declared.clear();
        return report;
    }
    objects.sort_by_key(|(origin, _, _)| (origin.document, origin.item));
    report.objects = objects.into_iter().map(|(_, id, v)| (id, v)).collect();
    report
}

/// The objects a file names, read from its text alone: what `delete -f` needs. Only what
/// names an object (its kind, `metadata.name`, `metadata.namespace`) must be right; the rest
/// is not judged, so objects can be deleted with a file that no longer validates.
pub fn identities(path: &Path, text: &str) -> Result<Vec<ObjectId>, Vec<String>> {
    let file = path.display().to_string();
    if text.len() > MAX_FILE_BYTES {
        return Err(too_large(&file).errors);
    }
    let parsed = parse::untyped(&file, text, format_of(path));
    let mut errors = parsed.errors;
    let mut ids = Vec::new();
    for (origin, kind, value) in &parsed.objects {
        let text_at = |pointer: &str| value.pointer(pointer).and_then(Value::as_str);
        match text_at("/metadata/name").filter(|n| !n.is_empty()) {
            Some(name) => ids.push(ObjectId {
                kind: *kind,
                namespace: text_at("/metadata/namespace")
                    .filter(|n| !n.is_empty())
                    .unwrap_or("default")
                    .to_string(),
                name: name.to_string(),
            }),
            // kubectl's words for an object without a name.
            None => errors.push(format!(
                "{}resource name may not be empty",
                object_prefix(&file, *origin, parsed.multi_document, false)
            )),
        }
    }
    if errors.is_empty() {
        Ok(ids)
    } else {
        Err(errors)
    }
}

fn format_of(path: &Path) -> Format {
    match path.extension() {
        Some(ext) if ext.eq_ignore_ascii_case("json") => Format::Json,
        _ => Format::Yaml,
    }
}

/// One object after defaulting and validation, for the file's report.
struct Checked<'a> {
    kind: &'static str,
    origin: Origin,
    meta: &'a crate::api::ObjectMeta,
    findings: validate::Findings,
}

/// The objects of a file so far: `(kind, namespace, name)` and where each was first defined.
#[derive(Default)]
struct Seen(Vec<(&'static str, String, String, Origin)>);

impl Seen {
    /// Reports the object's findings and a second definition of the same object.
    fn check(&mut self, file: &str, multi: bool, object: Checked<'_>, report: &mut FileReport) {
        let Checked {
            kind,
            origin,
            meta,
            findings,
        } = object;
        let prefix = object_prefix(file, origin, multi, false);
        let name = meta.name().to_string();
        for w in &findings.warnings {
            report
                .warnings
                .push(format!("{prefix}{kind} {}: {w}", go_quote(&name)));
        }
        if !findings.errors.is_empty() {
            report
                .errors
                .push(invalid_report(&prefix, kind, &name, &findings.errors));
        }
        if name.is_empty() {
            return;
        }
        let namespace = meta.namespace().to_string();
        match self
            .0
            .iter()
            .find(|(k, ns, n, _)| *k == kind && *ns == namespace && *n == name)
        {
            Some((_, _, _, first)) => report.errors.push(format!(
                "{prefix}{kind} {} in namespace {} is already defined in this file at {}",
                go_quote(&name),
                go_quote(&namespace),
                describe(*first, multi)
            )),
            None => self.0.push((kind, namespace, name, origin)),
        }
    }
}

fn too_large(file: &str) -> FileReport {
    FileReport {
        errors: vec![format!(
            "{file}: file is larger than {} MiB, the Kubernetes API request limit",
            MAX_FILE_BYTES / (1024 * 1024)
        )],
        ..FileReport::default()
    }
}

/// kubectl's words for an object the API server refused (`The ConfigMap "x" is invalid: …`),
/// after `prefix` (the file, say).
pub fn invalid_object(prefix: &str, kind: Kind, name: &str, causes: &[String]) -> String {
    invalid_report(prefix, kind.resource().name, name, causes)
}

/// kubectl's rendering of an Invalid status (`kubectl/pkg/cmd/util/helpers.go`): one cause
/// inline, several as a `* ` list under a header (causes arrive deduplicated).
fn invalid_report(prefix: &str, kind: &str, name: &str, causes: &[String]) -> String {
    let head = format!("{prefix}The {kind} {} is invalid: ", go_quote(name));
    match causes {
        [one] => format!("{head}{one}"),
        many => {
            let lines: Vec<String> = many.iter().map(|c| format!("* {c}")).collect();
            format!("{head}\n{}", lines.join("\n"))
        }
    }
}

/// `line 3`, `items[2]` or `line 3, items[2]`: where an earlier object of the file starts.
fn describe(origin: Origin, multi: bool) -> String {
    let line = origin.line.filter(|_| multi).map(|l| format!("line {l}"));
    let item = origin.item.map(|i| format!("items[{i}]"));
    match (line, item) {
        (Some(l), Some(i)) => format!("{l}, {i}"),
        (Some(l), None) => l,
        (None, Some(i)) => i,
        (None, None) => format!("document {}", origin.document),
    }
}

/// Gives a new Job its server-assigned identity, as the API server's create strategy does:
/// uid, creationTimestamp, generation 1, the generated selector and the four template labels,
/// and the Job's own labels copied from the template when it has none.
pub fn assign_identity(job: &mut Job, uid: &str, now: Timestamp) {
    job.metadata.uid = Some(uid.to_string());
    job.metadata.creation_timestamp = Some(now);
    job.metadata.generation = Some(1);

    // strategy.go generateSelector: labels a user already set are kept (validation has
    // rejected conflicting ones), and manualSelector leaves both alone.
    if job.spec.manual_selector != Some(true) {
        let name = job.metadata.name().to_string();
        let labels = &mut job.spec.template.metadata.labels;
        for (key, value) in [
            (LABEL_LEGACY_CONTROLLER_UID, uid),
            (LABEL_LEGACY_JOB_NAME, name.as_str()),
            (LABEL_CONTROLLER_UID, uid),
            (LABEL_JOB_NAME, name.as_str()),
        ] {
            labels
                .entry(key.to_string())
                .or_insert_with(|| value.to_string());
        }
        job.spec
            .selector
            .get_or_insert_with(LabelSelector::default)
            .match_labels
            .entry(LABEL_CONTROLLER_UID.to_string())
            .or_insert_with(|| uid.to_string());
    }
    if job.metadata.labels.is_empty() {
        job.metadata.labels = job.spec.template.metadata.labels.clone();
    }
}

/// A CronJob's template as the Job it would create (named after the CronJob), with the Job
/// defaults applied: what its template is validated as.
fn template_as_job(cj: &CronJob) -> Job {
    let template = &cj.spec.job_template;
    let mut job = Job {
        api_version: JOB_API_VERSION.into(),
        kind: "Job".into(),
        metadata: crate::api::ObjectMeta {
            name: cj.metadata.name.clone(),
            namespace: cj.metadata.namespace.clone(),
            labels: template.metadata.labels.clone(),
            annotations: template.metadata.annotations.clone(),
            ..Default::default()
        },
        spec: template.spec.clone(),
        status: None,
    };
    defaults::apply(&mut job);
    job
}

/// The Job a CronJob's controller made for a slot, as the API server creates it: the Job
/// defaults, then the identity of [`assign_identity`].
pub fn admit_cronjob_job(mut job: Job, uid: &str, now: Timestamp) -> Job {
    let metadata = job.metadata.clone();
    defaults::apply(&mut job);
    // Defaulting clears what a file must not set; these the controller set on purpose.
    job.metadata.owner_references = metadata.owner_references;
    assign_identity(&mut job, uid, now);
    job
}

/// Why a Job sent to the jobs collection (`POST`) is refused before anything is looked up.
#[derive(Debug, Clone, PartialEq)]
pub enum Refused {
    /// Not one decodable `batch/v1` Job: the API server's 400 BadRequest.
    BadRequest(String),
    /// Its validation failed: 422 Invalid, one `<field>: <message>` per cause.
    Invalid { name: String, causes: Vec<String> },
    /// A Job that no CronJob owns: jobvisor makes those from files only (403 Forbidden).
    NotOwnedByCronJob { name: String },
}

/// How a request body is named in parse errors (it has no file).
const REQUEST_BODY: &str = "request body";

/// A Job sent to the API to be created, as the API server admits it: strictly decoded (JSON
/// or YAML), defaulted and validated exactly like a Job of a manifest file, except that it
/// must carry one controller reference to a `batch/v1` CronJob (`kubectl create job
/// --from=cronjob/…` sets it), which a file's Job must not. It lands in `namespace` (the
/// request's), unless it names another. Whether that CronJob exists is the caller's to
/// check; [`admit_cronjob_job`] then gives the Job its identity.
pub fn load_api_job(
    body: &str,
    namespace: &str,
    images: Option<&crate::images::Images>,
) -> Result<Job, Refused> {
    if body.len() > MAX_FILE_BYTES {
        return Err(Refused::BadRequest(format!(
            "the {REQUEST_BODY} is larger than {} MiB, the Kubernetes API request limit",
            MAX_FILE_BYTES / (1024 * 1024)
        )));
    }
    // JSON is YAML, so one reading takes both, as the API server takes either.
    let parsed = parse::parse(REQUEST_BODY, body, Format::Yaml);
    if !parsed.errors.is_empty() {
        return Err(Refused::BadRequest(parsed.errors.join("\n")));
    }
    let others = parsed.pods.len() + parsed.cronjobs.len() + parsed.declared.len();
    let mut jobs = parsed.jobs;
    let (Some((_, mut job, _)), true) = (jobs.pop(), jobs.is_empty() && others == 0) else {
        return Err(Refused::BadRequest(format!(
            "the {REQUEST_BODY} must hold one batch/v1 Job"
        )));
    };
    // The request's namespace, unless the object names another (`rest.BeforeCreate`).
    match job.metadata.namespace.as_deref() {
        None | Some("") => job.metadata.namespace = Some(namespace.to_string()),
        Some(ns) if ns == namespace => {}
        Some(_) => {
            return Err(Refused::BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request".into(),
            ));
        }
    }
    defaults::apply(&mut job);
    let name = job.metadata.name().to_string();
    // A file's Job may not name an owner; this one must, so the rule is left out here and the
    // reference is checked on its own below.
    let mut as_file = job.clone();
    let owners = std::mem::take(&mut as_file.metadata.owner_references);
    let mut causes = validate::validate(&as_file, images).errors;
    match owners.as_slice() {
        [] => return Err(Refused::NotOwnedByCronJob { name }),
        [o] if o.controller == Some(true)
            && o.kind == "CronJob"
            && o.api_version == crate::api::CRONJOB_API_VERSION =>
        {
            for (field, value) in [("name", &o.name), ("uid", &o.uid)] {
                if value.is_empty() {
                    causes.push(format!(
                        "metadata.ownerReferences[0].{field}: Required value"
                    ));
                }
            }
        }
        _ => return Err(Refused::NotOwnedByCronJob { name }),
    }
    if !causes.is_empty() {
        return Err(Refused::Invalid { name, causes });
    }
    Ok(job)
}

/// A CronJob as the API server creates it: uid, creationTimestamp, generation 1.
pub fn admit_cronjob(applied: &CronJob, uid: &str, now: Timestamp) -> CronJob {
    let mut cj = applied.clone();
    cj.api_version = crate::api::CRONJOB_API_VERSION.into();
    cj.kind = "CronJob".into();
    cj.metadata.uid = Some(uid.to_string());
    cj.metadata.creation_timestamp = Some(now);
    cj.metadata.generation = Some(1);
    cj
}

/// A bare Pod as the API server creates it and the kubelet admits it: uid,
/// creationTimestamp, bound to this host, `Pending` from `now`.
pub fn admit_pod(applied: &Pod, uid: &str, node_name: &str, now: Timestamp) -> Pod {
    let mut pod = applied.clone();
    pod.api_version = crate::api::POD_API_VERSION.into();
    pod.kind = "Pod".into();
    pod.metadata.uid = Some(uid.to_string());
    pod.metadata.creation_timestamp = Some(now);
    pod.spec.node_name = Some(node_name.to_string());
    pod.status = crate::api::PodStatus {
        phase: crate::api::PodPhase::Pending,
        start_time: Some(now),
        host_ip: Some("127.0.0.1".into()),
        ..Default::default()
    };
    pod
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job_yaml(name: &str, extra_spec: &str) -> String {
        format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\nspec:\n{extra_spec}  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: c\n          image: busybox:1.36\n          command: [\"true\"]\n"
        )
    }

    fn load_str(file: &str, text: &str) -> FileReport {
        load(Path::new(file), text, Some(&Images::builtin()))
    }

    #[test]
    fn a_valid_file_yields_defaulted_jobs_with_their_source() {
        let r = load_str("demo/ok.yaml", &job_yaml("ok", ""));
        assert_eq!((r.errors.len(), r.warnings.len()), (0, 0), "{r:?}");
        let job = &r.jobs[0];
        assert_eq!(job.spec.backoff_limit, Some(6));
        assert_eq!(job.metadata.namespace.as_deref(), Some("default"));
        assert_eq!(
            job.metadata
                .annotations
                .get(ANNOTATION_SOURCE)
                .map(String::as_str),
            Some("demo/ok.yaml")
        );
        // Identity is the caller's job.
        assert_eq!(job.metadata.uid, None);
        assert_eq!(job.spec.selector, None);
    }

    #[test]
    fn several_errors_are_listed_under_a_kubectl_header() {
        let text = "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: bad\nspec:\n  template:\n    spec:\n      containers:\n        - name: c\n          command: [\"true\"]\n";
        let r = load_str("demo/manifests/bad.yaml", text);
        assert_eq!(
            r.errors,
            vec![
                "demo/manifests/bad.yaml: The Job \"bad\" is invalid: \n\
                 * spec.template.spec.containers[0].image: Required value\n\
                 * spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\""
                    .to_string()
            ]
        );
        assert!(r.jobs.is_empty());
    }

    #[test]
    fn one_error_is_inline() {
        let r = load_str(
            "demo/manifests/bad.yaml",
            &job_yaml("bad", "  backoffLimit: -1\n"),
        );
        assert_eq!(
            r.errors,
            vec!["demo/manifests/bad.yaml: The Job \"bad\" is invalid: spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0".to_string()]
        );
    }

    #[test]
    fn identical_causes_are_printed_once() {
        let name = "a".repeat(64);
        let r = load_str("long.yaml", &job_yaml(&name, ""));
        assert_eq!(
            r.errors,
            vec![format!(
                "long.yaml: The Job \"{name}\" is invalid: spec.template.labels: Invalid value: \"{name}\": must be no more than 63 characters"
            )]
        );
    }

    #[test]
    fn multi_document_files_name_the_line_and_are_all_or_nothing() {
        let text = format!(
            "{}---\n{}",
            job_yaml("good", ""),
            job_yaml("bad", "  parallelism: -1\n")
        );
        let r = load_str("bad.yaml", &text);
        assert_eq!(
            r.errors,
            vec!["bad.yaml:14: The Job \"bad\" is invalid: spec.parallelism: Invalid value: -1: must be greater than or equal to 0".to_string()]
        );
        assert!(r.jobs.is_empty(), "one bad document rejects the whole file");

        let text = format!("{}---\n{}", job_yaml("one", ""), job_yaml("two", ""));
        let r = load_str("good.yaml", &text);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let names: Vec<&str> = r.jobs.iter().map(|j| j.metadata.name()).collect();
        assert_eq!(names, vec!["one", "two"]);
    }

    #[test]
    fn a_wrong_kind_rejects_the_file() {
        let text = format!(
            "{}---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: p\n",
            job_yaml("good", "")
        );
        let r = load_str("mixed.yaml", &text);
        assert_eq!(
            r.errors,
            vec![format!(
                r#"mixed.yaml: document 2: kind "Deployment" (apiVersion "apps/v1") is not supported: {}"#,
                parse::runs()
            )]
        );
        assert!(r.jobs.is_empty());
    }

    #[test]
    fn parse_errors_reject_the_file() {
        let text = job_yaml("x", "").replace("restartPolicy", "restartPolcy");
        let r = load_str("examples/x.yaml", &text);
        assert_eq!(
            r.errors,
            vec![
                r#"examples/x.yaml:8:7: spec.template.spec: unknown field "restartPolcy""#
                    .to_string()
            ]
        );
        assert!(r.jobs.is_empty());
    }

    #[test]
    fn duplicate_names_in_one_file() {
        let text = format!("{}---\n{}", job_yaml("same", ""), job_yaml("same", ""));
        let r = load_str("dup.yaml", &text);
        assert_eq!(
            r.errors,
            vec![r#"dup.yaml:14: Job "same" in namespace "default" is already defined in this file at line 1"#.to_string()]
        );
        assert!(r.jobs.is_empty());

        // Same name, other namespace: two different Jobs.
        let other =
            job_yaml("same", "").replace("  name: same\n", "  name: same\n  namespace: other\n");
        let text = format!("{}---\n{other}", job_yaml("same", ""));
        assert!(load_str("dup.yaml", &text).errors.is_empty());
    }

    #[test]
    fn warnings_name_the_job_and_keep_it() {
        let text = job_yaml("nightly.backup", "").replace(
            "      restartPolicy: Never\n",
            "      restartPolicy: Never\n      nodeSelector: {disk: ssd}\n",
        );
        let r = load_str("w.yaml", &text);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.jobs.len(), 1);
        assert_eq!(
            r.warnings,
            vec![
                r#"w.yaml: Job "nightly.backup": metadata.name: this is used in Pod names and hostnames, which can result in surprising behavior; a DNS label is recommended: [must not contain dots]"#.to_string(),
                r#"w.yaml: Job "nightly.backup": spec.template.spec.nodeSelector: ignored: jobvisor runs every pod on this host"#.to_string(),
            ]
        );
    }

    #[test]
    fn empty_and_comment_only_files_are_fine() {
        for text in ["", "# nothing yet\n", "---\n# a\n---\n"] {
            assert_eq!(
                load_str("empty.yaml", text),
                FileReport::default(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn json_files() {
        let text = r#"{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"},"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"busybox","command":["true"]}]}}}}"#;
        let r = load_str("j.json", text);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(
            r.jobs[0].spec.template.spec.containers[0]
                .image_pull_policy
                .as_deref(),
            Some("Always")
        );
    }

    #[test]
    fn oversized_and_unreadable_files() {
        let big = " ".repeat(MAX_FILE_BYTES + 1);
        assert_eq!(
            load_str("big.yaml", &big).errors,
            vec![
                "big.yaml: file is larger than 3 MiB, the Kubernetes API request limit".to_string()
            ]
        );
        let r = crate::watch::load_path(Path::new("/nonexistent/jobvisor/x.yaml"), None);
        assert_eq!(r.errors.len(), 1);
        assert!(
            r.errors[0].starts_with("/nonexistent/jobvisor/x.yaml: "),
            "{:?}",
            r.errors
        );
    }

    #[test]
    fn examples_load_cleanly() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&dir).expect("examples/ exists") {
            let path = entry.expect("readable entry").path();
            if !matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("yaml" | "yml" | "json")
            ) {
                continue;
            }
            let r = crate::watch::load_path(&path, Some(&Images::builtin()));
            assert!(r.errors.is_empty(), "{}: {:?}", path.display(), r.errors);
            assert!(
                r.warnings.is_empty(),
                "{}: {:?}",
                path.display(),
                r.warnings
            );
            let objects = r.jobs.len() + r.pods.len() + r.cronjobs.len() + r.declared.len();
            assert_eq!(objects, 1, "{}", path.display());
            let meta = r.jobs.first().map(|j| &j.metadata);
            let meta = meta.or(r.pods.first().map(|p| &p.metadata));
            let meta = meta.or(r.cronjobs.first().map(|c| &c.metadata));
            let meta = meta.or(r.declared.first().map(|d| &d.metadata));
            names.push(meta.map(|m| m.name().to_string()).unwrap_or_default());
        }
        names.sort();
        assert_eq!(
            names,
            [
                "app-config",
                "failing-job",
                "flaky-job",
                "hello",
                "job-backoff-limit-per-index-example",
                "job-backoff-limit-per-index-failindex",
                "job-indexed",
                "job-pod-failure-policy",
                "job-pod-failure-policy-example",
                "job-pod-failure-policy-failjob",
                "job-pod-failure-policy-ignore",
                "job-success",
                "onfailure-job",
                "parallel-job",
                "pi",
                "run-once-pod",
                "sequential-job",
                "simple-job",
                "simple-pod",
                "throw-dice-cron-job",
                "throw-dice-job",
                "ticker"
            ]
        );
    }

    fn cronjob_yaml(name: &str, extra_spec: &str, template_spec: &str) -> String {
        format!(
            "apiVersion: batch/v1\nkind: CronJob\nmetadata:\n  name: {name}\nspec:\n  schedule: \"*/5 * * * *\"\n{extra_spec}  jobTemplate:\n    spec:\n{template_spec}      template:\n        spec:\n          restartPolicy: OnFailure\n          containers:\n          - name: c\n            image: busybox\n            command: [\"true\"]\n"
        )
    }

    /// `SetDefaults_CronJob`: Allow, not suspended, history 3 and 1, pod defaults in the
    /// template and no Job-level defaults there (each Job gets those when it is created).
    #[test]
    fn a_cronjob_is_defaulted() {
        let r = load_str("c.yaml", &cronjob_yaml("c", "", ""));
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        let cj = &r.cronjobs[0];
        assert_eq!(
            cj.spec.concurrency_policy,
            Some(crate::api::ConcurrencyPolicy::Allow)
        );
        assert_eq!(cj.spec.suspend, Some(false));
        assert_eq!(cj.spec.successful_jobs_history_limit, Some(3));
        assert_eq!(cj.spec.failed_jobs_history_limit, Some(1));
        let template = &cj.spec.job_template.spec;
        assert_eq!(template.backoff_limit, None);
        assert_eq!(
            template.template.spec.termination_grace_period_seconds,
            Some(30)
        );
        assert_eq!(cj.metadata.namespace(), "default");
    }

    /// `validateCronJobSpec` and `ValidateCronJobCreate`, in the API server's words.
    #[test]
    fn cronjob_validation_table() {
        let long = "c".repeat(53);
        let cases: Vec<(String, String)> = vec![
            (cronjob_yaml(&long, "", ""), format!("metadata.name: Invalid value: \"{long}\": must be no more than 52 characters")),
            (cronjob_yaml("c", "", "").replace("*/5 * * * *", "0 0 * * 8"), "spec.schedule: Invalid value: \"0 0 * * 8\"".into()),
            (cronjob_yaml("c", "", "").replace("*/5 * * * *", "TZ=UTC 0 0 * * *"), "spec.schedule: Invalid value: \"TZ=UTC 0 0 * * *\": cannot use TZ or CRON_TZ in schedule, use timeZone field instead".into()),
            (cronjob_yaml("c", "  timeZone: Mars/Olympus\n", ""), "spec.timeZone: Invalid value: \"Mars/Olympus\": unknown time zone Mars/Olympus".into()),
            (cronjob_yaml("c", "  concurrencyPolicy: Sometimes\n", ""), "spec.concurrencyPolicy: Unsupported value: \"Sometimes\": supported values: \"Allow\", \"Forbid\", \"Replace\"".into()),
            (cronjob_yaml("c", "  startingDeadlineSeconds: -1\n", ""), "spec.startingDeadlineSeconds: Invalid value: -1: must be greater than or equal to 0".into()),
            (cronjob_yaml("c", "  successfulJobsHistoryLimit: -1\n", ""), "spec.successfulJobsHistoryLimit: Invalid value: -1: must be greater than or equal to 0".into()),
            (cronjob_yaml("c", "  failedJobsHistoryLimit: -2\n", ""), "spec.failedJobsHistoryLimit: Invalid value: -2: must be greater than or equal to 0".into()),
            (cronjob_yaml("c", "", "      backoffLimit: -1\n"), "spec.jobTemplate.spec.backoffLimit: Invalid value: -1: must be greater than or equal to 0".into()),
            (cronjob_yaml("c", "", "      selector: {matchLabels: {a: b}}\n"), "spec.jobTemplate.spec.selector: Invalid value: {\"matchLabels\":{\"a\":\"b\"}}: `selector` will be auto-generated".into()),
            (cronjob_yaml("c", "", "").replace("OnFailure", "Always"), "spec.jobTemplate.spec.template.spec.restartPolicy: Required value: valid values: \"OnFailure\", \"Never\"".into()),
            (cronjob_yaml("c", "", "      podFailurePolicy: {rules: [{action: Ignore}]}\n"), "spec.jobTemplate.spec.podFailurePolicy.rules[0]: Invalid value: specifying one of OnExitCodes and OnPodConditions is required".into()),
            (cronjob_yaml("c", "", "      podFailurePolicy: {rules: []}\n"), "spec.jobTemplate.spec.template.spec.restartPolicy: Invalid value: \"OnFailure\": only \"Never\" is supported when podFailurePolicy is specified".into()),
        ];
        for (text, want) in cases {
            let r = load_str("c.yaml", &text);
            assert!(r.cronjobs.is_empty());
            assert!(
                r.errors.iter().any(|e| e.contains(&want)),
                "want {want:?} in {:?}",
                r.errors
            );
        }
    }

    /// A bare Pod gets the API server's pod defaults (restartPolicy Always among them) and
    /// the same pod-spec rules as a Job's template, with Always valid here.
    #[test]
    fn a_bare_pod_is_defaulted_and_validated() {
        let pod = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: busybox\n    command: [\"true\"]\n";
        let r = load_str("p.yaml", pod);
        assert_eq!((r.errors.len(), r.pods.len()), (0, 1), "{r:?}");
        let p = &r.pods[0];
        assert_eq!(
            p.spec.restart_policy,
            Some(crate::api::RestartPolicy::Always)
        );
        assert_eq!(p.metadata.namespace(), "default");
        assert_eq!(p.spec.termination_grace_period_seconds, Some(30));
        // What `kubectl get -o yaml` shows of a live pod is the server's, not the file's.
        let copied = pod.replace(
            "  name: p\n",
            "  name: p\n  uid: old\n  deletionTimestamp: \"2026-01-01T00:00:00Z\"\n  creationTimestamp: \"2026-01-01T00:00:00Z\"\n",
        );
        let r = load_str("p.yaml", &copied);
        assert_eq!(r.errors, Vec::<String>::new());
        let m = &r.pods[0].metadata;
        assert_eq!(
            (&m.uid, &m.deletion_timestamp, &m.creation_timestamp),
            (&None, &None, &None)
        );
        assert_eq!(
            p.metadata
                .annotations
                .get(ANNOTATION_SOURCE)
                .map(String::as_str),
            Some("p.yaml")
        );
        for (bad, want) in [
            (
                pod.replace("  containers:", "  restartPolicy: Sometimes\n  containers:"),
                r#"p.yaml: The Pod "p" is invalid: spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never""#,
            ),
            (
                pod.replace("name: c", "name: C"),
                r#"p.yaml: The Pod "p" is invalid: spec.containers[0].name: Invalid value: "C": a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"#,
            ),
            (
                pod.replace(
                    "  name: p\n",
                    "  name: p\nstatus: {phase: Running}\nfoo: 1\n",
                ),
                r#"p.yaml:6:1: unknown field "foo""#,
            ),
            (
                pod.replace("  name: p\n", "  name: p\n  finalizers: [x/y]\n  ownerReferences: [{apiVersion: batch/v1, kind: Job, name: j, uid: u, controller: true}]\n"),
                "p.yaml: The Pod \"p\" is invalid: \n* metadata.ownerReferences: Forbidden: not supported by jobvisor: a Pod read from a file is owned by its file\n* metadata.finalizers: Forbidden: not supported by jobvisor: nothing would remove them from a Pod read from a file",
            ),
            (
                format!("{pod}---\n{pod}"),
                r#"p.yaml:11: Pod "p" in namespace "default" is already defined in this file at line 1"#,
            ),
        ] {
            let r = load_str("p.yaml", &bad);
            assert_eq!(r.errors, vec![want.to_string()], "{bad}");
            assert!(r.pods.is_empty());
        }
    }

    /// What `apply` writes for an object loads as the very object it was: for every example,
    /// and for the objects of a multi-document file and of a List, Jobs and Pods.
    #[test]
    fn objects_as_written_and_apply_files_load_back_as_the_same_objects() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let mut files: Vec<(String, String)> = std::fs::read_dir(&dir)
            .expect("examples/ exists")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
            .map(|p| {
                let text = std::fs::read_to_string(&p).expect("example");
                (p.display().to_string(), text)
            })
            .collect();
        let script = job_yaml("script", "").replace(
            "command: [\"true\"]",
            "command: [sh, -c, \"echo 'a: b'\\nexit 0\\n\"]\n          env: [{name: E, value: \"3\"}]",
        );
        let pod = "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {1: one}}\nspec:\n  containers: [{name: c, image: busybox, command: [\"true\"]}]\n";
        files.push((
            "multi.yaml".into(),
            format!("{}---\n{pod}---\n{script}", job_yaml("one", "")),
        ));
        files.push((
            "list.json".into(),
            r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"},"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"busybox","command":["true"]}]}}}}]}"#.into(),
        ));
        for (file, text) in &files {
            let r = load_str(file, text);
            assert!(r.errors.is_empty(), "{file}: {:?}", r.errors);
            let count = r.jobs.len() + r.pods.len() + r.cronjobs.len() + r.declared.len();
            assert_eq!(r.objects.len(), count, "{file}");
            for (id, object) in &r.objects {
                // As written: no defaults, no source annotation.
                assert_eq!(object["metadata"]["name"], id.name.as_str(), "{file}");
                assert!(object["metadata"].get("annotations").is_none(), "{file}");
                let written = applied::file_text(object);
                assert!(applied::is_written_by_apply(&written));
                let again = load_str(&id.file_name(), &written);
                assert!(
                    again.errors.is_empty(),
                    "{file}: {:?}\n{written}",
                    again.errors
                );
                assert_eq!(again.objects, vec![(id.clone(), object.clone())], "{file}");
                let source = |meta: &mut crate::api::ObjectMeta| {
                    meta.annotations.remove(ANNOTATION_SOURCE);
                };
                match id.kind {
                    Kind::Job => {
                        let (mut back, mut first) = (
                            again.jobs[0].clone(),
                            r.jobs
                                .iter()
                                .find(|j| j.metadata.name() == id.name)
                                .cloned()
                                .unwrap_or_default(),
                        );
                        source(&mut back.metadata);
                        source(&mut first.metadata);
                        assert_eq!(back, first, "{file}:\n{written}");
                    }
                    Kind::CronJob => {
                        let (mut back, mut first) = (
                            again.cronjobs[0].clone(),
                            r.cronjobs
                                .iter()
                                .find(|c| c.metadata.name() == id.name)
                                .cloned()
                                .unwrap_or_default(),
                        );
                        source(&mut back.metadata);
                        source(&mut first.metadata);
                        assert_eq!(back, first, "{file}:\n{written}");
                    }
                    Kind::Pod => {
                        let (mut back, mut first) = (
                            again.pods[0].clone(),
                            r.pods
                                .iter()
                                .find(|p| p.metadata.name() == id.name)
                                .cloned()
                                .unwrap_or_default(),
                        );
                        source(&mut back.metadata);
                        source(&mut first.metadata);
                        assert_eq!(back, first, "{file}:\n{written}");
                    }
                    // Declared kinds (ConfigMaps…): their JSON, without the source annotation.
                    _ => {
                        let strip = |d: &declared::DeclaredObject| {
                            let mut o = d.object.clone();
                            if let Some(a) = o
                                .pointer_mut("/metadata/annotations")
                                .and_then(Value::as_object_mut)
                            {
                                a.remove(ANNOTATION_SOURCE);
                            }
                            o
                        };
                        let first = r.declared.iter().find(|d| d.metadata.name() == id.name);
                        assert_eq!(
                            strip(&again.declared[0]),
                            first.map(strip).unwrap_or_default(),
                            "{file}:\n{written}"
                        );
                    }
                }
            }
        }
        let r = load_str("multi.yaml", &files[files.len() - 2].1);
        let order: Vec<String> = r.objects.iter().map(|(id, _)| id.to_string()).collect();
        assert_eq!(
            order,
            ["job.batch/one", "pod/p", "job.batch/script"],
            "file order"
        );
    }

    /// What `create job --from=cronjob/c` sends, as JSON.
    fn api_job(extra_meta: &str, extra_spec: &str) -> String {
        format!(
            r#"{{"apiVersion":"batch/v1","kind":"Job","metadata":{{"name":"m"{extra_meta},"ownerReferences":[{{"apiVersion":"batch/v1","kind":"CronJob","name":"c","uid":"u","controller":true}}]}},"spec":{{{extra_spec}"template":{{"spec":{{"restartPolicy":"Never","containers":[{{"name":"c","image":"busybox","command":["true"]}}]}}}}}}}}"#
        )
    }

    #[test]
    fn a_job_sent_to_the_api_is_admitted_like_a_files_with_its_cronjob_owner() {
        let job = load_api_job(&api_job("", ""), "team", None).expect("admitted");
        assert_eq!(job.metadata.namespace(), "team", "the request's namespace");
        assert_eq!(job.spec.backoff_limit, Some(6), "Job defaults applied");
        assert_eq!(job.metadata.owner_references.len(), 1);
        assert_eq!(job.metadata.owner_references[0].uid, "u");
        assert!(job.metadata.annotations.is_empty(), "no source annotation");
        let same = load_api_job(&api_job(r#","namespace":"team""#, ""), "team", None);
        assert_eq!(same, Ok(job));
    }

    #[test]
    fn a_job_sent_to_the_api_is_refused_with_the_api_servers_reasons() {
        let unowned = api_job("", "").replace(
            r#","ownerReferences":[{"apiVersion":"batch/v1","kind":"CronJob","name":"c","uid":"u","controller":true}]"#,
            "",
        );
        let not_owned = Err(Refused::NotOwnedByCronJob { name: "m".into() });
        assert_eq!(load_api_job(&unowned, "default", None), not_owned);
        for other in [
            api_job("", "").replace(r#""controller":true"#, r#""controller":false"#),
            api_job("", "").replace(r#""kind":"CronJob""#, r#""kind":"Deployment""#),
            api_job("", "").replace(
                r#""controller":true}]"#,
                r#""controller":true},{"apiVersion":"v1","kind":"Pod","name":"p","uid":"v"}]"#,
            ),
        ] {
            assert_eq!(load_api_job(&other, "default", None), not_owned, "{other}");
        }
        assert_eq!(
            load_api_job(
                &api_job("", "").replace(r#""uid":"u""#, r#""uid":"""#),
                "default",
                None
            ),
            Err(Refused::Invalid {
                name: "m".into(),
                causes: vec!["metadata.ownerReferences[0].uid: Required value".into()]
            })
        );
        assert_eq!(
            load_api_job(&api_job("", r#""parallelism":-1,"#), "default", None),
            Err(Refused::Invalid {
                name: "m".into(),
                causes: vec![
                    "spec.parallelism: Invalid value: -1: must be greater than or equal to 0"
                        .into()
                ]
            })
        );
        assert_eq!(
            load_api_job(&api_job(r#","namespace":"team""#, ""), "default", None),
            Err(Refused::BadRequest(
                "the namespace of the provided object does not match the namespace sent on the request".into()
            ))
        );
        assert_eq!(
            load_api_job(&api_job("", r#""parallel":1,"#), "default", None),
            Err(Refused::BadRequest(
                r#"request body:1:173: spec: unknown field "parallel""#.into()
            ))
        );
        let cronjob = cronjob_yaml("c", "", "");
        assert_eq!(
            load_api_job(&cronjob, "default", None),
            Err(Refused::BadRequest(
                "the request body must hold one batch/v1 Job".into()
            ))
        );
    }

    #[test]
    fn identities_name_objects_without_judging_them() {
        let id = |kind, ns: &str, name: &str| ObjectId {
            kind,
            namespace: ns.into(),
            name: name.into(),
        };
        // Invalid as objects (no template, a quoted integer, no containers), but named.
        let text = "apiVersion: batch/v1\nkind: Job\nmetadata: {name: a}\nspec: {completions: \"3\"}\n---\napiVersion: batch/v1\nkind: Job\nmetadata: {name: b, namespace: team}\n---\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\n";
        assert_eq!(
            identities(Path::new("x.yaml"), text),
            Ok(vec![
                id(Kind::Job, "default", "a"),
                id(Kind::Job, "team", "b"),
                id(Kind::Pod, "default", "p")
            ])
        );
        let list = r#"{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j"}}]}"#;
        assert_eq!(
            identities(Path::new("l.json"), list),
            Ok(vec![id(Kind::Job, "default", "j")])
        );
        assert_eq!(identities(Path::new("e.yaml"), "# nothing\n"), Ok(vec![]));

        let bad = "apiVersion: batch/v1\nkind: Job\nmetadata: {}\n---\nx: [\n";
        assert_eq!(
            identities(Path::new("bad.yaml"), bad),
            Err(vec!["bad.yaml:5:4: unclosed bracket '['".to_string()])
        );
        let bad = "apiVersion: batch/v1\nkind: Job\nmetadata: {}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n";
        assert_eq!(
            identities(Path::new("bad.yaml"), bad),
            Err(vec![
                format!(
                    r#"bad.yaml: document 2: kind "Deployment" (apiVersion "apps/v1") is not supported: {}"#,
                    parse::runs()
                ),
                "bad.yaml:1: resource name may not be empty".to_string(),
            ])
        );
    }

    #[test]
    fn simple_example_runs_expr() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let r = crate::watch::load_path(&dir.join("simple-job.yaml"), None);
        let c = &r.jobs[0].spec.template.spec.containers[0];
        assert_eq!(
            c.command.as_deref(),
            Some(&["expr", "8", "+", "3"].map(String::from)[..])
        );
        assert_eq!(
            r.jobs[0].spec.template.spec.restart_policy,
            Some(crate::api::RestartPolicy::Never)
        );
    }

    #[test]
    fn assign_identity_generates_selector_and_labels() {
        let mut job = load_str("a.yaml", &job_yaml("pi", "")).jobs.remove(0);
        let now: Timestamp = "2026-01-02T03:04:05Z".parse().expect("timestamp");
        assign_identity(&mut job, "u-1", now);
        assert_eq!(job.metadata.uid.as_deref(), Some("u-1"));
        assert_eq!(job.metadata.creation_timestamp, Some(now));
        assert_eq!(job.metadata.generation, Some(1));
        let expected: crate::api::Labels = [
            ("batch.kubernetes.io/controller-uid", "u-1"),
            ("batch.kubernetes.io/job-name", "pi"),
            ("controller-uid", "u-1"),
            ("job-name", "pi"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(job.spec.template.metadata.labels, expected);
        // A Job without labels gets the template's, generated ones included.
        assert_eq!(job.metadata.labels, expected);
        let selector = job.spec.selector.as_ref().expect("generated selector");
        assert_eq!(
            selector.match_labels,
            [(
                "batch.kubernetes.io/controller-uid".to_string(),
                "u-1".to_string()
            )]
            .into()
        );
        assert!(selector.match_expressions.is_empty());
    }

    #[test]
    fn assign_identity_keeps_own_labels_and_manual_selectors() {
        let text = job_yaml("pi", "")
            .replace("  name: pi\n", "  name: pi\n  labels: {team: a}\n")
            .replace(
                "  template:\n",
                "  template:\n    metadata:\n      labels: {app: pi}\n",
            );
        let mut job = load_str("a.yaml", &text).jobs.remove(0);
        assign_identity(&mut job, "u-2", Timestamp::UNIX_EPOCH);
        assert_eq!(job.metadata.labels.len(), 1, "own labels are kept");
        assert_eq!(job.spec.template.metadata.labels.len(), 5);
        assert_eq!(job.spec.template.metadata.labels["app"], "pi");

        let manual = job_yaml(
            "m",
            "  manualSelector: true\n  selector:\n    matchLabels: {app: m}\n",
        )
        .replace(
            "  template:\n",
            "  template:\n    metadata:\n      labels: {app: m}\n",
        );
        let report = load_str("m.yaml", &manual);
        assert!(report.errors.is_empty(), "{:?}", report.errors);
        let mut job = report.jobs[0].clone();
        assign_identity(&mut job, "u-3", Timestamp::UNIX_EPOCH);
        assert_eq!(
            job.spec.template.metadata.labels,
            [("app".to_string(), "m".to_string())].into()
        );
        assert_eq!(
            job.spec.selector.as_ref().map(|s| s.match_labels.clone()),
            Some([("app".to_string(), "m".to_string())].into())
        );
        assert_eq!(
            job.metadata.labels,
            [("app".to_string(), "m".to_string())].into()
        );
        assert_eq!(job.metadata.uid.as_deref(), Some("u-3"));
    }
}
