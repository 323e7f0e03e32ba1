//! The accept loop: a cap on connections, a header-read timeout and an idle timeout.
//!
//! `axum::serve` has no per-connection knobs, and without them 20,000 idle connections took
//! every file descriptor and `/healthz` stopped answering. So connections are accepted here
//! and each is served by hyper's HTTP/1.1 connection with the axum `Router` as its service.
//!
//! - **Cap** (`api.maxConnections`): a connection holds a permit until it closes. Past the
//!   cap, a small reserve ([`RESERVE`]) serves `/healthz` and `/readyz` and answers everything
//!   else `429 TooManyRequests` with `Retry-After: 1`, as the kube-apiserver's max-in-flight
//!   filter does, then closes; past the reserve too, the connection is closed at once. A
//!   reserve connection must send its request head within 1 s, so a flood of idle connections
//!   holds the reserve only briefly. The daemon's loop never sees any of this.
//! - **Header timeout** (`api.headerReadTimeout`): counted from the accept, and on a kept-alive
//!   connection from the first byte of the next request, until hyper has the whole head.
//! - **Idle timeout** (`api.idleTimeout`): counted from the end of the last response while no
//!   request is in progress. A request is in progress until its response body has ended or
//!   was dropped, so a watch or a `logs -f` stream, however quiet, is never idle.
//!
//! Both timeouts are kept here, not by hyper: hyper's `header_read_timeout` also runs while a
//! kept-alive connection waits for its next request, which would make the idle timeout the
//! header timeout.

use std::convert::Infallible;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// Connections past the cap that may still be served, only for `/healthz`, `/readyz` and the
/// 429 answer, so a supervisor's health check gets through while the cap is reached.
pub const RESERVE: usize = 8;

/// The header timeout of a reserve connection, when shorter than `api.headerReadTimeout`: a
/// health check sends its request at once, and idle connections of a flood must not keep the
/// reserve from it for long.
const RESERVE_HEADER_TIMEOUT: Duration = Duration::from_secs(1);

/// Later than any deadline that matters; the watchdog wakes by then and looks again.
const FAR: Duration = Duration::from_secs(3600);

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub request_timeout: Duration,
}

impl From<&crate::config::Api> for Limits {
    fn from(c: &crate::config::Api) -> Limits {
        Limits {
            max_connections: c.max_connections,
            header_read_timeout: c.header_read_timeout,
            idle_timeout: c.idle_timeout,
            request_timeout: c.request_timeout,
        }
    }
}

/// Accepts until the task is dropped. `app` serves connections within the cap, `overload`
/// the reserve's (one request each).
pub async fn accept_loop(listener: UnixListener, app: Router, overload: Router, limits: Limits) {
    // `Semaphore::new` panics past MAX_PERMITS (2^61): a config value may not crash the daemon.
    let normal = Arc::new(Semaphore::new(
        limits.max_connections.min(Semaphore::MAX_PERMITS),
    ));
    let reserve = Arc::new(Semaphore::new(RESERVE));
    let reserve_limits = Limits {
        header_read_timeout: limits.header_read_timeout.min(RESERVE_HEADER_TIMEOUT),
        ..limits
    };
    let mut last_warning: Option<Instant> = None;
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE/ENFILE/ENOMEM: the pending connection stays in the backlog; retrying
                // at once would spin. Warn at most once a minute.
                if last_warning.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    tracing::warn!(error = %e, "accepting an API connection failed");
                    last_warning = Some(Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // The kernel's record of who connected (SO_PEERCRED), for `access.rs`.
        let peer = stream.peer_cred().ok().map(|c| super::access::Peer {
            uid: c.uid(),
            gid: c.gid(),
        });
        if let Ok(permit) = normal.clone().try_acquire_owned() {
            tokio::spawn(serve(stream, peer, app.clone(), true, limits, permit));
        } else if let Ok(permit) = reserve.clone().try_acquire_owned() {
            tokio::spawn(serve(
                stream,
                peer,
                overload.clone(),
                false,
                reserve_limits,
                permit,
            ));
        } else {
            // Closed at once: the client sees the connection reset and may retry.
            drop(stream);
        }
    }
}

/// Serves one connection until it closes, or a timeout closes it.
async fn serve(
    stream: UnixStream,
    peer: Option<super::access::Peer>,
    app: Router,
    keep_alive: bool,
    limits: Limits,
    _permit: OwnedSemaphorePermit,
) {
    let state = Arc::new(ConnState::new());
    let io = TokioIo::new(Watched {
        inner: stream,
        state: state.clone(),
    });
    let requests = state.clone();
    let service = hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
        if let Some(peer) = peer {
            req.extensions_mut().insert(peer);
        }
        let guard = requests.request_started();
        let mut app = app.clone();
        async move {
            let response = match tower_service::Service::call(&mut app, req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            Ok::<_, Infallible>(response.map(|inner| {
                Body::new(Tracked {
                    inner,
                    _guard: guard,
                })
            }))
        }
    });
    let mut builder = http1::Builder::new();
    builder.keep_alive(keep_alive).header_read_timeout(None);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    loop {
        let deadline = state.deadline(&limits);
        let wake = deadline.unwrap_or_else(|| Instant::now() + FAR);
        tokio::select! {
            done = conn.as_mut() => {
                if let Err(e) = done {
                    tracing::debug!(error = %e, "API connection ended");
                }
                return;
            }
            // A request started or ended: the deadline changed.
            _ = state.changed.notified() => {}
            _ = tokio::time::sleep_until(wake) => {
                if state.deadline(&limits).is_some_and(|d| d <= Instant::now()) {
                    // No request is in progress, so dropping the connection loses nothing.
                    tracing::debug!("closing an idle API connection, or one that sent no request head in time");
                    return;
                }
            }
        }
    }
}

/// Where a connection is between requests, for its timeouts.
struct ConnState {
    phase: Mutex<Phase>,
    changed: Notify,
}

struct Phase {
    /// Requests whose response body has not ended (or been dropped) yet.
    active: usize,
    /// Waiting for a request head since this instant (the accept, or its first byte).
    head_since: Option<Instant>,
    /// Idle since this instant (the end of the last response); used when `head_since` is None.
    idle_since: Instant,
}

impl ConnState {
    fn new() -> ConnState {
        let now = Instant::now();
        ConnState {
            // A new connection owes its first request head within the header timeout.
            phase: Mutex::new(Phase {
                active: 0,
                head_since: Some(now),
                idle_since: now,
            }),
            changed: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Phase> {
        // The critical sections cannot panic; a poisoned lock still holds consistent data.
        self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// When the connection is to be closed if nothing happens; `None` while a request runs.
    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        let p = self.lock();
        if p.active > 0 {
            return None;
        }
        let (since, timeout) = match p.head_since {
            Some(t) => (t, limits.header_read_timeout),
            None => (p.idle_since, limits.idle_timeout),
        };
        // A timeout of years (from the config) must not overflow `Instant`.
        Some(since.checked_add(timeout).unwrap_or_else(|| since + FAR))
    }

    /// Bytes arrived: on an idle connection that is the start of a request head.
    fn bytes_read(&self) {
        let mut p = self.lock();
        if p.active == 0 && p.head_since.is_none() {
            p.head_since = Some(Instant::now());
            drop(p);
            self.changed.notify_one();
        }
    }

    fn request_started(self: &Arc<Self>) -> RequestGuard {
        {
            let mut p = self.lock();
            p.active += 1;
            p.head_since = None;
        }
        self.changed.notify_one();
        RequestGuard(self.clone())
    }
}

/// A request in progress; dropped with its response body.
struct RequestGuard(Arc<ConnState>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        {
            let mut p = self.0.lock();
            p.active = p.active.saturating_sub(1);
            if p.active == 0 {
                p.idle_since = Instant::now();
            }
        }
        self.0.changed.notify_one();
    }
}

/// A response body that keeps its request counted as in progress until it ends.
struct Tracked {
    inner: Body,
    _guard: RequestGuard,
}

impl hyper::body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, telling the connection's state when bytes arrive.
struct Watched {
    inner: UnixStream,
    state: Arc<ConnState>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.state.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
