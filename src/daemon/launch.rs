//! From a pod's container spec to a [`ContainerLaunch`]: the process its image alias and
//! `command`/`args` make (`crate::images`), environment, `$(VAR)` expansion, working
//! directory and log path; and the record of what ran ([`record_exec`]). Pure apart from
//! reading the daemon's own HOME once.

use std::path::{Path, PathBuf};

use crate::api::{ANNOTATION_EXEC, Container, Labels, Pod};
use crate::images::Images;
use crate::runtime::logs::container_log_path;
use crate::runtime::process::DEFAULT_PATH;
use crate::runtime::{ContainerLaunch, RunAs};

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
    let identity = identity(
        pod,
        container,
        nix::unistd::geteuid().as_raw(),
        &passwd_entry,
    );
    let home = match &identity {
        Ok(Identity { home: Some(h), .. }) => h.as_str(),
        _ => home,
    };
    let env = environment(pod, container, home, image_env);
    // Validation refused such a container; the config can have changed since it was
    // admitted (a daemon restarted without the alias): the run ends StartError, as a
    // container whose image cannot be had never starts.
    let (argv, refused) = match (&process, &identity) {
        (Ok(p), Ok(_)) => (p.argv(|word| expand(word, &env)), None),
        (Err(why), _) => (Vec::new(), Some(why.to_string())),
        (_, Err(why)) => (Vec::new(), Some(why.clone())),
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
        // The caller sets the config's (`logs.containerLogMaxSize`, `containerLogMaxFiles`).
        log_limits: Default::default(),
        // Validation refused bad quantities; one that slipped in (an older state) runs
        // without limits rather than not at all.
        limits: container
            .resources
            .as_ref()
            .and_then(|r| crate::quantity::resource_limits(r).ok())
            .unwrap_or_default(),
        pids_limit: None,
        user: identity.ok().and_then(|i| i.user),
    }
}

/// Who a container's process is, from its effective `securityContext`.
#[derive(Debug, PartialEq)]
struct Identity {
    /// `None`: the daemon's own user and groups.
    user: Option<RunAs>,
    /// `HOME` from the user's passwd entry, when a user is set.
    home: Option<String>,
}

/// A passwd entry's primary group and home directory.
fn passwd_entry(uid: u32) -> Option<(u32, String)> {
    let user = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)).ok()??;
    Some((user.gid.as_raw(), user.dir.to_string_lossy().into_owned()))
}

/// The kubelet's rules, as far as they apply to a process of this host:
/// - `runAsUser`/`runAsGroup` of the container over the pod's; `supplementalGroups` and
///   `fsGroup` (the kubelet adds it as a supplementary group) from the pod;
/// - without `runAsGroup`, the user's primary group from its passwd entry (`0` when it has
///   none, as runc does), and `HOME` from that entry (`/` without one);
/// - `runAsNonRoot` refuses a process that would run as uid 0, with the kubelet's words
///   (`pkg/kubelet/kuberuntime/security_context_others.go`, `verifyRunAsNonRoot`); without
///   `runAsUser` the "image's user" is the daemon's;
/// - a daemon that is not root can only run containers as itself.
fn identity(
    pod: &Pod,
    container: &Container,
    daemon_uid: u32,
    passwd: &dyn Fn(u32) -> Option<(u32, String)>,
) -> Result<Identity, String> {
    use crate::api::security::SecurityContext;
    let read =
        |v| SecurityContext::from_value(v).map_err(|(f, m)| format!("securityContext.{f}: {m}"));
    let sc = SecurityContext::effective(
        &read(pod.spec.security_context.as_ref())?,
        &read(container.security_context.as_ref())?,
    );
    let id = |n: i64, what: &str| {
        u32::try_from(n).map_err(|_| format!("securityContext.{what}: {n} is not a valid id"))
    };
    let uid = sc.run_as_user.map(|n| id(n, "runAsUser")).transpose()?;
    let gid = sc.run_as_group.map(|n| id(n, "runAsGroup")).transpose()?;
    let mut groups = Vec::new();
    for g in sc.supplemental_groups.iter().flatten() {
        groups.push(id(*g, "supplementalGroups")?);
    }
    if let Some(g) = sc.fs_group {
        groups.push(id(g, "fsGroup")?);
    }
    if sc.run_as_non_root == Some(true) {
        let who = format!("pod: {:?}, container: {}", pod_label(pod), container.name);
        match uid {
            Some(0) => {
                return Err(format!(
                    "container's runAsUser breaks non-root policy ({who})"
                ));
            }
            None if daemon_uid == 0 => {
                return Err(format!(
                    "container has runAsNonRoot and image will run as root ({who})"
                ));
            }
            _ => {}
        }
    }
    if uid.is_none() && gid.is_none() && groups.is_empty() {
        return Ok(Identity {
            user: None,
            home: None,
        });
    }
    let uid_now = uid.unwrap_or(daemon_uid);
    if daemon_uid != 0 && uid_now != daemon_uid {
        return Err(format!(
            "securityContext.runAsUser {uid_now}: the daemon runs as uid {daemon_uid}, not root, \
             and cannot run containers as another user"
        ));
    }
    let entry = passwd(uid_now);
    let gid = gid.unwrap_or_else(|| entry.as_ref().map_or(0, |(g, _)| *g));
    Ok(Identity {
        user: Some(RunAs {
            uid: uid_now,
            gid,
            groups,
        }),
        home: uid.map(|_| entry.map_or_else(|| "/".to_owned(), |(_, h)| h)),
    })
}

/// `name_namespace(uid)`, as the kubelet names a pod in its messages.
fn pod_label(pod: &Pod) -> String {
    let m = &pod.metadata;
    format!("{}_{}({})", m.name(), m.namespace(), m.uid())
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
        let value = match field_ref(pod, var) {
            Some(v) => v,
            None => expand(var.value.as_deref().unwrap_or(""), &env),
        };
        set(&mut env, &var.name, value);
    }
    env
}

/// The downward API's `valueFrom.fieldRef` for the pod's own metadata: how an Indexed Job's
/// pod gets `JOB_COMPLETION_INDEX` (from its `batch.kubernetes.io/job-completion-index`
/// label, as the Job controller writes it). Manifests cannot use `valueFrom` yet
/// (validation refuses it); only the controller's own references reach here.
fn field_ref(pod: &Pod, var: &crate::api::EnvVar) -> Option<String> {
    let path = var
        .value_from
        .as_ref()?
        .get("fieldRef")?
        .get("fieldPath")?
        .as_str()?;
    let meta = &pod.metadata;
    let keyed = |prefix: &str| {
        path.strip_prefix(prefix)?
            .strip_suffix("']")
            .map(str::to_string)
    };
    let value = match path {
        "metadata.name" => meta.name().to_string(),
        "metadata.namespace" => meta.namespace().to_string(),
        "metadata.uid" => meta.uid().to_string(),
        "spec.nodeName" => pod.spec.node_name.clone().unwrap_or_default(),
        _ => {
            if let Some(k) = keyed("metadata.labels['") {
                meta.labels.get(&k).cloned().unwrap_or_default()
            } else if let Some(k) = keyed("metadata.annotations['") {
                meta.annotations.get(&k).cloned().unwrap_or_default()
            } else {
                return None;
            }
        }
    };
    Some(value)
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
    use serde_json::json;

    #[test]
    fn identity_follows_the_kubelet() {
        let mk = |pod_sc: serde_json::Value, c_sc: serde_json::Value| {
            let pod = Pod {
                metadata: ObjectMeta {
                    name: Some("p".into()),
                    namespace: Some("default".into()),
                    uid: Some("u".into()),
                    ..Default::default()
                },
                spec: crate::api::PodSpec {
                    security_context: Some(pod_sc),
                    ..Default::default()
                },
                ..Default::default()
            };
            let c = Container {
                name: "main".into(),
                security_context: Some(c_sc),
                ..Default::default()
            };
            (pod, c)
        };
        let passwd = |uid: u32| (uid == 65534).then(|| (65534, "/nonexistent".to_owned()));
        // Nothing set: the daemon's own user.
        let (p, c) = mk(json!({}), json!({}));
        assert_eq!(
            identity(&p, &c, 0, &passwd),
            Ok(Identity {
                user: None,
                home: None
            })
        );
        // nobody: its primary group and home; fsGroup after supplementalGroups.
        let (p, c) = mk(
            json!({"supplementalGroups": [10], "fsGroup": 20}),
            json!({"runAsUser": 65534}),
        );
        assert_eq!(
            identity(&p, &c, 0, &passwd),
            Ok(Identity {
                user: Some(RunAs {
                    uid: 65534,
                    gid: 65534,
                    groups: vec![10, 20]
                }),
                home: Some("/nonexistent".into()),
            })
        );
        // A uid without a passwd entry: group 0 and HOME=/, as runc; runAsGroup wins.
        let (p, c) = mk(json!({"runAsUser": 1000}), json!({"runAsGroup": 7}));
        assert_eq!(
            identity(&p, &c, 0, &passwd).unwrap().user,
            Some(RunAs {
                uid: 1000,
                gid: 7,
                groups: vec![]
            })
        );
        let (p, c) = mk(json!({"runAsUser": 1234}), json!({}));
        assert_eq!(
            identity(&p, &c, 0, &passwd).unwrap().home.as_deref(),
            Some("/")
        );
        // runAsNonRoot.
        let (p, c) = mk(json!({"runAsNonRoot": true}), json!({}));
        assert_eq!(
            identity(&p, &c, 0, &passwd).unwrap_err(),
            r#"container has runAsNonRoot and image will run as root (pod: "p_default(u)", container: main)"#
        );
        assert!(
            identity(&p, &c, 1000, &passwd).is_ok(),
            "an unprivileged daemon is not root"
        );
        let (p, c) = mk(json!({"runAsNonRoot": true}), json!({"runAsUser": 0}));
        assert_eq!(
            identity(&p, &c, 0, &passwd).unwrap_err(),
            r#"container's runAsUser breaks non-root policy (pod: "p_default(u)", container: main)"#
        );
        // An unprivileged daemon runs containers as itself only.
        let (p, c) = mk(json!({}), json!({"runAsUser": 65534}));
        assert_eq!(
            identity(&p, &c, 1000, &passwd).unwrap_err(),
            "securityContext.runAsUser 65534: the daemon runs as uid 1000, not root, and cannot \
             run containers as another user"
        );
        let (p, c) = mk(json!({}), json!({"runAsUser": 1000}));
        assert!(identity(&p, &c, 1000, &passwd).is_ok());
    }

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

    /// An Indexed Job's pod: `JOB_COMPLETION_INDEX` from its label, `HOSTNAME` from
    /// `spec.hostname` (`<job>-<index>`), and the other metadata references.
    #[test]
    fn field_refs_read_the_pods_own_metadata() {
        let mut pod = Pod {
            metadata: ObjectMeta {
                name: Some("idx-2-abcde".into()),
                namespace: Some("default".into()),
                uid: Some("u1".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        pod.metadata.labels.insert(
            "batch.kubernetes.io/job-completion-index".into(),
            "2".into(),
        );
        pod.metadata.annotations.insert("note".into(), "hi".into());
        pod.spec.hostname = Some("idx-2".into());
        let from = |name: &str, path: &str| EnvVar {
            name: name.into(),
            value: None,
            value_from: Some(json!({"fieldRef": {"fieldPath": path}})),
        };
        let c = Container {
            name: "main".into(),
            command: Some(vec!["echo".into(), "$(JOB_COMPLETION_INDEX)".into()]),
            env: vec![
                from(
                    "JOB_COMPLETION_INDEX",
                    "metadata.labels['batch.kubernetes.io/job-completion-index']",
                ),
                from("NOTE", "metadata.annotations['note']"),
                from("MISSING", "metadata.labels['nope']"),
                from("POD", "metadata.name"),
                from("NS", "metadata.namespace"),
                from("UID", "metadata.uid"),
                from("ODD", "status.podIP"),
            ],
            ..Default::default()
        };
        let l = launch(&pod, &c, 0, Path::new("/logs"), "/root", &Images::builtin());
        let get = |k: &str| l.env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(l.argv, ["echo", "2"]);
        assert_eq!(get("JOB_COMPLETION_INDEX"), Some("2"));
        assert_eq!(get("HOSTNAME"), Some("idx-2"));
        assert_eq!(get("NOTE"), Some("hi"));
        assert_eq!(get("MISSING"), Some(""));
        assert_eq!(get("POD"), Some("idx-2-abcde"));
        assert_eq!(get("NS"), Some("default"));
        assert_eq!(get("UID"), Some("u1"));
        assert_eq!(get("ODD"), Some(""));
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
