//! A real Kafka-compatible broker for tests and tools: Tansu
//! (`cargo install tansu`), one process per [`Broker`], on a free port.
//!
//! Each broker runs from its own directory (Tansu reads `.env` from its
//! working directory), so tests never share a broker. The tests use SQLite
//! storage, so that a broker can be stopped (an outage) and restarted on the
//! same data; the load tool uses memory storage, whose writes do not stall.
//! Topics are created with the `tansu topic create` CLI, so this module
//! needs no Kafka client.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::Proc;

/// The storage the tests use: a file in the broker's directory, kept across
/// a restart.
pub const SQLITE: &str = "sqlite://tansu.db";

/// How to install the broker, for error messages.
const INSTALL: &str =
    "scripts/test installs it: cargo install tansu@0.6.0 --locked --features libsql,dynostore";

/// Why a broker could not be started or a topic created.
#[derive(Debug, thiserror::Error)]
pub enum TansuError {
    #[error("cannot start {bin} ({source}); {INSTALL}")]
    Spawn {
        bin: PathBuf,
        source: std::io::Error,
    },
    #[error("tansu did not start listening on {addr} within 30 s")]
    NotListening { addr: String },
    #[error("tansu topic create {name}: {detail}")]
    CreateTopic { name: String, detail: String },
    #[error("broker directory {path}: {source}")]
    Dir {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Where the `tansu` binary is: `$TANSU`, else `~/.cargo/bin/tansu`, else
/// `tansu` on PATH.
pub fn tansu_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TANSU") {
        return PathBuf::from(p);
    }
    if let Some(home) = std::env::var_os("HOME") {
        let p = Path::new(&home).join(".cargo/bin/tansu");
        if p.exists() {
            return p;
        }
    }
    PathBuf::from("tansu")
}

/// The broker's directory: a temporary one (removed on drop), or one the
/// caller keeps.
#[derive(Debug)]
enum Dir {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl Dir {
    fn path(&self) -> &Path {
        match self {
            Dir::Temp(t) => t.path(),
            Dir::Kept(p) => p,
        }
    }
}

/// One Tansu broker process; killed when dropped.
#[derive(Debug)]
pub struct Broker {
    pub port: u16,
    storage: String,
    /// Before `dir`: fields drop in order, and the process must be gone
    /// before its directory is removed.
    proc: Proc,
    dir: Dir,
}

impl Broker {
    /// A broker on a free port with SQLite storage in a temporary directory.
    /// Panics when it cannot start (the test cannot run).
    pub fn start() -> Broker {
        Self::launch(None, SQLITE).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A broker on a free port with `storage` (a Tansu storage URL), run
    /// from `dir` (created if needed, and kept) or from a temporary
    /// directory.
    pub fn launch(dir: Option<&Path>, storage: &str) -> Result<Broker, TansuError> {
        let dir = match dir {
            Some(p) => {
                std::fs::create_dir_all(p).map_err(|source| TansuError::Dir {
                    path: p.to_path_buf(),
                    source,
                })?;
                Dir::Kept(p.to_path_buf())
            }
            None => Dir::Temp(tempfile::tempdir().map_err(|source| TansuError::Dir {
                path: std::env::temp_dir(),
                source,
            })?),
        };
        let mut b = Broker {
            port: crate::free_port(),
            storage: storage.to_owned(),
            proc: Proc::default(),
            dir,
        };
        b.spawn()?;
        Ok(b)
    }

    /// `127.0.0.1:PORT`, for `bootstrap.servers`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// The broker's process id (for CPU accounting).
    pub fn pid(&self) -> u32 {
        self.proc.pid()
    }

    fn spawn(&mut self) -> Result<(), TansuError> {
        let log_path = self.dir.path().join("tansu.log");
        let log = std::fs::File::create(&log_path).map_err(|source| TansuError::Dir {
            path: log_path,
            source,
        })?;
        let child = Command::new(tansu_bin())
            .args(["broker", "--listener-url", &self.url()])
            .args(["--advertised-listener-url", &self.url()])
            .args(["--storage-engine", &self.storage])
            .current_dir(self.dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|source| TansuError::Spawn {
                bin: tansu_bin(),
                source,
            })?;
        self.proc = Proc::new(child);
        let t = Instant::now();
        while std::net::TcpStream::connect(self.addr()).is_err() {
            if t.elapsed() > Duration::from_secs(30) {
                return Err(TansuError::NotListening { addr: self.addr() });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// (Re)start on the same port and storage after [`Broker::stop`].
    pub fn restart(&mut self) {
        assert!(!self.proc.is_running(), "broker already running");
        self.spawn().unwrap_or_else(|e| panic!("{e}"));
    }

    /// Stop the broker (SIGKILL: an outage, not a clean shutdown).
    pub fn stop(&mut self) {
        self.proc.kill();
    }

    /// Freeze the broker (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&self) {
        self.proc.signal("STOP");
    }

    /// Thaw a broker frozen by [`Broker::pause`] (SIGCONT).
    pub fn resume(&self) {
        self.proc.signal("CONT");
    }

    /// Create a topic; panics when Tansu refuses.
    pub fn create_topic(&self, name: &str, partitions: u32) {
        self.try_create_topic(name, partitions)
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Create a topic with `tansu topic create`.
    pub fn try_create_topic(&self, name: &str, partitions: u32) -> Result<(), TansuError> {
        let failed = |detail: String| TansuError::CreateTopic {
            name: name.to_owned(),
            detail,
        };
        let out = Command::new(tansu_bin())
            .args(["topic", "create", name])
            .args(["--partitions", &partitions.to_string()])
            .args(["--broker", &self.url()])
            .current_dir(self.dir.path())
            .output()
            .map_err(|e| failed(e.to_string()))?;
        if !out.status.success() {
            return Err(failed(String::from_utf8_lossy(&out.stderr).into_owned()));
        }
        Ok(())
    }

    /// What the broker has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tansu.log")).unwrap_or_default()
    }
}
