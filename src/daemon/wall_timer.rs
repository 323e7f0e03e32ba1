//! A wake-up at a wall-clock instant: the next CronJob slot. A `timerfd` on `CLOCK_REALTIME`
//! armed with an absolute time fires at that instant however the clock got there (it keeps
//! counting across a suspend, unlike a monotonic sleep), and `TFD_TIMER_CANCEL_ON_SET` makes
//! it report any step of the clock (NTP, `date -s`, resume), after which every schedule is
//! evaluated again. No polling tick.

use std::os::fd::{AsFd, AsRawFd, RawFd};

use jiff::Timestamp;
use nix::errno::Errno;
use nix::sys::time::TimeSpec;
use nix::sys::timerfd::{ClockId, Expiration, TimerFd, TimerFlags, TimerSetTimeFlags};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

struct Fd(TimerFd);

impl AsRawFd for Fd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// What woke the timer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The instant it was armed for has come.
    Due,
    /// The wall clock was set (stepped): what is due must be computed again.
    ClockChanged,
}

pub struct WallTimer {
    fd: AsyncFd<Fd>,
    armed: Option<Timestamp>,
}

impl WallTimer {
    pub fn new() -> std::io::Result<WallTimer> {
        let fd = TimerFd::new(
            ClockId::CLOCK_REALTIME,
            TimerFlags::TFD_NONBLOCK | TimerFlags::TFD_CLOEXEC,
        )?;
        // SAFETY: the TimerFd owns its fd, which stays open and the same until the AsyncFd
        // (which owns the TimerFd) is dropped.
        let fd = unsafe { AsyncFd::register_with_interest(Fd(fd), Interest::READABLE) }
            .map_err(std::io::Error::from)?;
        Ok(WallTimer { fd, armed: None })
    }

    /// Wakes at `at` (`None`: never). Re-arming replaces the previous instant.
    pub fn arm(&mut self, at: Option<Timestamp>) -> std::io::Result<()> {
        if self.armed == at {
            return Ok(());
        }
        let timer = &self.fd.get_ref().0;
        match at {
            None => timer.unset()?,
            Some(at) => {
                // An instant at or before the epoch would read as "disarm"; such a slot is due.
                let secs = at.as_second().max(0);
                let nanos = if secs == 0 && at.subsec_nanosecond() <= 0 {
                    1
                } else {
                    i64::from(at.subsec_nanosecond().max(0))
                };
                timer.set(
                    Expiration::OneShot(TimeSpec::new(secs, nanos)),
                    TimerSetTimeFlags::TFD_TIMER_ABSTIME
                        | TimerSetTimeFlags::TFD_TIMER_CANCEL_ON_SET,
                )?;
            }
        }
        self.armed = at;
        Ok(())
    }

    pub fn armed(&self) -> Option<Timestamp> {
        self.armed
    }

    /// Waits until the timer fires or the clock is set. Cancel-safe: dropping the future
    /// loses nothing, the timer stays armed.
    pub async fn wait(&mut self) -> std::io::Result<Wake> {
        loop {
            let mut ready = self.fd.readable().await?;
            let mut buf = [0u8; 8];
            match nix::unistd::read(self.fd.get_ref().0.as_fd(), &mut buf) {
                Ok(_) => {
                    self.armed = None;
                    return Ok(Wake::Due);
                }
                Err(Errno::ECANCELED) => {
                    // The timer stays armed for the same instant (now relative to the new
                    // clock); the caller re-arms it from the new state anyway.
                    self.armed = None;
                    return Ok(Wake::ClockChanged);
                }
                Err(Errno::EAGAIN) => ready.clear_ready(),
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fires_at_a_wall_clock_instant() {
        let mut t = WallTimer::new().expect("timerfd");
        #[allow(clippy::disallowed_methods)] // the timer runs on the real clock
        let at = Timestamp::now() + jiff::SignedDuration::from_millis(20);
        t.arm(Some(at)).expect("armed");
        assert_eq!(t.wait().await.expect("woke"), Wake::Due);
        #[allow(clippy::disallowed_methods)]
        let now = Timestamp::now();
        assert!(now >= at, "woke at {now}, before {at}");
        assert_eq!(t.armed(), None);
    }

    #[tokio::test]
    async fn an_instant_in_the_past_is_due_at_once() {
        let mut t = WallTimer::new().expect("timerfd");
        t.arm(Some("2001-01-01T00:00:00Z".parse().expect("ts")))
            .expect("armed");
        assert_eq!(t.wait().await.expect("woke"), Wake::Due);
    }
}
