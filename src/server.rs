//! The API server: HTTP/1.1 on the Unix socket, Kubernetes REST paths and JSON.
//!
//! Handlers are thin: each turns a request into a [`Request`] for the daemon's loop and the
//! answer into HTTP. Errors are Kubernetes `Status` objects. `?watch=true` streams
//! newline-delimited watch events; `.../log?follow=true` streams a container's log as it
//! grows. So `curl --unix-socket` works, and anyone who knows the Kubernetes API knows ours.

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::UnixListener;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::sync::{mpsc, oneshot};

use crate::api::Status;
use crate::api::table;
use crate::daemon::requests::{Change, Filter, Kind, ListReply, Request, bad_request, watch_line};
use crate::runtime::logs;

/// Largest request body accepted (a manifest file).
const MAX_BODY: usize = 4 << 20;

#[derive(Clone)]
struct Api {
    tx: mpsc::Sender<Request>,
    /// Where `logs -f` waits for the runtime's log writers.
    feeds: logs::LogFeeds,
}

pub mod access;
mod connections;

pub use connections::Limits;

/// Serves the API on `listener` until the task is dropped, within `limits`; `logs -f` waits on
/// `feeds` (the runtime's, [`crate::runtime::process::ProcessRuntime::log_feeds`]).
pub async fn serve(
    listener: UnixListener,
    tx: mpsc::Sender<Request>,
    limits: Limits,
    feeds: logs::LogFeeds,
) {
    let api = Api { tx, feeds };
    let daemon_uid = nix::unistd::geteuid().as_raw();
    let app = router(api.clone())
        .layer(axum::middleware::from_fn_with_state(
            limits.request_timeout,
            request_timeout,
        ))
        // Outermost: a refused write is answered before its body is read.
        .layer(axum::middleware::from_fn_with_state(
            daemon_uid,
            access::check,
        ));
    connections::accept_loop(listener, app, overload_router(api), limits).await;
}

/// `api.requestTimeout`: a request must be answered (its body read, the daemon's answer
/// received) within it, else `504` with reason `Timeout`, as the kube-apiserver's timeout
/// filter answers. A watch or `logs -f` is answered at once and then streams its body, which
/// this does not limit.
async fn request_timeout(
    State(limit): State<Duration>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    if limit.is_zero() {
        // 0s: no limit (every answer comes through the daemon's loop, so a zero timeout
        // would refuse them all).
        return next.run(req).await;
    }
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => status_response(Status::failure(
            504,
            "Timeout",
            "Timeout: request did not complete within the allotted timeout",
        )),
    }
}

/// What a connection past `api.maxConnections` gets: health checks still answer, anything
/// else is `429 TooManyRequests` with `Retry-After`, as the kube-apiserver's max-in-flight
/// filter answers.
fn overload_router(api: Api) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(|| async {
            let mut s = Status::failure(
                429,
                "TooManyRequests",
                "Too many requests, please try again later.",
            );
            s.details = Some(json!({"retryAfterSeconds": 1}));
            let mut r = status_response(s);
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            r
        })
        .with_state(api)
}

/// Every namespaced kind of the registry gets list (and watch), create (`POST`), get and
/// delete on its Kubernetes paths; the manifests resource and pod logs have their own
/// handlers.
fn router(api: Api) -> Router {
    let mut router = Router::new();
    for kind in Kind::ALL.into_iter().filter(|k| k.resource().namespaced) {
        let [all, in_ns, one] = kind.resource().routes();
        let list = move |State(api): State<Api>,
                         ns: Option<Path<String>>,
                         headers: axum::http::HeaderMap,
                         Query(q): Query<ListQuery>| {
            let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
            // kubectl's server-side printing; a watch always streams the objects.
            let table = accept.is_some_and(table::wants_table) && !truthy(&q.watch);
            list(api, kind, ns.map(|Path(n)| n), q, table)
        };
        let create = move |State(api): State<Api>, Path(ns): Path<String>, body: String| {
            create(api, kind, ns, body)
        };
        router = router
            .route(&all, get(list))
            .route(&in_ns, get(list).post(create))
            .route(
                &one,
                get(
                    move |State(api): State<Api>, Path((ns, name)): Path<(String, String)>| {
                        get_one(api, kind, ns, name)
                    },
                )
                .delete(
                    move |State(api): State<Api>,
                          Path((ns, name)): Path<(String, String)>,
                          Query(q): Query<DeleteQuery>,
                          body: Bytes| delete_one(api, kind, ns, name, q, body),
                ),
            );
    }
    let manifests_route = Kind::Manifest.collection_path(None);
    router
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/version", get(version))
        .route("/api/v1/namespaces/{ns}/pods/{name}/log", get(pod_log))
        .route(&manifests_route, get(manifests).post(apply))
        .route(
            "/apis/jobvisor.io/v1/namespaces/{ns}/jobs/{name}/backoff",
            get(job_backoff),
        )
        .route("/apis/metrics.k8s.io/v1beta1/pods", get(pod_metrics_all))
        .route(
            "/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods",
            get(pod_metrics_in),
        )
        .fallback(|| async {
            status_response(Status::failure(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ))
        })
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(api)
}

/// `ok`, or 500 with the reason, as the API server's health endpoints answer. A daemon whose
/// loop does not answer is not healthy either.
async fn health_check(
    api: &Api,
    check: fn(&crate::daemon::health::Problems) -> Result<(), String>,
) -> Response {
    match api.ask(|reply| Request::Health { reply }).await {
        Ok(problems) => match check(&problems) {
            Ok(()) => (StatusCode::OK, "ok").into_response(),
            Err(why) => (StatusCode::INTERNAL_SERVER_ERROR, format!("{why}\n")).into_response(),
        },
        Err(s) => status_response(s),
    }
}

async fn healthz(State(api): State<Api>) -> Response {
    health_check(&api, crate::daemon::health::Problems::healthy).await
}

async fn readyz(State(api): State<Api>) -> Response {
    health_check(&api, crate::daemon::health::Problems::ready).await
}

async fn version() -> Json<Value> {
    Json(
        json!({"gitVersion": format!("v{}", crate::VERSION), "platform": format!("{}/{}", std::env::consts::OS, std::env::consts::ARCH)}),
    )
}

fn status_response(s: Status) -> Response {
    let code = StatusCode::from_u16(s.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (code, Json(s)).into_response()
}

fn unavailable() -> Status {
    Status::failure(
        503,
        "ServiceUnavailable",
        "the jobvisor daemon is shutting down",
    )
}

impl Api {
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, Status>>) -> Request,
    ) -> Result<T, Status> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(make(reply)).await.map_err(|_| unavailable())?;
        rx.await.map_err(|_| unavailable())?
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListQuery {
    label_selector: Option<String>,
    field_selector: Option<String>,
    watch: Option<String>,
}

fn truthy(v: &Option<String>) -> bool {
    matches!(v.as_deref(), Some("true" | "1" | "True"))
}

async fn list(
    api: Api,
    kind: Kind,
    namespace: Option<String>,
    q: ListQuery,
    table: bool,
) -> Response {
    let filter = match Filter::parse(q.label_selector.as_deref(), q.field_selector.as_deref()) {
        Ok(f) => f,
        Err(e) => return status_response(bad_request(e)),
    };
    let watch = truthy(&q.watch);
    let ns = namespace.clone();
    let f = filter.clone();
    let reply = api
        .ask(|reply| Request::List {
            kind,
            namespace: ns,
            filter: f,
            watch,
            table,
            reply,
        })
        .await;
    match reply {
        Err(s) => status_response(s),
        Ok(ListReply {
            items,
            watch: Some(rx),
            after,
        }) => watch_response(kind, namespace, filter, items, rx, after),
        Ok(ListReply {
            items, watch: None, ..
        }) if table => table_response(kind, &items),
        Ok(ListReply {
            items, watch: None, ..
        }) => list_response(kind, &items),
    }
}

/// Most bytes one write of a watch stream carries: whatever is ready is drained into one
/// buffer up to this, so a busy stream costs one body write per batch, not one per event.
const WATCH_BATCH: usize = 256 * 1024;

/// `{"apiVersion":…,"kind":"…List","metadata":{},"items":[…]}` from items already JSON.
fn list_response(kind: Kind, items: &[Box<serde_json::value::RawValue>]) -> Response {
    let head = format!(
        r#"{{"apiVersion":"{}","kind":"{}","metadata":{{}},"items":["#,
        kind.resource().api_version,
        kind.resource().list_kind()
    );
    json_array_response(head, items, "application/json")
}

/// `{"kind":"Table","apiVersion":"meta.k8s.io/v1",…,"rows":[…]}` from rows already JSON.
fn table_response(kind: Kind, rows: &[Box<serde_json::value::RawValue>]) -> Response {
    let columns =
        serde_json::to_string(&crate::printers::columns(kind)).unwrap_or_else(|_| "[]".into());
    let head = format!(
        r#"{{"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{{}},"columnDefinitions":{columns},"rows":["#
    );
    json_array_response(head, rows, table::TABLE_CONTENT_TYPE)
}

/// `head`, then the elements (already JSON) comma-separated, then `]}`: an object whose last
/// field is the array, written without parsing or copying the elements again.
fn json_array_response(
    head: String,
    elements: &[Box<serde_json::value::RawValue>],
    content_type: &'static str,
) -> Response {
    let size = elements.iter().map(|e| e.get().len() + 1).sum::<usize>() + head.len() + 2;
    let mut body = Vec::with_capacity(size);
    body.extend_from_slice(head.as_bytes());
    for (i, e) in elements.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(e.get().as_bytes());
    }
    body.extend_from_slice(b"]}");
    Response::builder()
        .header(header::CONTENT_TYPE, content_type)
        .body(Body::from(body))
        .unwrap_or_else(|_| {
            status_response(Status::failure(500, "InternalError", "building response"))
        })
}

/// The current objects as `ADDED`, then every matching change, one JSON object per line.
///
/// The lines were serialized once by the daemon ([`Change::line`]); a stream only filters and
/// copies. A stream whose client stopped reading falls behind the broadcast's backlog (the
/// daemon never waits for it): it then ends the way the API server ends a watch that is too
/// old, with an `ERROR` event carrying a 410 `Expired` Status, so the client lists again.
fn watch_response(
    kind: Kind,
    namespace: Option<String>,
    filter: Filter,
    items: Vec<Box<serde_json::value::RawValue>>,
    rx: broadcast::Receiver<Arc<Change>>,
    after: u64,
) -> Response {
    let mut initial = std::collections::VecDeque::new();
    let mut buf = Vec::new();
    for item in items {
        buf.extend_from_slice(&watch_line("ADDED", &*item));
        if buf.len() >= WATCH_BATCH {
            initial.push_back(Bytes::from(std::mem::take(&mut buf)));
        }
    }
    if !buf.is_empty() {
        initial.push_back(Bytes::from(buf));
    }
    let everything = namespace.is_none() && filter.is_empty();
    let body = WatchBody {
        initial,
        wanted: Box::new(move |change: &Change| {
            // The initial list already reflects changes made before it was read.
            change.id > after
                && change.kind == kind
                && (everything
                    || namespace.as_deref().is_none_or(|n| n == change.namespace)
                        && filter.matches(&change.labels, &change.object))
        }),
        rx: Some(rx),
        recv: None,
        done: false,
    };
    Response::builder()
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::new(body))
        .unwrap_or_else(|_| {
            status_response(Status::failure(500, "InternalError", "building response"))
        })
}

type Received = (
    Result<Arc<Change>, RecvError>,
    broadcast::Receiver<Arc<Change>>,
);

/// A watch stream's body, polled by the connection itself: no task or channel per watcher,
/// so a batch of changes costs one wake-up and one write. hyper polls it only when it can
/// write, which is what lets a stuck client fall behind (and be ended) instead of being
/// buffered for.
struct WatchBody {
    /// The `ADDED` lines of the objects listed when the watch began.
    initial: std::collections::VecDeque<Bytes>,
    wanted: Box<dyn Fn(&Change) -> bool + Send>,
    /// The receiver, while no `recv` is in flight.
    rx: Option<broadcast::Receiver<Arc<Change>>>,
    /// Waits for the next change; owns the receiver meanwhile.
    recv: Option<std::pin::Pin<Box<dyn std::future::Future<Output = Received> + Send>>>,
    done: bool,
}

impl WatchBody {
    /// Adds one received change (or the end) to `buf`; false once the stream must end.
    fn take(&mut self, received: Result<Arc<Change>, RecvError>, buf: &mut Vec<u8>) -> bool {
        match received {
            Ok(change) if change.ends_watches() => {
                buf.extend_from_slice(&change.line);
                false
            }
            Ok(change) => {
                if (self.wanted)(&change) {
                    buf.extend_from_slice(&change.line);
                }
                true
            }
            Err(RecvError::Lagged(missed)) => {
                tracing::info!(
                    missed,
                    "a watcher fell behind; ending its stream with 410 Expired so it re-lists"
                );
                buf.extend_from_slice(&expired_line(missed));
                false
            }
            Err(RecvError::Closed) => false,
        }
    }
}

impl hyper::body::Body for WatchBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        use std::task::Poll;
        let this = self.get_mut();
        if let Some(chunk) = this.initial.pop_front() {
            return Poll::Ready(Some(Ok(hyper::body::Frame::data(chunk))));
        }
        loop {
            if this.done {
                return Poll::Ready(None);
            }
            if this.recv.is_none() {
                let Some(mut rx) = this.rx.take() else {
                    return Poll::Ready(None);
                };
                this.recv = Some(Box::pin(async move {
                    let received = rx.recv().await;
                    (received, rx)
                }));
            }
            let Some(recv) = this.recv.as_mut() else {
                return Poll::Ready(None);
            };
            let (received, mut rx) = match recv.as_mut().poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(r) => r,
            };
            this.recv = None;
            // One change came: take every other one that is ready into the same write.
            let line = received.as_ref().map_or(0, |c| c.line.len());
            let mut buf = Vec::with_capacity((line * (rx.len() + 1)).min(WATCH_BATCH + line));
            let mut open = this.take(received, &mut buf);
            while open && buf.len() < WATCH_BATCH {
                match rx.try_recv() {
                    Ok(change) => open = this.take(Ok(change), &mut buf),
                    Err(TryRecvError::Lagged(n)) => {
                        open = this.take(Err(RecvError::Lagged(n)), &mut buf)
                    }
                    Err(TryRecvError::Closed) => open = false,
                    Err(TryRecvError::Empty) => break,
                }
            }
            this.done = !open;
            this.rx = open.then_some(rx);
            if !buf.is_empty() {
                return Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from(buf)))));
            }
        }
    }
}

/// `ERROR` with a 410 `Expired` Status: see [`crate::daemon::requests::expired_status`].
fn expired_line(missed: u64) -> Bytes {
    match serde_json::to_value(crate::daemon::requests::expired_status(missed)) {
        Ok(v) => watch_line("ERROR", &v),
        Err(_) => Bytes::new(),
    }
}

/// An answer of the daemon as the API server gives it: the object as JSON, or its Status.
fn answer<T: serde::Serialize>(r: Result<T, Status>) -> Response {
    match r {
        Ok(v) => Json(v).into_response(),
        Err(s) => status_response(s),
    }
}

async fn get_one(api: Api, kind: Kind, namespace: String, name: String) -> Response {
    answer(
        api.ask(|reply| Request::Get {
            kind,
            namespace,
            name,
            reply,
        })
        .await,
    )
}
/// `DELETE` with the API's `DeleteOptions`, as a query parameter (`?propagationPolicy=…`)
/// or as the body kubectl sends; the query wins, as in the API server.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteQuery {
    propagation_policy: Option<String>,
    orphan_dependents: Option<bool>,
    dry_run: Option<String>,
}

/// `DELETE` with the API's `DeleteOptions`: from the body kubectl sends, or, when the body is
/// empty, from the query (`?propagationPolicy=…`), as the API server reads them.
async fn delete_one(
    api: Api,
    kind: Kind,
    namespace: String,
    name: String,
    q: DeleteQuery,
    body: Bytes,
) -> Response {
    let options = if body.iter().all(u8::is_ascii_whitespace) {
        crate::api::DeleteOptions {
            propagation_policy: q.propagation_policy,
            orphan_dependents: q.orphan_dependents,
            dry_run: q.dry_run.into_iter().collect(),
            preconditions: None,
        }
    } else {
        match serde_json::from_slice::<crate::api::DeleteOptions>(&body) {
            Ok(o) => o,
            Err(e) => return status_response(bad_request(format!("invalid DeleteOptions: {e}"))),
        }
    };
    let delete = match crate::daemon::requests::Deletion::from_options(kind, options) {
        Ok(d) => d,
        Err(s) => return status_response(*s),
    };
    let warning = delete.warning;
    let mut response = answer(
        api.ask(|reply| Request::Delete {
            kind,
            namespace,
            name,
            delete,
            reply,
        })
        .await,
    );
    if let Some(text) = warning
        && let Ok(value) = header::HeaderValue::from_str(&format!("299 - \"{text}\""))
    {
        response.headers_mut().insert(header::WARNING, value);
    }
    response
}

async fn pod_metrics(api: Api, namespace: Option<String>) -> Response {
    answer(
        api.ask(|reply| Request::PodMetrics { namespace, reply })
            .await,
    )
}

async fn pod_metrics_all(State(api): State<Api>) -> Response {
    pod_metrics(api, None).await
}

async fn pod_metrics_in(State(api): State<Api>, Path(ns): Path<String>) -> Response {
    pod_metrics(api, Some(ns)).await
}

async fn job_backoff(
    State(api): State<Api>,
    Path((namespace, name)): Path<(String, String)>,
) -> Response {
    answer(
        api.ask(|reply| Request::JobBackoff {
            namespace,
            name,
            reply,
        })
        .await,
    )
}

async fn manifests(State(api): State<Api>) -> Response {
    answer(api.ask(|reply| Request::Manifests { reply }).await)
}

/// `?create=true` on an apply: `kubectl create`'s refusal of an object that exists.
#[derive(Debug, Default, Deserialize)]
struct ApplyQuery {
    create: Option<String>,
}

/// `apply` of one object: the daemon picks its file by the object's identity.
async fn apply(State(api): State<Api>, Query(q): Query<ApplyQuery>, body: String) -> Response {
    let create = truthy(&q.create);
    match api
        .ask(|reply| Request::Apply {
            body,
            create,
            reply,
        })
        .await
    {
        Ok(a) if a.created => (StatusCode::CREATED, Json(a.body)).into_response(),
        Ok(a) => Json(a.body).into_response(),
        Err(s) => status_response(s),
    }
}

/// `POST` to a namespaced collection: 201 with the object created, or the daemon's Status.
async fn create(api: Api, kind: Kind, namespace: String, body: String) -> Response {
    match api
        .ask(|reply| Request::Create {
            kind,
            namespace,
            body,
            reply,
        })
        .await
    {
        Ok(v) => (StatusCode::CREATED, Json(v)).into_response(),
        Err(s) => status_response(s),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogQuery {
    container: Option<String>,
    follow: Option<String>,
    previous: Option<String>,
    tail_lines: Option<String>,
    timestamps: Option<String>,
}

async fn pod_log(
    State(api): State<Api>,
    Path((ns, pod)): Path<(String, String)>,
    Query(q): Query<LogQuery>,
) -> Response {
    let target = match api
        .ask(|reply| Request::Log {
            namespace: ns,
            pod,
            container: q.container.clone(),
            previous: truthy(&q.previous),
            reply,
        })
        .await
    {
        Ok(t) => t,
        Err(s) => return status_response(s),
    };
    let tail_lines = match q.tail_lines.as_deref().map(str::parse::<i64>) {
        None => None,
        Some(Ok(n)) if n < 0 => None, // kubectl's --tail=-1: everything
        Some(Ok(n)) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        Some(Err(_)) => {
            return status_response(bad_request(format!(
                "invalid tailLines {:?}: want a whole number",
                q.tail_lines.unwrap_or_default()
            )));
        }
    };
    let opts = logs::ReadOptions {
        tail_lines,
        timestamps: truthy(&q.timestamps),
    };
    // Followed before the file is opened: a write is then either in what is read or a
    // wake-up to come. A run the daemon calls running but with no writer has ended.
    let follow = (truthy(&q.follow) && target.running).then(|| api.feeds.follow(&target.path));
    // Opened (and, for `tailLines`, positioned) before answering, so a log that cannot be
    // read is a 500 Status rather than a cut-off body.
    let path = target.path;
    let reader = match tokio::task::spawn_blocking(move || logs::LogReader::open(&path, opts)).await
    {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => {
            return status_response(Status::failure(
                500,
                "InternalError",
                format!("reading log: {e}"),
            ));
        }
        Err(e) => return status_response(Status::failure(500, "InternalError", e.to_string())),
    };
    // Two chunks in flight at most: with the reader's fixed buffer, what one log reader costs
    // the daemon is bounded whatever the length of a line.
    let (tx, rx) = mpsc::channel(2);
    tokio::spawn(async move {
        if let Err(e) = stream_log(&tx, reader, follow).await {
            tracing::debug!(error = %e, "log stream ended");
        }
    });
    text_response(Body::new(LogBody(rx)))
}

fn text_response(body: Body) -> Response {
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(body)
        .unwrap_or_else(|_| {
            status_response(Status::failure(500, "InternalError", "building response"))
        })
}

/// A log's body: the chunks [`stream_log`] sends. The connection drops it when the client goes
/// away, which closes the channel: that is how a follower of a quiet log learns of it.
struct LogBody(mpsc::Receiver<Bytes>);

impl hyper::body::Body for LogBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        self.get_mut()
            .0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|c| Ok(hyper::body::Frame::data(c))))
    }
}

/// Streams the log chunk by chunk; with `follow`, then what is appended, until the writer has
/// ended and everything it wrote was sent. Woken by the writer, never by a timer. File reads
/// run on the blocking pool.
async fn stream_log(
    tx: &mpsc::Sender<Bytes>,
    mut reader: logs::LogReader,
    mut follow: Option<logs::Follow>,
) -> Result<(), String> {
    let gone = |_| "client went away".to_string();
    loop {
        let (back, read) = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let more = reader.read_chunk(&mut out);
            (reader, more.map(|more| (more, out)))
        })
        .await
        .map_err(|e| e.to_string())?;
        reader = back;
        let (more, out) = read.map_err(|e| e.to_string())?;
        if !out.is_empty() {
            tx.send(Bytes::from(out)).await.map_err(gone)?;
        }
        if more {
            continue;
        }
        let Some(f) = follow.as_mut() else {
            break;
        };
        // At the end of what is written for now: wait for more, or for the end (then the file
        // is read to its end once more). A quiet log never writes, so it would never notice a
        // client that went away: the closed body says so.
        tokio::select! {
            wake = f.wake() => if wake == logs::Wake::Ended {
                follow = None;
            },
            () = tx.closed() => return Err("client went away".into()),
        }
    }
    let mut rest = Vec::new();
    reader.finish(&mut rest);
    if !rest.is_empty() {
        tx.send(Bytes::from(rest)).await.map_err(gone)?;
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;
    use crate::runtime::logs::{CriEncoder, LogFeeds, LogReader, ReadOptions, Stream};

    /// Far longer than any wake-up takes; only a missing one runs into it.
    const WAIT: Duration = Duration::from_secs(10);

    /// Appends `text` as CRI records, the way the runtime's sink writes.
    fn append(path: &std::path::Path, text: &[u8]) {
        let mut out = Vec::new();
        let mut enc = CriEncoder::new();
        enc.push(Stream::Stdout, text, jiff::Timestamp::UNIX_EPOCH, &mut out);
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        std::io::Write::write_all(&mut file, &out).unwrap();
    }

    async fn next_chunk(rx: &mut mpsc::Receiver<Bytes>) -> Option<String> {
        let chunk = tokio::time::timeout(WAIT, rx.recv())
            .await
            .expect("nothing came within 10 s");
        chunk.map(|b| String::from_utf8(b.to_vec()).unwrap())
    }

    /// A follower of `path` in the background, as `pod_log` starts it; its body's receiver.
    fn follow(
        feeds: &LogFeeds,
        path: &std::path::Path,
    ) -> (
        mpsc::Receiver<Bytes>,
        tokio::task::JoinHandle<Result<(), String>>,
    ) {
        let follow = feeds.follow(path);
        let reader = LogReader::open(path, ReadOptions::default()).unwrap();
        let (tx, rx) = mpsc::channel(2);
        let task = tokio::spawn(async move { stream_log(&tx, reader, Some(follow)).await });
        (rx, task)
    }

    /// Nothing but the writer wakes a follower (there is no timer to fall back on): a line
    /// written after the follower reached the end of the file arrives because the writer says
    /// so, and the writer's end ends the stream.
    #[tokio::test]
    async fn a_follower_is_woken_by_the_writer_and_ends_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let feeds = LogFeeds::new();
        let mut writer = feeds.writer(&path);
        append(&path, b"one\n");
        let (mut rx, task) = follow(&feeds, &path);
        // Sent once the follower read what was there; it waits at the end of the file now.
        assert_eq!(next_chunk(&mut rx).await.as_deref(), Some("one\n"));
        append(&path, b"two\n");
        writer.written();
        assert_eq!(next_chunk(&mut rx).await.as_deref(), Some("two\n"));
        // The last write and the end together: whatever wakes the follower, it reads it all.
        append(&path, b"three\n");
        writer.written();
        writer.end();
        assert_eq!(next_chunk(&mut rx).await.as_deref(), Some("three\n"));
        assert_eq!(
            next_chunk(&mut rx).await,
            None,
            "the stream ends with the writer"
        );
        assert_eq!(task.await.unwrap(), Ok(()));
    }

    /// The daemon said running, but the writer has ended since: the log is complete.
    #[tokio::test]
    async fn following_a_log_whose_writer_has_ended_reads_it_and_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let feeds = LogFeeds::new();
        append(&path, b"all of it\n");
        let (mut rx, task) = follow(&feeds, &path);
        assert_eq!(next_chunk(&mut rx).await.as_deref(), Some("all of it\n"));
        assert_eq!(next_chunk(&mut rx).await, None);
        assert_eq!(task.await.unwrap(), Ok(()));
    }

    /// A follower of a log that stays quiet learns that its client went away from the body,
    /// not from a write.
    #[tokio::test]
    async fn an_abandoned_follower_of_a_quiet_log_ends() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let feeds = LogFeeds::new();
        let _writer = feeds.writer(&path);
        append(&path, b"hi\n");
        let (mut rx, task) = follow(&feeds, &path);
        assert_eq!(next_chunk(&mut rx).await.as_deref(), Some("hi\n"));
        drop(rx);
        let ended = tokio::time::timeout(WAIT, task)
            .await
            .expect("the follower is still waiting");
        assert_eq!(ended.unwrap(), Err("client went away".to_string()));
    }
}
