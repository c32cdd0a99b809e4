//! A rule and its keys (SPEC §4, §6): the [`Rule`] type with its
//! [`Severity`] and [`AlertMode`], and the validation of each key of a rule
//! mapping. Queries are only kept here; they are compiled by the loader
//! once every list and macro is known.

use std::collections::btree_map::Entry;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::loader::{Keys, Loader, RawRule};
use super::yaml::{Kind, Node, Style};
use crate::lang::compile::SrcId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return None,
        })
    }
}

/// How a rule turns matches into alerts (SPEC §6).
#[derive(Debug, Clone, PartialEq)]
pub enum AlertMode {
    Each,
    FirstSeen {
        window: Duration,
        similarity: Option<f64>,
    },
    Threshold {
        count: u64,
        window: Duration,
        distinct: Option<String>,
    },
    /// `spike` (see `crate::state::spike`): `baseline` is a multiple of
    /// `window` and longer than it, at most [`MAX_BASELINE_WINDOWS`] of them.
    Spike {
        window: Duration,
        baseline: Duration,
        ratio: f64,
        min_count: u64,
    },
}

impl AlertMode {
    pub fn name(&self) -> &'static str {
        match self {
            AlertMode::Each => "each",
            AlertMode::FirstSeen { .. } => "first_seen",
            AlertMode::Threshold { .. } => "threshold",
            AlertMode::Spike { .. } => "spike",
        }
    }
}

/// `digest: {every, max_items, grace}` (SPEC §4, §6): the rule publishes
/// one digest per group and period instead of single alerts
/// (`crate::state::digest`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DigestSpec {
    /// The period, a divisor of a day; periods are aligned to UTC.
    pub every: Duration,
    /// Items listed per digest, 1..=[`MAX_DIGEST_ITEMS`]; the rest are counted.
    pub max_items: usize,
    /// How long past a period's end, on the wall clock and with no later
    /// event, `run` waits before it closes the period.
    pub grace: Duration,
}

/// The most items a digest lists. With each item cut to
/// `state::digest::MAX_ITEM_BYTES` (8 KiB) and the rule and group at most
/// an alert's 64 KiB, a digest stays under 1 MiB (Kafka's default
/// `max.message.bytes`).
pub const MAX_DIGEST_ITEMS: usize = 100;
/// `max_items` when not given.
pub const DEFAULT_DIGEST_ITEMS: usize = 20;
/// `grace` when not given.
pub const DEFAULT_DIGEST_GRACE: Duration = Duration::from_secs(300);
const DIGEST_KEYS: &[&str] = &["every", "max_items", "grace"];
const DAY_SECS: u64 = 24 * 3600;

/// A validated rule. Its index in [`super::RuleSet::rules`] is its index in the matcher.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    pub severity: Severity,
    pub labels: BTreeMap<String, String>,
    pub topic: Option<String>,
    pub group_by: Vec<String>,
    pub throttle: Option<Duration>,
    pub mode: AlertMode,
    /// Publish digests instead of single alerts.
    pub digest: Option<DigestSpec>,
    pub query: String,
    pub filter: Option<String>,
    pub query_src: SrcId,
    pub filter_src: Option<SrcId>,
    pub file: PathBuf,
    pub line: usize,
}

/// A field name for `group_by` and `distinct`: a decoded field (`source`)
/// or a dotted path into the event JSON (`meta.desk`).
pub fn is_field_name(s: &str) -> bool {
    !s.is_empty()
        && s.split('.').all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
        })
}

pub fn is_valid_rule_id(s: &str) -> bool {
    let mut c = s.chars();
    matches!(c.next(), Some(x) if x.is_ascii_lowercase() || x.is_ascii_digit())
        && c.all(|x| x.is_ascii_lowercase() || x.is_ascii_digit() || matches!(x, '.' | '_' | '-'))
}

pub fn is_valid_topic(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 249
        && s != "."
        && s != ".."
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

const RULE_KEYS: &[&str] = &[
    "id",
    "title",
    "description",
    "severity",
    "query",
    "filter",
    "labels",
    "topic",
    "enabled",
    "group_by",
    "throttle",
    "alert",
    "digest",
];

/// The largest threshold `count`: a group's hits must fit in one state
/// record of at most 64 KiB (`state::MAX_RECORD_BYTES`), about 900 hits
/// with 40-byte event ids.
pub const MAX_THRESHOLD_COUNT: u64 = 500;

const ALERT_KEYS: &[&str] = &[
    "mode",
    "window",
    "similarity",
    "count",
    "distinct",
    "baseline",
    "ratio",
    "min_count",
];

/// `first_seen` without a `window`.
const DEFAULT_FIRST_SEEN_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// `threshold` without a `window` (already an error; keeps checking going).
const DEFAULT_THRESHOLD_WINDOW: Duration = Duration::from_secs(3600);
/// `spike` defaults (SPEC §6).
const DEFAULT_SPIKE_WINDOW: Duration = Duration::from_secs(3600);
const DEFAULT_SPIKE_BASELINE: Duration = Duration::from_secs(7 * 24 * 3600);
const DEFAULT_SPIKE_RATIO: f64 = 3.0;
const DEFAULT_SPIKE_MIN_COUNT: u64 = 5;
/// A spike's baseline is at most this many windows: its state keeps one
/// count per bucket, at least one bucket per window, and stays small
/// (see `crate::state::spike`).
pub const MAX_BASELINE_WINDOWS: u64 = 2_047;

impl Loader {
    /// Validate one rule's keys and values (queries are compiled later).
    /// `None` only when the rule is not even a mapping.
    pub(super) fn rule<'n>(&mut self, file: usize, node: &'n Node) -> Option<RawRule<'n>> {
        if !matches!(node.kind, Kind::Map(_)) {
            self.diag(
                file,
                node.pos,
                format!("a rule must be a mapping, got {}", node.describe()),
            );
            return None;
        }
        let keys = self.keys(file, node, "rule", RULE_KEYS);
        let errors_before = self.error_count();
        let id = self.rule_id(&keys);
        let name = if id.is_empty() {
            "rule".to_owned()
        } else {
            format!("rule `{id}`")
        };
        let title = self
            .required(&keys, "title", &name)
            .and_then(|n| self.title(file, n));
        let description = keys
            .get("description")
            .and_then(|n| self.string(file, n, "`description`"));
        let severity = keys
            .get("severity")
            .map_or(Severity::Medium, |n| self.severity(file, n));
        let query = self
            .required(&keys, "query", &name)
            .filter(|n| self.string(file, n, "`query`").is_some());
        let filter = keys
            .get("filter")
            .filter(|n| self.string(file, n, "`filter`").is_some());
        let labels = keys
            .get("labels")
            .map(|n| self.labels(file, n))
            .unwrap_or_default();
        let topic = keys.get("topic").and_then(|n| self.topic(file, n));
        if let Some(n) = keys.get("enabled") {
            self.check_enabled(file, n);
        }
        let group_by = keys
            .get("group_by")
            .map(|n| self.group_by(file, n))
            .unwrap_or_default();
        let throttle = keys
            .get("throttle")
            .and_then(|n| self.duration(file, n, "`throttle`"));
        let mode = keys
            .get("alert")
            .map_or(AlertMode::Each, |n| self.alert(file, n));
        let digest = keys.get("digest").and_then(|n| self.digest(file, n));

        let valid = self.error_count() == errors_before;
        let rule = valid.then(|| Rule {
            id: id.clone(),
            title: title.unwrap_or_default(),
            description,
            severity,
            labels,
            topic,
            group_by,
            throttle,
            mode,
            digest,
            query: query.and_then(Node::as_scalar).unwrap_or("").to_owned(),
            filter: filter.and_then(Node::as_scalar).map(str::to_owned),
            query_src: SrcId::default(),
            filter_src: None,
            file: self.path(file).to_path_buf(),
            line: node.pos.line,
        });
        Some(RawRule {
            file,
            node,
            id,
            query,
            filter,
            rule,
        })
    }

    /// A required key; its absence is reported at the rule.
    fn required<'n>(&mut self, keys: &Keys<'n>, key: &str, rule_name: &str) -> Option<&'n Node> {
        let node = keys.get(key);
        if node.is_none() {
            let message = format!("{rule_name} is missing required key `{key}`");
            self.diag(keys.file, keys.node.pos, message);
        }
        node
    }

    /// The rule's id, or empty when it is missing or invalid.
    fn rule_id(&mut self, keys: &Keys<'_>) -> String {
        let file = keys.file;
        let Some(n) = self.required(keys, "id", "rule") else {
            return String::new();
        };
        let Some(id) = self.string(file, n, "`id`") else {
            return String::new();
        };
        if !is_valid_rule_id(&id) {
            let message = format!("bad rule id {id:?}: it must match [a-z0-9][a-z0-9._-]*");
            self.diag(file, n.pos, message);
            return String::new();
        }
        id
    }

    fn title(&mut self, file: usize, node: &Node) -> Option<String> {
        let title = self.string(file, node, "`title`")?;
        if title.trim().is_empty() {
            self.diag(file, node.pos, "`title` must not be empty");
            return None;
        }
        Some(title)
    }

    fn severity(&mut self, file: usize, node: &Node) -> Severity {
        if let Some(s) = node.as_scalar().and_then(Severity::parse) {
            return s;
        }
        let got = match node.as_scalar() {
            Some(s) => format!("{s:?}"),
            None => node.describe().to_owned(),
        };
        let message =
            format!("bad severity {got}: expected one of info, low, medium, high, critical");
        self.diag(file, node.pos, message);
        Severity::Medium
    }

    fn labels(&mut self, file: usize, node: &Node) -> BTreeMap<String, String> {
        let mut labels = BTreeMap::new();
        let Kind::Map(pairs) = &node.kind else {
            if !node.is_null() {
                let message = format!("`labels` must be a mapping, got {}", node.describe());
                self.diag(file, node.pos, message);
            }
            return labels;
        };
        for (k, v) in pairs {
            let key = k.as_scalar().unwrap_or("").to_owned();
            if key.is_empty() {
                self.diag(file, k.pos, "label names must not be empty");
                continue;
            }
            let Entry::Vacant(slot) = labels.entry(key.clone()) else {
                self.diag(file, k.pos, format!("duplicate label `{key}`"));
                continue;
            };
            if let Some(val) = self.string(file, v, &format!("label `{key}`")) {
                slot.insert(val);
            }
        }
        labels
    }

    fn topic(&mut self, file: usize, node: &Node) -> Option<String> {
        let topic = self.string(file, node, "`topic`")?;
        if !is_valid_topic(&topic) {
            let message = format!("bad topic name {topic:?}: Kafka topics use letters, digits, '.', '_' and '-' (at most 249)");
            self.diag(file, node.pos, message);
            return None;
        }
        Some(topic)
    }

    /// `enabled` is read by the loader; here it is only checked.
    fn check_enabled(&mut self, file: usize, node: &Node) {
        if !matches!(node.as_scalar(), Some("true" | "false"))
            || !matches!(node.kind, Kind::Scalar(_, Style::Plain))
        {
            self.diag(file, node.pos, "`enabled` must be true or false");
        }
    }

    fn group_by(&mut self, file: usize, node: &Node) -> Vec<String> {
        let mut group_by = Vec::new();
        match &node.kind {
            Kind::Seq(items) => {
                for it in items {
                    let Some(s) = self.string(file, it, "a `group_by` field") else {
                        continue;
                    };
                    if !is_field_name(&s) {
                        let message = format!("bad `group_by` field {s:?}: expected a field name such as source, lang or a.b");
                        self.diag(file, it.pos, message);
                    } else if group_by.contains(&s) {
                        self.diag(file, it.pos, format!("`group_by` lists {s:?} twice"));
                    } else {
                        group_by.push(s);
                    }
                }
            }
            Kind::Scalar(..) if !node.is_null() => {
                group_by.push(node.as_scalar().unwrap_or("").to_owned())
            }
            _ => self.diag(file, node.pos, "`group_by` must be a list of field names"),
        }
        group_by
    }

    /// The `alert` mapping: a mode and the keys that apply to it.
    fn alert(&mut self, file: usize, node: &Node) -> AlertMode {
        let keys = self.keys(file, node, "`alert`", ALERT_KEYS);
        let mode_node = keys.get("mode");
        let mode = mode_node.and_then(|n| n.as_scalar()).unwrap_or("each");
        let allowed: &[&str] = match mode {
            "each" => &["mode"],
            "first_seen" => &["mode", "window", "similarity"],
            "threshold" => &["mode", "window", "count", "distinct"],
            "spike" => &["mode", "window", "baseline", "ratio", "min_count"],
            other => {
                let pos = mode_node.map_or(node.pos, |n| n.pos);
                let message = format!(
                    "bad alert mode {other:?}: expected each, first_seen, threshold or spike"
                );
                self.diag(file, pos, message);
                return AlertMode::Each;
            }
        };
        for (k, v) in &keys.fields {
            if !allowed.contains(k) {
                let message = format!("`{k}` does not apply to alert mode `{mode}`");
                self.diag(file, v.pos, message);
            }
        }
        let window = keys
            .get("window")
            .and_then(|n| self.duration(file, n, "`window`"));
        match mode {
            "first_seen" => AlertMode::FirstSeen {
                window: window.unwrap_or(DEFAULT_FIRST_SEEN_WINDOW),
                similarity: keys
                    .get("similarity")
                    .and_then(|n| self.similarity(file, n)),
            },
            "threshold" => self.threshold(&keys, window),
            "spike" => self.spike(&keys, window),
            _ => AlertMode::Each,
        }
    }

    /// `digest: {every, max_items, grace}`: `every` is required and must
    /// divide a day, so that periods align to UTC midnight.
    fn digest(&mut self, file: usize, node: &Node) -> Option<DigestSpec> {
        let keys = self.keys(file, node, "`digest`", DIGEST_KEYS);
        if !matches!(node.kind, Kind::Map(_)) {
            return None;
        }
        let every = match keys.get("every") {
            None => {
                self.diag(file, node.pos, "`digest` needs `every` (e.g. 1h)");
                None
            }
            Some(n) => self.duration(file, n, "`every`").and_then(|d| {
                let whole = d.subsec_nanos() == 0 && d.as_secs() >= 60;
                if whole && DAY_SECS % d.as_secs() == 0 {
                    return Some(d);
                }
                let message = "`every` must divide a day into whole periods of at least a minute (e.g. 5m, 15m, 1h, 6h, 1d)";
                self.diag(file, n.pos, message);
                None
            }),
        };
        let max_items = match keys.get("max_items") {
            None => Some(DEFAULT_DIGEST_ITEMS),
            Some(n) => match n.as_scalar().and_then(|s| s.parse::<usize>().ok()) {
                Some(m) if (1..=MAX_DIGEST_ITEMS).contains(&m) => Some(m),
                _ => {
                    let message =
                        format!("`max_items` must be a whole number from 1 to {MAX_DIGEST_ITEMS}");
                    self.diag(file, n.pos, message);
                    None
                }
            },
        };
        let grace = match keys.get("grace") {
            None => Some(DEFAULT_DIGEST_GRACE),
            Some(n) => self.duration(file, n, "`grace`"),
        };
        Some(DigestSpec {
            every: every?,
            max_items: max_items?,
            grace: grace?,
        })
    }

    fn similarity(&mut self, file: usize, node: &Node) -> Option<f64> {
        match node.as_scalar().and_then(|s| s.parse::<f64>().ok()) {
            Some(x) if (0.0..=1.0).contains(&x) => Some(x),
            _ => {
                self.diag(file, node.pos, "`similarity` must be a number from 0 to 1");
                None
            }
        }
    }

    /// `threshold`: `count` and `window` are required.
    fn threshold(&mut self, keys: &Keys<'_>, window: Option<Duration>) -> AlertMode {
        let file = keys.file;
        let count = match keys.get("count") {
            None => {
                self.diag(file, keys.node.pos, "alert mode `threshold` needs `count`");
                1
            }
            Some(n) => match n.as_scalar().and_then(|s| s.parse::<u64>().ok()) {
                Some(c) if (1..=MAX_THRESHOLD_COUNT).contains(&c) => c,
                _ => {
                    let message =
                        format!("`count` must be a whole number from 1 to {MAX_THRESHOLD_COUNT}");
                    self.diag(file, n.pos, message);
                    1
                }
            },
        };
        if keys.get("window").is_none() {
            self.diag(file, keys.node.pos, "alert mode `threshold` needs `window`");
        }
        let distinct = keys.get("distinct").and_then(|n| {
            let s = self.string(file, n, "`distinct`")?;
            if is_field_name(&s) {
                return Some(s);
            }
            let message =
                format!("bad `distinct` field {s:?}: expected a field name such as source");
            self.diag(file, n.pos, message);
            None
        });
        AlertMode::Threshold {
            count,
            window: window.unwrap_or(DEFAULT_THRESHOLD_WINDOW),
            distinct,
        }
    }

    /// `spike`: every key has a default; `baseline` must be a multiple of
    /// `window`, longer than it.
    fn spike(&mut self, keys: &Keys<'_>, window: Option<Duration>) -> AlertMode {
        let file = keys.file;
        let window = window.unwrap_or(DEFAULT_SPIKE_WINDOW);
        let baseline_node = keys.get("baseline");
        let baseline = match baseline_node {
            None => Some(DEFAULT_SPIKE_BASELINE),
            // A bad duration is reported already.
            Some(n) => self.duration(file, n, "`baseline`"),
        };
        if let Some(b) = baseline {
            let (w, bl) = (window.as_millis(), b.as_millis());
            let problem = if bl <= w || bl % w != 0 {
                Some("a whole multiple of `window`, longer than it".to_owned())
            } else if bl / w > u128::from(MAX_BASELINE_WINDOWS) {
                Some(format!("at most {MAX_BASELINE_WINDOWS} windows"))
            } else {
                None
            };
            if let Some(problem) = problem {
                // Reported at `baseline`, or at `window` when the baseline
                // is the default.
                let at = baseline_node.or(keys.get("window"));
                let message = format!(
                    "`baseline` ({}) must be {problem} ({})",
                    humantime::format_duration(b),
                    humantime::format_duration(window)
                );
                self.diag(file, at.map_or(keys.node.pos, |n| n.pos), message);
            }
        }
        let baseline = baseline.unwrap_or(DEFAULT_SPIKE_BASELINE);
        let ratio = match keys.get("ratio") {
            None => DEFAULT_SPIKE_RATIO,
            Some(n) => match n.as_scalar().and_then(|s| s.parse::<f64>().ok()) {
                Some(r) if r.is_finite() && r > 0.0 => r,
                _ => {
                    self.diag(file, n.pos, "`ratio` must be a number greater than 0");
                    DEFAULT_SPIKE_RATIO
                }
            },
        };
        let min_count = match keys.get("min_count") {
            None => DEFAULT_SPIKE_MIN_COUNT,
            Some(n) => match n.as_scalar().and_then(|s| s.parse::<u64>().ok()) {
                Some(c) if c >= 1 => c,
                _ => {
                    self.diag(
                        file,
                        n.pos,
                        "`min_count` must be a whole number of at least 1",
                    );
                    DEFAULT_SPIKE_MIN_COUNT
                }
            },
        };
        AlertMode::Spike {
            window,
            baseline,
            ratio,
            min_count,
        }
    }
}
