//! The two exponential delays Kubernetes applies, as pure functions.
//!
//! They differ on purpose (spec §3.2, §3.3): the Job controller delays *pod replacement* by
//! `base·2^(n−1)` after the n-th consecutive failure; the kubelet restarts a crashed container
//! at once the first time, then waits `base·2^(k−1)` before the (k+1)-th restart.

use std::time::Duration;

/// `min(base · 2^exp, max)` without overflow.
pub fn exponential(base: Duration, exp: u32, max: Duration) -> Duration {
    let factor = 2u32.checked_pow(exp.min(31)).unwrap_or(u32::MAX);
    base.checked_mul(factor).unwrap_or(max).min(max)
}

/// Job controller: delay before creating pods after `failures` consecutive failed pods
/// (failures since the last success). Zero failures, no delay.
pub fn pod_failure_delay(failures: u32, base: Duration, max: Duration) -> Duration {
    match failures {
        0 => Duration::ZERO,
        n => exponential(base, n - 1, max),
    }
}

/// Kubelet CrashLoopBackOff: delay before restart number `restart` (1 = the first restart) of
/// a container, counted since the last backoff reset. The first restart is immediate.
pub fn container_restart_delay(restart: u32, base: Duration, max: Duration) -> Duration {
    match restart {
        0 | 1 => Duration::ZERO,
        n => exponential(base, n - 2, max),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn pod_failure_delays_match_kubernetes() {
        // 10, 20, 40, 80, 160, 320, 600 (capped), 600 …
        let want = [0, 10, 20, 40, 80, 160, 320, 600, 600, 600];
        for (n, w) in want.iter().enumerate() {
            assert_eq!(pod_failure_delay(n as u32, S(10), S(600)), S(*w), "n={n}");
        }
        assert_eq!(pod_failure_delay(1000, S(10), S(600)), S(600));
    }

    #[test]
    fn container_restart_delays_match_kubelet() {
        // first restart immediate, then 10, 20, 40, 80, 160, 300, 300 …
        let want = [0, 0, 10, 20, 40, 80, 160, 300, 300];
        for (k, w) in want.iter().enumerate() {
            assert_eq!(
                container_restart_delay(k as u32, S(10), S(300)),
                S(*w),
                "k={k}"
            );
        }
    }
}
