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

use super::rotation::{self, LogLimits, RotKey};
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
    limits: LogLimits,
    /// Bytes in the live file (what was there when it was opened, plus what was written).
    size: u64,
    /// The time of the last read, for the name of a rotated file.
    last_now: Timestamp,
    /// The key whose compression runs on the blocking pool, if one does (one at a time per
    /// run; the next rotation's plan picks up what it left).
    compressing: std::sync::Arc<Compressing>,
}

impl LogSink {
    /// Registers the log in `feeds` at once: create the sink before the run can be reported
    /// started, so a follower that finds no entry knows the run has ended.
    pub(in crate::runtime) fn new(path: &Path, limits: LogLimits, feeds: &LogFeeds) -> LogSink {
        LogSink {
            feed: feeds.writer(path),
            limits,
            size: 0,
            last_now: Timestamp::UNIX_EPOCH,
            compressing: Default::default(),
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
        self.last_now = now;
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
        let batch = std::mem::take(&mut self.batch);
        let r = self.write_records(&batch).await;
        self.batch = batch;
        r
    }

    /// Writes whole records, rotating before a record that would take the live file past
    /// `containerLogMaxSize`, so a file stays within it (a record longer than the bound, at
    /// most 16 KiB of text plus its prefix, gets an empty file of its own).
    async fn write_records(&mut self, mut rest: &[u8]) -> io::Result<()> {
        while !rest.is_empty() {
            self.open_live().await?;
            let room = self.limits.max_size.saturating_sub(self.size);
            let take = if rest.len() as u64 <= room {
                rest.len()
            } else {
                // The whole records that fit.
                let fit = &rest[..room as usize];
                match fit.iter().rposition(|&b| b == b'\n') {
                    Some(nl) => nl + 1,
                    None if self.size == 0 => rest
                        .iter()
                        .position(|&b| b == b'\n')
                        .map_or(rest.len(), |nl| nl + 1),
                    None => 0,
                }
            };
            if take > 0 {
                let Some(file) = &mut self.file else {
                    return Err(io::Error::other("log file not open"));
                };
                file.write_all(&rest[..take]).await?;
                self.size += take as u64;
                self.feed.count(take as u64);
                rest = &rest[take..];
            }
            if !rest.is_empty() {
                self.rotate().await?;
            }
        }
        // tokio's File finishes writes in the background: wait, so the bytes are in the file
        // when followers are woken (and, at the end, before `Exited` goes out).
        match &mut self.file {
            Some(file) => file.flush().await,
            None => Ok(()),
        }
    }

    /// Opens (creates) the live file if it is not open.
    async fn open_live(&mut self) -> io::Result<()> {
        if self.file.is_some() {
            return Ok(());
        }
        let path = self.path.clone();
        let (file, size) = tokio::task::spawn_blocking(move || {
            let f = open_log(&path)?;
            let size = f.metadata()?.len();
            io::Result::Ok((f, size))
        })
        .await
        .map_err(io::Error::other)??;
        self.size = size;
        self.file = Some(tokio::fs::File::from_std(file));
        Ok(())
    }

    /// Renames the live file to its rotated name, removes what is past `containerLogMaxFiles`
    /// and starts compressing the older rotated files; the next write creates a new live file.
    /// A follower reading the renamed file goes on reading it through its open descriptor.
    async fn rotate(&mut self) -> io::Result<()> {
        if let Some(mut file) = self.file.take() {
            file.flush().await?;
        }
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
            tokio::task::spawn_blocking(move || {
                compress_loop(&dir, &base, limits.max_files, &compressing)
            });
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
        self.feed.end();
    }
}

async fn read_some<R: AsyncRead + Unpin>(r: Option<&mut R>, buf: &mut [u8]) -> io::Result<usize> {
    match r {
        Some(r) => r.read(buf).await,
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
            let next = plan.compress.into_iter().next();
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
}
