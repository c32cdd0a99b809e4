//! Child processes that never outlive their test: [`Proc`] is killed and
//! reaped when dropped (a failing test leaves no broker or daemon behind),
//! and signals go through the `kill` command, by name.

use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

/// Send signal `sig` (by name: `TERM`, `HUP`, `STOP`, …) to process `pid`.
pub fn send_signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .unwrap_or_else(|e| panic!("kill -{sig} {pid}: {e}"));
    assert!(st.success(), "kill -{sig} {pid}");
}

/// A child process, or none (never started, or exited and reaped).
#[derive(Debug, Default)]
pub struct Proc {
    child: Option<Child>,
}

impl Proc {
    pub fn new(child: Child) -> Proc {
        Proc { child: Some(child) }
    }

    /// Started and not yet reaped (it may have exited on its own).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Panics when there is no process.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("process not running").id()
    }

    /// Send a signal by name (`TERM`, `HUP`, `KILL`, …).
    pub fn signal(&self, sig: &str) {
        send_signal(self.pid(), sig);
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// The exit status, once the process has exited within `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let t = Instant::now();
        loop {
            if let Some(st) = self.child.as_mut()?.try_wait().ok().flatten() {
                self.child = None;
                return Some(st);
            }
            if t.elapsed() >= timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Running and not exited.
    pub fn alive(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}
