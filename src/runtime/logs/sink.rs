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

use super::{CriEncoder, Stream};
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
}

impl LogSink {
    pub(in crate::runtime) fn new(path: &Path) -> LogSink {
        LogSink {
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
        if !self.write_failed
            && let Err(e) = self.write_out().await
        {
            // Keep draining the pipes (a full pipe would block the container), like containerd.
            warn!(path = %self.path.display(), error = %e, "writing container log failed");
            self.write_failed = true;
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
        file.write_all(&self.batch).await
    }

    /// A runtime message (start errors) as a stderr line.
    pub(in crate::runtime) async fn message(&mut self, msg: &str, now: Timestamp) {
        self.enc
            .push(Stream::Stderr, msg.as_bytes(), now, &mut self.batch);
        self.enc.push(Stream::Stderr, b"\n", now, &mut self.batch);
        self.close(now).await;
    }

    /// Completes the log: pipes still open (the supervisor stopped waiting for them) are
    /// closed, keeping what was read of their unfinished lines, and every write has reached
    /// the file when this returns.
    pub(in crate::runtime) async fn close(&mut self, now: Timestamp) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            if self.pipes[stream.index()].take().is_some() {
                self.enc.finish(stream, now, &mut self.batch);
            }
        }
        self.write_batch().await;
        // tokio's File finishes writes in the background: wait for them, so the log is
        // complete before `Exited` goes out.
        if !self.write_failed
            && let Some(file) = &mut self.file
            && let Err(e) = file.flush().await
        {
            warn!(path = %self.path.display(), error = %e, "writing container log failed");
            self.write_failed = true;
        }
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
    use crate::runtime::testing::{Harness, log_text, records};

    #[tokio::test]
    async fn true_completes() {
        let mut h = Harness::new();
        let run = h.run(&["true"]).await;
        assert_eq!(run.exit.exit_code, 0);
        assert_eq!(run.exit.reason, "Completed");
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
        assert_eq!(run.exit.reason, "Completed");
        let tags: Vec<bool> = records(&run.log).iter().map(|r| r.1).collect();
        assert_eq!(tags, vec![true, true, false, true]);
        assert_eq!(
            log_text(&run.log),
            format!("{}\nno newline", "x".repeat(40000))
        );
    }
}
