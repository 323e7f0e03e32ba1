//! `apply` and `delete -f` by object identity (kind, namespace, name), as kubectl does them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::*;

const T: Duration = Duration::from_secs(60);

const HEADER: &str =
    "# Written by jobvisor apply; edits here are kept until the next apply of these objects.";

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Two directories with a `job.yaml` each: apply keeps objects apart by identity, never by
/// file name, so the second never replaces the first. And a Job that a file of the user's
/// defines (dropped in by hand, as the quickstart does) is not apply's to change: the apply
/// is refused with 409 naming that file, and the running Job is left as it was.
#[test]
fn two_directories_never_replace_each_other() {
    let d = TestDaemon::start();
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a_job = write(
        a.path(),
        "job.yaml",
        &job_yaml("alpha", "Never", &["true"], ""),
    );
    let b_job = write(
        b.path(),
        "job.yaml",
        &job_yaml("beta", "Never", &["true"], ""),
    );
    assert_eq!(
        d.cli_ok(&["apply", "-f", s(&a_job)]),
        "job.batch/alpha created\n"
    );
    assert_eq!(
        d.cli_ok(&["apply", "-f", s(&b_job)]),
        "job.batch/beta created\n"
    );
    d.wait_condition("alpha", "Complete", T);
    d.wait_condition("beta", "Complete", T);
    assert_eq!(d.pods_of("alpha").len(), 1, "alpha ran once");
    assert_eq!(
        d.manifest_names(),
        [
            "job.batch_default_alpha.yaml",
            "job.batch_default_beta.yaml"
        ]
    );

    let mine = job_yaml("same", "Never", &["echo", "first"], "");
    let mine_path = d.drop_manifest("job.yaml", &mine);
    let first = d.wait_condition("same", "Complete", T);
    let other = tempfile::tempdir().unwrap();
    let theirs = write(
        other.path(),
        "job.yaml",
        &job_yaml("same", "Never", &["echo", "second"], ""),
    );
    let out = d.cli(&["apply", "-f", s(&theirs)]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert_eq!(
        stderr(&out),
        format!(
            "Error from server (AlreadyExists): jobs.batch \"same\" already exists, defined in {}, a file apply did not write: edit that file instead (apply changes only the files it wrote)\n",
            mine_path.display()
        )
    );
    assert_eq!(stdout(&out), "");
    let now = d.job("same").unwrap();
    assert_eq!(now["metadata"]["uid"], first["metadata"]["uid"]);
    assert_eq!(now["metadata"]["generation"], 1);
    assert_eq!(std::fs::read_to_string(&mine_path).unwrap(), mine);
    assert_eq!(d.pods_of("same").len(), 1);
    assert_eq!(d.cli_ok(&["logs", "job/same"]), "first\n");
    assert_eq!(
        d.manifest_names(),
        [
            "job.batch_default_alpha.yaml",
            "job.batch_default_beta.yaml",
            "job.yaml"
        ],
        "nothing left behind"
    );
}

/// Applying again updates the object in the file apply wrote for it, wherever the applied
/// file came from: `unchanged` when it is the same, `configured` in place when not (same
/// uid, generation up, one file). Edits made in that file count until the next apply.
#[test]
fn reapply_updates_in_place() {
    let d = TestDaemon::start();
    let src = tempfile::tempdir().unwrap();
    let v1 = write(
        src.path(),
        "v1.yaml",
        &job_yaml(
            "inplace",
            "Never",
            &["true"],
            "  activeDeadlineSeconds: 600\n",
        ),
    );
    assert_eq!(
        d.cli_ok(&["apply", "-f", s(&v1)]),
        "job.batch/inplace created\n"
    );
    let file = d.manifests().join("job.batch_default_inplace.yaml");
    let written = std::fs::read_to_string(&file).unwrap();
    assert_eq!(written.lines().next(), Some(HEADER), "{written}");
    let uid = d.job("inplace").unwrap()["metadata"]["uid"].clone();
    d.wait_condition("inplace", "Complete", T);

    assert_eq!(
        d.cli_ok(&["apply", "-f", s(&v1)]),
        "job.batch/inplace unchanged\n"
    );
    let v2 = write(
        src.path(),
        "elsewhere.yml",
        &job_yaml(
            "inplace",
            "Never",
            &["true"],
            "  activeDeadlineSeconds: 900\n",
        ),
    );
    assert_eq!(
        d.cli_ok(&["apply", "-f", s(&v2)]),
        "job.batch/inplace configured\n"
    );
    let job = d.job("inplace").unwrap();
    assert_eq!(job["metadata"]["uid"], uid);
    assert_eq!(job["metadata"]["generation"], 2);
    assert_eq!(job["spec"]["activeDeadlineSeconds"], 900);
    assert_eq!(d.manifest_names(), ["job.batch_default_inplace.yaml"]);
    assert_eq!(
        d.pods_of("inplace").len(),
        1,
        "a finished Job never re-runs"
    );

    // An edit of the file is what runs until the next apply replaces it.
    let edited = std::fs::read_to_string(&file)
        .unwrap()
        .replace("900", "1200");
    std::fs::write(&file, &edited).unwrap();
    assert!(wait_until(T, || {
        d.job("inplace").unwrap()["spec"]["activeDeadlineSeconds"] == 1200
    }));
    assert_eq!(
        d.cli_ok(&["apply", "-f", s(&v2)]),
        "job.batch/inplace configured\n"
    );
    assert_eq!(
        d.job("inplace").unwrap()["spec"]["activeDeadlineSeconds"],
        900
    );
    let rewritten = std::fs::read_to_string(&file).unwrap();
    assert!(
        rewritten.starts_with(HEADER) && rewritten.contains("900"),
        "{rewritten}"
    );
}

/// A refused apply leaves nothing behind: not when the file name apply would take is a file
/// of the user's, and not for an invalid object (refused before anything is sent).
#[test]
fn a_refused_apply_leaves_no_file() {
    let d = TestDaemon::start();
    let name = "job.batch_default_taken.yaml";
    let theirs = job_yaml("other", "Never", &["true"], "");
    let theirs_path = d.drop_manifest(name, &theirs);
    d.wait_condition("other", "Complete", T);
    let src = tempfile::tempdir().unwrap();
    let taken = write(
        src.path(),
        "taken.yaml",
        &job_yaml("taken", "Never", &["true"], ""),
    );
    let out = d.cli(&["apply", "-f", s(&taken)]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "Error from server (Conflict): cannot create jobs.batch \"taken\": {} exists and was not written by apply, so apply does not replace it\n",
            theirs_path.display()
        )
    );
    assert_eq!(std::fs::read_to_string(&theirs_path).unwrap(), theirs);
    assert!(d.job("taken").is_none());
    assert_eq!(d.manifest_names(), [name]);

    let bad = write(
        src.path(),
        "bad.yaml",
        &job_yaml("bad", "Never", &["true"], "  backoffLimit: \"6\"\n"),
    );
    let out = d.cli(&["apply", "-f", s(&bad)]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        format!(
            "error: {}:6:17: spec.backoffLimit: cannot unmarshal string into a field of type int32\n",
            bad.display()
        )
    );
    assert!(d.job("bad").is_none());
    assert_eq!(d.manifest_names(), [name]);
}

/// `apply -f DIR` applies every valid object of its `*.yaml`, `*.yml` and `*.json` files,
/// reports each invalid file, and exits 1, as kubectl does.
#[test]
fn apply_dir_applies_the_valid_and_reports_the_invalid() {
    let d = TestDaemon::start();
    let src = tempfile::tempdir().unwrap();
    let two = format!(
        "{}---\n{}",
        job_yaml("j1", "Never", &["true"], ""),
        job_yaml("j2", "Never", &["true"], "")
    );
    write(src.path(), "a.yaml", &two);
    write(
        src.path(),
        "b.json",
        r#"{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j3"},"spec":{"template":{"spec":{"restartPolicy":"Never","containers":[{"name":"c","image":"busybox","command":["true"]}]}}}}"#,
    );
    let bad = write(
        src.path(),
        "c.yml",
        &job_yaml("j4", "Never", &["sleep", "1"], "").replace("\"1\"", "1"),
    );
    write(src.path(), "notes.txt", "not a manifest");
    let out = d.cli(&["apply", "-f", s(src.path())]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stdout(&out),
        "job.batch/j1 created\njob.batch/j2 created\njob.batch/j3 created\n"
    );
    assert_eq!(
        stderr(&out),
        format!(
            "error: {}:13:28: spec.template.spec.containers[0].command[1]: cannot unmarshal number into a field of type string\n",
            bad.display()
        )
    );
    for name in ["j1", "j2", "j3"] {
        d.wait_condition(name, "Complete", T);
    }
    assert!(d.job("j4").is_none());
    assert_eq!(
        d.manifest_names(),
        [
            "job.batch_default_j1.yaml",
            "job.batch_default_j2.yaml",
            "job.batch_default_j3.yaml"
        ]
    );
}

/// `apply -f -` reads the objects from standard input.
#[test]
fn apply_reads_standard_input() {
    let d = TestDaemon::start();
    let mut child = Command::new(BIN)
        .arg("--root")
        .arg(d.path())
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let text = job_yaml("piped", "Never", &["echo", "from stdin"], "");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "job.batch/piped created\n");
    d.wait_condition("piped", "Complete", T);
    assert_eq!(d.cli_ok(&["logs", "job/piped"]), "from stdin\n");
}

/// `delete -f` deletes the objects a file names, by identity: each with the file that defines
/// it, whether apply wrote that file or the user did, as `delete job` does.
#[test]
fn delete_f_deletes_the_objects_a_file_names() {
    let d = TestDaemon::start();
    let src = tempfile::tempdir().unwrap();
    let both = write(
        src.path(),
        "both.yaml",
        &format!(
            "{}---\n{}",
            job_yaml("d1", "Never", &["true"], ""),
            job_yaml("d2", "Never", &["true"], "")
        ),
    );
    d.cli_ok(&["apply", "-f", s(&both)]);
    d.drop_manifest("mine.yaml", &job_yaml("d3", "Never", &["true"], ""));
    assert!(wait_until(T, || d.job("d3").is_some()));
    // Names d3 only; that it would not validate does not matter.
    let names_d3 = write(
        src.path(),
        "d3.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: d3\nspec:\n  completions: \"1\"\n",
    );
    let out = d.cli_ok(&["delete", "-f", s(&both), "-f", s(&names_d3)]);
    assert_eq!(
        out,
        "job.batch \"d1\" deleted\njob.batch \"d2\" deleted\njob.batch \"d3\" deleted\n"
    );
    for name in ["d1", "d2", "d3"] {
        assert!(d.job(name).is_none(), "{name}");
    }
    assert_eq!(d.manifest_names(), Vec::<String>::new());

    let out = d.cli(&["delete", "-f", s(&both)]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr(&out),
        "Error from server (NotFound): jobs.batch \"d1\" not found\nError from server (NotFound): jobs.batch \"d2\" not found\n"
    );
}

/// A ConfigMap, the first declared kind, through the CLI and the API: `apply -f` writes its
/// file, `get cm` prints kubectl's NAME, DATA (keys of data and binaryData), AGE, `get cm
/// NAME -o json` the object with its identity, the API lists it, and `delete cm NAME`
/// removes the file and the object.
#[test]
fn a_configmap_is_applied_listed_and_deleted() {
    let d = TestDaemon::start();
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\ndata:\n  a: x\n  b: z\nbinaryData:\n  c: aGk=\n",
    );
    assert_eq!(
        d.cli_ok(&["apply", "-f", s(&file)]),
        "configmap/app created\n"
    );
    let table = d.cli_ok(&["get", "cm"]);
    let lines: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["NAME", "DATA", "AGE"], "{table}");
    assert_eq!(lines[1][..2], ["app", "3"], "{table}");
    assert_eq!(lines.len(), 2, "{table}");

    let json: serde_json::Value =
        serde_json::from_str(&d.cli_ok(&["get", "configmap", "app", "-o", "json"])).unwrap();
    assert_eq!(json["kind"], "ConfigMap");
    assert_eq!(json["data"]["a"], "x");
    assert!(
        json["metadata"]["uid"]
            .as_str()
            .is_some_and(|u| !u.is_empty()),
        "{json}"
    );
    let (code, list) = d.get_json("/api/v1/namespaces/default/configmaps");
    assert_eq!(
        (code, list["kind"].as_str()),
        (200, Some("ConfigMapList")),
        "{list}"
    );
    assert_eq!(list["items"][0]["metadata"]["name"], "app");

    let written = d.manifests().join("configmap_default_app.yaml");
    assert!(written.exists(), "{:?}", d.manifest_names());
    // Made immutable, its data can no longer change: refused as the API server refuses it,
    // and nothing is written.
    let immutable = |data: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: app\nimmutable: true\ndata:\n  a: {data}\n  b: z\nbinaryData:\n  c: aGk=\n"
        )
    };
    let file = write(dir.path(), "cm.yaml", &immutable("x"));
    assert_eq!(
        d.cli_ok(&["apply", "-f", s(&file)]),
        "configmap/app configured\n"
    );
    let before = std::fs::read_to_string(&written).unwrap();
    let file = write(dir.path(), "cm.yaml", &immutable("changed"));
    let out = d.cli(&["apply", "-f", s(&file)]);
    assert!(!out.status.success());
    assert_eq!(
        stderr(&out).trim_end(),
        "Error from server (Invalid): The ConfigMap \"app\" is invalid: data: Forbidden: field is immutable when `immutable` is set"
    );
    assert_eq!(
        std::fs::read_to_string(&written).unwrap(),
        before,
        "nothing written"
    );
    assert_eq!(
        d.cli_ok(&["delete", "cm", "app"]),
        "configmap \"app\" deleted\n"
    );
    assert!(!written.exists(), "its file went with it");
    let out = d.cli(&["get", "cm", "app"]);
    assert_eq!(
        stderr(&out).trim_end(),
        "Error from server (NotFound): configmaps \"app\" not found"
    );
}
