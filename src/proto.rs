//! Wire paths and the Unix-socket HTTP client the CLI talks to the daemon with.
//!
//! The daemon serves Kubernetes REST paths (`/apis/batch/v1/namespaces/default/jobs/x`)
//! over HTTP/1.1 on a Unix socket, so the path builders here are the whole protocol: the
//! bodies are the [`crate::api`] types, errors are Kubernetes `Status` objects.
//!
//! [`Client`] opens one connection per request (hyper's low-level `client::conn`, no pool):
//! a CLI run makes a handful of requests, and a fresh connection per call means a daemon
//! restart between two calls of `wait` needs no special handling. Query values are
//! percent-encoded like Go's `url.Values.Encode`, so the server must decode them
//! (`labelSelector=app%3Dweb`).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{ACCEPT, CONTENT_TYPE, HOST};
use hyper::{Method, Request, Response};
use hyper_util::rt::TokioIo;
use serde::de::DeserializeOwned;
use tokio::net::UnixStream;

use crate::api::{Kind, Status};

pub const HEALTHZ_PATH: &str = "/healthz";
pub const VERSION_PATH: &str = "/version";

// The paths of every kind come from the registry (`crate::api::kind`), which the server's
// routes come from too; these name the ones the CLI asks for.

pub fn jobs_path(namespace: Option<&str>) -> String {
    Kind::Job.collection_path(namespace)
}

pub fn job_path(namespace: &str, name: &str) -> String {
    Kind::Job.object_path(namespace, name)
}

pub fn pods_path(namespace: Option<&str>) -> String {
    Kind::Pod.collection_path(namespace)
}

pub fn pod_path(namespace: &str, name: &str) -> String {
    Kind::Pod.object_path(namespace, name)
}

/// `/api/v1/namespaces/{ns}/pods/{name}/log`; options go in the query (see [`with_query`]).
pub fn pod_log_path(namespace: &str, name: &str) -> String {
    format!("{}/log", pod_path(namespace, name))
}

pub fn events_path(namespace: Option<&str>) -> String {
    Kind::Event.collection_path(namespace)
}

/// Manifest files are cluster-scoped: they live in one directory, not in a namespace.
/// `POST` one object here to apply it: the daemon picks its file by the object's identity.
pub fn manifests_path() -> String {
    Kind::Manifest.collection_path(None)
}

/// `/apis/jobvisor.io/v1/namespaces/{ns}/jobs/{name}/backoff`: whether the Job's next pod
/// waits out the pod-failure backoff ([`JobBackoff`]). jobvisor's own group, not a
/// Kubernetes subresource: the Job object itself stays as Kubernetes has it.
pub fn job_backoff_path(namespace: &str, name: &str) -> String {
    format!(
        "/apis/jobvisor.io/v1/namespaces/{}/jobs/{}/backoff",
        encode(namespace),
        encode(name)
    )
}

/// The answer at [`job_backoff_path`]: `pending` is `null` unless a pod creation waits.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobBackoff {
    pub pending: Option<PendingBackoff>,
}

/// A pod creation held back by the pod-failure backoff (`describe job`: "attempt N of M,
/// next pod in Xs").
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingBackoff {
    /// With `backoffLimitPerIndex`: the index whose next pod comes first ("index I,
    /// attempt N of M"); absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<i32>,
    /// Failed pods so far + 1 (of the index, with `index`).
    pub attempt: i32,
    /// `backoffLimit + 1` (`backoffLimitPerIndex + 1` with `index`); 2^31 at most.
    pub attempts: i64,
    pub next_pod_at: jiff::Timestamp,
}

/// Appends `?k=v&…`, percent-encoding each key and value.
pub fn with_query<K: AsRef<str>, V: AsRef<str>>(path: &str, params: &[(K, V)]) -> String {
    if params.is_empty() {
        return path.to_string();
    }
    let query: Vec<String> = params
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k.as_ref()), encode(v.as_ref())))
        .collect();
    format!("{path}?{}", query.join("&"))
}

/// Percent-encodes everything but RFC 3986 unreserved characters, so that a value is safe
/// both as a path segment and as a query value (`a=b,c` → `a%3Db%2Cc`, as Go encodes it).
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What went wrong talking to the daemon. `Display` gives the line kubectl would print for
/// the server-side cases (`Error from server (NotFound): …`, `The connection to the server …`).
#[derive(Debug)]
pub enum ApiError {
    /// The socket could not be connected to: the daemon is not running, or not there.
    Connect { socket: PathBuf, source: io::Error },
    /// The server answered with a Kubernetes `Status` (every error the daemon makes).
    Status(Box<Status>),
    /// The server answered an error without a `Status` body (an unknown route, a proxy…).
    Http { code: u16, body: String },
    /// The connection broke mid-request or mid-stream.
    Transport(String),
    /// A 2xx body that is not what the route promises.
    Decode { path: String, message: String },
}

impl ApiError {
    pub fn status(&self) -> Option<&Status> {
        match self {
            ApiError::Status(s) => Some(s),
            _ => None,
        }
    }

    /// The HTTP status code, when the server answered at all.
    pub fn code(&self) -> Option<u16> {
        match self {
            ApiError::Status(s) => Some(s.code),
            ApiError::Http { code, .. } => Some(*code),
            _ => None,
        }
    }

    pub fn is_not_found(&self) -> bool {
        match self {
            ApiError::Status(s) => s.reason == "NotFound" || s.code == 404,
            ApiError::Http { code, .. } => *code == 404,
            _ => false,
        }
    }

    /// Printed as-is by kubectl (no `error: ` prefix): a server answer or a refused connection.
    pub fn is_server_message(&self) -> bool {
        matches!(
            self,
            ApiError::Connect { .. } | ApiError::Status(_) | ApiError::Http { .. }
        )
    }

    fn transport(e: impl fmt::Display) -> ApiError {
        ApiError::Transport(e.to_string())
    }
}

/// Kubernetes' `StatusReason` for a bare HTTP code (`apimachinery` `reasonForError`).
fn reason_for_code(code: u16) -> &'static str {
    match code {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        406 => "NotAcceptable",
        409 => "Conflict",
        410 => "Gone",
        413 => "RequestEntityTooLarge",
        415 => "UnsupportedMediaType",
        422 => "Invalid",
        429 => "TooManyRequests",
        500 => "InternalError",
        503 => "ServiceUnavailable",
        504 => "Timeout",
        _ => "Unknown",
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::Connect { socket, source } => {
                let socket = socket.display();
                match source.kind() {
                    io::ErrorKind::ConnectionRefused => write!(
                        f,
                        "The connection to the server {socket} was refused - is the jobvisor daemon running?"
                    ),
                    io::ErrorKind::NotFound => write!(
                        f,
                        "The connection to the server {socket} failed: no such file or directory - is the jobvisor daemon running?"
                    ),
                    io::ErrorKind::PermissionDenied => write!(
                        f,
                        "The connection to the server {socket} failed: permission denied - is the socket readable and writable by you?"
                    ),
                    _ => write!(f, "The connection to the server {socket} failed: {source}"),
                }
            }
            ApiError::Status(s) => {
                let message = if s.message.is_empty() {
                    "an error on the server has prevented the request from succeeding"
                } else {
                    s.message.as_str()
                };
                if s.reason.is_empty() {
                    write!(f, "Error from server: {message}")
                } else {
                    write!(f, "Error from server ({}): {message}", s.reason)
                }
            }
            ApiError::Http { code, body } => {
                let reason = reason_for_code(*code);
                let body = body.trim();
                if *code == 404 {
                    // What kubectl says when a route is missing, e.g. an older daemon.
                    write!(
                        f,
                        "Error from server ({reason}): the server could not find the requested resource"
                    )
                } else if body.is_empty() {
                    write!(f, "Error from server ({reason}): HTTP {code}")
                } else {
                    write!(f, "Error from server ({reason}): {body}")
                }
            }
            ApiError::Transport(e) => write!(f, "talking to the jobvisor daemon: {e}"),
            ApiError::Decode { path, message } => {
                write!(
                    f,
                    "unexpected response from the daemon for {path}: {message}"
                )
            }
        }
    }
}

impl std::error::Error for ApiError {}

/// The daemon's API over its Unix socket.
#[derive(Debug, Clone)]
pub struct Client {
    socket: PathBuf,
}

impl Client {
    pub fn new(socket: impl Into<PathBuf>) -> Client {
        Client {
            socket: socket.into(),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// GET and decode a JSON body.
    pub async fn get_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ApiError> {
        let body = self.call(Method::GET, path, None).await?;
        decode(path, &body)
    }

    /// GET with this `Accept` (a Table: [`crate::api::table::TABLE_ACCEPT`]) and decode.
    pub async fn get_json_as<T: DeserializeOwned>(
        &self,
        path: &str,
        accept: &str,
    ) -> Result<T, ApiError> {
        let response = self.send_as(Method::GET, path, None, accept).await?;
        let response = check_status(response).await?;
        decode(path, &read_body(response).await?)
    }

    /// GET a text body (`/healthz`, non-following logs).
    pub async fn get_text(&self, path: &str) -> Result<String, ApiError> {
        let body = self.call(Method::GET, path, None).await?;
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// DELETE; the daemon answers a `Status` with `"status":"Success"`.
    /// DELETE: the answer is a `Status` or, for a graceful delete, the object as it is now
    /// (terminating), as the API server answers.
    pub async fn delete(&self, path: &str) -> Result<serde_json::Value, ApiError> {
        let body = self.call(Method::DELETE, path, None).await?;
        decode(path, &body)
    }

    /// POST a text body (an object to apply) and decode the JSON answer.
    pub async fn post_text<T: DeserializeOwned>(
        &self,
        path: &str,
        body: String,
    ) -> Result<T, ApiError> {
        let answer = self.call(Method::POST, path, Some(body)).await?;
        decode(path, &answer)
    }

    /// GET a body that arrives over time (`?watch=true`, `log?follow=true`): chunks as sent.
    pub async fn stream(&self, path: &str) -> Result<Chunks, ApiError> {
        let response = self.send(Method::GET, path, None).await?;
        let response = check_status(response).await?;
        Ok(Chunks {
            body: Some(response.into_body()),
        })
    }

    /// Like [`Client::stream`], cut into lines (newline-delimited JSON of a watch).
    pub async fn stream_lines(&self, path: &str) -> Result<Lines, ApiError> {
        Ok(Lines {
            chunks: self.stream(path).await?,
            buf: Vec::new(),
            path: path.to_string(),
        })
    }

    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<Bytes, ApiError> {
        let response = self.send(method, path, body).await?;
        let response = check_status(response).await?;
        read_body(response).await
    }

    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
    ) -> Result<Response<Incoming>, ApiError> {
        self.send_as(method, path, body, "application/json, */*")
            .await
    }

    async fn send_as(
        &self,
        method: Method,
        path: &str,
        body: Option<String>,
        accept: &str,
    ) -> Result<Response<Incoming>, ApiError> {
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|source| ApiError::Connect {
                    socket: self.socket.clone(),
                    source,
                })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(ApiError::transport)?;
        // The connection task lives until the response body is read to the end or dropped.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, "localhost")
            .header(ACCEPT, accept);
        if body.is_some() {
            // Manifest text: YAML or JSON, the daemon sniffs it like kubectl does.
            request = request.header(CONTENT_TYPE, "application/yaml");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(ApiError::transport)?;
        sender
            .send_request(request)
            .await
            .map_err(ApiError::transport)
    }
}

/// Passes 2xx through; turns anything else into the server's `Status` (or a bare HTTP error).
async fn check_status(response: Response<Incoming>) -> Result<Response<Incoming>, ApiError> {
    let code = response.status().as_u16();
    if response.status().is_success() {
        return Ok(response);
    }
    let body = read_body(response).await?;
    Err(error_from_body(code, &body))
}

fn error_from_body(code: u16, body: &[u8]) -> ApiError {
    match serde_json::from_slice::<Status>(body) {
        Ok(status) if status.kind == "Status" || !status.message.is_empty() => {
            ApiError::Status(Box::new(status))
        }
        _ => ApiError::Http {
            code,
            body: String::from_utf8_lossy(body).into_owned(),
        },
    }
}

async fn read_body(response: Response<Incoming>) -> Result<Bytes, ApiError> {
    Ok(response
        .into_body()
        .collect()
        .await
        .map_err(ApiError::transport)?
        .to_bytes())
}

fn decode<T: DeserializeOwned>(path: &str, body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::Decode {
        path: path.to_string(),
        message: e.to_string(),
    })
}

/// A response body read as it arrives.
#[derive(Debug)]
pub struct Chunks {
    body: Option<Incoming>,
}

impl Chunks {
    /// The next piece of data, `None` once the server has closed the stream.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, ApiError> {
        loop {
            let Some(body) = self.body.as_mut() else {
                return Ok(None);
            };
            match body.frame().await {
                None => {
                    self.body = None;
                    return Ok(None);
                }
                Some(Err(e)) => {
                    self.body = None;
                    return Err(ApiError::transport(e));
                }
                Some(Ok(frame)) => {
                    // Trailers carry nothing for us; skip them like empty chunks.
                    if let Ok(data) = frame.into_data()
                        && !data.is_empty()
                    {
                        return Ok(Some(data));
                    }
                }
            }
        }
    }
}

/// Longest line a watch may send; a server gone wrong must not fill memory.
const MAX_LINE: usize = 64 << 20;

/// A streamed body cut at `\n`.
#[derive(Debug)]
pub struct Lines {
    chunks: Chunks,
    buf: Vec<u8>,
    path: String,
}

impl Lines {
    /// The next line without its `\n`; a last unterminated line comes out at the end.
    pub async fn next_line(&mut self) -> Result<Option<String>, ApiError> {
        loop {
            if let Some(end) = self.buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=end).collect();
                let line = &line[..line.len() - 1];
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                return Ok(Some(String::from_utf8_lossy(line).into_owned()));
            }
            if self.buf.len() > MAX_LINE {
                return Err(ApiError::Decode {
                    path: self.path.clone(),
                    message: format!("a line longer than {MAX_LINE} bytes"),
                });
            }
            match self.chunks.next_chunk().await? {
                Some(data) => self.buf.extend_from_slice(&data),
                None if self.buf.is_empty() => return Ok(None),
                None => {
                    let line = std::mem::take(&mut self.buf);
                    return Ok(Some(String::from_utf8_lossy(&line).into_owned()));
                }
            }
        }
    }

    /// The next non-blank line decoded as JSON (one watch event), `None` at the end.
    pub async fn next_json<T: DeserializeOwned>(&mut self) -> Result<Option<T>, ApiError> {
        loop {
            let Some(line) = self.next_line().await? else {
                return Ok(None);
            };
            if line.trim().is_empty() {
                continue;
            }
            return decode(&self.path, line.as_bytes()).map(Some);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::api::{Job, List, WatchEvent};
    use axum::Router;
    use axum::extract::{Path as AxPath, RawQuery};
    use axum::http::StatusCode;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::UnixListener;

    #[test]
    fn paths_and_queries() {
        assert_eq!(jobs_path(None), "/apis/batch/v1/jobs");
        assert_eq!(
            jobs_path(Some("default")),
            "/apis/batch/v1/namespaces/default/jobs"
        );
        assert_eq!(job_path("ns", "x"), "/apis/batch/v1/namespaces/ns/jobs/x");
        assert_eq!(pods_path(None), "/api/v1/pods");
        assert_eq!(
            pod_log_path("default", "p"),
            "/api/v1/namespaces/default/pods/p/log"
        );
        assert_eq!(events_path(Some("a")), "/api/v1/namespaces/a/events");
        assert_eq!(
            with_query(
                &jobs_path(Some("default")),
                &[
                    ("labelSelector", "app=web,tier in (a,b)"),
                    ("watch", "true")
                ]
            ),
            "/apis/batch/v1/namespaces/default/jobs?labelSelector=app%3Dweb%2Ctier%20in%20%28a%2Cb%29&watch=true"
        );
        assert_eq!(with_query::<&str, &str>("/x", &[]), "/x");
    }

    fn serve(router: Router) -> (tempfile::TempDir, Client) {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("jobvisor.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        (dir, Client::new(socket))
    }

    fn not_found(name: &str) -> (StatusCode, axum::Json<Status>) {
        (
            StatusCode::NOT_FOUND,
            axum::Json(Status::failure(
                404,
                "NotFound",
                format!("jobs.batch \"{name}\" not found"),
            )),
        )
    }

    #[tokio::test]
    async fn not_found_is_formatted_like_kubectl() {
        let router = Router::new().route(
            "/apis/batch/v1/namespaces/{ns}/jobs/{name}",
            get(|AxPath((_ns, name)): AxPath<(String, String)>| async move { not_found(&name) }),
        );
        let (_dir, client) = serve(router);
        let err = client
            .get_json::<Job>(&job_path("default", "x"))
            .await
            .unwrap_err();
        assert!(err.is_not_found());
        assert!(err.is_server_message());
        assert_eq!(
            err.to_string(),
            r#"Error from server (NotFound): jobs.batch "x" not found"#
        );

        // A route the server does not have, without a Status body.
        let err = client.get_text("/nope").await.unwrap_err();
        assert_eq!(err.code(), Some(404));
        assert_eq!(
            err.to_string(),
            "Error from server (NotFound): the server could not find the requested resource"
        );
    }

    #[tokio::test]
    async fn lists_decode_and_queries_arrive_decoded() {
        let router = Router::new().route(
            "/apis/batch/v1/namespaces/{ns}/jobs",
            get(
                |AxPath(ns): AxPath<String>, RawQuery(q): RawQuery| async move {
                    // Echo the raw query back as the name, to check the encoding on the wire.
                    axum::Json(serde_json::json!({
                        "apiVersion": "batch/v1", "kind": "JobList", "metadata": {},
                        "items": [{"apiVersion": "batch/v1", "kind": "Job",
                                   "metadata": {"name": q.unwrap_or_default(), "namespace": ns}}]
                    }))
                },
            ),
        );
        let (_dir, client) = serve(router);
        let path = with_query(&jobs_path(Some("team")), &[("labelSelector", "app=web")]);
        let list: List<Job> = client.get_json(&path).await.unwrap();
        assert_eq!(list.kind, "JobList");
        assert_eq!(list.items.len(), 1);
        assert_eq!(list.items[0].metadata.namespace(), "team");
        assert_eq!(list.items[0].metadata.name(), "labelSelector=app%3Dweb");
    }

    #[tokio::test]
    async fn connect_failures_name_the_socket() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("none.sock");
        let err = Client::new(&missing)
            .get_text(HEALTHZ_PATH)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "The connection to the server {} failed: no such file or directory - is the jobvisor daemon running?",
                missing.display()
            )
        );
        // A socket file nobody listens on: what a crashed daemon leaves behind.
        let stale = dir.path().join("stale.sock");
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
        let err = Client::new(&stale)
            .get_text(HEALTHZ_PATH)
            .await
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!(
                "The connection to the server {} was refused - is the jobvisor daemon running?",
                stale.display()
            )
        );
    }

    /// A hand-written chunked response: lines split across chunks, a pause, a last line
    /// without `\n`, the way a watch or `logs -f` arrives.
    #[tokio::test]
    async fn streamed_lines_are_reassembled() {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("s.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = conn.read(&mut buf).await.unwrap();
            let event = r#"{"type":"ADDED","object":{"metadata":{"name":"a"}}}"#;
            let (head, tail) = event.split_at(20);
            let mut out = String::from("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
            for chunk in [head.to_string(), format!("{tail}\n\n")] {
                out.push_str(&format!("{:x}\r\n{chunk}\r\n", chunk.len()));
            }
            conn.write_all(out.as_bytes()).await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let last = "tail without newline";
            let out = format!("{:x}\r\n{last}\r\n0\r\n\r\n", last.len());
            conn.write_all(out.as_bytes()).await.unwrap();
        });
        let client = Client::new(&socket);
        let mut lines = client
            .stream_lines("/apis/batch/v1/jobs?watch=true")
            .await
            .unwrap();
        let ev: WatchEvent<Job> = lines.next_json().await.unwrap().unwrap();
        assert_eq!(ev.type_, "ADDED");
        assert_eq!(ev.object.metadata.name(), "a");
        assert_eq!(lines.next_line().await.unwrap().as_deref(), Some(""));
        assert_eq!(
            lines.next_line().await.unwrap().as_deref(),
            Some("tail without newline")
        );
        assert_eq!(lines.next_line().await.unwrap(), None);
    }
}
