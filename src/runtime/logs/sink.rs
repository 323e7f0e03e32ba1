//! The log sink: a container run's stdout and stderr, read from their pipes, into its log file
//! as CRI records ([`super::CriEncoder`]).
//!
//! The pipes are tokio pipe receivers, so there are no threads per container. Each read is
//! encoded and written (not just buffered) before the next one, so `logs -f` sees output as
//! soon as the container prints it.

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tracing::{debug, warn};

use super::{CriEncoder, FeedWriter, LogFeeds, Stream};
use crate::clock::Clock;

/// One read per stream per wakeup; bigger reads mean fewer log writes for chatty containers.
const READ_BUF: usize = 32 * 1024;

/// The log file of one run, with the CRI encoder in front of it and the pipes behind it.
///
/// The file (and its directories) is created with the first output, not at start: a container
/// that never writes costs no inodes (three per run: on a busy host, as much as the rest of
/// a short container's bookkeeping) and leaves no empty file. Readers treat a missing file of a
/// started container as empty.
pub(in crate::runtime) struct LogSink {
    file: Option<tokio::fs::File>,
    path: PathBuf,
    enc: CriEncoder,
    /// Records of the current read, written (not just buffered) before the next read, so
    /// `logs -f` sees output as soon as the container prints it.
    batch: Vec<u8>,
    write_failed: bool,
    /// stdout and stderr (by [`Stream::index`]) until their EOF or a read error.
    pipes: [Option<pipe::Receiver>; 2],
    /// Read buffers of the pipes; allocated by [`LogSink::attach`].
    bufs: [Vec<u8>; 2],
    /// Wakes `logs -f` after each write and once the log is complete (also when dropped).
    feed: FeedWriter,
}

impl LogSink {
    /// Registers the log in `feeds` at once: create the sink before the run can be reported
    /// started, so a follower that finds no entry knows the run has ended.
    pub(in crate::runtime) fn new(path: &Path, feeds: &LogFeeds) -> LogSink {
        LogSink {
            feed: feeds.writer(path),
            file: None,
            path: path.to_owned(),
            enc: CriEncoder::new(),
            batch: Vec::new(),
            write_failed: false,
            pipes: [None, None],
            bufs: [Vec::new(), Vec::new()],
        }
    }

    /// Takes the read ends of the container's stdout and stderr (made non-blocking by the
    /// spawn, so no checks are needed).
    pub(in crate::runtime) fn attach(&mut self, stdout: OwnedFd, stderr: OwnedFd, pid: u32) {
        for (i, fd) in [stdout, stderr].into_iter().enumerate() {
            self.pipes[i] = pipe::Receiver::from_owned_fd_unchecked(fd)
                .map_err(|e| warn!(pid, error = %e, "cannot read container output; dropping it"))
                .ok();
            self.bufs[i] = vec![0u8; READ_BUF];
        }
    }

    /// Both pipes have reached EOF (or failed): everything the container wrote was read.
    pub(in crate::runtime) fn drained(&self) -> bool {
        self.pipes.iter().all(Option::is_none)
    }

    /// Reads what one pipe has and encodes it into the batch (for [`LogSink::write_batch`]);
    /// never returns once both pipes are closed. Cancel-safe: a read either happened and was
    /// encoded, or did not happen.
    pub(in crate::runtime) async fn read(&mut self, clock: &dyn Clock) {
        let [out, err] = &mut self.pipes;
        let [out_buf, err_buf] = &mut self.bufs;
        let (stream, r) = tokio::select! {
            r = read_some(out.as_mut(), out_buf) => (Stream::Stdout, r),
            r = read_some(err.as_mut(), err_buf) => (Stream::Stderr, r),
        };
        self.pumped(stream, r, clock.now());
    }

    /// Encodes the outcome of one read; EOF or a read error closes that stream.
    fn pumped(&mut self, stream: Stream, r: io::Result<usize>, now: Timestamp) {
        let i = stream.index();
        match r {
            Ok(n) if n > 0 => self
                .enc
                .push(stream, &self.bufs[i][..n], now, &mut self.batch),
            Ok(_) => {
                self.pipes[i] = None;
                self.enc.finish(stream, now, &mut self.batch);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                debug!(error = %e, stream = stream.as_str(), "reading container output failed");
                self.pipes[i] = None;
                self.enc.finish(stream, now, &mut self.batch);
            }
        }
    }

    pub(in crate::runtime) async fn write_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        if !self.write_failed {
            if let Err(e) = self.write_out().await {
                // Keep draining the pipes (a full pipe would block the container), like
                // containerd.
                warn!(path = %self.path.display(), error = %e, "writing container log failed");
                self.write_failed = true;
            }
            // Even a failed write may have put some of it in the file.
            self.feed.written();
        }
        self.batch.clear();
    }

    async fn write_out(&mut self) -> io::Result<()> {
        let file = match &mut self.file {
            Some(file) => file,
            None => {
                let path = self.path.clone();
                let file = tokio::task::spawn_blocking(move || open_log(&path))
                    .await
                    .map_err(io::Error::other)??;
                self.file.insert(tokio::fs::File::from_std(file))
            }
        };
        file.write_all(&self.batch).await?;
        // tokio's File finishes writes in the background: wait, so the bytes are in the file
        // when followers are woken (and, at the end, before `Exited` goes out).
        file.flush().await
    }

    /// A runtime message (start errors) as a stderr line.
    pub(in crate::runtime) async fn message(&mut self, msg: &str, now: Timestamp) {
        self.enc
            .push(Stream::Stderr, msg.as_bytes(), now, &mut self.batch);
        self.enc.push(Stream::Stderr, b"\n", now, &mut self.batch);
        self.close(now).await;
    }

    /// Completes the log: pipes still open (the supervisor stopped waiting for them) are
    /// closed, keeping what was read of their unfinished lines; every write has reached the
    /// file when this returns, and followers are told that is all.
    pub(in crate::runtime) async fn close(&mut self, now: Timestamp) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            if self.pipes[stream.index()].take().is_some() {
                self.enc.finish(stream, now, &mut self.batch);
            }
        }
        self.write_batch().await;
        self.feed.end();
    }
}

async fn read_some<R: AsyncRead + Unpin>(r: Option<&mut R>, buf: &mut [u8]) -> io::Result<usize> {
    match r {
        Some(r) => r.read(buf).await,
        None => std::future::pending().await,
    }
}

/// Creates the log file (and its directories) of a run, or opens it to append.
fn open_log(path: &Path) -> io::Result<std::fs::File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use crate::runtime::logs::{Follow, Wake};
    use crate::runtime::testing::{Harness, WAIT, log_text, records};

    #[tokio::test]
    async fn true_completes() {
        let mut h = Harness::new();
        let run = h.run(&["true"]).await;
        assert_eq!(run.exit.exit_code, 0);
        assert_eq!(run.exit.reason, crate::api::TerminatedReason::Completed);
        // Created with the first output: a silent run leaves no file (nor directories).
        assert!(!run.log.parent().unwrap().exists(), "{}", run.log.display());
        assert_eq!(log_text(&run.log), "");
    }

    #[tokio::test]
    async fn long_line_and_unterminated_output() {
        let mut h = Harness::new();
        let run = h
            .run(&[
                "sh",
                "-c",
                "head -c 40000 /dev/zero | tr '\\0' x; echo; printf 'no newline'",
            ])
            .await;
        assert_eq!(run.exit.reason, crate::api::TerminatedReason::Completed);
        let tags: Vec<bool> = records(&run.log).iter().map(|r| r.1).collect();
        assert_eq!(tags, vec![true, true, false, true]);
        assert_eq!(
            log_text(&run.log),
            format!("{}\nno newline", "x".repeat(40000))
        );
    }

    async fn wake(f: &mut Follow) -> Wake {
        tokio::time::timeout(WAIT, f.wake())
            .await
            .expect("no wake-up within 10 s")
    }

    /// `logs -f` is woken by the sink, each time once the output is in the file, and a last
    /// time when the log is complete. The container waits on a FIFO for each next line, so
    /// only a write can wake the follower in between.
    #[tokio::test]
    async fn followers_are_woken_by_each_write_and_by_the_complete_log() {
        let mut h = Harness::new();
        let fifo = h.dir.path().join("next");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let rounds = 20;
        // One open of the FIFO for all rounds: a reader opened anew each round could meet the
        // previous round's writer and take its close for a line.
        let script = format!(
            "exec 3<next; i=1; while [ $i -le {rounds} ]; do echo $i; read x <&3; i=$((i+1)); done"
        );
        let launch = h.launch(&["sh", "-c", &script]);
        let feeds = h.rt.log_feeds();
        let (uid, log) = h.start(launch);
        // Follow, then read, as the API server does.
        let mut f = feeds.follow(&log);
        let mut next =
            tokio::task::spawn_blocking(move || std::fs::OpenOptions::new().write(true).open(fifo))
                .await
                .unwrap()
                .unwrap();
        let mut want = String::new();
        for i in 1..=rounds {
            want.push_str(&format!("{i}\n"));
            assert_eq!(wake(&mut f).await, Wake::Written, "line {i}");
            assert_eq!(
                log_text(&log),
                want,
                "woken before line {i} was in the file"
            );
            // One byte into a pipe: never blocks.
            std::io::Write::write_all(&mut next, b"\n").unwrap();
        }
        // The end may come with the last write's wake-up: read until it does.
        while wake(&mut f).await == Wake::Written {}
        assert_eq!(log_text(&log), want);
        let run = h.wait(&uid, log).await;
        assert_eq!(run.exit.reason, crate::api::TerminatedReason::Completed);
        assert!(!feeds.is_written(&run.log), "the entry went with the end");
    }

    /// Runs that never write, or never start, leave no entry behind either.
    #[tokio::test]
    async fn runs_without_output_leave_no_feed() {
        let mut h = Harness::new();
        let feeds = h.rt.log_feeds();
        for argv in [&["true"][..], &["nope-not-here"][..]] {
            let launch = h.launch(argv);
            let (uid, log) = h.start(launch);
            assert!(feeds.is_written(&log), "registered at start");
            let run = h.wait(&uid, log).await;
            assert!(!feeds.is_written(&run.log), "{argv:?}");
        }
    }
}
