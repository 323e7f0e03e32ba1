//! From a pod's container spec to a [`ContainerLaunch`]: the process its image alias and
//! `command`/`args` make (`crate::images`), environment, `$(VAR)` expansion, working
//! directory and log path; and the record of what ran ([`record_exec`]). Pure apart from
//! reading the daemon's own HOME once.

use std::path::{Path, PathBuf};

use crate::api::{ANNOTATION_EXEC, Container, Labels, Pod};
use crate::images::Images;
use crate::runtime::ContainerLaunch;
use crate::runtime::logs::container_log_path;
use crate::runtime::process::DEFAULT_PATH;

pub fn launch(
    pod: &Pod,
    container: &Container,
    restart_count: i32,
    logs_root: &Path,
    home: &str,
    images: &Images,
) -> ContainerLaunch {
    let meta = &pod.metadata;
    let process = crate::images::resolve(images, container);
    let (image_env, working_dir) = match &process {
        Ok(p) => (p.env, p.working_dir),
        Err(_) => (&[][..], None),
    };
    let env = environment(pod, container, home, image_env);
    // Validation refused such a container; the config can have changed since it was
    // admitted (a daemon restarted without the alias): the run ends StartError, as a
    // container whose image cannot be had never starts.
    let (argv, refused) = match &process {
        Ok(p) => (p.argv(|word| expand(word, &env)), None),
        Err(why) => (Vec::new(), Some(why.to_string())),
    };
    ContainerLaunch {
        pod_uid: meta.uid().to_string(),
        namespace: meta.namespace().to_string(),
        pod_name: meta.name().to_string(),
        container: container.name.clone(),
        restart_count,
        argv,
        refused,
        env,
        working_dir: working_dir.map_or_else(|| PathBuf::from("/"), PathBuf::from),
        log_path: container_log_path(
            logs_root,
            meta.namespace(),
            meta.name(),
            meta.uid(),
            &container.name,
            restart_count,
        ),
        // Validation refused bad quantities; one that slipped in (an older state) runs
        // without limits rather than not at all.
        limits: container
            .resources
            .as_ref()
            .and_then(|r| crate::quantity::resource_limits(r).ok())
            .unwrap_or_default(),
        pids_limit: None,
        user: None,
    }
}

/// Notes in the pod's [`ANNOTATION_EXEC`] the argv a container's run executes: a JSON
/// object of container name → argv, so that `describe pod` (and any API client) can show
/// the host command behind an image alias. `true` when the annotation changed.
pub fn record_exec(annotations: &mut Labels, container: &str, argv: &[String]) -> bool {
    let mut runs: serde_json::Map<String, serde_json::Value> = annotations
        .get(ANNOTATION_EXEC)
        .and_then(|v| serde_json::from_str(v).ok())
        .unwrap_or_default();
    let argv = serde_json::Value::from(argv.to_vec());
    if runs.get(container) == Some(&argv) {
        return false;
    }
    runs.insert(container.to_string(), argv);
    annotations.insert(
        ANNOTATION_EXEC.to_string(),
        serde_json::Value::Object(runs).to_string(),
    );
    true
}

/// What a container process sees, in order of precedence low → high: PATH, HOME and HOSTNAME
/// as an image and the kubelet would give them, the image's own `env` from its alias, then
/// the container's `env` in order (each value may refer to variables defined before it,
/// the image's included; the image's values are taken as written, as a runtime does).
fn environment(
    pod: &Pod,
    container: &Container,
    home: &str,
    image_env: &[(String, String)],
) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), DEFAULT_PATH.into()),
        ("HOME".into(), home.into()),
        (
            "HOSTNAME".into(),
            pod.spec
                .hostname
                .clone()
                .unwrap_or_else(|| pod.metadata.name().to_string()),
        ),
    ];
    for (name, value) in image_env {
        set(&mut env, name, value.clone());
    }
    for var in &container.env {
        let value = expand(var.value.as_deref().unwrap_or(""), &env);
        set(&mut env, &var.name, value);
    }
    env
}

/// Sets a variable, in its first place when it is there already.
fn set(env: &mut Vec<(String, String)>, name: &str, value: String) {
    match env.iter_mut().find(|(k, _)| k == name) {
        Some(slot) => slot.1 = value,
        None => env.push((name.to_string(), value)),
    }
}

/// Kubernetes' `$(VAR)` expansion (`third_party/forked/golang/expansion`): `$(NAME)` becomes
/// the variable or stays as written when undefined; `$$` is a literal `$`; anything else is
/// kept. Not a shell: `$HOME` is untouched.
pub fn expand(input: &str, env: &[(String, String)]) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(inner) = after.strip_prefix('(')
            && let Some(end) = inner.find(')')
        {
            let name = &inner[..end];
            match env.iter().rev().find(|(k, _)| k == name) {
                Some((_, v)) => out.push_str(v),
                None => out.push_str(&rest[i..i + 3 + end]),
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{EnvVar, ObjectMeta};

    #[test]
    fn expansion_table() {
        let env = vec![
            ("A".to_string(), "x".to_string()),
            ("B".to_string(), "y".to_string()),
        ];
        let cases = [
            ("$(A)", "x"),
            ("pre-$(A)-$(B)-post", "pre-x-y-post"),
            ("$(MISSING)", "$(MISSING)"),
            ("$$(A)", "$(A)"),
            ("$$", "$"),
            ("$HOME", "$HOME"),
            ("$(A", "$(A"),
            ("cost: 5$", "cost: 5$"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(expand(input, &env), want, "{input}");
        }
    }

    #[test]
    fn launch_builds_argv_env_and_log_path() {
        let pod = Pod {
            metadata: ObjectMeta {
                name: Some("p-abcde".into()),
                namespace: Some("default".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let c = Container {
            name: "main".into(),
            command: Some(vec!["echo".into(), "$(GREETING)".into()]),
            args: Some(vec!["$(WHO)".into()]),
            env: vec![
                EnvVar {
                    name: "WHO".into(),
                    value: Some("world".into()),
                    value_from: None,
                },
                EnvVar {
                    name: "GREETING".into(),
                    value: Some("hello $(WHO)".into()),
                    value_from: None,
                },
                EnvVar {
                    name: "PATH".into(),
                    value: Some("/opt/bin:$(PATH)".into()),
                    value_from: None,
                },
            ],
            ..Default::default()
        };
        let l = launch(&pod, &c, 2, Path::new("/logs"), "/root", &Images::builtin());
        assert_eq!(l.argv, ["echo", "hello world", "world"]);
        let get = |k: &str| l.env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("PATH"), Some(&*format!("/opt/bin:{DEFAULT_PATH}")));
        assert_eq!(get("HOSTNAME"), Some("p-abcde"));
        assert_eq!(l.working_dir, PathBuf::from("/"));
        assert_eq!(
            l.log_path,
            PathBuf::from("/logs/pods/default_p-abcde_u1/main/2.log")
        );
    }

    fn var(name: &str, value: &str) -> EnvVar {
        EnvVar {
            name: name.into(),
            value: Some(value.into()),
            value_from: None,
        }
    }

    /// An image alias gives the argv (its words as written, the container's expanded), the
    /// environment under the container's, and the working directory.
    #[test]
    fn launch_runs_the_image_alias() {
        let images = Images::empty()
            .with(
                [(
                    "app".to_string(),
                    serde_saphyr::from_str(
                        "entrypoint: [/app, \"$(MODE)\"]\ncmd: [--default]\nworkingDir: /srv\nenv: [\"MODE=image\", \"LEVEL=1\", \"PATH=/app/bin\"]\n",
                    )
                    .expect("image config"),
                )]
                .into(),
            )
            .expect("table");
        let pod = Pod::default();
        let mut c = Container {
            name: "main".into(),
            image: Some("app:1.0".into()),
            env: vec![var("MODE", "pod"), var("WHERE", "$(LEVEL)-$(MODE)")],
            ..Default::default()
        };
        let l = launch(&pod, &c, 0, Path::new("/logs"), "/root", &images);
        assert_eq!(l.argv, ["/app", "$(MODE)", "--default"]);
        assert_eq!(l.refused, None);
        let get = |l: &ContainerLaunch, k: &str| {
            l.env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        };
        assert_eq!(
            get(&l, "MODE").as_deref(),
            Some("pod"),
            "the container's env wins"
        );
        assert_eq!(get(&l, "WHERE").as_deref(), Some("1-pod"));
        assert_eq!(get(&l, "PATH").as_deref(), Some("/app/bin"));
        assert_eq!(l.working_dir, PathBuf::from("/srv"));

        c.args = Some(vec!["$(WHERE)".into()]);
        c.working_dir = Some("/tmp".into());
        let l = launch(&pod, &c, 0, Path::new("/logs"), "/root", &images);
        assert_eq!(l.argv, ["/app", "$(MODE)", "1-pod"]);
        assert_eq!(l.working_dir, PathBuf::from("/tmp"));

        // busybox is built in: no entrypoint, cmd sh; args replace cmd.
        let c = Container {
            name: "main".into(),
            image: Some("busybox".into()),
            args: Some(vec!["sh".into(), "-c".into(), "echo hi".into()]),
            ..Default::default()
        };
        let l = launch(&pod, &c, 0, Path::new("/logs"), "/root", &Images::builtin());
        assert_eq!(l.argv, ["sh", "-c", "echo hi"]);
    }

    /// An image whose alias went away since the pod was admitted: nothing to run.
    #[test]
    fn launch_without_an_alias_is_refused() {
        let c = Container {
            name: "main".into(),
            image: Some("nginx".into()),
            ..Default::default()
        };
        let l = launch(
            &Pod::default(),
            &c,
            0,
            Path::new("/logs"),
            "/root",
            &Images::builtin(),
        );
        assert!(l.argv.is_empty());
        assert_eq!(
            l.refused.as_deref(),
            Some(
                "image \"docker.io/library/nginx:latest\" has no entry under images: in the daemon config; set command, or add the image there"
            )
        );
    }

    #[test]
    fn record_exec_keeps_one_argv_per_container() {
        let argv = |words: &[&str]| words.iter().map(|w| w.to_string()).collect::<Vec<_>>();
        let mut annotations = Labels::default();
        assert!(record_exec(
            &mut annotations,
            "main",
            &argv(&["sh", "-c", "echo 'a b'"])
        ));
        assert!(!record_exec(
            &mut annotations,
            "main",
            &argv(&["sh", "-c", "echo 'a b'"])
        ));
        assert!(record_exec(&mut annotations, "side", &argv(&["true"])));
        assert_eq!(
            annotations.get(ANNOTATION_EXEC).map(String::as_str),
            Some(r#"{"main":["sh","-c","echo 'a b'"],"side":["true"]}"#)
        );
        assert!(record_exec(&mut annotations, "main", &argv(&["false"])));
        assert_eq!(
            annotations.get(ANNOTATION_EXEC).map(String::as_str),
            Some(r#"{"main":["false"],"side":["true"]}"#)
        );
        // A value the daemon did not write is replaced.
        annotations.insert(ANNOTATION_EXEC.into(), "not json".into());
        assert!(record_exec(&mut annotations, "main", &argv(&["x"])));
        assert_eq!(
            annotations.get(ANNOTATION_EXEC).map(String::as_str),
            Some(r#"{"main":["x"]}"#)
        );
    }
}
