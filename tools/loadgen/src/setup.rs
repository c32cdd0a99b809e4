//! Phase 1: what every measurement runs on. The broker (a Tansu of its own,
//! or `--brokers`), the run's directory, the corpus and the generated rules,
//! gathered in a [`Session`]; and each measurement's topics ([`Topics`]).

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use newswatch_core::event::{self, EventFields};
use newswatch_testkit::corpus::Corpus;
use newswatch_testkit::rulegen::{self, Rng};
use newswatch_testkit::Broker;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::config::ClientConfig;

use crate::{Args, BroadMode};

/// One article of the corpus, as JSON, and its language.
pub struct Doc {
    pub lang: &'static str,
    pub json: serde_json::Map<String, serde_json::Value>,
}

/// Everything the measurements share.
pub struct Session<'a> {
    pub args: &'a Args,
    /// Runs the in-process daemon.
    pub rt: tokio::runtime::Runtime,
    /// `bootstrap.servers`.
    pub brokers: String,
    /// The broker this run started (none with `--brokers`).
    pub broker: Option<Broker>,
    /// Part of every topic, group and event id, so runs never mix.
    pub run: String,
    /// The run's directory: broker data, rules, daemon configs.
    pub base: PathBuf,
    /// Removes `base` when dropped (none with `--keep`). Declared after
    /// `broker`, so the broker stops before its directory goes.
    _tmp: Option<tempfile::TempDir>,
    pub rules_dir: PathBuf,
    /// Generated rules, without the broad one.
    pub n_rules: usize,
    /// Shuffled articles; event `seq` is `docs[seq % len]`.
    pub docs: Vec<Doc>,
}

impl<'a> Session<'a> {
    /// The broker, the corpus and the rules.
    pub fn start(args: &'a Args) -> Result<Session<'a>> {
        let tmp = tempfile::tempdir()?;
        let (tmp, base) = if args.keep {
            let p = tmp.keep();
            eprintln!("keeping {}", p.display());
            (None, p)
        } else {
            let p = tmp.path().to_path_buf();
            (Some(tmp), p)
        };
        let broker = match &args.brokers {
            Some(_) => None,
            None => Some(Broker::launch(Some(&base.join("tansu")), &args.storage)?),
        };
        let brokers = match (&broker, &args.brokers) {
            (Some(b), _) => b.addr(),
            (None, b) => b.clone().unwrap_or_default(),
        };
        eprintln!(
            "broker: {brokers}{}",
            if broker.is_some() {
                " (tansu, started here)"
            } else {
                ""
            }
        );
        let t = Instant::now();
        let docs = load_docs(args.corpus.as_deref())?;
        let rules_dir = base.join("rules");
        std::fs::create_dir_all(&rules_dir)?;
        let broad = (!args.no_broad).then_some(args.broad_mode);
        let n_rules = write_rules(&rules_dir, &docs, args.rules, broad)?;
        eprintln!(
            "corpus: {} articles; rules: {} generated{} ({:.1}s)",
            docs.len(),
            n_rules,
            broad.map_or(String::new(), |m| format!(" + 1 broad ({})", m.as_str())),
            t.elapsed().as_secs_f64()
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        Ok(Session {
            args,
            rt,
            brokers,
            broker,
            run: format!("{}", crate::produce::now_us() % 1_000_000_000),
            base,
            _tmp: tmp,
            rules_dir,
            n_rules,
            docs,
        })
    }

    /// The Tansu process, for CPU accounting.
    pub fn tansu_pid(&self) -> Option<u32> {
        self.broker.as_ref().map(Broker::pid)
    }

    /// Create `topics` (name, partitions): with the Tansu CLI when this run
    /// started the broker, else with librdkafka's admin API (an existing
    /// topic is a note, not an error).
    pub fn create_topics(&self, topics: &[(&str, u32)]) -> Result<()> {
        if let Some(b) = &self.broker {
            for (name, p) in topics {
                b.try_create_topic(name, *p)?;
            }
            return Ok(());
        }
        let admin: AdminClient<_> = ClientConfig::new()
            .set("bootstrap.servers", &self.brokers)
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
}

/// One measurement's topics: input, alerts, dead letters.
pub struct Topics {
    pub input: String,
    pub alerts: String,
    pub dlq: String,
}

impl Topics {
    /// `lg-{what}-{run}-…`, created with the configured partitions.
    pub fn create(s: &Session<'_>, what: &str) -> Result<Topics> {
        let t = Topics {
            input: format!("lg-{what}-{}-events", s.run),
            alerts: format!("lg-{what}-{}-alerts", s.run),
            dlq: format!("lg-{what}-{}-dlq", s.run),
        };
        s.create_topics(&[
            (&t.input, s.args.partitions),
            (&t.alerts, s.args.alert_partitions),
            (&t.dlq, 1),
        ])?;
        Ok(t)
    }
}

/// The corpus's articles that decode as events, languages and sources mixed
/// deterministically. A record's own `lang` field wins over its file's.
fn load_docs(dir: Option<&Path>) -> Result<Vec<Doc>> {
    let corpus = Corpus::locate(dir)?;
    eprintln!("corpus: {}", corpus.origin);
    let mut out = Vec::new();
    for f in &corpus.files {
        for line in f.lines()? {
            let Ok(serde_json::Value::Object(json)) = serde_json::from_str(&line) else {
                continue;
            };
            if event::decode(line.as_bytes(), &EventFields::default()).is_err() {
                continue;
            }
            let lang = match json.get("lang").and_then(|v| v.as_str()) {
                Some("ru") => "ru",
                Some("ko") => "ko",
                Some("ja") => "ja",
                Some("en") => "en",
                _ => f.lang,
            };
            out.push(Doc { lang, json });
        }
    }
    if out.is_empty() {
        bail!("no usable articles found");
    }
    let mut rng = Rng(0x5eed_d0c5);
    for i in (1..out.len()).rev() {
        let j = rng.below(i + 1);
        out.swap(i, j);
    }
    Ok(out)
}

/// The id of the broad rule, which the latency probe picks out.
pub const BROAD_RULE: &str = "lg-broad";

/// The broad rule's YAML: it matches every event (every corpus article
/// has one of these sources); `first_seen` makes it stateful, an alert per
/// story, so stage two decides it.
fn broad_rule(mode: BroadMode) -> &'static str {
    macro_rules! broad {
        ($alert:literal) => {
            concat!(
                "  - id: lg-broad\n",
                "    title: Every article (loadgen)\n",
                "    severity: info\n",
                "    query: 'source:Reuters OR source:Wikinews OR source:seed'\n",
                "    labels: {desk: loadgen}\n",
                $alert
            )
        };
    }
    match mode {
        BroadMode::Each => broad!(""),
        BroadMode::FirstSeen => broad!("    alert: {mode: first_seen, window: 24h}\n"),
    }
}

/// Write `n` generated rules (and the shared lists/macros, and the broad
/// rule in its mode, if any) as YAML files into `dir`. Returns the number
/// of generated rules. Per language, rule words skip the 200 most frequent
/// words and words in more than 1% of the articles (nobody watches for
/// those).
fn write_rules(dir: &Path, docs: &[Doc], n: usize, broad: Option<BroadMode>) -> Result<usize> {
    let texts: Vec<rulegen::DocText> = docs
        .iter()
        .map(|d| {
            let t = |k: &str| d.json.get(k).and_then(|v| v.as_str());
            (d.lang, [t("title"), t("body")])
        })
        .collect();
    let vocab = rulegen::build_vocab(&texts, &rulegen::VocabParams::BENCH);
    if vocab.is_empty() {
        bail!("no vocabulary for rules");
    }
    let style = rulegen::Style {
        dir: "",
        id_prefix: "lg-",
        title: "Loadgen rule",
        per_file: 0,
        severity_and_labels: true,
        extra_rules: broad.map_or("", broad_rule),
    };
    for (name, yaml) in rulegen::gen_rules(n, &vocab, &style) {
        let path = dir.join(name);
        std::fs::write(&path, yaml).with_context(|| path.display().to_string())?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use newswatch_core::rules::{self, AlertMode};

    #[test]
    fn broad_rule_in_each_mode() {
        let day = std::time::Duration::from_secs(24 * 3600);
        let check = |mode: BroadMode, first_seen_window: Option<std::time::Duration>| {
            let yaml = format!("rules:\n{}", broad_rule(mode));
            let set = rules::load_strs(vec![("broad.yaml".into(), yaml)])
                .unwrap_or_else(|e| panic!("{mode:?}: {e}"));
            let [rule] = &set.rules[..] else {
                panic!("{mode:?}: {} rules", set.rules.len());
            };
            assert_eq!(rule.id, BROAD_RULE, "{mode:?}");
            let window = match rule.mode {
                AlertMode::FirstSeen { window, .. } => Some(window),
                AlertMode::Each => None,
                AlertMode::Threshold { .. } | AlertMode::Spike { .. } => {
                    panic!("{mode:?}: {}", rule.mode.name())
                }
            };
            assert_eq!(window, first_seen_window, "{mode:?}");
            assert!(rule.throttle.is_none(), "{mode:?}");
        };
        check(BroadMode::Each, None);
        check(BroadMode::FirstSeen, Some(day));
    }
}
