//! Who may change what through the socket: the peer's credentials (`SO_PEERCRED`).
//!
//! The socket's mode and group decide who can connect at all (`daemon/serve.rs`: 0660, group
//! `api.socketGroup`). Everyone who can connect may read (get, list, watch, logs, health);
//! only root or the daemon's own user may write (create, apply, delete, any method but
//! `GET`/`HEAD`), since a write decides what runs as the daemon's user. Others get `403
//! Forbidden` as a Kubernetes `Status`, worded as the API server's authorizer words it
//! (`k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go::ForbiddenStatus`).
//! The credentials are the kernel's, taken when the connection was accepted: a client cannot
//! claim another uid.

use axum::http::Method;
use serde_json::json;

use crate::api::Status;

/// The process at the other end of a connection, as the kernel saw it at `connect`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    pub uid: u32,
    pub gid: u32,
}

/// What a request path names, for the refusal's wording.
#[derive(Debug, PartialEq, Eq)]
struct Target<'a> {
    group: &'a str,
    resource: &'a str,
    namespace: Option<&'a str>,
    name: Option<&'a str>,
}

/// `/api/v1/namespaces/ns/pods/x`, `/apis/batch/v1/namespaces/ns/jobs`,
/// `/apis/jobvisor.io/v1/manifests`: the group, resource, namespace and name.
fn target(path: &str) -> Option<Target<'_>> {
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (group, rest) = match parts.as_slice() {
        ["api", _version, rest @ ..] => ("", rest),
        ["apis", group, _version, rest @ ..] => (*group, rest),
        _ => return None,
    };
    match rest {
        ["namespaces", ns, resource, more @ ..] => Some(Target {
            group,
            resource,
            namespace: Some(ns),
            name: more.first().copied(),
        }),
        [resource, more @ ..] => Some(Target {
            group,
            resource,
            namespace: None,
            name: more.first().copied(),
        }),
        [] => None,
    }
}

/// The API server's verb for a method on a path with or without a name.
fn verb(method: &Method, named: bool) -> String {
    match *method {
        Method::POST => "create".into(),
        Method::PUT => "update".into(),
        Method::PATCH => "patch".into(),
        Method::DELETE if named => "delete".into(),
        Method::DELETE => "deletecollection".into(),
        ref m => m.as_str().to_ascii_lowercase(),
    }
}

/// Pure: may `peer` (`None`: its credentials could not be read) make this request of a
/// daemon running as `daemon_uid`? Reads are open to anyone who could connect.
pub fn authorize(
    peer: Option<Peer>,
    daemon_uid: u32,
    method: &Method,
    path: &str,
) -> Result<(), Box<Status>> {
    if matches!(*method, Method::GET | Method::HEAD) {
        return Ok(());
    }
    if let Some(p) = peer
        && (p.uid == 0 || p.uid == daemon_uid)
    {
        return Ok(());
    }
    let user = peer.map_or_else(|| "unknown".to_string(), |p| format!("uid {}", p.uid));
    let t = target(path);
    let verb = verb(method, t.as_ref().is_some_and(|t| t.name.is_some()));
    let message = match &t {
        Some(t) => {
            let qualified = if t.group.is_empty() {
                t.resource.to_string()
            } else {
                format!("{}.{}", t.resource, t.group)
            };
            let object = match t.name {
                Some(name) => format!("{qualified} \"{name}\""),
                None => qualified,
            };
            let scope = match t.namespace {
                Some(ns) => format!("in the namespace \"{ns}\""),
                None => "at the cluster scope".into(),
            };
            format!(
                "{object} is forbidden: User \"{user}\" cannot {verb} resource \"{}\" in API group \"{}\" {scope}: only root or the daemon's user may change objects",
                t.resource, t.group
            )
        }
        None => format!(
            "forbidden: User \"{user}\" cannot {verb} path \"{path}\": only root or the daemon's user may change objects"
        ),
    };
    let mut status = Status::failure(403, "Forbidden", message);
    if let Some(t) = t {
        let mut details = json!({"group": t.group, "kind": t.resource});
        if let Some(name) = t.name {
            details["name"] = json!(name);
        }
        status.details = Some(details);
    }
    Err(Box::new(status))
}

/// The middleware: the peer was put in the request's extensions at accept
/// (`connections.rs`).
pub async fn check(
    axum::extract::State(daemon_uid): axum::extract::State<u32>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let peer = req.extensions().get::<Peer>().copied();
    match authorize(peer, daemon_uid, req.method(), req.uri().path()) {
        Ok(()) => next.run(req).await,
        Err(status) => {
            tracing::info!(
                peer_uid = peer.map(|p| p.uid),
                method = %req.method(),
                path = req.uri().path(),
                "refused a write: {}",
                status.message
            );
            super::status_response(*status)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAEMON: u32 = 0;

    fn user(uid: u32) -> Option<Peer> {
        Some(Peer { uid, gid: uid })
    }

    #[test]
    fn reads_are_open_writes_need_root_or_the_daemons_user() {
        let job = "/apis/batch/v1/namespaces/default/jobs/x";
        for (peer, method, allowed) in [
            (user(1000), Method::GET, true),
            (user(1000), Method::HEAD, true),
            (None, Method::GET, true),
            (user(1000), Method::DELETE, false),
            (user(1000), Method::POST, false),
            (user(1000), Method::PUT, false),
            (user(1000), Method::PATCH, false),
            (None, Method::DELETE, false),
            (user(0), Method::DELETE, true),
            (user(0), Method::POST, true),
        ] {
            assert_eq!(
                authorize(peer, DAEMON, &method, job).is_ok(),
                allowed,
                "{peer:?} {method}"
            );
        }
        // A daemon running as its own user: that user may write, root too.
        assert!(authorize(user(998), 998, &Method::DELETE, job).is_ok());
        assert!(authorize(user(0), 998, &Method::DELETE, job).is_ok());
        assert!(authorize(user(1000), 998, &Method::DELETE, job).is_err());
    }

    #[test]
    fn the_refusal_is_worded_as_the_api_servers() {
        let refusal = |method: Method, path: &str| {
            let s = authorize(user(1000), DAEMON, &method, path).unwrap_err();
            assert_eq!((s.code, s.reason.as_str()), (403, "Forbidden"));
            (s.message, s.details)
        };
        let (message, details) =
            refusal(Method::DELETE, "/apis/batch/v1/namespaces/default/jobs/x");
        assert_eq!(
            message,
            "jobs.batch \"x\" is forbidden: User \"uid 1000\" cannot delete resource \"jobs\" in API group \"batch\" in the namespace \"default\": only root or the daemon's user may change objects"
        );
        assert_eq!(
            details,
            Some(json!({"name": "x", "group": "batch", "kind": "jobs"}))
        );
        let (message, _) = refusal(Method::POST, "/api/v1/namespaces/ns/pods");
        assert_eq!(
            message,
            "pods is forbidden: User \"uid 1000\" cannot create resource \"pods\" in API group \"\" in the namespace \"ns\": only root or the daemon's user may change objects"
        );
        let (message, _) = refusal(Method::DELETE, "/apis/batch/v1/namespaces/ns/cronjobs");
        assert!(
            message.contains("cannot deletecollection resource \"cronjobs\""),
            "{message}"
        );
        let (message, _) = refusal(Method::POST, "/apis/jobvisor.io/v1/manifests");
        assert!(
            message.starts_with("manifests.jobvisor.io is forbidden: User \"uid 1000\" cannot create resource \"manifests\" in API group \"jobvisor.io\" at the cluster scope"),
            "{message}"
        );
        let (message, details) = refusal(Method::POST, "/nowhere");
        assert!(
            message.starts_with("forbidden: User \"uid 1000\" cannot create path \"/nowhere\""),
            "{message}"
        );
        assert_eq!(details, None);
    }
}
