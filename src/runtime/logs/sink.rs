//! The log sink: a container run's stdout and stderr, read from their pipes, into its log file
//! as CRI records ([`super::CriEncoder`]).
//!
//! The pipes are tokio pipe receivers, so there are no threads per container. Each read is
//! encoded and written (not just buffered) before the next one, so `logs -f` sees output as
//! soon as the container prints it.
//!
//! - **Rotation** ([`super::rotation`] decides): before a write would take the live file past
//!   `containerLogMaxSize`, the whole records that fit are written, the file is renamed to its
//!   rotated name, what is past `containerLogMaxFiles` is removed, and a thread at nice 19
//!   compresses the older rotated files; the next write creates a new live file.
//! - **A failed write** (a full disk) cuts the file back to its last whole record; the batch is
//!   counted lost, the pipes are still drained, and every later batch tries again. The episode
//!   is reported when it begins ([`RuntimeEvent::LogWriteFailing`]) and, with what was lost,
//!   when a write works again or at the end ([`RuntimeEvent::LogLost`]).

use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::unix::pipe;
use tokio::sync::mpsc::UnboundedSender;
use tracing::{debug, warn};

use super::rotation::{self, LogLimits, RotKey};
use super::{CriEncoder, FeedWriter, LogFeeds, Stream};
use crate::clock::Clock;
use crate::runtime::{ContainerLaunch, RuntimeEvent};

/// One read per stream per wakeup; bigger reads mean fewer log writes for chatty containers.
/// As much as a pipe holds by default. Read into spare capacity: a container that never
/// writes never touches these pages.
const READ_BUF: usize = 64 * 1024;

/// The log file of one run, with the CRI encoder in front of it and the pipes behind it.
///
/// The file (and its directories) is created with the first output, not at start: a container
/// that never writes costs no inodes (three per run: on a busy host, as much as the rest of
/// a short container's bookkeeping) and leaves no empty file. Readers treat a missing file of a
/// started container as empty.
pub(in crate::runtime) struct LogSink {
    /// Written with plain blocking writes from the task: a write of one batch to the page
    /// cache takes microseconds, where a hop to the blocking pool per write (tokio's `File`)
    /// cost more than the write.
    file: Option<std::fs::File>,
    path: PathBuf,
    enc: CriEncoder,
    /// Records of the current read, written (not just buffered) before the next read, so
    /// `logs -f` sees output as soon as the container prints it.
    batch: Vec<u8>,
    /// Output being lost: the log cannot be written (a full disk). Every batch tries again.
    lost: Option<Loss>,
    /// Who this log is of, for the [`RuntimeEvent::LogLost`] report.
    owner: Owner,
    /// stdout and stderr (by [`Stream::index`]) until their EOF or a read error.
    pipes: [Option<pipe::Receiver>; 2],
    /// Read buffers of the pipes; allocated by [`LogSink::attach`].
    bufs: [Vec<u8>; 2],
    /// Wakes `logs -f` after each write and once the log is complete (also when dropped).
    feed: FeedWriter,
    limits: LogLimits,
    /// Bytes in the live file (what was there when it was opened, plus what was written).
    size: u64,
    /// The time of the last read, for the name of a rotated file.
    last_now: Timestamp,
    /// The key whose compression runs on the blocking pool, if one does (one at a time per
    /// run; the next rotation's plan picks up what it left).
    compressing: std::sync::Arc<Compressing>,
}

/// Free space beyond a batch that a full file system must have again before writing resumes
/// (see [`LogSink::room_for`]): two pipe buffers.
const RESUME_MARGIN: u64 = 128 * 1024;

/// An episode of lost output.
#[derive(Debug)]
struct Loss {
    bytes: u64,
    lines: u64,
    error: String,
}

struct Owner {
    events: UnboundedSender<RuntimeEvent>,
    pod_uid: String,
    container: String,
    restart_count: i32,
}

impl LogSink {
    /// Registers the log in `feeds` at once: create the sink before the run can be reported
    /// started, so a follower that finds no entry knows the run has ended. Lost output is
    /// reported on `events`.
    pub(in crate::runtime) fn new(
        launch: &ContainerLaunch,
        feeds: &LogFeeds,
        events: UnboundedSender<RuntimeEvent>,
    ) -> LogSink {
        let path = &launch.log_path;
        LogSink {
            feed: feeds.writer(path),
            limits: launch.log_limits,
            lost: None,
            owner: Owner {
                events,
                pod_uid: launch.pod_uid.clone(),
                container: launch.container.clone(),
                restart_count: launch.restart_count,
            },
            size: 0,
            last_now: Timestamp::UNIX_EPOCH,
            compressing: Default::default(),
            file: None,
            path: path.to_owned(),
            enc: CriEncoder::new(),
            batch: Vec::new(),
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
            self.bufs[i] = Vec::with_capacity(READ_BUF);
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
        self.last_now = now;
        let i = stream.index();
        match r {
            Ok(n) if n > 0 => self.enc.push(
                stream,
                &self.bufs[i][..n.min(self.bufs[i].len())],
                now,
                &mut self.batch,
            ),
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

    /// Writes the batch. When the log cannot be written (a full disk), its output is dropped
    /// and counted, the pipes are still drained (a full pipe would block the container), and
    /// every later batch tries again: the first that is written ends the episode, which is
    /// reported once ([`RuntimeEvent::LogLost`]).
    pub(in crate::runtime) async fn write_batch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.batch);
        let (written, r) = if self.lost.is_some() && !self.room_for(batch.len()) {
            (0, Err(io::Error::from(io::ErrorKind::StorageFull)))
        } else {
            self.write_records(&batch).await
        };
        match r {
            Ok(()) => {
                if let Some(loss) = self.lost.take() {
                    warn!(path = %self.path.display(), bytes = loss.bytes, lines = loss.lines, "writing the container log works again; output was lost meanwhile");
                    self.report(loss);
                }
            }
            Err(e) => {
                let unwritten = &batch[written..];
                let lines = unwritten.iter().filter(|&&b| b == b'\n').count() as u64;
                match &mut self.lost {
                    Some(loss) => {
                        loss.bytes += unwritten.len() as u64;
                        loss.lines += lines;
                    }
                    None => {
                        warn!(path = %self.path.display(), error = %e, "writing container log failed; dropping its output until a write works again");
                        let o = &self.owner;
                        // The daemon is gone only when it stops.
                        let _ = o.events.send(RuntimeEvent::LogWriteFailing {
                            pod_uid: o.pod_uid.clone(),
                            container: o.container.clone(),
                            restart_count: o.restart_count,
                            error: e.to_string(),
                        });
                        self.lost = Some(Loss {
                            bytes: unwritten.len() as u64,
                            lines,
                            error: e.to_string(),
                        });
                    }
                }
            }
        }
        if written > 0 {
            self.feed.written();
        }
        self.batch = batch;
        self.batch.clear();
    }

    /// During an episode of lost output: whether the log's file system has room for `len`
    /// bytes and [`RESUME_MARGIN`] more. A failed write frees what it had written (a torn
    /// record is cut off), and without the margin the next small batch would fit into that
    /// and end the episode while the disk is still full: each batch a new episode.
    fn room_for(&self, len: usize) -> bool {
        let free = match &self.file {
            Some(f) => nix::sys::statvfs::fstatvfs(f),
            None => match self.path.parent() {
                Some(dir) => nix::sys::statvfs::statvfs(dir),
                None => return true,
            },
        };
        match free {
            Ok(st) => {
                let free = st.blocks_available().saturating_mul(st.fragment_size());
                free >= len as u64 + RESUME_MARGIN
            }
            // Cannot tell: try the write.
            Err(_) => true,
        }
    }

    fn report(&self, loss: Loss) {
        let o = &self.owner;
        // The daemon is gone only when it stops.
        let _ = o.events.send(RuntimeEvent::LogLost {
            pod_uid: o.pod_uid.clone(),
            container: o.container.clone(),
            restart_count: o.restart_count,
            bytes: loss.bytes,
            lines: loss.lines,
            error: loss.error,
        });
    }

    /// Writes whole records, rotating before a record that would take the live file past
    /// `containerLogMaxSize`, so a file stays within it (a record longer than the bound, at
    /// most 16 KiB of text plus its prefix, gets an empty file of its own). Returns how much
    /// of `batch` is in the files: on an error, whole records only (a torn one is cut off).
    async fn write_records(&mut self, batch: &[u8]) -> (usize, io::Result<()>) {
        let mut done = 0;
        while done < batch.len() {
            let rest = &batch[done..];
            if let Err(e) = self.open_live().await {
                return (done, Err(e));
            }
            let room = self.limits.max_size.saturating_sub(self.size);
            let take = if rest.len() as u64 <= room {
                rest.len()
            } else {
                // The whole records that fit.
                let fit = &rest[..room as usize];
                match memchr::memrchr(b'\n', fit) {
                    Some(nl) => nl + 1,
                    None if self.size == 0 => {
                        memchr::memchr(b'\n', rest).map_or(rest.len(), |nl| nl + 1)
                    }
                    None => 0,
                }
            };
            if take > 0 {
                let Some(file) = &mut self.file else {
                    return (done, Err(io::Error::other("log file not open")));
                };
                if let Err(e) = io::Write::write_all(file, &rest[..take]) {
                    // Part of it may be in the file: cut it back to whole records, so that
                    // when writing works again no record is glued to a torn one.
                    if let Err(t) = file.set_len(self.size) {
                        debug!(error = %t, "cannot cut a torn record off the container log");
                        // Reopened (at its end) for the next try, whatever is there.
                        self.file = None;
                    }
                    return (done, Err(with_path(e, &self.path)));
                }
                self.size += take as u64;
                self.feed.count(take as u64);
                done += take;
            }
            if done < batch.len()
                && let Err(e) = self.rotate().await
            {
                return (done, Err(e));
            }
        }
        (done, Ok(()))
    }

    /// Opens (creates) the live file if it is not open.
    async fn open_live(&mut self) -> io::Result<()> {
        if self.file.is_some() {
            return Ok(());
        }
        let path = self.path.clone();
        let (file, size) = tokio::task::spawn_blocking(move || {
            let f = open_log(&path).map_err(|e| with_path(e, &path))?;
            let size = f.metadata()?.len();
            io::Result::Ok((f, size))
        })
        .await
        .map_err(io::Error::other)??;
        self.size = size;
        self.file = Some(file);
        Ok(())
    }

    /// Renames the live file to its rotated name, removes what is past `containerLogMaxFiles`
    /// and starts compressing the older rotated files; the next write creates a new live file.
    /// A follower reading the renamed file goes on reading it through its open descriptor.
    async fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        self.size = 0;
        let path = self.path.clone();
        let stamp = rotation::stamp(self.last_now);
        let limits = self.limits;
        let compressing = self.compressing.clone();
        let compress =
            tokio::task::spawn_blocking(move || rotate_files(&path, &stamp, limits, &compressing))
                .await
                .map_err(io::Error::other)??;
        if let Some((dir, base)) = compress {
            let compressing = self.compressing.clone();
            let started = std::thread::Builder::new()
                .name("log-gzip".into())
                .spawn(move || {
                    lowest_priority();
                    compress_loop(&dir, &base, limits.max_files, &compressing);
                });
            if let Err(e) = started {
                warn!(error = %e, "cannot start compressing rotated container logs");
                *self.compressing.lock().unwrap_or_else(|e| e.into_inner()) = None;
            }
        }
        // Followers at the end of the renamed file go on to the new one.
        self.feed.written();
        Ok(())
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
        // An episode still open ends with the run.
        if let Some(loss) = self.lost.take() {
            self.report(loss);
        }
        self.feed.end();
    }
}

async fn read_some<R: AsyncRead + Unpin>(
    r: Option<&mut R>,
    buf: &mut Vec<u8>,
) -> io::Result<usize> {
    match r {
        Some(r) => {
            buf.clear();
            r.read_buf(buf).await
        }
        None => std::future::pending().await,
    }
}

/// The effects of a rotation (see [`rotation`]): the rename, then the plan's removals; when
/// the plan has files to compress and no compression runs, returns what the compression needs
/// (having marked it running).
fn rotate_files(
    path: &Path,
    stamp: &str,
    limits: LogLimits,
    compressing: &Compressing,
) -> io::Result<Option<(PathBuf, String)>> {
    let (Some(dir), Some(base)) = (path.parent(), path.file_name().and_then(|b| b.to_str())) else {
        return Err(io::Error::other(format!(
            "{}: not a log file name",
            path.display()
        )));
    };
    let mut running = compressing.lock().unwrap_or_else(|e| e.into_inner());
    let before = rotation::rotated(base, list_names(dir)?.iter().map(String::as_str));
    let key = rotation::next_key(stamp, &before);
    let to = dir.join(rotation::name(base, &key, rotation::Form::Plain));
    std::fs::rename(path, &to).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("renaming {} to {}: {e}", path.display(), to.display()),
        )
    })?;
    let mut after = before;
    after.push(rotation::Rotated {
        name: rotation::name(base, &key, rotation::Form::Plain),
        key,
        form: rotation::Form::Plain,
    });
    let plan = rotation::plan(&after, limits.max_files, running.as_ref());
    remove_files(dir, &plan.remove);
    if running.is_some() || plan.compress.is_empty() {
        return Ok(None);
    }
    *running = rotation::parse(base, &plan.compress[0]).map(|r| r.key);
    Ok(Some((dir.to_path_buf(), base.to_string())))
}

/// The key being compressed for a run, if any: one compression at a time per run.
type Compressing = std::sync::Mutex<Option<RotKey>>;

fn remove_files(dir: &Path, names: &[String]) {
    for name in names {
        match std::fs::remove_file(dir.join(name)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                warn!(file = %dir.join(name).display(), error = %e, "cannot remove a rotated container log");
            }
            _ => {}
        }
    }
}

fn list_names(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    let listing =
        |e: io::Error| io::Error::new(e.kind(), format!("listing {}: {e}", dir.display()));
    for entry in std::fs::read_dir(dir).map_err(listing)? {
        if let Some(name) = entry.map_err(listing)?.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// Compression runs on a thread of its own at nice 19: it uses what CPU the writers (and the
/// containers) leave, and falls behind rather than slowing them; a file it has not got to is
/// removed plain, or compressed later.
fn lowest_priority() {
    // SAFETY: setpriority takes plain integers; `who` 0 is the calling thread on Linux.
    let rc = unsafe { nix::libc::setpriority(nix::libc::PRIO_PROCESS, 0, 19) };
    if rc != 0 {
        debug!(error = %io::Error::last_os_error(), "cannot lower the priority of log compression");
    }
}

/// Compresses the run's rotated files that the plan says to, one at a time, planning again
/// after each (rotations go on meanwhile), until none is left; on the blocking pool.
fn compress_loop(dir: &Path, base: &str, max_files: usize, compressing: &Compressing) {
    loop {
        let next = {
            let mut running = compressing.lock().unwrap_or_else(|e| e.into_inner());
            let plan = match list_names(dir) {
                Ok(names) => rotation::plan(
                    &rotation::rotated(base, names.iter().map(String::as_str)),
                    max_files,
                    None,
                ),
                Err(e) => {
                    warn!(error = %e, "cannot compress rotated container logs");
                    rotation::Plan::default()
                }
            };
            remove_files(dir, &plan.remove);
            // Newest first: when rotations outrun compression, the oldest are removed before
            // they would be worth compressing.
            let next = plan.compress.into_iter().next_back();
            *running = next
                .as_deref()
                .and_then(|n| rotation::parse(base, n))
                .map(|r| r.key);
            next
        };
        let Some(name) = next else {
            return;
        };
        match compress_file(dir, &name) {
            Ok(()) => {}
            // Removed meanwhile, past the limit: on to the next.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => {
                warn!(file = %dir.join(&name).display(), error = %e, "cannot compress a rotated container log; left plain");
                // Not again and again: it stays plain (and still counts against the limit).
                *compressing.lock().unwrap_or_else(|e| e.into_inner()) = None;
                return;
            }
        }
    }
}

fn compress_file(dir: &Path, name: &str) -> io::Result<()> {
    let plain = dir.join(name);
    let gz = dir.join(format!("{name}.gz"));
    let tmp = dir.join(format!("{name}.gz.tmp"));
    let mut src = match std::fs::File::open(&plain) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        other => other?,
    };
    let out = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o640)
        .open(&tmp)?;
    let mut enc = flate2::write::GzEncoder::new(
        io::BufWriter::with_capacity(64 * 1024, out),
        flate2::Compression::fast(),
    );
    let done = io::copy(&mut src, &mut enc)
        .and_then(|_| enc.finish())
        .and_then(|w| w.into_inner().map_err(|e| e.into_error()));
    if let Err(e) = done {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, &gz)?;
    match std::fs::remove_file(&plain) {
        // Removed meanwhile as past the limit: so goes its compressed copy.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let _ = std::fs::remove_file(&gz);
            Ok(())
        }
        other => other,
    }
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("writing {}: {e}", path.display()))
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

    /// The names in the run's log directory once compression has settled: the live file,
    /// one plain rotated file and the rest compressed, nothing in between.
    async fn settled(dir: &std::path::Path) -> Vec<String> {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let mut names: Vec<String> = std::fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            names.sort();
            let plain = names
                .iter()
                .filter(|n| n.starts_with("0.log.") && !n.ends_with(".gz"))
                .count();
            if plain == 1 && !names.iter().any(|n| n.ends_with(".tmp")) {
                return names;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "never settled: {names:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// A run that writes far more than `containerLogMaxSize`: its log is rotated into files
    /// named as the kubelet names them, at most `containerLogMaxFiles` of them, each within
    /// the size, all but the newest rotated one compressed; reading goes through them.
    #[tokio::test]
    async fn a_chatty_run_rotates_into_kubelet_named_files_within_its_bound() {
        use crate::runtime::logs::rotation::{Form, LogLimits, parse};
        use crate::runtime::logs::{ReadOptions, read_log};
        let mut h = Harness::new();
        let mut launch = h.launch(&["seq", "1", "20000"]);
        let limits = LogLimits {
            max_size: 16 * 1024,
            max_files: 3,
        };
        launch.log_limits = limits;
        let run = h.run_launch(launch).await;
        assert_eq!(run.exit.exit_code, 0);
        let dir = run.log.parent().unwrap();
        let names = settled(dir).await;
        assert_eq!(names.len(), 3, "{names:?}");
        assert_eq!(names[0], "0.log");
        let (old, new) = (
            parse("0.log", &names[1]).unwrap(),
            parse("0.log", &names[2]).unwrap(),
        );
        assert_eq!((old.form, new.form), (Form::Gz, Form::Plain), "{names:?}");
        assert!(old.key < new.key);
        for n in &names {
            let len = std::fs::metadata(dir.join(n)).unwrap().len();
            assert!(len <= limits.max_size, "{n}: {len} bytes");
        }
        // What is kept is the end of the output, each line once, in order.
        let text = read_log(&run.log, ReadOptions::default()).unwrap();
        let got: Vec<u32> = text.lines().map(|l| l.parse().unwrap()).collect();
        assert_eq!(*got.last().unwrap(), 20000);
        let first = got[0];
        assert!(first > 1, "older files were removed");
        assert_eq!(got, (first..=20000).collect::<Vec<_>>());
        let tail = ReadOptions {
            tail_lines: Some(got.len() - 3),
            timestamps: false,
        };
        let tailed = read_log(&run.log, tail).unwrap();
        assert_eq!(
            tailed.lines().next(),
            Some((first + 3).to_string().as_str())
        );
    }

    /// A tmpfs mounted for a test, unmounted when dropped. By system call, not `mount(8)`:
    /// the reapers of other tests' runtimes in this process would take a child's status.
    struct Tmpfs(std::path::PathBuf);

    impl Tmpfs {
        /// `None` where mounting is not allowed (not root, or no CAP_SYS_ADMIN).
        fn mount(at: &std::path::Path, size: &str) -> Option<Tmpfs> {
            std::fs::create_dir_all(at).unwrap();
            match nix::mount::mount(
                Some("tmpfs"),
                at,
                Some("tmpfs"),
                nix::mount::MsFlags::empty(),
                Some(format!("size={size}").as_str()),
            ) {
                Ok(()) => Some(Tmpfs(at.to_path_buf())),
                Err(nix::errno::Errno::EPERM) => None,
                Err(e) => panic!("mount tmpfs at {}: {e}", at.display()),
            }
        }
    }

    impl Drop for Tmpfs {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }

    /// A full file system under the log: the container runs on (its pipes are drained, it
    /// is never blocked or sent SIGPIPE), the output that does not fit is dropped and
    /// counted exactly, what is kept is whole records, and once space returns writing resumes
    /// and the episode is reported once. Needs root (a 1 MiB tmpfs); skipped without it.
    #[tokio::test]
    async fn a_full_disk_drops_and_counts_output_and_writing_resumes_when_space_returns() {
        use crate::runtime::RuntimeEvent;
        let mut h = Harness::new();
        let logs = h.dir.path().join("logs");
        let Some(_fs) = Tmpfs::mount(&logs, "1m") else {
            eprintln!("skipped: mounting a tmpfs needs root (CAP_SYS_ADMIN)");
            return;
        };
        let filler = logs.join("filler");
        std::fs::write(&filler, vec![0u8; 900 * 1024]).unwrap();
        let fifo = h.dir.path().join("next");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        // 4000 lines of 100 bytes, 560 KB as records: far more than the ~120 KiB left.
        let script =
            "head -c 396000 /dev/zero | tr '\\0' x | fold -w 99; echo; read x < next; echo after";
        let launch = h.launch(&["sh", "-c", script]);
        let (uid, log) = h.start(launch);
        // The container waits on the FIFO once all of its burst is in the pipe, which holds
        // 64 KiB: so the sink has taken in far more than the space left by then. A
        // non-blocking open for writing works once the container has it open for reading.
        let deadline = std::time::Instant::now() + WAIT;
        let mut next = loop {
            use std::os::unix::fs::OpenOptionsExt;
            match std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(nix::libc::O_NONBLOCK)
                .open(&fifo)
            {
                Ok(f) => break f,
                Err(e) if e.raw_os_error() == Some(nix::libc::ENXIO) => {}
                Err(e) => panic!("opening the FIFO: {e}"),
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the container never got to its FIFO"
            );
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        };
        std::fs::remove_file(&filler).unwrap();
        std::io::Write::write_all(&mut next, b"\n").unwrap();
        let run = h.wait(&uid, log).await;
        assert_eq!(run.exit.exit_code, 0, "{:?}", run.exit);

        let seen = h.take_seen();
        let began: Vec<usize> = (0..seen.len())
            .filter(|&i| matches!(&seen[i], RuntimeEvent::LogWriteFailing { error, .. } if error.contains("No space left on device")))
            .collect();
        let ended = seen
            .iter()
            .position(|e| matches!(e, RuntimeEvent::LogLost { .. }));
        assert!(
            began.len() == 1 && ended.is_some_and(|end| began[0] < end),
            "one episode, said when it began and when it ended: {seen:?}"
        );
        let lost: Vec<(u64, u64, String)> = seen
            .into_iter()
            .filter_map(|e| match e {
                RuntimeEvent::LogLost {
                    bytes,
                    lines,
                    error,
                    ..
                } => Some((bytes, lines, error)),
                _ => None,
            })
            .collect();
        assert_eq!(lost.len(), 1, "one episode: {lost:?}");
        let (bytes, lines, error) = &lost[0];
        assert!(error.contains("No space left on device"), "{error}");
        // Every record kept parses (none torn), and kept + lost is all of it.
        let recs = records(&run.log);
        let kept = recs.iter().filter(|r| r.2.len() == 99).count() as u64;
        assert!(kept > 0 && *lines > 0, "kept {kept}, lost {lines}");
        assert_eq!(kept + lines, 4000, "every line kept or counted lost");
        assert!(*bytes >= *lines * 100);
        assert_eq!(
            recs.last().map(|r| r.2.as_str()),
            Some("after"),
            "writing resumed"
        );
    }

    /// `cargo test --release --lib gzip_cost -- --ignored --nocapture`: what compressing one
    /// rotated file costs (the figure in README's dependencies section).
    #[test]
    #[ignore = "performance figure, run by hand"]
    fn gzip_cost_of_a_rotated_file() {
        use crate::runtime::logs::{CriEncoder, Stream};
        let dir = tempfile::tempdir().unwrap();
        let mut enc = CriEncoder::new();
        let mut out = Vec::new();
        let mut i = 0u64;
        while out.len() < 10 << 20 {
            let line = format!(
                "{i:09} level=info msg=\"request served\" path=/api/v1/items/{} ms={}\n",
                i * 7919 % 100_000,
                i % 250
            );
            enc.push(
                Stream::Stdout,
                line.as_bytes(),
                jiff::Timestamp::from_second(1_800_000_000 + (i / 1000) as i64).unwrap(),
                &mut out,
            );
            i += 1;
        }
        std::fs::write(dir.path().join("0.log.20261127-101112"), &out).unwrap();
        let t = std::time::Instant::now();
        super::compress_file(dir.path(), "0.log.20261127-101112").unwrap();
        let took = t.elapsed();
        let gz = std::fs::metadata(dir.path().join("0.log.20261127-101112.gz"))
            .unwrap()
            .len();
        println!(
            "{} bytes -> {gz} ({:.1}%) in {took:?}: {:.0} MB/s",
            out.len(),
            gz as f64 * 100.0 / out.len() as f64,
            out.len() as f64 / took.as_secs_f64() / 1e6
        );
    }
}
