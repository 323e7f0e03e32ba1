//! Wake-ups for `logs -f`: the sink of a running container says when it wrote and when its log
//! is complete, so a follower waits for that instead of looking at the file on a timer.
//!
//! [`LogFeeds`] is a registry keyed by log path with one `watch` channel per path. A run's
//! sink registers its path when the run is started, before `Started` can be sent; it bumps the
//! channel after each write has reached the file; and once the log is complete, before `Exited`
//! is sent, it removes the entry and marks the channel ended. So a follower told by the daemon
//! that the run is running and that finds no entry knows the run has ended and its log is
//! complete. Followers hold receivers only: memory is one entry per running container, and
//! none is left once a run has ended, followed or not.
//!
//! Order matters on the follower's side: [`LogFeeds::follow`] before reading the file, so a
//! write is either already in the file or a wake-up still to come.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::watch;

/// The log files being written, each with the channel its followers wait on. Cloning shares
/// the registry: the runtime's sinks write to it, the API server follows from it.
#[derive(Clone, Default)]
pub struct LogFeeds {
    /// The value is "ended"; every send is a wake-up.
    writers: Arc<Mutex<HashMap<PathBuf, watch::Sender<bool>>>>,
    /// Bytes written to all logs since start: how much the spool may have grown, so the
    /// daemon measures it only when it may be over its cap.
    bytes: Arc<std::sync::atomic::AtomicU64>,
}

impl LogFeeds {
    pub fn new() -> LogFeeds {
        LogFeeds::default()
    }

    /// Registers the writer of the log at `path`; its wake-ups end when it is ended or dropped.
    pub fn writer(&self, path: &Path) -> FeedWriter {
        let (tx, _) = watch::channel(false);
        self.lock().insert(path.to_owned(), tx.clone());
        FeedWriter {
            feeds: self.clone(),
            path: path.to_owned(),
            tx,
            ended: false,
        }
    }

    /// Follows the log at `path`. Call it before reading the file (see the module docs).
    pub fn follow(&self, path: &Path) -> Follow {
        Follow {
            rx: self.lock().get(path).map(watch::Sender::subscribe),
        }
    }

    /// Bytes written to all logs since this registry was made.
    pub fn bytes_written(&self) -> u64 {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Whether a writer of `path` is registered (it has not ended).
    pub fn is_written(&self, path: &Path) -> bool {
        self.lock().contains_key(path)
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<PathBuf, watch::Sender<bool>>> {
        // Every update is a single map call, so a poisoned map is still consistent.
        self.writers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The writing side of one log file, held by its sink.
pub struct FeedWriter {
    feeds: LogFeeds,
    path: PathBuf,
    tx: watch::Sender<bool>,
    ended: bool,
}

impl FeedWriter {
    /// Counts `n` bytes written to the log.
    pub fn count(&self, n: u64) {
        self.feeds
            .bytes
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    /// Wakes the followers: new output is in the file (written, not just buffered).
    pub fn written(&self) {
        // `send_modify` notifies even with no receiver, unlike `send`; a follower that
        // subscribes later reads the file afterwards anyway.
        self.tx.send_modify(|_| {});
    }

    /// The log is complete: followers read the rest and stop. Removes the entry first, so a
    /// follower that comes after finds none (and so knows the run has ended).
    pub fn end(&mut self) {
        if std::mem::replace(&mut self.ended, true) {
            return;
        }
        {
            let mut writers = self.feeds.lock();
            // Only our own entry: a writer registered later for the same path keeps its own.
            if writers
                .get(&self.path)
                .is_some_and(|tx| tx.same_channel(&self.tx))
            {
                writers.remove(&self.path);
            }
        }
        self.tx.send_replace(true);
    }
}

impl Drop for FeedWriter {
    /// A sink dropped without `end` (a start that never spawned, a panic) ends its followers too.
    fn drop(&mut self) {
        self.end();
    }
}

/// What a follower was woken for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// More output may be in the file.
    Written,
    /// The log is complete: read the file to its end once more, and that is all of it.
    Ended,
}

/// The following side of one log file.
pub struct Follow {
    /// `None` once ended, or when no writer was registered.
    rx: Option<watch::Receiver<bool>>,
}

impl Follow {
    /// Waits for a write since the last wake-up (or since [`LogFeeds::follow`]), or the end.
    /// Cancel-safe.
    pub async fn wake(&mut self) -> Wake {
        let Some(rx) = &mut self.rx else {
            return Wake::Ended;
        };
        // `borrow` does not mark the value seen: a write not waited for yet still wakes below.
        let wake = if *rx.borrow() {
            Wake::Ended
        } else {
            match rx.changed().await {
                Ok(()) if !*rx.borrow_and_update() => Wake::Written,
                // Ended, or the writer is gone without ending (dropped with its runtime).
                _ => Wake::Ended,
            }
        };
        if wake == Wake::Ended {
            self.rx = None;
        }
        wake
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;
    use std::time::Duration;

    /// Far longer than any wake-up takes; only a missing one runs into it.
    const WAIT: Duration = Duration::from_secs(10);

    async fn wake(f: &mut Follow) -> Wake {
        tokio::time::timeout(WAIT, f.wake())
            .await
            .expect("no wake-up within 10 s")
    }

    #[tokio::test]
    async fn a_follower_is_woken_by_each_write_and_by_the_end() {
        let feeds = LogFeeds::new();
        let path = Path::new("/logs/a/0.log");
        let mut w = feeds.writer(path);
        let mut f = feeds.follow(path);
        w.written();
        assert_eq!(wake(&mut f).await, Wake::Written);
        // Two writes before the follower looks again: one wake-up covers both.
        w.written();
        w.written();
        assert_eq!(wake(&mut f).await, Wake::Written);
        w.end();
        assert_eq!(wake(&mut f).await, Wake::Ended);
        assert_eq!(wake(&mut f).await, Wake::Ended, "and stays ended");
        assert!(!feeds.is_written(path), "the entry went with the end");
    }

    #[tokio::test]
    async fn a_log_nobody_writes_has_ended() {
        let feeds = LogFeeds::new();
        let path = Path::new("/logs/a/0.log");
        assert_eq!(wake(&mut feeds.follow(path)).await, Wake::Ended);
        // Nor does a follower that comes after the end find anything to wait for.
        feeds.writer(path).end();
        assert_eq!(wake(&mut feeds.follow(path)).await, Wake::Ended);
    }

    #[tokio::test]
    async fn a_dropped_writer_ends_its_followers_and_its_entry() {
        let feeds = LogFeeds::new();
        let path = Path::new("/logs/a/0.log");
        let w = feeds.writer(path);
        let mut f = feeds.follow(path);
        let other = feeds.writer(Path::new("/logs/b/0.log"));
        drop(w);
        assert_eq!(wake(&mut f).await, Wake::Ended);
        assert!(!feeds.is_written(path));
        assert!(feeds.is_written(Path::new("/logs/b/0.log")), "others stay");
        drop(other);
        assert!(feeds.lock().is_empty());
    }

    #[tokio::test]
    async fn an_ended_writer_leaves_a_later_writer_of_the_same_path_alone() {
        let feeds = LogFeeds::new();
        let path = Path::new("/logs/a/0.log");
        let mut old = feeds.writer(path);
        let new = feeds.writer(path);
        let mut f = feeds.follow(path);
        old.end();
        assert!(feeds.is_written(path));
        new.written();
        assert_eq!(wake(&mut f).await, Wake::Written);
    }
}
