//! From a pod's container spec to a [`ContainerLaunch`]: environment, `$(VAR)` expansion,
//! working directory and log path. Pure apart from reading the daemon's own HOME once.

use std::path::{Path, PathBuf};

use crate::api::{Container, Pod};
use crate::runtime::ContainerLaunch;
use crate::runtime::logs::container_log_path;
use crate::runtime::process::DEFAULT_PATH;

pub fn launch(
    pod: &Pod,
    container: &Container,
    restart_count: i32,
    logs_root: &Path,
    home: &str,
) -> ContainerLaunch {
    let meta = &pod.metadata;
    let env = environment(pod, container, home);
    let expand_all = |list: &Option<Vec<String>>| -> Vec<String> {
        list.iter().flatten().map(|s| expand(s, &env)).collect()
    };
    let mut argv = expand_all(&container.command);
    argv.extend(expand_all(&container.args));
    ContainerLaunch {
        pod_uid: meta.uid().to_string(),
        namespace: meta.namespace().to_string(),
        pod_name: meta.name().to_string(),
        container: container.name.clone(),
        restart_count,
        argv,
        env,
        working_dir: container
            .working_dir
            .as_deref()
            .filter(|d| !d.is_empty())
            .map_or_else(|| PathBuf::from("/"), PathBuf::from),
        log_path: container_log_path(
            logs_root,
            meta.namespace(),
            meta.name(),
            meta.uid(),
            &container.name,
            restart_count,
        ),
    }
}

/// What a container process sees, in order of precedence low → high: PATH, HOME and HOSTNAME
/// as an image and the kubelet would give them, then the container's `env` in order (each
/// value may refer to variables defined before it).
fn environment(pod: &Pod, container: &Container, home: &str) -> Vec<(String, String)> {
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
    for var in &container.env {
        let value = expand(var.value.as_deref().unwrap_or(""), &env);
        match env.iter_mut().find(|(k, _)| *k == var.name) {
            Some(slot) => slot.1 = value,
            None => env.push((var.name.clone(), value)),
        }
    }
    env
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
        let l = launch(&pod, &c, 2, Path::new("/logs"), "/root");
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
}
