//! Spawning a container: program lookup, `clone(CLONE_VM | CLONE_VFORK)` into its cgroup
//! and user, exec errors worded like runc's.
//!
//! **Why our own `clone` and not `posix_spawn` or `Command`:** a container must join its
//! cgroup (and drop to its user) *in the child, before exec*, never after: a process moved
//! after it starts has already run, and forked, outside its limits. glibc's `posix_spawn`
//! cannot do either (`posix_spawnattr_setcgroup_np` needs glibc 2.41 and v2 only; v1
//! controllers need a write per hierarchy), and std's `Command` with `uid`/`gid`/`pre_exec`
//! falls back to a real `fork()` of the whole daemon, whose cost grows with its size (here
//! ~8 ms at 256 MiB, ~31 ms at 1 GiB, against a flat ~0.55 ms for vfork). So [`clone_exec`]
//! does what glibc's `posix_spawn` does inside: `clone(CLONE_VM | CLONE_VFORK)` with every
//! signal blocked, a child on its own small stack that makes raw, async-signal-safe calls on
//! data prepared beforehand ([`child_main`]: `setsid`, a write of `0` into the pre-opened
//! `cgroup.procs` of each hierarchy, `setgroups`/`setresgid`/`setresuid` as raw syscalls,
//! `/dev/null` as stdin and the pipes as stdout/stderr, `chdir`, every signal to default and
//! an empty mask, `close_range(3..)`, `execve`). The parent resumes when the child has
//! exec'd or exited; a failure leaves the step and errno in the shared arguments. The cost
//! stays flat with the daemon's size (`benches/bench.py`), and spawns run in parallel (see
//! [`super::reaper`] for the gate they share). (`clone3(CLONE_INTO_CGROUP)` would place the
//! child on pure v2 only; a write per hierarchy covers v1 and hybrid hosts as well.)
//!
//! **Exec failures** are reported as `Exited` with exit code 128, reason `StartError`, and a
//! message worded like runc's (`exec: "nope": executable file not found in $PATH`), which is
//! also written to the log file as a stderr line.
//!
//! **Program lookup** is Go's `exec.LookPath`, as runc does it: an `argv[0]` without `/` is
//! searched in the `PATH` of `launch.env` (relative entries relative to the working
//! directory; without a `PATH`, [`DEFAULT_PATH`]), taking the first regular file we may
//! execute. A script without `#!` fails with "exec format error", as under runc.
//!
//! Needs Linux >= 5.9 for `close_range` (without it, descriptors the daemon inherited without
//! close-on-exec would reach containers; the daemon's own are all close-on-exec).

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::libc;
use nix::sys::signal::SigSet;
use nix::unistd::Pid;

use super::ContainerLaunch;
use super::reaper::{OwnedPid, SPAWNING, owned_pids};
use super::supervise::Slot;

/// Where `argv[0]` is looked up when `launch.env` has no `PATH` (runc's and Docker's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the blocking half of a start produced.
pub(super) enum Prepared {
    /// A stop came first; nothing was spawned.
    Stopped,
    /// The spawn failed; the message says why in runc's words.
    Failed(String),
    /// The daemon ran out of file descriptors (its own or the system's) on the way: nothing
    /// about the container is wrong, so the start is tried again (the kubelet retries a
    /// container it could not create) instead of ending it `StartError`.
    OutOfDescriptors(String),
    Running(Spawned),
}

pub(super) struct Spawned {
    pub(super) pid: Pid,
    pub(super) stdout: OwnedFd,
    pub(super) stderr: OwnedFd,
    pub(super) proc_start: Option<u64>,
    pub(super) owned: OwnedPid,
}

/// The blocking half of a start: program lookup and spawn. Runs on the blocking pool so the
/// async workers never wait on the disk or on the spawn (which returns after the exec).
pub(super) fn prepare(launch: &ContainerLaunch, slot: &Slot, placement: &[OwnedFd]) -> Prepared {
    if slot.ctl().stopping {
        return Prepared::Stopped;
    }
    match spawn(launch, slot, placement) {
        Ok(Some(child)) => Prepared::Running(child),
        Ok(None) => Prepared::Stopped,
        Err(SpawnError::Transient(message)) => Prepared::OutOfDescriptors(message),
        Err(SpawnError::Start(message)) => Prepared::Failed(message),
    }
}

/// Why a spawn did not happen.
enum SpawnError {
    /// The container's own fault or its spec's: it ends `StartError` with this message.
    Start(String),
    /// The daemon's file descriptors ran out (EMFILE, ENFILE): worth trying again.
    Transient(String),
}

impl From<String> for SpawnError {
    fn from(message: String) -> Self {
        SpawnError::Start(message)
    }
}

/// EMFILE or ENFILE: the process's or the system's open files are used up.
pub(super) fn out_of_descriptors(e: Errno) -> bool {
    matches!(e, Errno::EMFILE | Errno::ENFILE)
}

/// Spawns the container; `Ok(None)` if a stop came first, `Err` with the StartError message.
fn spawn(
    launch: &ContainerLaunch,
    slot: &Slot,
    placement: &[OwnedFd],
) -> Result<Option<Spawned>, SpawnError> {
    if let Some(why) = &launch.refused {
        return Err(why.clone().into());
    }
    let argv0 = launch
        .argv
        .first()
        .ok_or_else(|| "no command specified".to_owned())?;
    let program = resolve_program(argv0, &launch.env, &launch.working_dir)?;
    let nul = |what: &str| format!("exec: {argv0:?}: {what} contains a NUL byte");
    let program = CString::new(program.into_os_string().into_vec()).map_err(|_| nul("the path"))?;
    let argv = launch
        .argv
        .iter()
        .map(|a| CString::new(a.as_str()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| nul("an argument"))?;
    let envp = env_block(&launch.env).ok_or_else(|| nul("the environment"))?;
    let cwd =
        CString::new(launch.working_dir.as_os_str().as_bytes()).map_err(|_| nul("workingDir"))?;
    let fail = |e: Errno| {
        let message = start_error_message(argv0, &launch.working_dir, &io::Error::from(e));
        if out_of_descriptors(e) {
            SpawnError::Transient(message)
        } else {
            SpawnError::Start(message)
        }
    };

    // Close-on-exec, so children spawned at the same time by other threads do not inherit
    // them; the dup2 onto 1 and 2 in the child clears the flag there.
    let (out_r, out_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(fail)?;
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(fail)?;
    // Only our ends are non-blocking (tokio needs it); the container's stay blocking.
    for r in [&out_r, &err_r] {
        nix::fcntl::fcntl(r, nix::fcntl::FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).map_err(fail)?;
    }
    let procs: Vec<libc::c_int> = placement.iter().map(AsRawFd::as_raw_fd).collect();
    let groups: Vec<libc::gid_t> = launch
        .user
        .as_ref()
        .map_or_else(Vec::new, |u| u.groups.clone());
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let mut envp_ptrs: Vec<*const libc::c_char> = envp.iter().map(|a| a.as_ptr()).collect();
    envp_ptrs.push(std::ptr::null());
    let mut args = ChildArgs {
        program: program.as_ptr(),
        argv: argv_ptrs.as_ptr(),
        envp: envp_ptrs.as_ptr(),
        cwd: cwd.as_ptr(),
        out_w: out_w.as_raw_fd(),
        err_w: err_w.as_raw_fd(),
        procs: procs.as_ptr(),
        nprocs: procs.len(),
        user: launch.user.as_ref().map(|u| (u.uid, u.gid)),
        groups: groups.as_ptr(),
        ngroups: groups.len(),
        stage: Stage::None,
        errno: 0,
    };

    // The slot's lock across the spawn: a stop either sees the pgid or prevents the spawn.
    // The shared SPAWNING gate: the orphan reaper leaves this child alone until it is in OWNED.
    let spawned = {
        let _gate = SPAWNING.read().unwrap_or_else(|e| e.into_inner());
        let mut ctl = slot.ctl();
        if ctl.stopping {
            return Ok(None);
        }
        clone_exec(&mut args).inspect(|pid| {
            owned_pids().insert(pid.as_raw());
            ctl.pgid = Some(*pid);
            ctl.started = Some(std::time::Instant::now());
        })
    };
    // Worded outside the locks: it looks at the file system.
    let pid = match spawned {
        Ok(pid) => pid,
        Err((stage, errno)) => {
            let e = io::Error::from(errno);
            let message = match stage {
                Stage::Cgroup => format!("cannot join the container's cgroup: {}", errno_words(&e)),
                Stage::User => {
                    let (uid, gid) = args.user.unwrap_or_default();
                    format!("cannot run as uid {uid} gid {gid}: {}", errno_words(&e))
                }
                Stage::Chdir => format!(
                    "chdir to cwd ({:?}) set in workingDir failed: {}",
                    launch.working_dir.display().to_string(),
                    errno_words(&e)
                ),
                Stage::None | Stage::Stdio | Stage::Exec => {
                    start_error_message(argv0, &launch.working_dir, &e)
                }
            };
            return Err(if out_of_descriptors(errno) {
                SpawnError::Transient(message)
            } else {
                SpawnError::Start(message)
            });
        }
    };
    // Our copies of the write ends must go, or the pumps never see EOF.
    drop((out_w, err_w));
    Ok(Some(Spawned {
        pid,
        stdout: out_r,
        stderr: err_r,
        // The process cannot be reaped before we do it, so this names it even if it has
        // exited already.
        proc_start: u32::try_from(pid.as_raw()).ok().and_then(proc_start_time),
        owned: OwnedPid(Some(pid.as_raw())),
    }))
}

/// The step of the child that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i32)]
enum Stage {
    None,
    Cgroup,
    User,
    Stdio,
    Chdir,
    Exec,
}

/// Everything the child needs, prepared by the parent: the child only reads it (and writes
/// `stage`/`errno`, which the parent reads once the child has exec'd or exited).
#[repr(C)]
struct ChildArgs {
    program: *const libc::c_char,
    argv: *const *const libc::c_char,
    envp: *const *const libc::c_char,
    cwd: *const libc::c_char,
    out_w: libc::c_int,
    err_w: libc::c_int,
    procs: *const libc::c_int,
    nprocs: usize,
    user: Option<(libc::uid_t, libc::gid_t)>,
    groups: *const libc::gid_t,
    ngroups: usize,
    stage: Stage,
    errno: libc::c_int,
}

/// The child's stack: it runs only [`child_main`], a few frames of raw calls.
const CHILD_STACK: usize = 64 * 1024;

/// `clone(CLONE_VM | CLONE_VFORK)`: the child borrows our memory until it execs, so the
/// spawn costs the same whatever the daemon's size (no page tables to copy), and this thread
/// waits until the exec (or the child's failure) exactly as with `posix_spawn`. Signals are
/// blocked across it, so that no handler of ours runs in the child before it resets them.
fn clone_exec(args: &mut ChildArgs) -> Result<Pid, (Stage, Errno)> {
    let mut stack = vec![0u8; CHILD_STACK];
    // The stack grows down; 16-byte aligned as the ABI wants.
    let top = (stack.as_mut_ptr() as usize + CHILD_STACK) & !15;
    let all = SigSet::all();
    let mut old = SigSet::empty();
    nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&all),
        Some(&mut old),
    )
    .map_err(|e| (Stage::None, e))?;
    // SAFETY: the child runs `child_main` on its own stack with CLONE_VM; it touches only
    // `args` (alive until clone returns, which is after the child's exec or exit: CLONE_VFORK)
    // and makes async-signal-safe calls. Signals are blocked, so no handler runs in it.
    let pid = unsafe {
        libc::clone(
            child_main,
            top as *mut libc::c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            (args as *mut ChildArgs).cast(),
        )
    };
    let clone_errno = Errno::last();
    let _ = nix::sys::signal::pthread_sigmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&old),
        None,
    );
    drop(stack);
    if pid < 0 {
        return Err((Stage::None, clone_errno));
    }
    let pid = Pid::from_raw(pid);
    // SAFETY: the child is gone from our memory (exec'd or exited); plain reads.
    let (stage, errno) = unsafe {
        (
            std::ptr::read_volatile(&raw const args.stage),
            std::ptr::read_volatile(&raw const args.errno),
        )
    };
    if stage != Stage::None {
        // It exited; reap it here (the orphan reaper waits: we hold the SPAWNING gate).
        let _ = nix::sys::wait::waitpid(pid, None);
        return Err((stage, Errno::from_raw(errno)));
    }
    Ok(pid)
}

/// The child between clone and exec: raw syscalls on prepared data only (no allocation, no
/// locks, no Rust runtime): new session, join the cgroups, drop to the container's user,
/// stdio, working directory, default signals and an empty mask, no inherited fds, exec.
extern "C" fn child_main(arg: *mut libc::c_void) -> libc::c_int {
    // SAFETY: `arg` is the parent's `ChildArgs`, alive until we exec or exit.
    let a = unsafe { &mut *arg.cast::<ChildArgs>() };
    let fail = |a: &mut ChildArgs, stage: Stage| -> libc::c_int {
        // SAFETY: plain writes to the shared args, then the end of this process.
        unsafe {
            let e = *libc::__errno_location();
            std::ptr::write_volatile(&raw mut a.errno, e);
            std::ptr::write_volatile(&raw mut a.stage, stage);
            libc::syscall(libc::SYS_exit_group, 127);
        }
        127
    };
    // SAFETY: raw syscalls with pointers the parent prepared and keeps alive.
    unsafe {
        if libc::syscall(libc::SYS_setsid) < 0 {
            return fail(a, Stage::None);
        }
        for i in 0..a.nprocs {
            let fd = *a.procs.add(i);
            if libc::write(fd, c"0".as_ptr().cast(), 1) != 1 {
                return fail(a, Stage::Cgroup);
            }
        }
        // Raw syscalls, not glibc's setuid & co., which would signal the parent's threads to
        // change their credentials too.
        if let Some((uid, gid)) = a.user
            && (libc::syscall(libc::SYS_setgroups, a.ngroups, a.groups) < 0
                || libc::syscall(libc::SYS_setresgid, gid, gid, gid) < 0
                || libc::syscall(libc::SYS_setresuid, uid, uid, uid) < 0)
        {
            return fail(a, Stage::User);
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY);
        if null < 0
            || (null != 0 && libc::dup2(null, 0) < 0)
            || libc::dup2(a.out_w, 1) < 0
            || libc::dup2(a.err_w, 2) < 0
        {
            return fail(a, Stage::Stdio);
        }
        if libc::chdir(a.cwd) < 0 {
            return fail(a, Stage::Chdir);
        }
        // Rust ignores SIGPIPE, and ignored signals survive exec: every signal to default.
        let mut dfl: libc::sigaction = std::mem::zeroed();
        dfl.sa_sigaction = libc::SIG_DFL;
        for sig in 1..=libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::sigaction(sig, &raw const dfl, std::ptr::null_mut());
            }
        }
        let empty: libc::sigset_t = std::mem::zeroed();
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &raw const empty,
            std::ptr::null_mut::<libc::sigset_t>(),
            8usize,
        );
        // Descriptors the daemon inherited without close-on-exec must not reach containers.
        libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, 0u32);
        libc::execve(a.program, a.argv, a.envp);
        fail(a, Stage::Exec)
    }
}

/// `KEY=value` strings; a later duplicate replaces an earlier one (Kubernetes: last wins).
/// `None` if any contains a NUL byte.
fn env_block(env: &[(String, String)]) -> Option<Vec<CString>> {
    let mut index: HashMap<&str, usize> = HashMap::with_capacity(env.len());
    let mut vars: Vec<(&str, &str)> = Vec::with_capacity(env.len());
    for (k, v) in env {
        match index.get(k.as_str()) {
            Some(&i) => vars[i].1 = v,
            None => {
                index.insert(k, vars.len());
                vars.push((k, v));
            }
        }
    }
    vars.into_iter()
        .map(|(k, v)| CString::new(format!("{k}={v}")).ok())
        .collect()
}

/// Go's `exec.LookPath` (which runc uses): a name with a `/` is used as is (the kernel resolves
/// it after the chdir); otherwise the first executable regular file in `PATH`.
fn resolve_program(
    argv0: &str,
    env: &[(String, String)],
    working_dir: &Path,
) -> Result<PathBuf, String> {
    if argv0.contains('/') {
        return Ok(PathBuf::from(argv0));
    }
    let not_found = || format!("exec: {argv0:?}: executable file not found in $PATH");
    if argv0.is_empty() {
        return Err(not_found());
    }
    let path = env
        .iter()
        .rev()
        .find(|(k, _)| k == "PATH")
        .map_or(DEFAULT_PATH, |(_, v)| v.as_str());
    for dir in path.split(':') {
        // An empty entry means the current directory, as in every shell.
        let dir = if dir.is_empty() { "." } else { dir };
        let candidate = working_dir.join(dir).join(argv0);
        if is_executable(&candidate) {
            return Ok(candidate);
        }
    }
    Err(not_found())
}

fn is_executable(path: &Path) -> bool {
    match std::fs::metadata(path) {
        Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {
            nix::unistd::access(path, nix::unistd::AccessFlags::X_OK).is_ok()
        }
        _ => false,
    }
}

/// Start time of a process in clock ticks since boot (`/proc/<pid>/stat` field 22): with the
/// pid, it names one process across pid reuse. `None` when there is no such process.
pub fn proc_start_time(pid: u32) -> Option<u64> {
    proc_stat_field(pid, 22)?.parse().ok()
}

/// Field `n` (1-based, as in proc(5)) of `/proc/<pid>/stat`, for n >= 3.
pub(super) fn proc_stat_field(pid: u32, n: usize) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm (field 2) may contain spaces and parentheses: fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace()
        .nth(n.checked_sub(3)?)
        .map(str::to_owned)
}

/// The errno of `e` as Go (and so runc and Kubernetes) spells it: lower-case strerror.
fn errno_words(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) => {
            let desc = Errno::from_raw(code).desc();
            let mut chars = desc.chars();
            match chars.next() {
                Some(first) => first.to_lowercase().chain(chars).collect(),
                None => e.to_string(),
            }
        }
        None => e.to_string(),
    }
}

/// Words a failed exec like runc does (a missing working directory is named first, as runc
/// would have failed on it).
fn start_error_message(argv0: &str, working_dir: &Path, e: &io::Error) -> String {
    if let Some(dir_err) = dir_problem(working_dir) {
        return format!(
            "chdir to cwd ({:?}) set in workingDir failed: {}",
            working_dir.display().to_string(),
            errno_words(&dir_err)
        );
    }
    if e.raw_os_error() == Some(libc::ENOENT) && !argv0.contains('/') {
        return format!("exec: {argv0:?}: executable file not found in $PATH");
    }
    format!("exec: {argv0:?}: {}", errno_words(e))
}

fn dir_problem(dir: &Path) -> Option<io::Error> {
    match std::fs::metadata(dir) {
        Err(e) => Some(e),
        Ok(m) if !m.is_dir() => Some(io::Error::from_raw_os_error(libc::ENOTDIR)),
        Ok(_) => nix::unistd::access(dir, nix::unistd::AccessFlags::X_OK)
            .err()
            .map(|e| io::Error::from_raw_os_error(e as i32)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests fail loudly by design
mod tests {
    use super::*;
    use crate::runtime::logs::Stream;
    use crate::runtime::testing::{Harness, PATH, log_text, records};
    #[tokio::test]
    async fn missing_binary_is_start_error() {
        let mut h = Harness::new();
        let run = h.run(&["nope-not-here", "x"]).await;
        assert_eq!(run.pid, None, "no Started for a failed exec");
        assert_eq!(run.exit.exit_code, 128);
        assert_eq!(run.exit.reason, crate::api::TerminatedReason::StartError);
        let msg = r#"exec: "nope-not-here": executable file not found in $PATH"#;
        assert_eq!(run.exit.message.as_deref(), Some(msg));
        assert_eq!(run.exit.started_at, run.exit.finished_at);
        assert_eq!(log_text(&run.log), format!("{msg}\n"));
        assert_eq!(records(&run.log)[0].0, Stream::Stderr);

        let run = h.run(&["/nonexistent/bin/x"]).await;
        assert_eq!(
            run.exit.message.as_deref(),
            Some(r#"exec: "/nonexistent/bin/x": no such file or directory"#)
        );
    }

    #[tokio::test]
    async fn not_executable_is_permission_denied() {
        let mut h = Harness::new();
        let script = h.dir.path().join("script.sh");
        std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
        let script = script.to_str().unwrap().to_owned();
        let run = h.run(&[&script]).await;
        assert_eq!(run.exit.reason, crate::api::TerminatedReason::StartError);
        assert_eq!(
            run.exit.message,
            Some(format!("exec: {script:?}: permission denied"))
        );
    }

    #[tokio::test]
    async fn bad_working_dir_is_start_error() {
        let mut h = Harness::new();
        let mut launch = h.launch(&["true"]);
        launch.working_dir = "/nonexistent-dir".into();
        let run = h.run_launch(launch).await;
        assert_eq!(run.exit.exit_code, 128);
        assert_eq!(run.exit.reason, crate::api::TerminatedReason::StartError);
        let msg = r#"chdir to cwd ("/nonexistent-dir") set in workingDir failed: no such file or directory"#;
        assert_eq!(run.exit.message.as_deref(), Some(msg));
        assert_eq!(log_text(&run.log), format!("{msg}\n"));
    }

    #[tokio::test]
    async fn env_is_exactly_launch_env() {
        let mut h = Harness::new();
        let mut launch = h.launch(&["env"]);
        launch.env.push(("FOO".into(), "bar baz".into()));
        let run = h.run_launch(launch).await;
        assert_eq!(run.exit.reason, crate::api::TerminatedReason::Completed);
        let mut lines: Vec<String> = log_text(&run.log).lines().map(str::to_owned).collect();
        lines.sort();
        assert_eq!(
            lines,
            vec!["FOO=bar baz".to_owned(), format!("PATH={PATH}")]
        );
    }

    #[tokio::test]
    async fn program_lookup_uses_the_launch_path() {
        let mut h = Harness::new();
        let bin = h.dir.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        let hello = bin.join("hello");
        std::fs::write(&hello, "#!/bin/sh\necho hi from $0\n").unwrap();
        std::fs::set_permissions(&hello, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let mut launch = h.launch(&["hello"]);
        launch.env = vec![("PATH".into(), format!("{}:/usr/bin:/bin", bin.display()))];
        let run = h.run_launch(launch).await;
        assert_eq!(
            run.exit.reason,
            crate::api::TerminatedReason::Completed,
            "{:?}",
            run.exit
        );
        assert_eq!(log_text(&run.log), format!("hi from {}\n", hello.display()));

        // And not the daemon's own PATH.
        let mut launch = h.launch(&["sh", "-c", "true"]);
        launch.env = vec![("PATH".into(), "/nonexistent".into())];
        let run = h.run_launch(launch).await;
        assert_eq!(run.exit.reason, crate::api::TerminatedReason::StartError);
    }

    #[tokio::test]
    async fn runs_in_working_dir_in_own_session_with_null_stdin() {
        let mut h = Harness::new();
        let run = h
            .run(&[
                "sh",
                "-c",
                "pwd; cat; ps -o pid=,pgid=,sid= -p $$ 2>/dev/null || \
                 awk '{print $1, $5, $6}' /proc/$$/stat",
            ])
            .await;
        assert_eq!(run.exit.reason, crate::api::TerminatedReason::Completed);
        let text = log_text(&run.log);
        let mut lines = text.lines();
        assert_eq!(
            lines.next(),
            Some(h.dir.path().canonicalize().unwrap().to_str().unwrap())
        );
        let ids: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
        let pid = run.pid.unwrap().to_string();
        assert_eq!(ids, vec![pid.as_str(); 3], "pid = pgid = sid");
    }

    #[tokio::test]
    async fn script_without_shebang_is_exec_format_error() {
        let mut h = Harness::new();
        let script = h.dir.path().join("noshebang");
        std::fs::write(&script, "echo hi\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let script = script.to_str().unwrap().to_owned();
        let run = h.run(&[&script]).await;
        assert_eq!(
            run.exit.message,
            Some(format!("exec: {script:?}: exec format error"))
        );
    }

    #[test]
    fn proc_start_time_reads_field_22() {
        assert!(proc_start_time(std::process::id()).is_some());
        assert_eq!(proc_start_time(u32::MAX), None);
    }

    #[test]
    fn start_error_wording() {
        let enoent = io::Error::from_raw_os_error(libc::ENOENT);
        let dir = Path::new("/");
        assert_eq!(
            start_error_message("x", dir, &enoent),
            r#"exec: "x": executable file not found in $PATH"#
        );
        assert_eq!(
            start_error_message("./x", dir, &enoent),
            r#"exec: "./x": no such file or directory"#
        );
        assert_eq!(
            start_error_message("x", dir, &io::Error::from_raw_os_error(libc::ENOEXEC)),
            r#"exec: "x": exec format error"#
        );
        assert_eq!(
            start_error_message("x", Path::new("/etc/hostname"), &enoent),
            r#"chdir to cwd ("/etc/hostname") set in workingDir failed: not a directory"#
        );
    }

    #[test]
    fn program_lookup_is_go_lookpath() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        // Not executable in a: skipped for the one in b.
        std::fs::write(a.join("tool"), "").unwrap();
        std::fs::write(b.join("tool"), "").unwrap();
        std::fs::set_permissions(b.join("tool"), std::fs::Permissions::from_mode(0o755)).unwrap();
        let env = |p: &str| vec![("PATH".to_owned(), p.to_owned())];
        let path = format!("{}:{}", a.display(), b.display());
        assert_eq!(
            resolve_program("tool", &env(&path), Path::new("/")),
            Ok(b.join("tool"))
        );
        // Relative entries are relative to the working directory.
        assert_eq!(
            resolve_program("tool", &env("a:b"), dir.path()),
            Ok(dir.path().join("b/tool"))
        );
        assert_eq!(
            resolve_program("tool", &env(&a.display().to_string()), Path::new("/")),
            Err(r#"exec: "tool": executable file not found in $PATH"#.to_owned())
        );
        assert_eq!(
            resolve_program("./tool", &env(""), Path::new("/")),
            Ok(PathBuf::from("./tool"))
        );
        // No PATH at all: the default one.
        assert_eq!(
            resolve_program("sh", &[], Path::new("/")).map(|p| p.is_absolute()),
            Ok(true)
        );
        // A later PATH wins, like every other duplicate.
        let two = vec![
            ("PATH".to_owned(), "/nonexistent".to_owned()),
            ("PATH".to_owned(), path),
        ];
        assert_eq!(
            resolve_program("tool", &two, Path::new("/")),
            Ok(b.join("tool"))
        );
    }

    #[test]
    fn env_block_last_duplicate_wins_in_first_position() {
        let env = [("A", "1"), ("B", "2"), ("A", "3")].map(|(k, v)| (k.to_owned(), v.to_owned()));
        let block = env_block(&env).unwrap();
        assert_eq!(block, vec![c"A=3".to_owned(), c"B=2".to_owned()]);
        assert_eq!(env_block(&[("X".into(), "a\0b".into())]), None);
    }
}
