//! Manifest files → validated, defaulted Jobs, all or nothing per file; and the identity the
//! API server would give a new Job ([`assign_identity`]).
//!
//! The pipeline per file: `parse` (text → typed objects, kind dispatch, strict fields) →
//! `defaults` (what the API server fills in) → `validate` (its rules and jobvisor's) →
//! here: kubectl-style reports and duplicate names. Nothing here touches the store or the
//! clock; the caller passes uid and time to [`assign_identity`].

mod defaults;
mod parse;
mod validate;

use std::path::Path;

use jiff::Timestamp;

use crate::api::{
    ANNOTATION_SOURCE, Job, LABEL_CONTROLLER_UID, LABEL_JOB_NAME, LABEL_LEGACY_CONTROLLER_UID,
    LABEL_LEGACY_JOB_NAME, LabelSelector,
};

use parse::{Format, Origin, go_quote, object_prefix};

/// The API server refuses larger requests; a manifest file gets the same limit.
pub const MAX_FILE_BYTES: usize = 3 * 1024 * 1024;

/// What one file yields. All or nothing: `jobs` is empty whenever `errors` is not.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileReport {
    /// Parsed, defaulted, validated Jobs in file order; identity (uid, generated labels) not yet assigned.
    pub jobs: Vec<Job>,
    /// Each error fully formatted and naming the file (and line, or field path).
    pub errors: Vec<String>,
    /// Accepted but worth saying (ignored cluster-only fields, DNS-label advice, …).
    pub warnings: Vec<String>,
}

/// Parses, defaults and validates the text of one manifest file.
///
/// `*.json` is read as JSON (one object, or a `kind: List`); anything else as a YAML stream
/// of `---`-separated documents, where empty documents are skipped. Each Job gets the
/// [`ANNOTATION_SOURCE`] annotation naming `path`.
pub fn load(path: &Path, text: &str) -> FileReport {
    let file = path.display().to_string();
    if text.len() > MAX_FILE_BYTES {
        return too_large(&file);
    }
    let format = match path.extension() {
        Some(ext) if ext.eq_ignore_ascii_case("json") => Format::Json,
        _ => Format::Yaml,
    };
    let parsed = parse::parse(&file, text, format);
    let multi = parsed.multi_document;
    let mut report = FileReport {
        errors: parsed.errors,
        ..FileReport::default()
    };

    let mut seen: Vec<(String, String, Origin)> = Vec::new();
    for (origin, mut job) in parsed.jobs {
        defaults::apply(&mut job);
        let findings = validate::validate(&job);
        let prefix = object_prefix(&file, origin, multi, false);
        let name = job.metadata.name().to_string();

        for w in &findings.warnings {
            report
                .warnings
                .push(format!("{prefix}Job {}: {w}", go_quote(&name)));
        }
        if !findings.errors.is_empty() {
            report
                .errors
                .push(invalid_report(&prefix, &name, &findings.errors));
        }

        let namespace = job.metadata.namespace().to_string();
        if !name.is_empty() {
            if let Some((_, _, first)) = seen
                .iter()
                .find(|(ns, n, _)| *ns == namespace && *n == name)
            {
                report.errors.push(format!(
                    "{prefix}Job {} in namespace {} is already defined in this file at {}",
                    go_quote(&name),
                    go_quote(&namespace),
                    describe(*first, multi)
                ));
            } else {
                seen.push((namespace, name, origin));
            }
        }

        job.metadata
            .annotations
            .insert(ANNOTATION_SOURCE.to_string(), file.clone());
        report.jobs.push(job);
    }
    if !report.errors.is_empty() {
        report.jobs.clear();
    }
    report
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

/// kubectl's rendering of an Invalid status (`kubectl/pkg/cmd/util/helpers.go`): one cause
/// inline, several as a `* ` list under a header (causes arrive deduplicated).
fn invalid_report(prefix: &str, name: &str, causes: &[String]) -> String {
    let head = format!("{prefix}The Job {} is invalid: ", go_quote(name));
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

#[cfg(test)]
mod tests {
    use super::*;

    fn job_yaml(name: &str, extra_spec: &str) -> String {
        format!(
            "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {name}\nspec:\n{extra_spec}  template:\n    spec:\n      restartPolicy: Never\n      containers:\n        - name: c\n          image: busybox:1.36\n          command: [\"true\"]\n"
        )
    }

    fn load_str(file: &str, text: &str) -> FileReport {
        load(Path::new(file), text)
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
            "{}---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n",
            job_yaml("good", "")
        );
        let r = load_str("mixed.yaml", &text);
        assert_eq!(
            r.errors,
            vec![r#"mixed.yaml: document 2: kind "Pod" (apiVersion "v1") is not supported: jobvisor runs batch/v1 Job"#.to_string()]
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
        let r = crate::watch::load_path(Path::new("/nonexistent/jobvisor/x.yaml"));
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
            let r = crate::watch::load_path(&path);
            assert!(r.errors.is_empty(), "{}: {:?}", path.display(), r.errors);
            assert!(
                r.warnings.is_empty(),
                "{}: {:?}",
                path.display(),
                r.warnings
            );
            assert_eq!(r.jobs.len(), 1, "{}", path.display());
            names.push(r.jobs[0].metadata.name().to_string());
        }
        names.sort();
        assert_eq!(
            names,
            [
                "failing-job",
                "flaky-job",
                "onfailure-job",
                "parallel-job",
                "sequential-job",
                "simple-job"
            ]
        );
    }

    #[test]
    fn simple_example_runs_expr() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
        let r = crate::watch::load_path(&dir.join("simple-job.yaml"));
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
