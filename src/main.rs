//! The `newswatch` command line (SPEC §1). Thin: `main` parses arguments,
//! sets up logging and dispatches to one `cmd_*` function per subcommand,
//! which calls into the library and maps its outcome to an exit code. Errors
//! that end a command early are `anyhow` errors, here and nowhere else.

use std::io::{self, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};

use newswatch::config::{self, Config};
use newswatch::replay::{self, Input};
use newswatch::{explain, ruletest};
use newswatch_core::{rules, Engine};

mod silence_cli;

#[derive(Parser)]
#[command(
    name = "newswatch",
    version,
    about = "Match news events against watch rules and publish alerts"
)]
struct Cli {
    /// Log format on stderr (level by RUST_LOG, default info).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// The daemon: Kafka in, alerts out, HTTP endpoints.
    Run {
        #[arg(short, long)]
        config: Option<PathBuf>,
    },
    /// Validate the config and the rule files; print every error as FILE:LINE:COL: message.
    Check {
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Rule files or directories (default: the config's rules.paths).
        paths: Vec<PathBuf>,
    },
    /// Run rule unit tests; closing line `N passed, N failed`.
    Test {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Evaluate the rules over JSON-lines events; alerts as JSON lines on stdout.
    Replay {
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Rule files or directories, overriding rules.paths (repeatable).
        #[arg(short, long = "rules")]
        rules: Vec<PathBuf>,
        /// Also print the 20 costliest rules by verification time on stderr.
        #[arg(long)]
        profile: bool,
        /// Input files; `-` or nothing for stdin.
        files: Vec<PathBuf>,
    },
    /// Show each clause of one rule's query for one event, and whether it matched.
    Explain {
        #[arg(short, long)]
        config: Option<PathBuf>,
        #[arg(short, long = "rules")]
        rules: Vec<PathBuf>,
        /// The rule id.
        #[arg(long)]
        rule: String,
        /// The event (a JSON object, or the first line of a JSON-lines file); `-` for stdin.
        file: Option<PathBuf>,
    },
    /// Create, list and end silences in the running daemon.
    Silence(silence_cli::SilenceArgs),
    /// Follow the alert topics: one line per alert or digest, duplicates dropped.
    Tail {
        #[arg(short, long)]
        config: Option<PathBuf>,
        /// Follow this topic instead of the config's and the rules' (repeatable).
        #[arg(long = "topic", value_name = "TOPIC")]
        topics: Vec<String>,
        /// Start at each partition's beginning, not at what comes next.
        #[arg(long)]
        from_beginning: bool,
        /// Print the payloads (JSON lines) instead of readable lines.
        #[arg(long)]
        json: bool,
    },
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colour only for a person at a terminal, never in files or journald.
    let ansi = std::io::IsTerminal::is_terminal(&io::stderr());
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(io::stderr);
    match format {
        LogFormat::Text => b.init(),
        LogFormat::Json => b.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("newswatch: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// One function per subcommand; each returns its exit code, or an error
/// that `main` prints with exit code 2.
fn dispatch(cmd: Command) -> Result<ExitCode> {
    match cmd {
        Command::Run { config } => cmd_run(config.as_deref()),
        Command::Check { config, paths } => cmd_check(config.as_deref(), &paths),
        Command::Test { files } => cmd_test(&files),
        Command::Replay {
            config,
            rules,
            profile,
            files,
        } => cmd_replay(config.as_deref(), &rules, &files, profile),
        Command::Explain {
            config,
            rules,
            rule,
            file,
        } => cmd_explain(config.as_deref(), &rules, &rule, file.as_deref()),
        Command::Silence(args) => Ok(silence_cli::run(args)),
        Command::Tail {
            config,
            topics,
            from_beginning,
            json,
        } => cmd_tail(
            config.as_deref(),
            newswatch::tail::Options {
                topics,
                from_beginning,
                json,
            },
        ),
    }
}

/// `newswatch tail`: exit 0 on SIGINT/SIGTERM or a closed stdout.
fn cmd_tail(config: Option<&Path>, opts: newswatch::tail::Options) -> Result<ExitCode> {
    let cfg = load_config(config)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let done = runtime.block_on(async move {
        let shutdown = tokio_util::sync::CancellationToken::new();
        spawn_signal_handler(shutdown.clone())?;
        newswatch::tail::run(cfg, opts, shutdown).await?;
        Ok(ExitCode::SUCCESS)
    });
    // A metadata request to an unreachable broker may still be running on a
    // blocking thread: tail owes it nothing, so do not wait it out.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    done
}

/// `newswatch run`: the daemon on a tokio runtime, stopped by SIGTERM or
/// SIGINT (a second signal exits at once: nothing acknowledged is lost,
/// since offsets only move after acknowledgement).
fn cmd_run(config: Option<&Path>) -> Result<ExitCode> {
    let cfg = load_config(config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("newswatch-io")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let shutdown = tokio_util::sync::CancellationToken::new();
        spawn_signal_handler(shutdown.clone())?;
        match newswatch::run(cfg, shutdown).await {
            Ok(()) => Ok(ExitCode::SUCCESS),
            Err(e) => {
                tracing::error!(error = %e, "daemon failed");
                Ok(ExitCode::from(1))
            }
        }
    })
}

fn spawn_signal_handler(shutdown: tokio_util::sync::CancellationToken) -> Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    tokio::spawn(async move {
        let mut first = true;
        loop {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            if first {
                tracing::info!(
                    signal = name,
                    "stopping: finishing in-flight events (send again to exit at once)"
                );
                shutdown.cancel();
                first = false;
            } else {
                tracing::warn!(
                    signal = name,
                    "second signal: exiting now; unacknowledged events will be redelivered"
                );
                std::process::exit(1);
            }
        }
    });
    Ok(())
}

/// `newswatch check`: every config and rule error on stdout, the count on
/// stderr.
fn cmd_check(config: Option<&Path>, paths: &[PathBuf]) -> Result<ExitCode> {
    let cfg = match load_config(config) {
        Ok(c) => c,
        Err(e) => {
            println!("{e:#}");
            return Ok(ExitCode::from(1));
        }
    };
    let paths = if paths.is_empty() {
        cfg.rules.paths.clone()
    } else {
        paths.to_vec()
    };
    match rules::load_paths(&paths) {
        Ok(rs) => {
            let disabled = if rs.disabled > 0 {
                format!(" ({} disabled)", rs.disabled)
            } else {
                String::new()
            };
            println!(
                "ok: {} rules{disabled} in {} files, ruleset version {}",
                rs.rules.len(),
                rs.files.len(),
                rs.version
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(errs) => {
            let mut out = io::stdout().lock();
            for d in &errs.0 {
                writeln!(out, "{d}")?;
            }
            let n = errs.0.len();
            eprintln!("{n} error{}", if n == 1 { "" } else { "s" });
            Ok(ExitCode::from(1))
        }
    }
}

/// `newswatch test`: rule unit tests; a file list that cannot be expanded
/// counts as one failure.
fn cmd_test(files: &[PathBuf]) -> Result<ExitCode> {
    let cfg = load_config(None)?;
    let files = match ruletest::expand(files) {
        Ok(f) => f,
        Err(diags) => {
            for d in diags {
                println!("{d}");
            }
            println!("0 passed, 1 failed");
            return Ok(ExitCode::from(1));
        }
    };
    let report = ruletest::run_files(&files, &cfg.event);
    for l in &report.lines {
        println!("{l}");
    }
    println!("{}", report.summary());
    Ok(if report.failed == 0 && report.passed > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `newswatch replay`: alerts as JSON lines on stdout, counts on stderr.
fn cmd_replay(
    config: Option<&Path>,
    rules: &[PathBuf],
    files: &[PathBuf],
    profile: bool,
) -> Result<ExitCode> {
    let engine = match load_engine(config, rules)? {
        Ok(e) => e,
        Err(errs) => {
            eprintln!("{errs}");
            anyhow::bail!(
                "the rules do not load ({} errors); run `newswatch check`",
                errs.0.len()
            );
        }
    };
    tracing::info!(rules = engine.rules.rules.len(), version = %engine.rules.version, "rules loaded");
    let inputs = open_inputs(files)?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let stdout = io::stdout();
    let mut out = io::BufWriter::with_capacity(1 << 16, stdout.lock());
    let (stats, costs) = match replay::replay_profiled(&engine, inputs, &mut out, threads, profile)
    {
        Ok(s) => s,
        // `replay … | head` is not a failure.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        Err(e) => return Err(e).context("replay failed"),
    };
    eprintln!(
        "events: {}, invalid: {}, alerts: {}",
        stats.events, stats.invalid, stats.alerts
    );
    if profile {
        eprint!("{}", costs.render(&engine));
    }
    Ok(ExitCode::SUCCESS)
}

/// `newswatch explain`: exit code 0 when the rule matches the event, 1 when not.
fn cmd_explain(
    config: Option<&Path>,
    rules: &[PathBuf],
    rule: &str,
    file: Option<&Path>,
) -> Result<ExitCode> {
    let engine = match load_engine(config, rules)? {
        Ok(e) => e,
        Err(errs) => {
            eprintln!("{errs}");
            anyhow::bail!("the rules do not load; run `newswatch check`");
        }
    };
    let Some(idx) = engine.rules.rule_index(rule) else {
        anyhow::bail!("no enabled rule with id `{rule}`");
    };
    let bytes = read_event(file)?;
    let ev = engine
        .decode(&bytes)
        .map_err(|e| anyhow::anyhow!("the event is invalid ({}): {}", e.reason, e.detail))?;
    let (text, matched) = explain::explain(&engine, idx, &ev);
    print!("{text}");
    Ok(if matched {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn load_config(cli: Option<&Path>) -> Result<Config> {
    let path = config::resolve_path(cli);
    Ok(Config::load(path.as_deref())?)
}

fn load_engine(
    config: Option<&Path>,
    rules_override: &[PathBuf],
) -> Result<Result<Engine, rules::LoadErrors>> {
    let cfg = load_config(config)?;
    let paths = if rules_override.is_empty() {
        cfg.rules.paths.clone()
    } else {
        rules_override.to_vec()
    };
    Ok(rules::load_paths(&paths).map(|rs| Engine::new(rs, cfg.event.clone())))
}

fn open_inputs(files: &[PathBuf]) -> Result<Vec<Input>> {
    if files.is_empty() {
        return Ok(vec![Input {
            name: "-".into(),
            reader: Box::new(BufReader::new(io::stdin())),
        }]);
    }
    files
        .iter()
        .map(|f| {
            if f.as_os_str() == "-" {
                return Ok(Input {
                    name: "-".into(),
                    reader: Box::new(BufReader::new(io::stdin())),
                });
            }
            let file =
                std::fs::File::open(f).with_context(|| format!("cannot open {}", f.display()))?;
            Ok(Input {
                name: f.display().to_string(),
                reader: Box::new(BufReader::with_capacity(1 << 16, file)),
            })
        })
        .collect()
}

/// The event for `explain`: the whole input when it is one JSON value,
/// else its first non-empty line.
fn read_event(file: Option<&Path>) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    match file {
        None => io::stdin().read_to_end(&mut bytes)?,
        Some(p) if p.as_os_str() == "-" => io::stdin().read_to_end(&mut bytes)?,
        Some(p) => std::fs::File::open(p)
            .with_context(|| format!("cannot open {}", p.display()))?
            .read_to_end(&mut bytes)?,
    };
    if serde_json::from_slice::<serde::de::IgnoredAny>(&bytes).is_ok() {
        return Ok(bytes);
    }
    Ok(bytes
        .split(|&b| b == b'\n')
        .find(|l| !l.iter().all(u8::is_ascii_whitespace))
        .map(<[u8]>::to_vec)
        .unwrap_or_default())
}
