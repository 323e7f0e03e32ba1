//! API requests as the server hands them to the daemon's loop, and the answers.
//!
//! The server owns HTTP; the loop owns state. A request carries a oneshot for its reply, so
//! every read sees one consistent state and every write goes through the same path as a file.

use std::path::PathBuf;
use std::sync::Arc;

use axum::body::Bytes;
use serde_json::Value;
use tokio::sync::{broadcast, oneshot};

use crate::api::labels::Selector;
use crate::api::{Labels, Status};

pub use crate::api::Kind;

/// One change to an object, for `?watch=true` streams.
///
/// The watch event's JSON line is made once, here, and shared by every stream (`Bytes` is a
/// reference-counted slice): with 200 watchers, serializing per stream cost the Job 3x its
/// throughput. `namespace`, `labels` and `object` stay for the streams' filters.
#[derive(Debug, Clone)]
pub struct Change {
    /// Set when published: increasing, so a watch skips changes its initial list holds.
    pub id: u64,
    pub kind: Kind,
    pub namespace: String,
    pub labels: Labels,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub type_: &'static str,
    /// What `fieldSelector` looks at.
    pub object: Arc<Value>,
    /// `{"type":…,"object":…}\n`, as sent on the wire.
    pub line: Bytes,
}

impl Change {
    pub fn new(
        kind: Kind,
        namespace: String,
        labels: Labels,
        type_: &'static str,
        object: Value,
    ) -> Change {
        let line = watch_line(type_, &object);
        Change {
            id: 0,
            kind,
            namespace,
            labels,
            type_,
            object: Arc::new(object),
            line,
        }
    }

    /// The end of every watch of `kind`: `ERROR` with a 410 `Expired` Status, after which a
    /// stream closes and its client lists again.
    pub fn expired(kind: Kind, missed: u64) -> Change {
        let status = serde_json::to_value(expired_status(missed)).unwrap_or_default();
        Change::new(kind, String::new(), Labels::default(), "ERROR", status)
    }

    /// Whether this change ends the streams it reaches (see [`Change::expired`]).
    pub fn ends_watches(&self) -> bool {
        self.type_ == "ERROR"
    }
}

/// The API server's answer to a watch that can no longer be continued (its cache no longer
/// holds where the watcher is): a 410 `Expired` Status.
pub fn expired_status(missed: u64) -> Status {
    Status::failure(
        410,
        "Expired",
        format!(
            "too old resource version: the watcher fell behind and {missed} changes were dropped; list again"
        ),
    )
}

/// One watch event as a newline-terminated JSON line.
pub fn watch_line<T: serde::Serialize + ?Sized>(type_: &str, object: &T) -> Bytes {
    #[derive(serde::Serialize)]
    struct WatchEvent<'a, T: ?Sized> {
        #[serde(rename = "type")]
        type_: &'a str,
        object: &'a T,
    }
    let mut line = Vec::with_capacity(1024);
    // A `Value` always serializes (its map keys are strings); the error arm is unreachable in
    // practice, and an empty line is skipped by the streams rather than sent.
    match serde_json::to_writer(&mut line, &WatchEvent { type_, object }) {
        Ok(()) => {
            line.push(b'\n');
            Bytes::from(line)
        }
        Err(e) => {
            tracing::error!(error = %e, "serializing a watch event");
            Bytes::new()
        }
    }
}

/// `labelSelector` and `fieldSelector` of a list or watch.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub labels: Selector,
    /// `(path, value)` pairs such as `("metadata.name", "x")`; `!=` is not supported.
    pub fields: Vec<(String, String)>,
}

impl Filter {
    pub fn parse(
        label_selector: Option<&str>,
        field_selector: Option<&str>,
    ) -> Result<Filter, String> {
        let labels = Selector::parse(label_selector.unwrap_or(""))?;
        let mut fields = Vec::new();
        for part in field_selector
            .unwrap_or("")
            .split(',')
            .filter(|p| !p.trim().is_empty())
        {
            let (k, v) = part
                .split_once("==")
                .or_else(|| part.split_once('='))
                .ok_or_else(|| format!("invalid field selector: {part:?}: want field=value"))?;
            fields.push((k.trim().to_string(), v.trim().to_string()));
        }
        Ok(Filter { labels, fields })
    }

    /// Matches everything: no label or field selector.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.fields.is_empty()
    }

    pub fn matches(&self, labels: &Labels, object: &Value) -> bool {
        self.labels.matches(labels)
            && self.fields.iter().all(|(path, want)| {
                let pointer = format!("/{}", path.replace('.', "/"));
                object
                    .pointer(&pointer)
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    == want
            })
    }
}

pub type Reply<T> = oneshot::Sender<Result<T, Status>>;

pub struct ListReply {
    /// Each object as JSON text: a list held for the disk costs about its size on the wire,
    /// not the several times more a `Value` tree takes.
    pub items: Vec<Box<serde_json::value::RawValue>>,
    /// Subscribed in the same loop turn the items were read, so no change is missed.
    pub watch: Option<broadcast::Receiver<Arc<Change>>>,
    /// The last change the items reflect: the watch skips changes up to this id.
    pub after: u64,
}

/// Where a container's log is, and whether more may still come.
#[derive(Debug, Clone)]
pub struct LogTarget {
    pub path: PathBuf,
    pub running: bool,
}

pub enum Request {
    List {
        kind: Kind,
        namespace: Option<String>,
        filter: Filter,
        watch: bool,
        /// The items are Table rows (`table.rs`), not objects.
        table: bool,
        reply: Reply<ListReply>,
    },
    Get {
        kind: Kind,
        namespace: String,
        name: String,
        reply: Reply<Value>,
    },
    Delete {
        kind: Kind,
        namespace: String,
        name: String,
        delete: Deletion,
        reply: Reply<Value>,
    },
    /// Whether the Job's next pod waits out the pod-failure backoff (`describe job`).
    JobBackoff {
        namespace: String,
        name: String,
        reply: Reply<crate::proto::JobBackoff>,
    },
    Manifests {
        reply: Reply<Value>,
    },
    /// `metrics.k8s.io/v1beta1` PodMetrics of the running pods (`top pods`), from their
    /// cgroups; all namespaces when `None`.
    PodMetrics {
        namespace: Option<String>,
        reply: Reply<Value>,
    },
    /// What keeps the daemon from its job now: `/healthz`, `/readyz`.
    Health {
        reply: Reply<super::health::Problems>,
    },
    /// `apply` of one object (YAML or JSON), by its identity; with `create`, refused (409
    /// AlreadyExists) when the object exists, as `kubectl create` is.
    Apply {
        body: String,
        create: bool,
        reply: Reply<Applied>,
    },
    /// `POST` of an object to its collection in `namespace` (only a CronJob's Job is
    /// created this way; jobvisor's objects come from files).
    Create {
        kind: Kind,
        namespace: String,
        body: String,
        reply: Reply<Value>,
    },
    Log {
        namespace: String,
        pod: String,
        container: Option<String>,
        previous: bool,
        reply: Reply<LogTarget>,
    },
}

/// What an apply did: the `ManifestFile` of the file that now defines the object (the object
/// marked `action`: created, configured or unchanged), and whether it is new (201).
#[derive(Debug)]
pub struct Applied {
    pub created: bool,
    pub body: Value,
}

/// A `DELETE` as the daemon carries it out, from the request's `DeleteOptions`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Deletion {
    pub propagation: crate::api::Propagation,
    /// `dryRun: [All]`: answered as if deleted, nothing changed.
    pub dry_run: bool,
    /// Delete only if the object still has this uid.
    pub uid: Option<String>,
    /// For the answer's `Warning` header (the API server's default for Jobs).
    pub warning: Option<&'static str>,
}

/// The API server's warning when a batch/v1 Job is deleted with no propagation policy.
const JOB_ORPHAN_WARNING: &str = "child pods are preserved by default when jobs are deleted; set propagationPolicy=Background to remove them or set propagationPolicy=Orphan to suppress this warning";

impl Deletion {
    /// The API server's rules: `propagationPolicy` or the older `orphanDependents` (not both);
    /// with neither, the kind's default — `Orphan` for batch/v1 Jobs (with a warning; kubectl
    /// always sends `Background`), `Background` for the rest.
    #[allow(clippy::result_large_err)]
    pub fn from_options(kind: Kind, o: crate::api::DeleteOptions) -> Result<Deletion, Box<Status>> {
        use crate::api::Propagation;
        let invalid = |message: String| Box::new(Status::failure(422, "Invalid", message));
        let propagation = match (o.propagation_policy.as_deref(), o.orphan_dependents) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "DeleteOptions.propagationPolicy: Invalid value: orphanDependents and deletionPropagation cannot be both set".into(),
                ));
            }
            (Some(p), None) => Propagation::parse(p).map_err(invalid)?,
            (None, Some(true)) => Propagation::Orphan,
            (None, Some(false)) => Propagation::Background,
            (None, None) if kind == Kind::Job => Propagation::Orphan,
            (None, None) => Propagation::Background,
        };
        let defaulted = o.propagation_policy.is_none() && o.orphan_dependents.is_none();
        for d in &o.dry_run {
            if d != "All" {
                return Err(invalid(format!(
                    "DeleteOptions.dryRun: Unsupported value: {d:?}: supported values: \"All\""
                )));
            }
        }
        Ok(Deletion {
            propagation,
            dry_run: !o.dry_run.is_empty(),
            uid: o.preconditions.and_then(|p| p.uid),
            warning: (defaulted && kind == Kind::Job).then_some(JOB_ORPHAN_WARNING),
        })
    }
}

pub fn not_found(kind: Kind, name: &str) -> Status {
    Status::failure(
        404,
        "NotFound",
        format!("{} \"{name}\" not found", kind.resource().qualified()),
    )
}

pub fn bad_request(message: impl Into<String>) -> Status {
    Status::failure(400, "BadRequest", message)
}

/// `jobs.batch "x" already exists` (409), as the API server refuses a create.
pub fn already_exists(kind: Kind, name: &str) -> Status {
    let r = kind.resource();
    let mut s = Status::failure(
        409,
        "AlreadyExists",
        format!("{} \"{name}\" already exists", r.qualified()),
    );
    s.details = Some(serde_json::json!({"name": name, "group": r.group, "kind": r.plural}));
    s
}

/// The API server's 422 (`NewInvalid`): `Job.batch "x" is invalid: …`, one cause per
/// field error (`<field>: <message>`), each with its `FieldValue…` reason.
pub fn invalid(kind: Kind, name: &str, errors: &[String]) -> Status {
    let r = kind.resource();
    let qualified = if r.group.is_empty() {
        r.name.to_string()
    } else {
        format!("{}.{}", r.name, r.group)
    };
    let causes: Vec<Value> = errors
        .iter()
        .map(|e| {
            let (field, message) = e.split_once(": ").unwrap_or(("", e.as_str()));
            let kind = message.split(": ").next().unwrap_or(message);
            let reason = match kind {
                "Required value" => "FieldValueRequired",
                "Invalid value" => "FieldValueInvalid",
                "Unsupported value" => "FieldValueNotSupported",
                "Forbidden" => "FieldValueForbidden",
                "Duplicate value" => "FieldValueDuplicate",
                "Too long" => "FieldValueTooLong",
                "Too many" => "FieldValueTooMany",
                "Not found" => "FieldValueNotFound",
                _ => "FieldValueInvalid",
            };
            serde_json::json!({"reason": reason, "message": message, "field": field})
        })
        .collect();
    // utilerrors' aggregate: one error as is, several in brackets.
    let all = match errors {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    let mut s = Status::failure(
        422,
        "Invalid",
        format!("{qualified} \"{name}\" is invalid: {all}"),
    );
    s.details =
        Some(serde_json::json!({"name": name, "group": r.group, "kind": r.name, "causes": causes}));
    s
}
