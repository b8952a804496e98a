//! Running one piece of the probe in a forked, time-bounded child.
//!
//! The child leads its own process group, runs the closure, writes the
//! JSON-encoded result into a pipe and `_exit`s. The parent collects the
//! result until the deadline; a child that is still running then is killed
//! with its whole group (so grandchildren go too) and reaped. A child killed
//! by a signal (SIGBUS while touching a page) reports that signal.

use std::os::fd::OwnedFd;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::fs::OFlags;
use rustix::io::Errno;
use rustix::pipe::PipeFlags;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::errno;
use crate::sys::{self, Exit};

/// Why a worker produced no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum WorkerError {
    /// Setting up the pipe or the fork failed.
    #[error("{step}: {}", errno::errno(*.errno))]
    Setup {
        /// `pipe2`, `fork`, `fcntl`, `waitid`.
        step: &'static str,
        /// Its errno.
        errno: Errno,
    },
    /// The child did not finish before the deadline and was killed.
    #[error("timeout")]
    Timeout,
    /// The child was killed by a signal.
    #[error("{}", errno::signal_name(*.0))]
    Signal(i32),
    /// The child exited with a non-zero status without a result.
    #[error("child exited with status {0}")]
    Exit(i32),
    /// The child's result did not decode.
    #[error("undecodable child result: {0}")]
    Payload(String),
}

impl WorkerError {
    /// The outcome this failure stands for: `timeout`, the signal, or `unavailable: ...` when
    /// the probe itself failed.
    pub(crate) fn outcome(&self) -> pfnguard_report::Outcome {
        match self {
            WorkerError::Timeout => pfnguard_report::Outcome::Timeout,
            WorkerError::Signal(sig) => errno::signal_outcome(*sig),
            other => pfnguard_report::Outcome::unavailable(other),
        }
    }
}

/// Most of a result the child writes; a larger one is cut (the parent then
/// reports a decoding error rather than blocking the child).
const MAX_RESULT: usize = 1 << 20;

/// `now + timeout`, saturating far in the future instead of overflowing.
pub(crate) fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(Duration::from_secs(1 << 30)))
        .unwrap_or(now)
}

/// Run `f` in a forked child with `timeout` as its bound. `f` gets the
/// deadline so that it can bound its own children below it.
pub(crate) fn run<T, F>(timeout: Duration, f: F) -> Result<T, WorkerError>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce(Instant) -> T,
{
    let deadline = deadline_after(timeout);
    let setup = |step| move |errno| WorkerError::Setup { step, errno };
    let (rd, wr) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC).map_err(setup("pipe2"))?;
    let mut child = sys::fork(true, move || {
        let value = f(deadline);
        let bytes = match serde_json::to_vec(&value) {
            Ok(b) => b,
            Err(_) => return 2,
        };
        let mut rest = &bytes[..bytes.len().min(MAX_RESULT)];
        while !rest.is_empty() {
            match rustix::io::write(&wr, rest) {
                Ok(n) => rest = &rest[n..],
                Err(Errno::INTR) => continue,
                Err(_) => return 3,
            }
        }
        0
    })
    .map_err(setup("fork"))?;
    rustix::fs::fcntl_setfl(&rd, OFlags::NONBLOCK).map_err(setup("fcntl"))?;

    let mut buf = Vec::new();
    let mut eof = false;
    loop {
        if !eof {
            eof = drain(&rd, &mut buf);
        }
        match child.try_wait() {
            Ok(Some(exit)) => {
                drain(&rd, &mut buf);
                return decode(exit, &buf);
            }
            Ok(None) => {}
            Err(errno) => {
                return Err(WorkerError::Setup {
                    step: "waitid",
                    errno,
                })
            }
        }
        let now = Instant::now();
        if now >= deadline {
            child.kill(Duration::from_secs(2));
            return Err(WorkerError::Timeout);
        }
        let nap = (deadline - now).min(Duration::from_millis(10));
        if eof {
            std::thread::sleep(nap);
        } else {
            let mut fds = [PollFd::new(&rd, PollFlags::IN)];
            let ts = rustix::event::Timespec {
                tv_sec: 0,
                tv_nsec: nap.subsec_nanos().into(),
            };
            let _ = rustix::event::poll(&mut fds, Some(&ts));
        }
    }
}

/// Read what the pipe holds; returns whether it reached end of file.
fn drain(rd: &OwnedFd, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 4096];
    loop {
        match rustix::io::read(rd, &mut chunk) {
            Ok(0) => return true,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(Errno::INTR) => continue,
            Err(_) => return false,
        }
    }
}

fn decode<T: DeserializeOwned>(exit: Exit, buf: &[u8]) -> Result<T, WorkerError> {
    match exit {
        Exit::Code(0) => {
            serde_json::from_slice(buf).map_err(|e| WorkerError::Payload(e.to_string()))
        }
        Exit::Code(code) => Err(WorkerError::Exit(code)),
        Exit::Signal(sig) => Err(WorkerError::Signal(sig)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn result_comes_back() {
        let v: Result<Vec<u32>, _> = run(Duration::from_secs(10), |_| vec![1, 2, 3]);
        assert_eq!(v, Ok(vec![1, 2, 3]));
    }

    #[test]
    fn large_result_comes_back() {
        let v: Result<String, _> = run(Duration::from_secs(10), |_| "x".repeat(200_000));
        assert_eq!(v.map(|s| s.len()), Ok(200_000));
    }

    #[test]
    fn hang_is_a_timeout() {
        let start = Instant::now();
        let v: Result<u8, _> = run(Duration::from_millis(300), |_| loop {
            std::thread::sleep(Duration::from_secs(1));
        });
        assert_eq!(v, Err(WorkerError::Timeout));
        assert_eq!(WorkerError::Timeout.outcome().to_string(), "timeout");
        assert!(start.elapsed() < Duration::from_secs(5));
    }

    /// State and process group of a pid, from `/proc/PID/stat`.
    fn state_and_group(pid: i32) -> Option<(char, i32)> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let mut rest = stat.rsplit_once(')')?.1.split_ascii_whitespace();
        let state = rest.next()?.chars().next()?;
        let _ppid = rest.next()?;
        Some((state, rest.next()?.parse().ok()?))
    }

    #[test]
    fn grandchild_hang_is_killed_with_the_group() {
        let (rd, wr) = rustix::pipe::pipe_with(PipeFlags::CLOEXEC).unwrap();
        let v: Result<u8, _> = run(Duration::from_millis(300), |_| {
            let gc = sys::fork(false, || loop {
                std::thread::sleep(Duration::from_secs(1));
            });
            if gc.is_ok() {
                // The grandchild is the only other member of our group.
                let pid = rustix::process::getpid().as_raw_nonzero().get();
                let _ = rustix::io::write(&wr, format!("{pid}").as_bytes());
            }
            std::mem::forget(gc);
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        });
        assert_eq!(v, Err(WorkerError::Timeout));
        drop(wr);
        let mut buf = [0u8; 16];
        let n = rustix::io::read(&rd, &mut buf).unwrap();
        let worker: i32 = std::str::from_utf8(&buf[..n]).unwrap().parse().unwrap();
        // Nothing of the worker's group may survive for long.
        let until = Instant::now() + Duration::from_secs(3);
        loop {
            let alive: Vec<i32> = std::fs::read_dir("/proc")
                .unwrap()
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
                .filter(|pid| state_and_group(*pid).is_some_and(|(st, g)| g == worker && st != 'Z'))
                .collect();
            if alive.is_empty() {
                break;
            }
            assert!(
                Instant::now() < until,
                "group members still alive: {alive:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn touching_past_eof_is_sigbus() {
        let v: Result<u8, _> = run(Duration::from_secs(10), |_| {
            let fd = rustix::fs::memfd_create("sigbus", rustix::fs::MemfdFlags::CLOEXEC).unwrap();
            rustix::fs::ftruncate(&fd, 8192).unwrap();
            let mut map = sys::Mapping::shared(std::os::fd::AsFd::as_fd(&fd), 8192).unwrap();
            rustix::fs::ftruncate(&fd, 0).unwrap();
            map.touch_pages(4096);
            0
        });
        assert_eq!(v, Err(WorkerError::Signal(libc::SIGBUS)));
    }

    #[test]
    fn signal_is_reported() {
        let v: Result<u8, _> = run(Duration::from_secs(10), |_| {
            let _ = rustix::process::kill_process(
                rustix::process::getpid(),
                rustix::process::Signal::BUS,
            );
            0
        });
        assert_eq!(v, Err(WorkerError::Signal(libc::SIGBUS)));
        assert_eq!(
            WorkerError::Signal(libc::SIGBUS).outcome().to_string(),
            "SIGBUS"
        );
    }

    #[test]
    fn exit_status_is_reported() {
        let v: Result<u8, _> = run(Duration::from_secs(10), |_| sys::exit_now(7));
        assert_eq!(v, Err(WorkerError::Exit(7)));
        assert!(WorkerError::Exit(7)
            .outcome()
            .to_string()
            .starts_with("unavailable: "));
    }
}
