//! Containers without `command` run their image's alias from the daemon config's `images:`
//! table, under Kubernetes' command/args rules; what ran shows on the pod.

use std::time::Duration;

use serde_json::Value;

use crate::files::wait_manifest_state;
use crate::support::*;

const T: Duration = Duration::from_secs(60);

/// A Job of one container with `image` and the given extra container lines (6 spaces).
fn image_job(name: &str, image: &str, container: &str, extra_spec: &str) -> String {
    format!(
        "apiVersion: batch/v1
kind: Job
metadata:
  name: {name}
spec:
{extra_spec}  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: {image}
{container}"
    )
}

fn exec_of(pod: &Value) -> Value {
    let text = pod["metadata"]["annotations"]["jobvisor.io/exec"]
        .as_str()
        .unwrap_or("null");
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// busybox has no entrypoint and `sh` as its cmd: `args` alone replace the cmd, so
/// `args: [sh, -c, echo hi]` runs `sh -c "echo hi"`. The pod says what ran, and keeps
/// saying it after a restart of the daemon (the annotation is in the store).
#[test]
fn busybox_with_only_args_runs_them() {
    let mut d = TestDaemon::start();
    d.drop_manifest(
        "hi.yaml",
        &image_job(
            "hi",
            "busybox",
            "        args: [\"sh\", \"-c\", \"echo hi\"]\n",
            "",
        ),
    );
    d.wait_condition("hi", "Complete", T);
    assert_eq!(d.cli_ok(&["logs", "job/hi"]), "hi\n");
    let pod = d.pods_of("hi").remove(0);
    assert_eq!(
        exec_of(&pod),
        serde_json::json!({"main": ["sh", "-c", "echo hi"]})
    );
    // The kubelet reports the normalised reference.
    assert_eq!(
        pod["status"]["containerStatuses"][0]["image"],
        "docker.io/library/busybox:latest"
    );
    let name = pod["metadata"]["name"].as_str().unwrap().to_string();
    // Lines as kubectl lays them out, the columns' padding aside.
    let describe: Vec<String> = d
        .cli_ok(&["describe", "pod", &name])
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .collect();
    let describe = describe.join("\n");
    let want = "Image: busybox\nArgs:\nsh\n-c\necho hi\nHost Command: sh -c 'echo hi'\n";
    assert!(describe.contains(want), "{want:?} missing in:\n{describe}");
    assert!(!describe.contains("jobvisor.io/exec"), "{describe}");

    assert!(d.stop().success());
    d.spawn();
    let again = d.pods_of("hi").remove(0);
    assert_eq!(exec_of(&again), exec_of(&pod), "kept across a restart");
}

/// The Kubernetes Job tutorial: `kodekloud/throw-dice` throws a die and succeeds only on a
/// six, so with a backoffLimit the Job replaces failed pods until one throws a six. Every
/// pod printed one throw; only the last one is a six.
#[test]
fn throw_dice_runs_until_a_six() {
    let d = TestDaemon::start();
    // (5/6)^101: the Job fails by chance once in 10^8 runs.
    d.drop_manifest(
        "dice.yaml",
        &image_job("dice", "kodekloud/throw-dice", "", "  backoffLimit: 100\n"),
    );
    let job = d.wait_condition("dice", "Complete", T);
    let pods = d.pods_of("dice");
    assert_eq!(job["status"]["succeeded"], 1);
    assert_eq!(job["status"]["failed"], pods.len() - 1);
    let mut throws = Vec::new();
    for pod in &pods {
        let name = pod["metadata"]["name"].as_str().unwrap();
        let log = d.cli_ok(&["logs", name]);
        let n: u8 = log
            .trim_end()
            .parse()
            .unwrap_or_else(|_| panic!("{name}: {log:?}"));
        assert!(
            (1..=6).contains(&n) && log == format!("{n}\n"),
            "{name}: {log:?}"
        );
        let phase = &pod["status"]["phase"];
        assert_eq!(*phase == "Succeeded", n == 6, "{name} threw {n}: {phase}");
        throws.push(n);
    }
    assert_eq!(throws.last(), Some(&6), "{throws:?}");
    let argv = exec_of(&pods[0]);
    assert_eq!(argv["main"][0], "/bin/sh");
    assert_eq!(argv["main"][3], "throw-dice");
}

/// An alias of the config: entrypoint and cmd, the image's environment under the pod's,
/// its working directory.
#[test]
fn an_alias_from_the_config_gives_entrypoint_env_and_working_dir() {
    let config = format!(
        "{FAST_CONFIG}images:
  registry.example.com:5000/team/report:
    entrypoint: [sh, -c]
    cmd: [\"echo $GREETING $WHO from $PWD\"]
    workingDir: /tmp
    env: [\"GREETING=hello\", \"WHO=image\"]
"
    );
    let d = TestDaemon::start_with(&config);
    let text = image_job(
        "report",
        "registry.example.com:5000/team/report:2.1",
        "        env: [{name: WHO, value: pod}]\n",
        "",
    );
    // `validate` offline judges it against the same config: the one under --root.
    let elsewhere = tempfile::tempdir().unwrap();
    let file = elsewhere.path().join("report.yaml");
    std::fs::write(&file, &text).unwrap();
    assert_eq!(
        d.cli_ok(&["validate", file.to_str().unwrap()]),
        format!("{}: ok (1 object)\n", file.display())
    );
    d.drop_manifest("report.yaml", &text);
    d.wait_condition("report", "Complete", T);
    assert_eq!(d.cli_ok(&["logs", "job/report"]), "hello pod from /tmp\n");
}

/// Without `command`, an image the table does not know is refused: in a file, through
/// `apply`, and by `validate` offline, with the API server's kind of message.
#[test]
fn an_unknown_image_without_command_is_refused() {
    let d = TestDaemon::start();
    let text = image_job("web", "nginx", "", "");
    let why = "spec.template.spec.containers[0].command: Required value: image \"docker.io/library/nginx:latest\" has no entry under images: in the daemon config; set command, or add the image there";

    let path = d.drop_manifest("web.yaml", &text);
    let entry = wait_manifest_state(&d, "web.yaml", "Invalid");
    assert_eq!(
        entry["errors"][0],
        format!("{}: The Job \"web\" is invalid: {why}", path.display())
    );
    assert!(d.job("web").is_none());

    let elsewhere = tempfile::tempdir().unwrap();
    let file = elsewhere.path().join("web.yaml");
    std::fs::write(&file, &text).unwrap();
    let out = d.cli(&["apply", "-f", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(why), "{stderr}");
    assert!(d.job("web").is_none());
    assert_eq!(
        d.manifest_names(),
        ["web.yaml"],
        "apply refused before writing a file"
    );

    let out = d.cli(&["validate", file.to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr,
        format!(
            "error: {}: The Job \"web\" is invalid: {why}\n",
            file.display()
        )
    );
}

/// A pod admitted with an alias that a later config no longer has (its unchanged file is not
/// judged again): the pod's next run ends `StartError` saying why, as a container whose
/// image cannot be had never starts.
#[test]
fn a_run_whose_alias_is_gone_ends_start_error() {
    let config = format!("{FAST_CONFIG}images:\n  tick: {{cmd: [\"true\"]}}\n");
    let mut d = TestDaemon::start_with(&config);
    d.drop_manifest(
        "tick.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: tick\nspec:\n  containers:\n  - name: main\n    image: tick\n",
    );
    let pod = |d: &TestDaemon| d.get_json("/api/v1/namespaces/default/pods/tick").1;
    assert!(wait_until(T, || pod(&d)["status"]["containerStatuses"][0]
        ["restartCount"]
        .as_i64()
        .is_some_and(|n| n >= 1)));
    assert!(d.stop().success());
    std::fs::write(d.path().join("config.yaml"), FAST_CONFIG).unwrap();
    d.spawn();
    let why = "image \"docker.io/library/tick:latest\" has no entry under images: in the daemon config; set command, or add the image there";
    let mut last = Value::Null;
    let ended = wait_until(T, || {
        last = pod(&d);
        let cs = &last["status"]["containerStatuses"][0];
        [&cs["state"]["terminated"], &cs["lastState"]["terminated"]]
            .iter()
            .any(|t| t["reason"] == "StartError" && t["message"] == why)
    });
    assert!(ended, "{last:#}");
}
