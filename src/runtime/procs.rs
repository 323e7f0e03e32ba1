//! What `/proc` says about processes, for killing what a pod left behind without cgroups.
//!
//! Without cgroups nothing holds a pod's processes together once they leave its process group
//! (`setpgid`) or session (`setsid`). Every container is its own session (pid = pgid = sid),
//! so its descendants that only left the group still carry its session id; those that made a
//! session of their own are found as descendants (by parent pid) of a container's process
//! while it still runs, and their session is remembered. A session id stays in use (and so
//! cannot name another session) as long as any process carries it, so killing "every process
//! of session S" is safe while the leader's start time still matches, or the leader is gone.
//! The selection is pure ([`descendants`], [`in_sessions`]) over a [`scan`].

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// One line of `/proc/<pid>/stat`, the fields we use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcInfo {
    pub pid: i32,
    pub ppid: i32,
    pub sid: i32,
    /// Clock ticks since boot: with the pid, it names one process.
    pub start: u64,
}

/// Parses `/proc/<pid>/stat` (comm may hold spaces and parentheses).
pub fn parse_stat(text: &str) -> Option<ProcInfo> {
    let pid = text.split_once(' ')?.0.parse().ok()?;
    let rest: Vec<&str> = text[text.rfind(')')? + 1..].split_whitespace().collect();
    // rest[0] is field 3 (state).
    Some(ProcInfo {
        pid,
        ppid: rest.get(1)?.parse().ok()?,
        sid: rest.get(3)?.parse().ok()?,
        start: rest.get(19)?.parse().ok()?,
    })
}

/// One process's line, if it exists.
pub fn stat(pid: i32) -> Option<ProcInfo> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every process now.
pub fn scan() -> Vec<ProcInfo> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| {
            let name = e.file_name();
            stat(name.to_str()?.parse().ok()?)
        })
        .collect()
}

/// This process's children, from `/proc/self/task/*/children` (every thread's); `None` where
/// the kernel does not provide those files.
pub fn our_children() -> Option<Vec<i32>> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").ok()?.flatten() {
        let text = std::fs::read_to_string(task.path().join("children")).ok()?;
        out.extend(
            text.split_whitespace()
                .filter_map(|p| p.parse::<i32>().ok()),
        );
    }
    Some(out)
}

/// The descendants of `roots` (not the roots themselves), by parent pid.
pub fn descendants(procs: &[ProcInfo], roots: &[i32]) -> Vec<ProcInfo> {
    let mut found: Vec<ProcInfo> = Vec::new();
    let mut frontier: Vec<i32> = roots.to_vec();
    while let Some(parent) = frontier.pop() {
        for p in procs.iter().filter(|p| p.ppid == parent) {
            if !found.iter().any(|f| f.pid == p.pid) && !roots.contains(&p.pid) {
                found.push(*p);
                frontier.push(p.pid);
            }
        }
    }
    found
}

/// Processes of the sessions `sids` (`(sid, leader's start time when known)`), skipping a
/// session whose leader's pid now names another process. Never `me`.
pub fn in_sessions(procs: &[ProcInfo], sids: &[(i32, Option<u64>)], me: i32) -> Vec<ProcInfo> {
    sids.iter()
        .filter(|(sid, start)| {
            let leader = procs.iter().find(|p| p.pid == *sid);
            match (leader, start) {
                (Some(l), Some(s)) => l.start == *s && l.sid == *sid,
                _ => true,
            }
        })
        .flat_map(|(sid, _)| procs.iter().filter(move |p| p.sid == *sid))
        .filter(|p| p.pid != me && p.pid > 1)
        .copied()
        .collect()
}

/// SIGKILL to each, if its pid still names the same process.
pub fn kill_all(victims: &[ProcInfo]) {
    for v in victims {
        let still = stat(v.pid).is_some_and(|now| now.start == v.start);
        if still {
            let _ = kill(Pid::from_raw(v.pid), Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn p(pid: i32, ppid: i32, sid: i32, start: u64) -> ProcInfo {
        ProcInfo {
            pid,
            ppid,
            sid,
            start,
        }
    }

    #[test]
    fn stat_fields_after_a_tricky_comm() {
        let text = "42 (a) b (c) S 7 42 40 0 -1 4194304 1 0 0 0 0 0 0 0 20 0 1 0 12345 1 1";
        assert_eq!(parse_stat(text), Some(p(42, 7, 40, 12345)));
        assert_eq!(parse_stat("garbage"), None);
        let me = std::process::id() as i32;
        assert!(scan().iter().any(|p| p.pid == me));
        assert!(our_children().is_some(), "CONFIG_PROC_CHILDREN");
    }

    #[test]
    fn descendants_follow_parents_only_below_the_roots() {
        let procs = [
            p(10, 1, 10, 0),
            p(11, 10, 10, 0),
            p(12, 11, 12, 0), // setsid'd grandchild
            p(13, 12, 12, 0),
            p(20, 1, 20, 0),
        ];
        let mut got: Vec<i32> = descendants(&procs, &[10]).iter().map(|p| p.pid).collect();
        got.sort();
        assert_eq!(got, [11, 12, 13]);
        assert!(descendants(&procs, &[13]).is_empty());
    }

    #[test]
    fn sessions_skip_a_reused_leader_pid_and_ourselves() {
        let procs = [
            p(10, 1, 10, 5),
            p(11, 1, 10, 6),
            p(30, 1, 31, 7), // 31's leader is gone; its members stay in the session
            p(99, 1, 10, 0),
        ];
        let pids = |v: Vec<ProcInfo>| v.iter().map(|p| p.pid).collect::<Vec<_>>();
        assert_eq!(pids(in_sessions(&procs, &[(10, Some(5))], 99)), [10, 11]);
        assert!(
            in_sessions(&procs, &[(10, Some(4))], 0).is_empty(),
            "pid 10 reused"
        );
        assert_eq!(pids(in_sessions(&procs, &[(31, Some(1))], 0)), [30]);
    }
}
