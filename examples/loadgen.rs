//! Load generator for `newswatch run`, against a real Kafka-compatible broker.
//!
//! ```sh
//! # throughput and latency, with its own Tansu broker (~/.cargo/bin/tansu or $TANSU):
//! cargo run --release --example loadgen -- --events 20000 --rules 1000 --rate 1000 --seconds 20
//! cargo run --release --example loadgen -- --mode throughput --events 50000
//! cargo run --release --example loadgen -- --mode latency --rate 1000 --seconds 20
//! # against an existing broker (topics must exist or be auto-created):
//! cargo run --release --example loadgen -- --brokers 127.0.0.1:9092
//! # just feed JSON lines from a file to a topic:
//! cargo run --release --example loadgen -- --produce examples/news.jsonl --topic news.events --brokers 127.0.0.1:9092
//! ```
//!
//! * Events are real articles from `../shared/data/news/*.jsonl` (falling back
//!   to `examples/news.jsonl`), cycled as needed; every event gets a unique id
//!   `lg-<run>-<seq>` and a `sent_at_us` field (wall clock at produce time).
//! * Rules (`--rules N`) are generated from the corpus vocabulary in the
//!   shapes `benches/matcher.rs` uses (terms, phrases, prefixes, lists,
//!   macros, NEAR/ONEAR, AND NOT, OR, case-sensitive terms, field scopes),
//!   plus, unless `--no-broad`, one broad rule (`source:Reuters OR
//!   source:Wikinews OR source:seed`) that fires on every event, so latency
//!   is measured on every event.
//! * The daemon runs in this process (`newswatch::run`) with a config file
//!   written to a temp dir.
//! * Throughput: all events are produced first; then a plain rdkafka
//!   consumer (fresh group) reads them, then newswatch (fresh group) processes
//!   them; the time is from client creation to the last event received
//!   (raw) or acknowledged (newswatch: `newswatch_event_processing_seconds_count`
//!   on `/metrics` reaches N; the committed offsets are checked too).
//! * Latency: events at a steady `--rate` for `--seconds`; a probe consumer
//!   reads the alert topic and measures produce -> alert received. A second
//!   probe reads the input topic (produce -> consumable), to tell the
//!   broker's share from the daemon's.
//! * CPU: user+system seconds of this process (daemon + load clients) and
//!   of the Tansu process, per phase; `--threads` lists them per thread.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{BufRead, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use tokio_util::sync::CancellationToken;

use newswatch_core::event::{self, EventFields};

use newswatch_testkit::rulegen::{self, Rng};

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Mode {
    Throughput,
    Latency,
    Both,
}

#[derive(Parser, Debug)]
#[command(about = "Load generator for newswatch (throughput and produce->alert latency)")]
struct Args {
    /// What to measure.
    #[arg(long, value_enum, default_value = "both")]
    mode: Mode,
    /// Use this broker instead of starting a Tansu broker.
    #[arg(long)]
    brokers: Option<String>,
    /// Throughput mode: events to pre-produce and process.
    #[arg(long, default_value_t = 20_000)]
    events: usize,
    /// Generated rules (plus the broad rule).
    #[arg(long, default_value_t = 1_000)]
    rules: usize,
    /// Don't add the broad rule that fires on every event.
    #[arg(long)]
    no_broad: bool,
    /// Latency mode: events per second.
    #[arg(long, default_value_t = 1_000)]
    rate: u64,
    /// Latency mode: seconds of steady load.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Partitions of the input topic.
    #[arg(long, default_value_t = 3)]
    partitions: u32,
    /// `auto.commit.interval.ms` of the daemon's consumer.
    #[arg(long, default_value_t = 200)]
    commit_interval_ms: u64,
    /// Partitions of the alert topic.
    #[arg(long, default_value_t = 3)]
    alert_partitions: u32,
    /// Tansu storage engine (when loadgen starts the broker). The tests use
    /// `sqlite://tansu.db`; under load its writes take 100 ms and stall for
    /// seconds, which then dominates every number, hence memory by default.
    #[arg(long, default_value = "memory://tansu/")]
    storage: String,
    /// Extra daemon consumer property, `key=value` (repeatable).
    #[arg(long = "consumer-prop")]
    consumer_props: Vec<String>,
    /// Extra daemon producer property, `key=value` (repeatable).
    #[arg(long = "producer-prop")]
    producer_props: Vec<String>,
    /// `linger.ms` of the load producer in latency mode.
    #[arg(long, default_value_t = 0)]
    linger_ms: u64,
    /// `fetch.wait.max.ms` of the latency probes (they should not add latency).
    #[arg(long, default_value_t = 10)]
    probe_fetch_wait_ms: u64,
    /// Print CPU seconds per thread after each phase.
    #[arg(long)]
    threads: bool,
    /// Keep the temp dir (broker data, rules, config) and print its path.
    #[arg(long)]
    keep: bool,
    /// Produce the JSON lines of FILE ("-" = stdin) to `--topic` and exit.
    #[arg(long, value_name = "FILE", requires = "topic")]
    produce: Option<PathBuf>,
    /// Topic for `--produce`.
    #[arg(long)]
    topic: Option<String>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    if let Some(file) = &args.produce {
        let brokers = args
            .brokers
            .clone()
            .context("--produce needs --brokers ADDR")?;
        return produce_file(file, args.topic.as_deref().unwrap_or_default(), &brokers);
    }

    let tmp = tempfile::tempdir()?;
    let (_tmp_guard, base) = if args.keep {
        let p = tmp.keep();
        eprintln!("keeping {}", p.display());
        (None, p)
    } else {
        let p = tmp.path().to_path_buf();
        (Some(tmp), p)
    };
    let mut broker = None;
    let brokers = match &args.brokers {
        Some(b) => b.clone(),
        None => {
            let b = Tansu::start(&base, &args.storage)?;
            let addr = b.addr();
            broker = Some(b);
            addr
        }
    };
    let run_id = format!("{}", now_us() % 1_000_000_000);
    eprintln!(
        "broker: {brokers}{}",
        if broker.is_some() {
            " (tansu, started here)"
        } else {
            ""
        }
    );

    // ---------------------------------------------------------- data and rules
    let t = Instant::now();
    let docs = load_docs()?;
    let rules_dir = base.join("rules");
    std::fs::create_dir_all(&rules_dir)?;
    let n_rules = write_rules(&rules_dir, &docs, args.rules, !args.no_broad)?;
    eprintln!(
        "corpus: {} articles; rules: {} generated{} ({:.1}s)",
        docs.len(),
        n_rules,
        if args.no_broad { "" } else { " + 1 broad" },
        t.elapsed().as_secs_f64()
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut summary = Vec::new();

    if matches!(args.mode, Mode::Throughput | Mode::Both) {
        let s = throughput(
            &args,
            &rt,
            &brokers,
            &run_id,
            &base,
            &rules_dir,
            &docs,
            broker.as_ref(),
        )?;
        print!("{s}");
        summary.push(s);
    }
    if matches!(args.mode, Mode::Latency | Mode::Both) {
        let s = latency(
            &args,
            &rt,
            &brokers,
            &run_id,
            &base,
            &rules_dir,
            &docs,
            broker.as_ref(),
        )?;
        print!("{s}");
        summary.push(s);
    }

    println!();
    println!("==================== newswatch loadgen summary ====================");
    println!(
        "broker {brokers}, {} input partitions, {} rules{}, {} CPUs",
        args.partitions,
        n_rules,
        if args.no_broad {
            ""
        } else {
            " + 1 broad (fires on every event)"
        },
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    for s in summary {
        print!("{s}");
    }
    drop(broker);
    Ok(())
}

// ------------------------------------------------------------------ broker

struct Tansu {
    port: u16,
    dir: PathBuf,
    child: Child,
}

fn tansu_bin() -> PathBuf {
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

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

impl Tansu {
    fn start(base: &Path, storage: &str) -> Result<Tansu> {
        let dir = base.join("tansu");
        std::fs::create_dir_all(&dir)?;
        let port = free_port()?;
        let url = format!("tcp://127.0.0.1:{port}");
        let log = std::fs::File::create(dir.join("tansu.log"))?;
        let child = Command::new(tansu_bin())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
                "--storage-engine",
                storage,
            ])
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", tansu_bin().display()))?;
        let b = Tansu { port, dir, child };
        let t = Instant::now();
        while std::net::TcpStream::connect(b.addr()).is_err() {
            if t.elapsed() > Duration::from_secs(30) {
                bail!("tansu did not start listening");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(b)
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn create_topic(&self, name: &str, partitions: u32) -> Result<()> {
        let out = Command::new(tansu_bin())
            .args([
                "topic",
                "create",
                name,
                "--partitions",
                &partitions.to_string(),
                "--broker",
                &format!("tcp://127.0.0.1:{}", self.port),
            ])
            .current_dir(&self.dir)
            .output()?;
        if !out.status.success() {
            bail!(
                "tansu topic create {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Create topics: with the tansu CLI when we run the broker, else with
/// librdkafka's admin API.
fn create_topics(brokers: &str, tansu: Option<&Tansu>, topics: &[(&str, u32)]) -> Result<()> {
    if let Some(t) = tansu {
        return topics
            .iter()
            .try_for_each(|(name, p)| t.create_topic(name, *p));
    }
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<_> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    let new: Vec<NewTopic> = topics
        .iter()
        .map(|(n, p)| NewTopic::new(n, *p as i32, TopicReplication::Fixed(1)))
        .collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let res = rt.block_on(admin.create_topics(&new, &AdminOptions::new()))?;
    for r in res {
        if let Err((t, e)) = r {
            eprintln!("note: create topic {t}: {e}");
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ corpus

struct Doc {
    lang: &'static str,
    json: serde_json::Map<String, serde_json::Value>,
}

fn load_docs() -> Result<Vec<Doc>> {
    let dir = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/news"));
    let mut files: Vec<(&'static str, PathBuf)> = [
        ("en", "reuters21578-en.jsonl"),
        ("en", "wikinews-en.jsonl"),
        ("ru", "nerel-wikinews-ru.jsonl"),
        ("ko", "wikinews-ko.jsonl"),
        ("ja", "wikinews-ja.jsonl"),
    ]
    .iter()
    .map(|(l, f)| (*l, dir.join(f)))
    .filter(|(_, p)| p.exists())
    .collect();
    if files.is_empty() {
        eprintln!("note: ../shared/data/news not found, using examples/news.jsonl");
        files.push((
            "en",
            PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/news.jsonl")),
        ));
    }
    let mut out = Vec::new();
    for (lang, p) in files {
        let f = std::io::BufReader::new(std::fs::File::open(&p)?);
        for line in f.lines() {
            let line = line?;
            if let Ok(serde_json::Value::Object(json)) = serde_json::from_str(&line) {
                if event::decode(line.as_bytes(), &EventFields::default()).is_ok() {
                    let lang = match json.get("lang").and_then(|v| v.as_str()) {
                        Some("ru") => "ru",
                        Some("ko") => "ko",
                        Some("ja") => "ja",
                        Some("en") => "en",
                        _ => lang,
                    };
                    out.push(Doc { lang, json });
                }
            }
        }
    }
    if out.is_empty() {
        bail!("no usable articles found");
    }
    // Mix languages and sources deterministically.
    let mut rng = Rng(0x5eed_d0c5);
    for i in (1..out.len()).rev() {
        let j = rng.below(i + 1);
        out.swap(i, j);
    }
    Ok(out)
}

/// Event number `seq` as JSON: article `seq % len` with a unique id and the
/// produce time. `now_rfc3339` replaces `published_at` when set.
fn event_json(docs: &[Doc], run: &str, seq: usize, sent_at_us: u64) -> Vec<u8> {
    let d = &docs[seq % docs.len()];
    let mut m = d.json.clone();
    if let Some(orig) = m.insert("id".into(), format!("lg-{run}-{seq}").into()) {
        m.insert("orig_id".into(), orig);
    }
    m.insert("sent_at_us".into(), sent_at_us.into());
    serde_json::to_vec(&m).unwrap_or_default()
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

// ------------------------------------------------------------------ rules

/// Write `n` generated rules (and the shared lists/macros, and the broad
/// rule) as YAML files into `dir`. Returns the number of generated rules.
/// Per language, rule words skip the 200 most frequent words and words in
/// more than 1% of the articles (nobody watches for those).
fn write_rules(dir: &Path, docs: &[Doc], n: usize, broad: bool) -> Result<usize> {
    let texts: Vec<rulegen::DocText> = docs
        .iter()
        .map(|d| {
            let t = |k: &str| d.json.get(k).and_then(|v| v.as_str());
            (d.lang, [t("title"), t("body")])
        })
        .collect();
    let vocab = rulegen::build_vocab(
        &texts,
        &rulegen::VocabParams {
            skip_top: 200,
            zipf_offset: 10.0,
            max_df_permille: 10.0,
        },
    );
    if vocab.is_empty() {
        bail!("no vocabulary for rules");
    }
    let style = rulegen::Style {
        dir: "",
        id_prefix: "lg-",
        title: "Loadgen rule",
        per_file: 0,
        severity_and_labels: true,
        extra_rules: if broad {
            "  - id: lg-broad\n    title: Every article (loadgen)\n    severity: info\n    query: 'source:Reuters OR source:Wikinews OR source:seed'\n    labels: {desk: loadgen}\n"
        } else {
            ""
        },
    };
    for (name, yaml) in rulegen::gen_rules(n, &vocab, &style) {
        std::fs::write(dir.join(name), yaml)?;
    }
    Ok(n)
}

// ------------------------------------------------------------------ daemon

struct Daemon {
    http: String,
    token: CancellationToken,
    handle: tokio::task::JoinHandle<Result<(), newswatch::DaemonError>>,
}

#[allow(clippy::too_many_arguments)]
fn start_daemon(
    args: &Args,
    rt: &tokio::runtime::Runtime,
    brokers: &str,
    base: &Path,
    rules: &Path,
    input: &str,
    alerts: &str,
    dlq: &str,
    group: &str,
) -> Result<Daemon> {
    let http = format!("127.0.0.1:{}", free_port()?);
    let mut consumer_props = format!(
        "\"auto.commit.interval.ms\" = \"{}\"\n",
        args.commit_interval_ms
    );
    // As config/newswatch.toml does for Tansu, which holds every fetch for
    // the full fetch.wait.max.ms (500 ms by default) even when data is there.
    if args.brokers.is_none()
        && !args
            .consumer_props
            .iter()
            .any(|p| p.starts_with("fetch.wait.max.ms="))
    {
        writeln!(consumer_props, "\"fetch.wait.max.ms\" = \"10\"")?;
    }
    for p in &args.consumer_props {
        let (k, v) = p.split_once('=').context("--consumer-prop key=value")?;
        writeln!(consumer_props, "\"{k}\" = \"{v}\"")?;
    }
    let mut producer_props = String::new();
    for p in &args.producer_props {
        let (k, v) = p.split_once('=').context("--producer-prop key=value")?;
        writeln!(producer_props, "\"{k}\" = \"{v}\"")?;
    }
    let path = base.join(format!("newswatch-{group}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"[kafka]
brokers = "{brokers}"
group_id = "{group}"
input_topics = ["{input}"]
alert_topic = "{alerts}"
dlq_topic = "{dlq}"
shutdown_timeout = "10s"

[kafka.consumer_properties]
{consumer_props}
[kafka.producer_properties]
{producer_props}
[rules]
paths = ["{rules}"]
watch = false

[http]
listen = "{http}"
"#,
            rules = rules.display()
        ),
    )?;
    let config = newswatch::Config::load(Some(&path)).map_err(|e| anyhow::anyhow!("{e}"))?;
    let token = CancellationToken::new();
    let handle = rt.spawn(newswatch::run(config, token.clone()));
    Ok(Daemon {
        http,
        token,
        handle,
    })
}

impl Daemon {
    fn stop(self, rt: &tokio::runtime::Runtime) -> Result<()> {
        self.token.cancel();
        rt.block_on(self.handle)?
            .map_err(|e| anyhow::anyhow!("daemon: {e}"))?;
        Ok(())
    }
}

/// GET a path on the daemon's HTTP listener; (status, body).
fn http_get(addr: &str, path: &str) -> (u16, String) {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    );
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    let status = buf
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    let body = buf
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Sum of the samples of metric `name` (any labels).
fn metric(body: &str, name: &str) -> f64 {
    body.lines()
        .filter(|l| {
            l.starts_with(name) && matches!(l.as_bytes().get(name.len()), Some(b' ') | Some(b'{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

// ------------------------------------------------------------------ cpu

/// User+system seconds of a process (or of each of its threads).
fn cpu_seconds(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| parse_stat(&s).map(|(_, c)| c))
        .unwrap_or(0.0)
}

/// (comm, cpu seconds) from a /proc stat line; assumes 100 ticks/s.
fn parse_stat(s: &str) -> Option<(String, f64)> {
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s[open + 1..close].to_owned();
    let f: Vec<&str> = s[close + 2..].split(' ').collect();
    let ut: f64 = f.get(11)?.parse().ok()?;
    let st: f64 = f.get(12)?.parse().ok()?;
    Some((comm, (ut + st) / 100.0))
}

/// CPU seconds per thread name (numbers stripped) of this process.
fn thread_cpu() -> HashMap<String, f64> {
    let mut out = HashMap::new();
    if let Ok(rd) = std::fs::read_dir("/proc/self/task") {
        for e in rd.flatten() {
            if let Ok(s) = std::fs::read_to_string(e.path().join("stat")) {
                if let Some((comm, c)) = parse_stat(&s) {
                    let name: String = comm
                        .trim_end_matches(|ch: char| ch.is_ascii_digit())
                        .to_owned();
                    *out.entry(name).or_default() += c;
                }
            }
        }
    }
    out
}

struct CpuMark {
    at: Instant,
    me: f64,
    tansu: f64,
    threads: HashMap<String, f64>,
}

fn cpu_mark(tansu: Option<u32>) -> CpuMark {
    CpuMark {
        at: Instant::now(),
        me: cpu_seconds("self"),
        tansu: tansu.map_or(0.0, |p| cpu_seconds(&p.to_string())),
        threads: thread_cpu(),
    }
}

/// "loadgen+daemon 1.23 s (85%), tansu 0.80 s (55%)" since `m`.
fn cpu_since(m: &CpuMark, tansu: Option<u32>, show_threads: bool) -> String {
    let wall = m.at.elapsed().as_secs_f64().max(1e-9);
    let me = cpu_seconds("self") - m.me;
    let mut s = format!(
        "loadgen+newswatch {me:.2} s CPU ({:.0}% of a core)",
        me / wall * 100.0
    );
    if let Some(p) = tansu {
        let t = cpu_seconds(&p.to_string()) - m.tansu;
        write!(s, ", tansu {t:.2} s ({:.0}%)", t / wall * 100.0).ok();
    }
    if show_threads {
        let now = thread_cpu();
        let mut v: Vec<(String, f64)> = now
            .into_iter()
            .map(|(k, c)| {
                let d = c - m.threads.get(&k).copied().unwrap_or(0.0);
                (k, d)
            })
            .filter(|(_, d)| *d > 0.005)
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        s.push_str("\n      threads:");
        for (k, d) in v.iter().take(12) {
            write!(s, " {k}={d:.2}s").ok();
        }
    }
    s
}

// ------------------------------------------------------------------ produce

fn load_producer(
    brokers: &str,
    linger_ms: u64,
) -> Result<ThreadedProducer<DefaultProducerContext>> {
    Ok(ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("linger.ms", linger_ms.to_string())
        .set("message.max.bytes", "10000000")
        .set("queue.buffering.max.messages", "1000000")
        .create()?)
}

fn send(p: &ThreadedProducer<DefaultProducerContext>, topic: &str, key: &[u8], payload: &[u8]) {
    let mut rec: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).payload(payload).key(key);
    loop {
        match p.send(rec) {
            Ok(()) => return,
            Err((e, r)) => {
                if !format!("{e}").contains("Queue full") {
                    eprintln!("produce failed: {e}");
                    return;
                }
                rec = r;
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// `--produce FILE --topic T --brokers ADDR`.
fn produce_file(file: &Path, topic: &str, brokers: &str) -> Result<()> {
    let reader: Box<dyn BufRead> = if file == Path::new("-") {
        Box::new(std::io::BufReader::new(std::io::stdin()))
    } else {
        Box::new(std::io::BufReader::new(
            std::fs::File::open(file).with_context(|| file.display().to_string())?,
        ))
    };
    let p = load_producer(brokers, 5)?;
    let t = Instant::now();
    let mut n = 0usize;
    for line in reader.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let mut rec: BaseRecord<'_, (), str> = BaseRecord::to(topic).payload(line.as_str());
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((e, r)) if format!("{e}").contains("Queue full") => {
                    rec = r;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((e, _)) => bail!("produce to {topic}: {e}"),
            }
        }
        n += 1;
    }
    p.flush(Timeout::After(Duration::from_secs(60)))?;
    eprintln!(
        "produced {n} messages to {topic} on {brokers} in {:.2}s",
        t.elapsed().as_secs_f64()
    );
    Ok(())
}

fn end_offsets(brokers: &str, topic: &str, partitions: u32) -> Result<Vec<i64>> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "loadgen-watermarks")
        .create()?;
    (0..partitions as i32)
        .map(|p| Ok(c.fetch_watermarks(topic, p, Duration::from_secs(10))?.1))
        .collect()
}

fn committed(c: &BaseConsumer, topic: &str, partitions: u32) -> Option<Vec<i64>> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        tpl.add_partition(topic, p);
    }
    let got = c.committed_offsets(tpl, Duration::from_secs(5)).ok()?;
    Some(
        (0..partitions as i32)
            .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
                Some(Offset::Offset(o)) => o,
                _ => -1,
            })
            .collect(),
    )
}

// ------------------------------------------------------------------ throughput

#[allow(clippy::too_many_arguments)]
fn throughput(
    args: &Args,
    rt: &tokio::runtime::Runtime,
    brokers: &str,
    run: &str,
    base: &Path,
    rules: &Path,
    docs: &[Doc],
    tansu: Option<&Tansu>,
) -> Result<String> {
    let tansu_pid = tansu.map(Tansu::pid);
    let n = args.events;
    let input = format!("lg-thr-{run}-events");
    let alerts = format!("lg-thr-{run}-alerts");
    let dlq = format!("lg-thr-{run}-dlq");
    create_topics(
        brokers,
        tansu,
        &[
            (&input, args.partitions),
            (&alerts, args.alert_partitions),
            (&dlq, 1),
        ],
    )?;

    // Pre-produce.
    eprintln!("throughput: producing {n} events to {input} ...");
    let cpu = cpu_mark(tansu_pid);
    let p = load_producer(brokers, 5)?;
    let mut bytes = 0usize;
    for seq in 0..n {
        let payload = event_json(docs, run, seq, now_us());
        bytes += payload.len();
        send(&p, &input, format!("k{seq}").as_bytes(), &payload);
    }
    p.flush(Timeout::After(Duration::from_secs(300)))?;
    let produce_s = cpu.at.elapsed().as_secs_f64();
    let produce_cpu = cpu_since(&cpu, tansu_pid, args.threads);
    drop(p);
    let ends = end_offsets(brokers, &input, args.partitions)?;
    let total: i64 = ends.iter().sum();
    if total != n as i64 {
        eprintln!("note: the input topic holds {total} records, expected {n}");
    }
    eprintln!(
        "throughput: produced {n} events ({:.1} MB) in {produce_s:.2}s",
        bytes as f64 / 1e6
    );

    // (a) raw consumer.
    eprintln!("throughput: raw rdkafka consumer ...");
    let cpu = cpu_mark(tansu_pid);
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("lg-raw-{run}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()?;
    c.subscribe(&[&input])?;
    let mut got = 0usize;
    let mut touched = 0u64;
    let mut first = None;
    let deadline = Instant::now() + Duration::from_secs(600);
    while got < n && Instant::now() < deadline {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                if first.is_none() {
                    first = Some(Instant::now());
                }
                let pl = m.payload().unwrap_or_default();
                touched = touched
                    .wrapping_add(pl.len() as u64)
                    .wrapping_add(pl.first().copied().unwrap_or(0) as u64);
                got += 1;
            }
            Some(Err(e)) => eprintln!("raw consumer: {e}"),
            None => {}
        }
    }
    let raw_total = cpu.at.elapsed().as_secs_f64();
    let raw_steady = first.map_or(raw_total, |f| f.elapsed().as_secs_f64());
    let raw_cpu = cpu_since(&cpu, tansu_pid, args.threads);
    drop(c);
    if got < n {
        bail!("raw consumer got only {got} of {n} events");
    }
    std::hint::black_box(touched);

    // (b) newswatch.
    eprintln!("throughput: newswatch ...");
    let group = format!("lg-nw-{run}");
    let cpu = cpu_mark(tansu_pid);
    let d = start_daemon(
        args, rt, brokers, base, rules, &input, &alerts, &dlq, &group,
    )?;
    let mut first = None;
    let mut done_at = None;
    let mut last = String::new();
    let mut last_progress = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(900);
    while Instant::now() < deadline {
        let (status, body) = http_get(&d.http, "/metrics");
        if status == 200 {
            if first.is_none() && metric(&body, "newswatch_events_consumed_total") > 0.0 {
                first = Some(Instant::now());
            }
            let processed = metric(&body, "newswatch_event_processing_seconds_count");
            if last_progress.elapsed() >= Duration::from_secs(1) {
                last_progress = Instant::now();
                eprintln!(
                    "  {:5.1}s consumed {:.0} processed {processed:.0} alerts {:.0}",
                    cpu.at.elapsed().as_secs_f64(),
                    metric(&body, "newswatch_events_consumed_total"),
                    metric(&body, "newswatch_alerts_published_total")
                );
            }
            if processed >= n as f64 {
                done_at = Some(Instant::now());
                last = body;
                break;
            }
            last = body;
        }
        if d.handle.is_finished() {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let Some(done_at) = done_at else {
        let _ = d.stop(rt);
        bail!(
            "newswatch did not finish: processed {} of {n}",
            metric(&last, "newswatch_event_processing_seconds_count")
        );
    };
    let nw_total = done_at.duration_since(cpu.at).as_secs_f64();
    let nw_steady = first.map_or(nw_total, |f| done_at.duration_since(f).as_secs_f64());
    let nw_cpu = cpu_since(&cpu, tansu_pid, args.threads);
    // Committed offsets reach the end (after the next auto-commit).
    let probe: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", &group)
        .create()?;
    let mut committed_at = None;
    let t = Instant::now();
    while t.elapsed() < Duration::from_secs(30) {
        if committed(&probe, &input, args.partitions)
            .is_some_and(|c| c.iter().zip(&ends).all(|(c, e)| c >= e))
        {
            committed_at = Some(Instant::now());
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let (_, body) = http_get(&d.http, "/metrics");
    let alerts_n = metric(&body, "newswatch_alerts_published_total");
    let invalid = metric(&body, "newswatch_events_invalid_total");
    d.stop(rt)?;
    drop(probe);

    let raw_rate = n as f64 / raw_total;
    let nw_rate = n as f64 / nw_total;
    let mut s = String::new();
    writeln!(
        s,
        "\nTHROUGHPUT ({n} events pre-produced, avg {:.1} KB)",
        bytes as f64 / n as f64 / 1e3
    )?;
    writeln!(
        s,
        "  {:<34} {:>10} {:>12} {:>14}",
        "", "wall s", "events/s", "steady ev/s"
    )?;
    writeln!(
        s,
        "  {:<34} {:>10.2} {:>12.0} {:>14}",
        "produce (loadgen, linger 5ms)",
        produce_s,
        n as f64 / produce_s,
        "-"
    )?;
    writeln!(
        s,
        "  {:<34} {:>10.2} {:>12.0} {:>14.0}",
        "raw rdkafka consumer",
        raw_total,
        raw_rate,
        n as f64 / raw_steady
    )?;
    writeln!(
        s,
        "  {:<34} {:>10.2} {:>12.0} {:>14.0}",
        "newswatch (all alerts acked)",
        nw_total,
        nw_rate,
        n as f64 / nw_steady
    )?;
    if let Some(c) = committed_at {
        writeln!(
            s,
            "  {:<34} {:>10.2} {:>12.0} {:>14}",
            format!(
                "newswatch (offsets committed, {}ms)",
                args.commit_interval_ms
            ),
            c.duration_since(cpu.at).as_secs_f64(),
            n as f64 / c.duration_since(cpu.at).as_secs_f64(),
            "-"
        )?;
    } else {
        writeln!(
            s,
            "  newswatch: committed offsets did not reach the end within 30 s"
        )?;
    }
    let ratio = nw_rate / raw_rate;
    writeln!(
        s,
        "  ratio newswatch/raw: {:.0}% (steady {:.0}%)  target >= 80%: {}",
        ratio * 100.0,
        (raw_steady / nw_steady) * 100.0,
        if ratio >= 0.8 { "MET" } else { "MISSED" }
    )?;
    writeln!(
        s,
        "  alerts published: {alerts_n:.0} ({:.2}/event), invalid events: {invalid:.0}",
        alerts_n / n as f64
    )?;
    writeln!(s, "  CPU produce:   {produce_cpu}")?;
    writeln!(s, "  CPU raw:       {raw_cpu}")?;
    writeln!(s, "  CPU newswatch: {nw_cpu}")?;
    Ok(s)
}

// ------------------------------------------------------------------ latency

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// A consumer thread that records, for every message whose JSON carries an
/// id `lg-<run>-<seq>` (at `/event/id` for alerts, `/id` for events), the
/// time since `sent[seq]` (ns since `base`).
#[allow(clippy::too_many_arguments)]
fn probe(
    brokers: &str,
    topic: &str,
    fetch_wait_ms: u64,
    alerts: bool,
    run: String,
    sent: Arc<Vec<AtomicU64>>,
    base: Instant,
    stop: Arc<AtomicBool>,
    ready: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<Vec<(usize, f64)>>> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("lg-probe-{topic}"))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", fetch_wait_ms.to_string())
        .create()?;
    c.subscribe(&[topic])?;
    let prefix = format!("lg-{run}-");
    let topic = topic.to_owned();
    Ok(std::thread::spawn(move || {
        let mut out = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            match c.poll(Duration::from_millis(50)) {
                Some(Ok(m)) => {
                    let now = base.elapsed().as_nanos() as u64;
                    let Some(v) = m
                        .payload()
                        .and_then(|p| serde_json::from_slice::<serde_json::Value>(p).ok())
                    else {
                        continue;
                    };
                    let id = if alerts {
                        v.pointer("/event/id")
                    } else {
                        v.pointer("/id")
                    };
                    let Some(seq) = id
                        .and_then(|x| x.as_str())
                        .and_then(|x| x.strip_prefix(prefix.as_str()))
                        .and_then(|x| x.parse::<usize>().ok())
                    else {
                        continue;
                    };
                    if let Some(t) = sent.get(seq).map(|a| a.load(Ordering::Relaxed)) {
                        if t > 0 {
                            out.push((seq, now.saturating_sub(t) as f64 / 1e6));
                        }
                    }
                }
                Some(Err(e)) => eprintln!("probe {topic}: {e}"),
                None => {}
            }
            if !ready.load(Ordering::Relaxed)
                && !c.assignment().map(|a| a.count() == 0).unwrap_or(true)
            {
                ready.store(true, Ordering::Relaxed);
            }
        }
        out
    }))
}

fn lat_row(name: &str, mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "  {:<30} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>9.1}\n",
        name,
        v.len(),
        percentile(&v, 0.5),
        percentile(&v, 0.99),
        percentile(&v, 0.999),
        v.last().copied().unwrap_or(f64::NAN)
    )
}

#[allow(clippy::too_many_arguments)]
fn latency(
    args: &Args,
    rt: &tokio::runtime::Runtime,
    brokers: &str,
    run: &str,
    base_dir: &Path,
    rules: &Path,
    docs: &[Doc],
    tansu: Option<&Tansu>,
) -> Result<String> {
    let tansu_pid = tansu.map(Tansu::pid);
    let n = (args.rate * args.seconds) as usize;
    let input = format!("lg-lat-{run}-events");
    let alerts = format!("lg-lat-{run}-alerts");
    let dlq = format!("lg-lat-{run}-dlq");
    create_topics(
        brokers,
        tansu,
        &[
            (&input, args.partitions),
            (&alerts, args.alert_partitions),
            (&dlq, 1),
        ],
    )?;
    let group = format!("lg-nw-lat-{run}");
    let d = start_daemon(
        args, rt, brokers, base_dir, rules, &input, &alerts, &dlq, &group,
    )?;
    let sent: Arc<Vec<AtomicU64>> = Arc::new((0..n).map(|_| AtomicU64::new(0)).collect());
    let base = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let ready_a = Arc::new(AtomicBool::new(false));
    let ready_i = Arc::new(AtomicBool::new(false));
    let pa = probe(
        brokers,
        &alerts,
        args.probe_fetch_wait_ms,
        true,
        run.into(),
        sent.clone(),
        base,
        stop.clone(),
        ready_a.clone(),
    )?;
    let pi = probe(
        brokers,
        &input,
        args.probe_fetch_wait_ms,
        false,
        run.into(),
        sent.clone(),
        base,
        stop.clone(),
        ready_i.clone(),
    )?;
    // Wait for the daemon to join its group and the probes to be assigned.
    let t = Instant::now();
    while !(http_get(&d.http, "/readyz").0 == 200
        && ready_a.load(Ordering::Relaxed)
        && ready_i.load(Ordering::Relaxed))
    {
        if t.elapsed() > Duration::from_secs(60) {
            stop.store(true, Ordering::Relaxed);
            let _ = d.stop(rt);
            bail!("daemon or probes not ready after 60 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "latency: ready after {:.1}s; producing {} events/s for {} s ...",
        t.elapsed().as_secs_f64(),
        args.rate,
        args.seconds
    );
    // A moment for the fetchers to settle on their positions.
    std::thread::sleep(Duration::from_millis(500));

    let (_, before) = http_get(&d.http, "/metrics");
    let cpu = cpu_mark(tansu_pid);
    let p = load_producer(brokers, args.linger_ms)?;
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let start = Instant::now();
    let mut behind_max = Duration::ZERO;
    for seq in 0..n {
        let due = start + interval * seq as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        } else {
            behind_max = behind_max.max(now - due);
        }
        let payload = event_json(docs, run, seq, now_us());
        sent[seq].store(base.elapsed().as_nanos() as u64, Ordering::Relaxed);
        send(&p, &input, format!("k{seq}").as_bytes(), &payload);
    }
    let send_s = start.elapsed().as_secs_f64();
    if let Err(e) = p.flush(Timeout::After(Duration::from_secs(60))) {
        eprintln!("latency: load producer flush: {e}");
    }
    // Wait for the daemon to finish everything produced.
    let t = Instant::now();
    let target = metric(&before, "newswatch_event_processing_seconds_count") + n as f64;
    while t.elapsed() < Duration::from_secs(30) {
        let (_, b) = http_get(&d.http, "/metrics");
        if metric(&b, "newswatch_event_processing_seconds_count") >= target {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let cpu_s = cpu_since(&cpu, tansu_pid, args.threads);
    // The probe's last fetches.
    std::thread::sleep(Duration::from_millis(1000));
    stop.store(true, Ordering::Relaxed);
    let alert_lat = pa.join().map_err(|_| anyhow::anyhow!("probe panicked"))?;
    let input_lat = pi.join().map_err(|_| anyhow::anyhow!("probe panicked"))?;
    let (_, after) = http_get(&d.http, "/metrics");
    d.stop(rt)?;

    let alerts_n = alert_lat.len();
    let mut first_alert: HashMap<usize, f64> = HashMap::new();
    for (seq, l) in &alert_lat {
        let e = first_alert.entry(*seq).or_insert(*l);
        *e = e.min(*l);
    }
    let events_with_alert = first_alert.len();
    let all: Vec<f64> = alert_lat.iter().map(|x| x.1).collect();
    let mut sorted = all.clone();
    sorted.sort_by(f64::total_cmp);
    let p99 = percentile(&sorted, 0.99);
    let proc_sum = metric(&after, "newswatch_event_processing_seconds_sum")
        - metric(&before, "newswatch_event_processing_seconds_sum");
    let proc_n = metric(&after, "newswatch_event_processing_seconds_count")
        - metric(&before, "newswatch_event_processing_seconds_count");
    let match_sum = metric(&after, "newswatch_match_seconds_sum")
        - metric(&before, "newswatch_match_seconds_sum");

    let mut s = String::new();
    writeln!(
        s,
        "\nLATENCY ({} events/s for {} s = {n} events; sent in {send_s:.2}s, producer at most {:.1} ms behind schedule; load producer linger.ms={}, probes fetch.wait.max.ms={})",
        args.rate, args.seconds, behind_max.as_secs_f64() * 1e3, args.linger_ms, args.probe_fetch_wait_ms
    )?;
    writeln!(
        s,
        "  {:<30} {:>8} {:>9} {:>9} {:>9} {:>9}",
        "ms", "samples", "p50", "p99", "p99.9", "max"
    )?;
    s.push_str(&lat_row("produce -> alert received", all));
    s.push_str(&lat_row(
        "produce -> first alert/event",
        first_alert.values().copied().collect(),
    ));
    s.push_str(&lat_row(
        "produce -> input consumable",
        input_lat.iter().map(|x| x.1).collect(),
    ));
    writeln!(
        s,
        "  daemon: consume -> alerts acked mean {:.1} ms, match mean {:.3} ms ({proc_n:.0} events)",
        proc_sum / proc_n.max(1.0) * 1e3,
        match_sum / proc_n.max(1.0) * 1e3
    )?;
    writeln!(
        s,
        "  alerts received: {alerts_n} ({:.2}/event), events with an alert: {events_with_alert} of {n}",
        alerts_n as f64 / n as f64
    )?;
    writeln!(
        s,
        "  p99 produce->alert {p99:.1} ms, target <= 50 ms: {}",
        if p99 <= 50.0 { "MET" } else { "MISSED" }
    )?;
    writeln!(s, "  CPU: {cpu_s}")?;
    Ok(s)
}
