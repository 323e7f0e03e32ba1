//! Giving freed memory back to the system (glibc's malloc).
//!
//! A burst of work (10,000 Jobs applied and run at once, a large list answered, a restart's
//! load) allocates far more than the daemon keeps. glibc returns only the free space at the
//! top of its heap, and raises that threshold by itself after large frees, so the holes such
//! a burst leaves stay resident: measured after 10,000 one-pod Jobs, 422 MiB RSS of which
//! `malloc_trim(0)` gave back 134 MiB. So the loop trims once it has been quiet for
//! [`QUIET`] after a turn that changed state, never in the middle of a burst (a trim costs a
//! walk of the free lists, and what it returns would only be faulted in again).
//!
//! One knob is set: the mmap threshold, fixed at 1 MiB ([`configure`]), so a large list's body
//! never stays in a worker thread's heap. Two arenas gave no measurable memory beyond the
//! trim's; a threshold of 256 KiB made every watch batch a fresh mapping.
//!
//! A list is a burst too: thousands of objects' JSON, freed once sent; a list of 1,000
//! objects or more schedules the same trim.

use std::time::Duration;

use tokio::time::Instant;

/// How long the loop must have changed nothing before the heap is trimmed.
pub const QUIET: Duration = Duration::from_secs(1);

/// Allocations from this size on get pages of their own, given back when freed.
pub const MMAP_THRESHOLD: usize = 1 << 20;

/// Sets malloc's thresholds, once at start. glibc raises its mmap
/// threshold to the size of the largest mapped block freed (up to 32 MiB), and its trim
/// threshold to twice that: after one list of 10,000 Jobs (a 20 MB body) every later one is
/// carved from the heap of the thread that wrote it, whose top `malloc_trim` never returns
/// (it trims only the main heap's top), so each worker thread kept 15–20 MiB. Fixed, a large
/// body is a mapping of its own, and a thread's heap shrinks as soon as its top is free.
/// Watch batches (256 KiB) stay below it: a fresh mapping for each would cost throughput.
pub fn configure() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets malloc's parameters, under malloc's own lock.
    unsafe {
        nix::libc::mallopt(nix::libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as i32);
    }
}

/// Returns every whole free page of every arena to the system.
pub fn trim() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim is thread-safe (it takes each arena's lock) and only releases
    // pages malloc holds free.
    unsafe {
        nix::libc::malloc_trim(0);
    }
}

/// The longest a trim waits for a quiet second: a loop that is never quiet (a steady stream
/// of pods, Jobs of 100,000 completions) still gives back what a burst or a restart's load
/// freed. Measured: 120,000 pods' state loaded while three Jobs kept running stayed at
/// 700+ MiB, three times what the same daemon held before the restart.
pub const MAX_OWED: Duration = Duration::from_secs(30);

/// When the loop last changed state, and since when a trim is owed.
#[derive(Debug, Default)]
pub struct Quiet {
    last_change: Option<Instant>,
    owed_since: Option<Instant>,
}

impl Quiet {
    /// A turn changed state at `now`.
    pub fn changed(&mut self, now: Instant) {
        self.last_change = Some(now);
        self.owed_since.get_or_insert(now);
    }

    /// At a trim timer: `None` to trim now (quiet long enough, nothing changed, or owed for
    /// [`MAX_OWED`]), or how much longer to wait.
    pub fn due(&mut self, now: Instant) -> Option<Duration> {
        let quiet = self
            .last_change
            .map(|at| (at + QUIET).saturating_duration_since(now));
        let overdue = self
            .owed_since
            .map(|at| (at + MAX_OWED).saturating_duration_since(now));
        let wait = match (quiet, overdue) {
            (Some(q), Some(o)) => Some(q.min(o)),
            (q, o) => q.or(o),
        }
        .filter(|w| !w.is_zero());
        if wait.is_none() {
            self.last_change = None;
            self.owed_since = None;
        }
        wait
    }

    /// Whether nothing changed for [`QUIET`] before `now` (else a trim is overdue while the
    /// loop is busy: only the free pages go back, the world is not rebuilt mid-stream).
    pub fn is_quiet(&self, now: Instant) -> bool {
        self.last_change.is_none_or(|at| now >= at + QUIET)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_only_after_a_quiet_second() {
        let t0 = Instant::now();
        let mut q = Quiet::default();
        assert_eq!(q.due(t0), None, "nothing changed: trim (the start-up load)");
        q.changed(t0);
        assert_eq!(
            q.due(t0 + Duration::from_millis(400)),
            Some(QUIET - Duration::from_millis(400))
        );
        q.changed(t0 + Duration::from_millis(900));
        assert_eq!(
            q.due(t0 + QUIET),
            Some(Duration::from_millis(900)),
            "still busy: wait for a quiet second after the last change"
        );
        assert_eq!(q.due(t0 + Duration::from_millis(1900)), None);
    }

    #[test]
    fn a_loop_never_quiet_trims_every_max_owed() {
        let t0 = Instant::now();
        let mut q = Quiet::default();
        let ms = Duration::from_millis;
        // A change every 500 ms: never a quiet second.
        let mut t = t0;
        while t < t0 + MAX_OWED - ms(500) {
            q.changed(t);
            assert!(q.due(t + ms(1)).is_some(), "busy at {:?}", t - t0);
            t += ms(500);
        }
        q.changed(t);
        assert_eq!(q.due(t + ms(1)), Some(ms(499)), "owed since t0");
        assert_eq!(
            q.due(t0 + MAX_OWED),
            None,
            "owed too long: trim though busy"
        );
        q.changed(t0 + MAX_OWED + ms(100));
        assert_eq!(
            q.due(t0 + MAX_OWED + ms(200)),
            Some(ms(900)),
            "a new debt starts from the trim"
        );
    }
}
