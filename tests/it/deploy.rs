//! CI checks of everything under `deploy/`: the files parse, the Kubernetes,
//! compose, systemd and Docker pieces agree with each other and with the
//! daemon (config loader, rule loader, timeouts, ports, probes), promtool
//! accepts and unit-tests the Prometheus rules, every metric the rules and
//! the dashboard name is one the daemon exports, and the metrics table of
//! docs/reference.md is exactly what it exports.
//!
//! No Kafka, no network: a few seconds, most of them `promtool test rules`.
//! promtool is required (scripts/test installs it); a missing promtool is a
//! failure, not a skip.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use newswatch::config::Config;
use newswatch::metrics::{
    DropReason, KafkaClient, Metrics, PublishError, RecordKind, StateKind, Suppression,
};
use newswatch_core::event::Reason;
use yaml_rust2::{Yaml, YamlLoader};

use crate::docs::{one_code_span, table_rows};

// ------------------------------------------------------------------ helpers

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn deploy(rel: &str) -> PathBuf {
    root().join("deploy").join(rel)
}

fn rel(p: &Path) -> String {
    p.strip_prefix(root()).unwrap_or(p).display().to_string()
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", rel(p)))
}

/// Files under `dir` (recursively, sorted) whose name ends with one of `exts`.
fn files_under(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    fn walk(d: &Path, exts: &[&str], out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, exts, out);
            } else if exts
                .iter()
                .any(|x| p.to_string_lossy().ends_with(&format!(".{x}")))
            {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, exts, &mut out);
    out.sort();
    out
}

fn yaml_docs(p: &Path) -> Vec<Yaml> {
    let docs = YamlLoader::load_from_str(&read(p))
        .unwrap_or_else(|e| panic!("{}: not valid YAML: {e}", rel(p)));
    assert!(!docs.is_empty(), "{}: no YAML document", rel(p));
    docs
}

fn yaml_doc(p: &Path) -> Yaml {
    let mut docs = yaml_docs(p);
    assert_eq!(docs.len(), 1, "{}: expected one YAML document", rel(p));
    docs.remove(0)
}

fn s<'a>(y: &'a Yaml, what: &str) -> &'a str {
    y.as_str()
        .unwrap_or_else(|| panic!("{what}: expected a string, got {y:?}"))
}

fn arr<'a>(y: &'a Yaml, what: &str) -> &'a [Yaml] {
    y.as_vec()
        .unwrap_or_else(|| panic!("{what}: expected a list, got {y:?}"))
}

/// Every document of every YAML file in deploy/k8s, with its file.
fn k8s_docs() -> Vec<(PathBuf, Yaml)> {
    files_under(&deploy("k8s"), &["yaml", "yml"])
        .into_iter()
        .flat_map(|p| yaml_docs(&p).into_iter().map(move |d| (p.clone(), d)))
        .collect()
}

fn k8s_object(kind: &str, name: &str) -> Yaml {
    k8s_docs()
        .into_iter()
        .map(|(_, d)| d)
        .find(|d| d["kind"].as_str() == Some(kind) && d["metadata"]["name"].as_str() == Some(name))
        .unwrap_or_else(|| panic!("deploy/k8s: no {kind} named {name}"))
}

/// Load a config file's text through the daemon's own loader.
fn load_config(toml: &str, env: &[(&str, &str)]) -> Config {
    crate::util::load_config_text(toml, env).unwrap_or_else(|e| panic!("{e}"))
}

/// The Kubernetes ConfigMap's newswatch.toml, validated by the daemon.
fn k8s_config_toml() -> String {
    s(
        &k8s_object("ConfigMap", "newswatch-config")["data"]["newswatch.toml"],
        "newswatch-config data.newswatch.toml",
    )
    .to_owned()
}

/// `45`, `45s`, `1min 30s`, `2m` as systemd, compose or Kubernetes write them.
fn parse_secs(v: &str) -> Duration {
    let v = v.trim();
    if let Ok(n) = v.parse::<u64>() {
        return Duration::from_secs(n);
    }
    humantime::parse_duration(v).unwrap_or_else(|e| panic!("{v:?}: not a duration: {e}"))
}

fn promtool() -> &'static str {
    let ok = Command::new("promtool")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "promtool is required for the deploy checks (Debian package `prometheus`; scripts/test installs it)"
    );
    "promtool"
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{cmd:?} failed:\n{text}");
    text
}

// ------------------------------------------------------- PromQL name scanning

/// Identifiers in a PromQL expression outside string literals: metric and
/// recording-rule names, label names, functions, keywords.
fn promql_identifiers(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = expr.chars().peekable();
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut Vec<String>| {
        if word
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        {
            out.push(word.clone());
        }
        word.clear();
    };
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                flush(&mut word, &mut out);
                while let Some(d) = chars.next() {
                    if d == '\\' && c != '`' {
                        chars.next();
                    } else if d == c {
                        break;
                    }
                }
            }
            c if c.is_ascii_alphanumeric() || c == '_' || c == ':' => word.push(c),
            _ => flush(&mut word, &mut out),
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Words of free text that look like metric names (`newswatch_…`,
/// `newswatch:…`, `process_…`), for annotations and panel descriptions.
/// Base names of histograms count as names here ("the
/// newswatch_match_seconds histogram").
fn text_metric_names(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .map(|w| w.trim_end_matches(':'))
        .filter(|w| is_checked_name(w))
        .map(str::to_owned)
        .collect()
}

fn is_checked_name(w: &str) -> bool {
    w.starts_with("newswatch_") || w.starts_with("newswatch:") || w.starts_with("process_")
}

/// Metric names (and label names) of every series the daemon exports, once
/// every recording method has been called so that labelled series exist.
struct Exported {
    /// Sample names: histograms as `_bucket`, `_sum`, `_count`.
    samples: BTreeSet<String>,
    /// `# TYPE` lines: base name -> type.
    types: BTreeMap<String, String>,
    /// Sample name -> label names seen (without `le`).
    labels: BTreeMap<String, BTreeSet<String>>,
}

fn exported() -> Exported {
    let m = Metrics::new();
    m.event_consumed("news.events");
    for r in Reason::ALL {
        m.event_invalid(r);
    }
    m.dlq_record();
    m.rule_matched("ru-mfa-statement");
    m.rule_evaluated("ru-mfa-statement", 3, 1_000);
    m.alert_published("ru-mfa-statement", "high");
    m.digest_published("ru-mfa-daily");
    m.alert_suppressed_by("ru-mfa-statement", Suppression::Throttle);
    m.publish_failed(PublishError::Enqueue(RecordKind::Alert));
    m.kafka_client_error(KafkaClient::Consumer);
    m.event_processed(Duration::from_millis(3));
    m.matched_in(Duration::from_micros(40));
    m.event_delay(12.0);
    m.consumer_lag("news.events", 0, 5);
    m.rules_in_force(3, "0123abcd");
    m.rules_reload(true);
    m.rules_reload(false);
    m.state_sizes(2, 1);
    m.state_evicted(StateKind::Story, 1);
    m.state_record_invalid();
    m.event_time_adjusted();
    m.alertmanager_sent(1);
    m.alertmanager_dropped(DropReason::QueueFull, 1);
    let text = m.render();
    let mut e = Exported {
        samples: BTreeSet::new(),
        types: BTreeMap::new(),
        labels: BTreeMap::new(),
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut it = rest.split_whitespace();
            let (name, ty) = (it.next().unwrap(), it.next().unwrap());
            e.types.insert(name.to_owned(), ty.to_owned());
            continue;
        }
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let end = line.find(['{', ' ']).unwrap_or(line.len());
        let name = line[..end].to_owned();
        let labels = e.labels.entry(name.clone()).or_default();
        if line[end..].starts_with('{') {
            let close = line.find('}').unwrap();
            for pair in promql_identifiers(&line[end + 1..close]) {
                if pair != "le" {
                    labels.insert(pair);
                }
            }
        }
        e.samples.insert(name);
    }
    e
}

/// The reference's metrics table: what users are told `GET /metrics`
/// exports (docs/reference.md, section 11).
const REFERENCE: &str = "docs/reference.md";
const METRICS_HEADER: &str = "| name | type | labels |";

/// Documented metrics that have no panel on the dashboard: the per-rule
/// verification time, found in GET /rules or `replay --profile` when a rule
/// is slow. The state store's, the Alertmanager output's, the Kafka
/// clients' errors and the adjusted event times have panels since the
/// subscribers' row was added.
const NOT_ON_DASHBOARD: &[&str] = &["newswatch_rule_eval_seconds_total"];

/// A row of the reference's metrics table.
struct DocMetric {
    name: String,
    ty: String,
    labels: BTreeSet<String>,
    /// Its line in the reference, for messages.
    line: usize,
}

/// The rows of the reference's metrics table: the name in backticks, the
/// type, the label names separated by commas (none: an empty cell).
fn documented_metrics() -> Vec<DocMetric> {
    let md = read(&root().join(REFERENCE));
    let rows = table_rows(&md, METRICS_HEADER);
    assert!(
        rows.len() > 15,
        "{REFERENCE}: no metrics table (`{METRICS_HEADER}`)"
    );
    rows.into_iter()
        .map(|(line, cells)| {
            assert_eq!(cells.len(), 3, "{REFERENCE}:{line}: three cells expected");
            DocMetric {
                name: one_code_span(&cells[0], line),
                ty: cells[1].clone(),
                labels: cells[2]
                    .split(',')
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect(),
                line,
            }
        })
        .collect()
}

/// The sample names a metric shows up as.
fn sample_names(name: &str, ty: &str) -> Vec<String> {
    if ty == "histogram" {
        ["_bucket", "_sum", "_count"]
            .iter()
            .map(|x| format!("{name}{x}"))
            .collect()
    } else {
        vec![name.to_owned()]
    }
}

// --------------------------------------------------------- prometheus rules

fn rules_files() -> Vec<PathBuf> {
    let v: Vec<_> = files_under(&deploy("prometheus"), &["yml", "yaml"])
        .into_iter()
        .filter(|p| !p.to_string_lossy().contains(".test."))
        .collect();
    assert!(!v.is_empty(), "no rule files in deploy/prometheus");
    v
}

fn rule_test_files() -> Vec<PathBuf> {
    let v: Vec<_> = files_under(&deploy("prometheus"), &["yml", "yaml"])
        .into_iter()
        .filter(|p| p.to_string_lossy().contains(".test."))
        .collect();
    assert!(!v.is_empty(), "no promtool test files in deploy/prometheus");
    v
}

/// Every rule of every group of the rule files: (file, rule).
fn all_rules() -> Vec<(PathBuf, Yaml)> {
    let mut out = Vec::new();
    for f in rules_files() {
        let doc = yaml_doc(&f);
        for g in arr(&doc["groups"], &rel(&f)) {
            for r in arr(&g["rules"], &rel(&f)) {
                out.push((f.clone(), r.clone()));
            }
        }
    }
    out
}

// ==================================================================== tests

#[test]
fn every_yaml_and_json_file_under_deploy_parses() {
    let yamls = files_under(&root().join("deploy"), &["yaml", "yml"]);
    for p in &yamls {
        for d in yaml_docs(p) {
            assert!(
                d.as_hash().is_some(),
                "{}: every document should be a mapping",
                rel(p)
            );
        }
    }
    let jsons = files_under(&root().join("deploy"), &["json"]);
    for p in &jsons {
        serde_json::from_str::<serde_json::Value>(&read(p))
            .unwrap_or_else(|e| panic!("{}: not valid JSON: {e}", rel(p)));
    }
    // Not vacuous: the pieces the deployment is made of are all there.
    for f in [
        "docker/Dockerfile",
        "docker/newswatch.toml",
        "systemd/newswatch.service",
        "k8s/kustomization.yaml",
        "k8s/deployment.yaml",
        "k8s/configmap.yaml",
        "k8s/rules-configmap.yaml",
        "k8s/service.yaml",
        "k8s/servicemonitor.yaml",
        "k8s/prometheusrule.yaml",
        "compose/compose.yaml",
        "compose/prometheus.yml",
        "prometheus/newswatch.rules.yml",
        "prometheus/newswatch.test.yml",
        "grafana/newswatch.json",
        "grafana/provisioning/datasources/prometheus.yaml",
        "grafana/provisioning/dashboards/newswatch.yaml",
        "README.md",
    ] {
        assert!(deploy(f).is_file(), "deploy/{f} is missing");
    }
    assert!(yamls.len() >= 14, "{} YAML files", yamls.len());
    assert!(
        root().join(".dockerignore").is_file(),
        ".dockerignore missing"
    );
}

#[test]
fn kubernetes_documents_are_complete_and_listed_in_the_kustomization() {
    let dir = deploy("k8s");
    let mut listed = BTreeSet::new();
    let mut files = BTreeSet::new();
    for (p, d) in k8s_docs() {
        let file = p.file_name().unwrap().to_string_lossy().into_owned();
        files.insert(file.clone());
        let kind = s(&d["kind"], &format!("{file}: kind"));
        s(&d["apiVersion"], &format!("{file}: apiVersion"));
        if kind == "Kustomization" {
            for r in arr(&d["resources"], "kustomization resources") {
                let r = s(r, "kustomization resource");
                assert!(dir.join(r).is_file(), "kustomization lists missing {r}");
                listed.insert(r.to_owned());
            }
            continue;
        }
        let name = s(&d["metadata"]["name"], &format!("{file}: metadata.name"));
        assert!(!name.is_empty(), "{file}: empty metadata.name");
    }
    // Every manifest is applied, except the kustomization itself and the
    // example Secret (never applied from the repository).
    for f in &files {
        if f != "kustomization.yaml" && !f.contains(".example.") {
            assert!(
                listed.contains(f),
                "{f} is not in kustomization.yaml's resources"
            );
        }
    }
}

#[test]
fn kubernetes_deployment_fits_the_daemon() {
    let toml = k8s_config_toml();
    let cfg = load_config(&toml, &[]);
    let dep = k8s_object("Deployment", "newswatch");
    let pod = &dep["spec"]["template"]["spec"];

    // Shutdown: the SIGKILL must come after newswatch's own deadline.
    let grace = pod["terminationGracePeriodSeconds"]
        .as_i64()
        .expect("terminationGracePeriodSeconds");
    assert!(
        Duration::from_secs(grace as u64) > cfg.kafka.shutdown_timeout,
        "terminationGracePeriodSeconds {grace} must exceed kafka.shutdown_timeout {:?}",
        cfg.kafka.shutdown_timeout
    );

    let containers = arr(&pod["containers"], "containers");
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let cpath = k8s_http_and_args(&cfg, c);
    k8s_security(pod, c);
    k8s_mounts(pod, c, &cpath);
    k8s_rules(&cfg);
    k8s_secrets_from_env(&toml, c);
    k8s_service(&cfg);
}

/// Where the Deployment mounts the rules ConfigMap.
const K8S_RULES_DIR: &str = "/etc/newswatch/rules";

/// The container's HTTP is reachable from the kubelet and Prometheus, and
/// its args name a config file (returned).
fn k8s_http_and_args(cfg: &Config, c: &Yaml) -> String {
    assert!(
        cfg.http.listen.ip().is_unspecified(),
        "http.listen must be 0.0.0.0 inside a pod, is {}",
        cfg.http.listen
    );
    let ports = arr(&c["ports"], "ports");
    let port_of = |name: &str| {
        ports
            .iter()
            .find(|p| p["name"].as_str() == Some(name))
            .and_then(|p| p["containerPort"].as_i64())
    };
    assert_eq!(
        port_of("http"),
        Some(i64::from(cfg.http.listen.port())),
        "containerPort http != http.listen port"
    );
    for (probe, path) in [
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
        ("startupProbe", "/healthz"),
    ] {
        let g = &c[probe]["httpGet"];
        assert_eq!(g["path"].as_str(), Some(path), "{probe} path");
        let port = match &g["port"] {
            Yaml::Integer(n) => Some(*n),
            Yaml::String(name) => port_of(name),
            other => panic!("{probe} port: {other:?}"),
        };
        assert_eq!(
            port,
            Some(i64::from(cfg.http.listen.port())),
            "{probe} port"
        );
    }
    // The args name the mounted config.
    let args: Vec<&str> = arr(&c["args"], "args")
        .iter()
        .map(|a| s(a, "arg"))
        .collect();
    assert_eq!(args.first(), Some(&"run"), "args {args:?}");
    let cpath = args
        .windows(2)
        .find(|w| w[0] == "-c" || w[0] == "--config")
        .map(|w| w[1])
        .expect("-c FILE in args");
    cpath.to_owned()
}

/// Non-root, read-only root, no capabilities, no escalation, memory bounds.
fn k8s_security(pod: &Yaml, c: &Yaml) {
    let psc = &pod["securityContext"];
    let csc = &c["securityContext"];
    assert_eq!(psc["runAsNonRoot"].as_bool(), Some(true), "runAsNonRoot");
    assert!(psc["runAsUser"].as_i64().unwrap_or(0) > 0, "runAsUser");
    assert_eq!(csc["readOnlyRootFilesystem"].as_bool(), Some(true));
    assert_eq!(csc["allowPrivilegeEscalation"].as_bool(), Some(false));
    assert!(
        arr(&csc["capabilities"]["drop"], "capabilities.drop")
            .iter()
            .any(|x| x.as_str() == Some("ALL")),
        "capabilities must drop ALL"
    );
    for k in ["requests", "limits"] {
        assert!(
            c["resources"][k]["memory"].as_str().is_some(),
            "resources.{k}.memory"
        );
    }
}

/// The config file is mounted where the args point, the rules where the
/// config points.
fn k8s_mounts(pod: &Yaml, c: &Yaml, cpath: &str) {
    let mounts = arr(&c["volumeMounts"], "volumeMounts");
    let volumes = arr(&pod["volumes"], "volumes");
    let configmap_of = |mount_path: &str| -> (String, Option<String>) {
        let m = mounts
            .iter()
            .find(|m| m["mountPath"].as_str() == Some(mount_path))
            .unwrap_or_else(|| panic!("no volumeMount at {mount_path}"));
        let vol = s(&m["name"], "mount name");
        let v = volumes
            .iter()
            .find(|v| v["name"].as_str() == Some(vol))
            .unwrap_or_else(|| panic!("no volume {vol}"));
        (
            s(&v["configMap"]["name"], "configMap.name").to_owned(),
            m["subPath"].as_str().map(str::to_owned),
        )
    };
    assert_eq!(
        configmap_of(cpath),
        (
            "newswatch-config".to_owned(),
            Some("newswatch.toml".to_owned())
        ),
        "{cpath} must be newswatch-config's newswatch.toml"
    );
    let rules_dir = K8S_RULES_DIR;
    assert_eq!(
        configmap_of(rules_dir),
        ("newswatch-rules".to_owned(), None),
        "{rules_dir} must mount newswatch-rules as a directory (subPath mounts never update)"
    );
}

/// The rules ConfigMap is config/rules, loads, and rules.paths lists it,
/// also on the layout the kubelet gives a ConfigMap volume.
fn k8s_rules(cfg: &Config) {
    let rules_dir = K8S_RULES_DIR;
    let cm = k8s_object("ConfigMap", "newswatch-rules");
    let data = cm["data"].as_hash().expect("newswatch-rules data");
    let mut inputs = Vec::new();
    let bundled: BTreeSet<String> = files_under(&root().join("config/rules"), &["yaml", "yml"])
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    let keys: BTreeSet<String> = data.keys().map(|k| s(k, "data key").to_owned()).collect();
    assert_eq!(
        keys, bundled,
        "newswatch-rules must hold config/rules' files; run deploy/k8s/sync"
    );
    for (k, v) in data {
        let k = s(k, "data key");
        let text = s(v, k);
        assert_eq!(
            text,
            read(&root().join("config/rules").join(k)),
            "deploy/k8s/rules-configmap.yaml's {k} differs from config/rules/{k}; run deploy/k8s/sync"
        );
        inputs.push((PathBuf::from(rules_dir).join(k), text.to_owned()));
    }
    let rs = newswatch_core::rules::load_strs(inputs.clone())
        .unwrap_or_else(|e| panic!("the ConfigMap's rules do not load: {e}"));
    assert!(!rs.rules.is_empty());
    let expected: BTreeSet<PathBuf> = inputs.iter().map(|(p, _)| p.clone()).collect();
    let paths: BTreeSet<PathBuf> = cfg.rules.paths.iter().cloned().collect();
    assert_eq!(
        paths, expected,
        "rules.paths in configmap.yaml must list every rule file of newswatch-rules"
    );

    // The same paths work on the layout the kubelet gives a ConfigMap volume:
    // files are symlinks into a hidden, atomically swapped ..data directory.
    let vol = tempfile::tempdir().unwrap();
    let ts = vol.path().join("..2025_01_01_00_00_00.000000001");
    std::fs::create_dir(&ts).unwrap();
    for (p, text) in &inputs {
        std::fs::write(ts.join(p.file_name().unwrap()), text).unwrap();
    }
    std::os::unix::fs::symlink(ts.file_name().unwrap(), vol.path().join("..data")).unwrap();
    let mut on_disk = Vec::new();
    for (p, _) in &inputs {
        let name = p.file_name().unwrap();
        std::os::unix::fs::symlink(Path::new("..data").join(name), vol.path().join(name)).unwrap();
    }
    for p in &cfg.rules.paths {
        on_disk.push(vol.path().join(p.strip_prefix(rules_dir).unwrap()));
    }
    let rs2 = newswatch_core::rules::load_paths(&on_disk)
        .unwrap_or_else(|e| panic!("rules.paths on a ConfigMap volume: {e}"));
    assert_eq!(rs2.rules.len(), rs.rules.len());
}

/// Secrets through the environment reach the librdkafka property maps.
fn k8s_secrets_from_env(toml: &str, c: &Yaml) {
    let tricky = "s3cr:et,with=odd chars";
    let mut env = Vec::new();
    for e in arr(&c["env"], "env") {
        let name = s(&e["name"], "env name");
        if name.starts_with("NEWSWATCH__") {
            assert!(
                !e["valueFrom"]["secretKeyRef"].is_badvalue(),
                "{name} should come from a Secret"
            );
            env.push(name.to_owned());
        }
    }
    assert!(!env.is_empty(), "no NEWSWATCH__ variable from a Secret");
    let pairs: Vec<(&str, &str)> = env.iter().map(|n| (n.as_str(), tricky)).collect();
    let with_env = load_config(toml, &pairs);
    for name in &env {
        let (map, rest) =
            if let Some(r) = name.strip_prefix("NEWSWATCH__KAFKA__CONSUMER_PROPERTIES__") {
                (&with_env.kafka.consumer_properties, r)
            } else if let Some(r) = name.strip_prefix("NEWSWATCH__KAFKA__PRODUCER_PROPERTIES__") {
                (&with_env.kafka.producer_properties, r)
            } else {
                panic!("{name}: only property overrides are expected here");
            };
        let prop = rest.to_lowercase().replace("__", ".");
        assert!(
            [
                "sasl.username",
                "sasl.password",
                "ssl.key.password",
                "ssl.keystore.password",
                "sasl.oauthbearer.client.secret",
            ]
            .contains(&prop.as_str()),
            "{name} names {prop:?}, not a librdkafka credential property"
        );
        assert_eq!(
            map.get(&prop).map(String::as_str),
            Some(tricky),
            "{name} does not reach the property {prop:?}"
        );
    }
}

/// The Service and the ServiceMonitor reach the daemon's port.
fn k8s_service(cfg: &Config) {
    let svc = k8s_object("Service", "newswatch");
    let sport = &arr(&svc["spec"]["ports"], "service ports")[0];
    assert_eq!(
        sport["port"].as_i64(),
        Some(i64::from(cfg.http.listen.port()))
    );
    assert_eq!(sport["targetPort"].as_str(), Some("http"));
    let sm = k8s_object("ServiceMonitor", "newswatch");
    let ep = &arr(&sm["spec"]["endpoints"], "servicemonitor endpoints")[0];
    assert_eq!(ep["port"].as_str(), sport["name"].as_str());
    assert_eq!(ep["path"].as_str(), Some("/metrics"));
    let sel = &sm["spec"]["selector"]["matchLabels"];
    for (k, v) in sel.as_hash().expect("matchLabels") {
        assert_eq!(
            &svc["metadata"]["labels"][s(k, "label")],
            v,
            "ServiceMonitor selects a label the Service lacks"
        );
    }
}

#[test]
fn prometheusrule_is_the_rules_file() {
    let pr = k8s_object("PrometheusRule", "newswatch");
    let files = rules_files();
    assert_eq!(
        files.len(),
        1,
        "one rules file expected for prometheusrule.yaml"
    );
    assert!(
        pr["spec"]["groups"] == yaml_doc(&files[0])["groups"],
        "deploy/k8s/prometheusrule.yaml is out of date; run deploy/k8s/sync"
    );
}

#[test]
fn promtool_checks_and_tests_the_rules() {
    let pt = promtool();
    let dir = deploy("prometheus");
    let out = run(Command::new(pt)
        .arg("check")
        .arg("rules")
        .args(rules_files())
        .current_dir(&dir));
    assert!(out.contains("SUCCESS"), "{out}");
    let out = run(Command::new(pt)
        .arg("test")
        .arg("rules")
        .args(rule_test_files())
        .current_dir(&dir));
    assert!(out.contains("SUCCESS") && !out.contains("FAILED"), "{out}");
    let out = run(Command::new(pt)
        .args(["check", "config"])
        .arg(deploy("compose/prometheus.yml")));
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn every_alert_is_labelled_annotated_and_tested_both_ways() {
    let mut alerts = BTreeSet::new();
    let mut records = BTreeSet::new();
    for (f, r) in all_rules() {
        if let Some(name) = r["record"].as_str() {
            assert!(
                name.starts_with("newswatch:"),
                "{name}: recording rules are newswatch:…"
            );
            records.insert(name.to_owned());
            continue;
        }
        let name = s(
            &r["alert"],
            &format!("{}: rule without alert or record", rel(&f)),
        );
        alerts.insert(name.to_owned());
        let sev = r["labels"]["severity"].as_str();
        assert!(
            matches!(sev, Some("critical" | "warning" | "info")),
            "{name}: severity {sev:?}"
        );
        assert!(
            matches!(r["labels"]["category"].as_str(), Some("ops" | "news")),
            "{name}: category"
        );
        for a in ["summary", "description", "runbook"] {
            assert!(
                r["annotations"][a]
                    .as_str()
                    .is_some_and(|t| !t.trim().is_empty()),
                "{name}: annotation {a}"
            );
        }
    }
    for required in [
        "NewswatchConsumerLagGrowing",
        "NewswatchDeadLetterRate",
        "NewswatchNoEventsConsumed",
        "NewswatchRulesReloadFailed",
        "NewswatchPublishErrors",
        "NewswatchRuleMatchSpike",
        "NewswatchTopicSilent",
        "NewswatchAlertsUndeliverable",
        "NewswatchAlertmanagerDropping",
        "NewswatchDigestsStopped",
        "NewswatchSilencedForDays",
    ] {
        assert!(alerts.contains(required), "alert {required} is missing");
    }
    // Recording rules used anywhere are defined.
    for (f, r) in all_rules() {
        for id in promql_identifiers(s(&r["expr"], "expr")) {
            if id.starts_with("newswatch:") {
                assert!(records.contains(&id), "{}: {id} is not recorded", rel(&f));
            }
        }
    }
    // Each alert is tested firing and not firing.
    let mut fires = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for f in rule_test_files() {
        let doc = yaml_doc(&f);
        for t in arr(&doc["tests"], "tests") {
            let Some(cases) = t["alert_rule_test"].as_vec() else {
                continue;
            };
            for case in cases {
                let name = s(&case["alertname"], "alertname").to_owned();
                match case["exp_alerts"].as_vec() {
                    Some(v) if !v.is_empty() => fires.insert(name),
                    _ => quiet.insert(name),
                };
            }
        }
    }
    for a in &alerts {
        assert!(fires.contains(a), "{a}: no promtool test shows it firing");
        assert!(
            quiet.contains(a),
            "{a}: no promtool test shows it staying quiet"
        );
    }
}

/// The reference's metrics table and the exporter agree both ways: every
/// documented metric is exported with its type and label names, and every
/// exported `newswatch_…` (and `process_…`) metric is documented. The
/// `process_…` rows are the Prometheus process collector's, Linux only.
#[test]
fn reference_metrics_are_the_exported_ones() {
    let e = exported();
    let documented = documented_metrics();
    for d in &documented {
        let at = format!("{REFERENCE}:{}: {}", d.line, d.name);
        assert!(
            is_checked_name(&d.name) && !d.name.starts_with("newswatch:"),
            "{at}: not a newswatch_… or process_… name"
        );
        if d.name.starts_with("process_") && !cfg!(target_os = "linux") {
            continue;
        }
        assert_eq!(
            e.types.get(&d.name),
            Some(&d.ty),
            "{at}: documented type, or not exported"
        );
        for sample in sample_names(&d.name, &d.ty) {
            assert!(
                e.samples.contains(&sample),
                "{at}: {sample} is not exported"
            );
            assert_eq!(e.labels[&sample], d.labels, "{at}: label names of {sample}");
        }
    }
    let names: BTreeSet<&str> = documented.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names.len(),
        documented.len(),
        "{REFERENCE}: a metric listed twice"
    );
    let undocumented: Vec<&String> = e
        .types
        .keys()
        .filter(|n| is_checked_name(n) && !names.contains(n.as_str()))
        .collect();
    assert!(
        undocumented.is_empty(),
        "exported but not in {REFERENCE}'s metrics table: {undocumented:?}"
    );
}

/// Every `newswatch_…`/`process_…` name the rules, their tests and the
/// dashboard use is exported by the daemon; every `newswatch:…` name is a
/// recording rule.
#[test]
fn referenced_metrics_exist() {
    let e = exported();
    let records: BTreeSet<String> = all_rules()
        .iter()
        .filter_map(|(_, r)| r["record"].as_str().map(str::to_owned))
        .collect();
    let mut used: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut note = |name: String, whence: String| {
        if is_checked_name(&name) {
            used.entry(name).or_default().insert(whence);
        }
    };
    for (f, r) in all_rules() {
        for id in promql_identifiers(s(&r["expr"], "expr")) {
            note(id, rel(&f));
        }
        if let Some(a) = r["annotations"].as_hash() {
            for v in a.values() {
                for id in text_metric_names(v.as_str().unwrap_or("")) {
                    note(id, format!("text: {} annotations", rel(&f)));
                }
            }
        }
    }
    for f in rule_test_files() {
        let doc = yaml_doc(&f);
        for t in arr(&doc["tests"], "tests") {
            for series in t["input_series"].as_vec().into_iter().flatten() {
                let id = promql_identifiers(s(&series["series"], "series"));
                note(id[0].clone(), format!("{} input_series", rel(&f)));
            }
            for q in t["promql_expr_test"].as_vec().into_iter().flatten() {
                for id in promql_identifiers(s(&q["expr"], "expr")) {
                    note(id, rel(&f));
                }
            }
        }
    }
    let dash = dashboard();
    for (expr, whence) in dashboard_exprs(&dash) {
        for id in promql_identifiers(&expr) {
            note(id, whence.clone());
        }
    }
    for p in all_panels(&dash) {
        for k in ["title", "description"] {
            for id in text_metric_names(p[k].as_str().unwrap_or("")) {
                note(id, format!("text: dashboard panel {}", p["title"]));
            }
        }
    }
    assert!(used.len() > 15, "suspiciously few names found: {used:?}");
    let mut missing = Vec::new();
    for (name, whence) in &used {
        let ok = if name.starts_with("newswatch:") {
            records.contains(name)
        } else if name.starts_with("process_") && !cfg!(target_os = "linux") {
            true // the process collector is Linux-only
        } else {
            e.samples.contains(name)
                || (e.types.get(name).map(String::as_str) == Some("histogram")
                    && whence.iter().all(|w| w.starts_with("text: ")))
        };
        if !ok {
            missing.push(format!(
                "{name} (in {})",
                whence.iter().cloned().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    assert!(
        missing.is_empty(),
        "not exported by the daemon / not recorded:\n  {}\nexported: {:?}",
        missing.join("\n  "),
        e.samples
    );
}

// ---------------------------------------------------------------- dashboard

fn dashboard() -> serde_json::Value {
    serde_json::from_str(&read(&deploy("grafana/newswatch.json"))).expect("dashboard JSON")
}

fn all_panels(d: &serde_json::Value) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    fn walk(ps: &serde_json::Value, out: &mut Vec<serde_json::Value>) {
        for p in ps.as_array().into_iter().flatten() {
            out.push(p.clone());
            walk(&p["panels"], out);
        }
    }
    walk(&d["panels"], &mut out);
    out
}

/// PromQL of the panels' targets and of the annotation queries.
fn dashboard_exprs(d: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for p in all_panels(d) {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((
                t["expr"].as_str().expect("target expr").to_owned(),
                format!("dashboard panel {}", p["title"]),
            ));
        }
    }
    for a in d["annotations"]["list"].as_array().into_iter().flatten() {
        if let Some(e) = a["expr"].as_str() {
            out.push((e.to_owned(), format!("dashboard annotation {}", a["name"])));
        }
    }
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if let Some(q) = v["query"]["query"].as_str() {
            out.push((q.to_owned(), format!("dashboard variable {}", v["name"])));
        }
    }
    out
}

/// Every documented newswatch metric is on the dashboard (`ids_used`: the
/// identifiers of its queries), but those in NOT_ON_DASHBOARD.
fn documented_metrics_are_on_the_dashboard(ids_used: &BTreeSet<String>) {
    let documented = documented_metrics();
    for name in NOT_ON_DASHBOARD {
        assert!(
            documented.iter().any(|m| m.name == *name),
            "NOT_ON_DASHBOARD: {name} is not in {REFERENCE}"
        );
    }
    for m in &documented {
        if !m.name.starts_with("newswatch_") || NOT_ON_DASHBOARD.contains(&m.name.as_str()) {
            continue;
        }
        let on = sample_names(&m.name, &m.ty)
            .iter()
            .any(|n| ids_used.contains(n));
        assert!(on, "{} is not on the dashboard", m.name);
    }
}

#[test]
fn grafana_dashboard_is_complete_and_its_promql_valid() {
    let d = dashboard();
    assert!(
        d["schemaVersion"].as_i64().unwrap_or(0) >= 36,
        "schemaVersion"
    );
    assert_eq!(d["uid"].as_str(), Some("newswatch"));
    let vars = d["templating"]["list"].as_array().expect("templating");
    assert!(
        vars.iter().any(|v| v["name"] == "datasource"
            && v["type"] == "datasource"
            && v["query"] == "prometheus"),
        "a `datasource` variable of type datasource"
    );
    let ds = serde_json::json!({"type": "prometheus", "uid": "${datasource}"});
    let mut ids = BTreeSet::new();
    for p in all_panels(&d) {
        assert!(
            ids.insert(p["id"].as_i64().expect("panel id")),
            "duplicate panel id"
        );
        assert!(
            p["gridPos"]["w"].as_i64().is_some(),
            "gridPos of {}",
            p["title"]
        );
        if p["type"] == "row" {
            continue;
        }
        assert_eq!(p["datasource"], ds, "panel {} datasource", p["title"]);
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "panel {} has no query", p["title"]);
        for t in targets {
            assert_eq!(
                t["datasource"], ds,
                "panel {} target datasource",
                p["title"]
            );
        }
    }
    let exprs = dashboard_exprs(&d);
    let ids_used: BTreeSet<String> = exprs
        .iter()
        .flat_map(|(e, _)| promql_identifiers(e))
        .collect();
    // Every documented newswatch metric, the quantiles and the process metrics.
    documented_metrics_are_on_the_dashboard(&ids_used);
    for q in [
        "newswatch_event_processing_seconds_bucket",
        "newswatch_match_seconds_bucket",
        "newswatch_event_delay_seconds_bucket",
    ] {
        for quantile in ["0.5", "0.9", "0.99"] {
            assert!(
                exprs.iter().any(|(e, _)| e.contains(q)
                    && e.contains(&format!("histogram_quantile({quantile},"))),
                "no {quantile} quantile of {q}"
            );
        }
    }
    for n in ["process_resident_memory_bytes", "process_cpu_seconds_total"] {
        assert!(ids_used.contains(n), "{n} is not on the dashboard");
    }

    // promtool parses each query (Grafana's variables replaced) as a rule.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    let mut n = 0;
    for (e, whence) in &exprs {
        if e.starts_with("label_values(") {
            continue; // a Grafana function, not PromQL
        }
        let e = e
            .replace("$__rate_interval", "5m")
            .replace("$__interval", "1m")
            .replace("$job", ".*")
            .replace("$instance", ".*");
        n += 1;
        rules.push_str(&format!(
            "      # {}\n      - record: dashboard:q{n}\n        expr: {}\n",
            whence.replace('\n', " "),
            serde_json::to_string(&e).unwrap()
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("dashboard.rules.yml");
    std::fs::write(&f, &rules).unwrap();
    run(Command::new(promtool()).args(["check", "rules"]).arg(&f));

    // Compose provisions it: the provider's path is where compose mounts it.
    let prov = yaml_doc(&deploy("grafana/provisioning/dashboards/newswatch.yaml"));
    let path = s(&prov["providers"][0]["options"]["path"], "provider path");
    let compose = yaml_doc(&deploy("compose/compose.yaml"));
    let mounts = arr(
        &compose["services"]["grafana"]["volumes"],
        "grafana volumes",
    );
    assert!(
        mounts.iter().any(|m| {
            let m = s(m, "volume");
            m.starts_with("../grafana/newswatch.json:") && m.contains(&format!("{path}/"))
        }),
        "compose must mount the dashboard into {path}"
    );
}

// ---------------------------------------------- compose, Docker, systemd

#[test]
fn compose_stack_fits_together() {
    let dir = deploy("compose");
    let c = yaml_doc(&dir.join("compose.yaml"));
    let services = c["services"].as_hash().expect("compose: services");
    for svc in ["kafka", "kafka-init", "newswatch", "prometheus", "grafana"] {
        assert!(
            services.contains_key(&Yaml::String(svc.into())),
            "compose: service {svc}"
        );
    }
    // Relative bind mounts and the build point at files that exist.
    for (name, svc) in services {
        for v in svc["volumes"].as_vec().into_iter().flatten() {
            let v = s(v, "volume");
            if v.starts_with('.') {
                let src = v.split(':').next().unwrap();
                assert!(
                    dir.join(src).exists(),
                    "compose {}: {src} does not exist",
                    s(name, "service")
                );
            }
        }
    }
    let nw = &c["services"]["newswatch"];
    let ctx = dir.join(s(&nw["build"]["context"], "build.context"));
    assert!(
        ctx.join(s(&nw["build"]["dockerfile"], "build.dockerfile"))
            .is_file(),
        "compose: the Dockerfile is not where build points"
    );
    // The image's config, as compose overrides it, is valid, and compose
    // waits longer than its shutdown timeout.
    let cfg = load_config(
        &read(&deploy("docker/newswatch.toml")),
        &[(
            "NEWSWATCH__KAFKA__BROKERS",
            s(&nw["environment"]["NEWSWATCH__KAFKA__BROKERS"], "brokers"),
        )],
    );
    let grace = parse_secs(s(&nw["stop_grace_period"], "stop_grace_period"));
    assert!(grace > cfg.kafka.shutdown_timeout, "stop_grace_period");
    // Topics: the init container creates what the config uses.
    let init = format!("{:?}", c["services"]["kafka-init"]["command"]);
    for t in cfg
        .kafka
        .input_topics
        .iter()
        .chain([&cfg.kafka.alert_topic])
        .chain(cfg.kafka.dlq_topic.as_ref())
    {
        assert!(init.contains(t.as_str()), "kafka-init does not create {t}");
    }
    // Prometheus scrapes newswatch as job="newswatch" (the rules expect it)
    // and loads the rules, not their tests.
    let prom = yaml_doc(&dir.join("prometheus.yml"));
    let jobs = arr(&prom["scrape_configs"], "scrape_configs");
    assert!(jobs
        .iter()
        .any(|j| j["job_name"].as_str() == Some("newswatch")));
    for rf in arr(&prom["rule_files"], "rule_files") {
        assert!(
            s(rf, "rule file").ends_with(".rules.yml"),
            "rule_files {rf:?}"
        );
    }
}

#[test]
fn docker_image_is_multi_stage_and_unprivileged() {
    let df = read(&deploy("docker/Dockerfile"));
    let instr: Vec<(String, String)> = df
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let (i, rest) = l.split_once(char::is_whitespace)?;
            Some((i.to_uppercase(), rest.trim().to_owned()))
        })
        .collect();
    let froms = instr.iter().filter(|(i, _)| i == "FROM").count();
    assert!(
        froms >= 2,
        "Dockerfile: {froms} FROM stages, want a build and a runtime stage"
    );
    // The last USER is non-root and numeric (runAsNonRoot can check it).
    let user = instr
        .iter()
        .rev()
        .find(|(i, _)| i == "USER")
        .map(|(_, u)| u.clone())
        .expect("Dockerfile: no USER");
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap_or_else(|_| panic!("USER {user} is not numeric"));
    assert!(uid != 0, "USER {user} is root");
    let dep = k8s_object("Deployment", "newswatch");
    assert_eq!(
        dep["spec"]["template"]["spec"]["securityContext"]["runAsUser"].as_i64(),
        Some(i64::from(uid)),
        "the Deployment's runAsUser should be the image's USER"
    );
    let has = |i: &str, needle: &str| instr.iter().any(|(x, r)| x == i && r.contains(needle));
    assert!(has("EXPOSE", "9464"), "EXPOSE 9464");
    assert!(
        has("ENTRYPOINT", "\"newswatch\""),
        "ENTRYPOINT [\"newswatch\"]"
    );
    assert!(df.contains("--locked"), "cargo build --locked");
    // COPY sources in the build context exist and are not dockerignored.
    let ignore = read(&root().join(".dockerignore"));
    for pat in ["target/", ".git", ".local/"] {
        assert!(
            ignore.lines().any(|l| l.trim() == pat),
            ".dockerignore: {pat}"
        );
    }
    for (i, r) in &instr {
        if i == "COPY" && !r.starts_with("--from") && r != ". ." {
            let src = r.split_whitespace().next().unwrap();
            assert!(
                root().join(src).exists(),
                "COPY {src}: not in the repository"
            );
            if src.starts_with("deploy/") {
                assert!(
                    ignore.lines().any(|l| l.trim() == format!("!{src}")),
                    ".dockerignore excludes deploy/ but not re-include {src}"
                );
            }
        }
    }
    // The image's own config is valid and listens beyond the container.
    let cfg = load_config(&read(&deploy("docker/newswatch.toml")), &[]);
    assert!(
        cfg.http.listen.ip().is_unspecified(),
        "image config: http.listen"
    );
    assert_eq!(cfg.http.listen.port(), 9464);
}

#[test]
fn systemd_unit_reloads_on_hup_and_outlasts_the_shutdown_timeout() {
    let path = deploy("systemd/newswatch.service");
    let unit = read(&path);
    let mut section = String::new();
    let mut service: Vec<(String, String)> = Vec::new();
    for line in unit.lines().map(str::trim) {
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if line.starts_with('[') {
            section = line.to_owned();
        } else if section == "[Service]" {
            let (k, v) = line.split_once('=').expect("key=value");
            service.push((k.to_owned(), v.to_owned()));
        }
    }
    let get = |k: &str| -> Vec<&str> {
        service
            .iter()
            .filter(|(x, _)| x == k)
            .map(|(_, v)| v.as_str())
            .collect()
    };
    assert!(
        get("ExecReload")
            .iter()
            .any(|v| v.contains("kill") && v.contains("-HUP") && v.contains("$MAINPID")),
        "ExecReload must send SIGHUP to $MAINPID"
    );
    // The installed config is config/newswatch.toml (see the unit's header).
    let cfg = load_config(&read(&root().join("config/newswatch.toml")), &[]);
    let stop = get("TimeoutStopSec");
    assert_eq!(stop.len(), 1, "TimeoutStopSec");
    assert!(
        parse_secs(stop[0]) > cfg.kafka.shutdown_timeout,
        "TimeoutStopSec={} must exceed kafka.shutdown_timeout {:?}",
        stop[0],
        cfg.kafka.shutdown_timeout
    );
    for (k, v) in [
        ("Restart", "on-failure"),
        ("NoNewPrivileges", "yes"),
        ("ProtectSystem", "strict"),
        ("ProtectHome", "yes"),
        ("PrivateTmp", "yes"),
        ("PrivateDevices", "yes"),
        ("ProtectKernelTunables", "yes"),
        ("ProtectKernelModules", "yes"),
        ("ProtectKernelLogs", "yes"),
        ("ProtectControlGroups", "yes"),
        ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ("SystemCallFilter", "@system-service"),
        ("CapabilityBoundingSet", ""),
        ("MemoryDenyWriteExecute", "yes"),
        ("LockPersonality", "yes"),
        ("EnvironmentFile", "-/etc/newswatch/env"),
    ] {
        assert!(get(k).contains(&v), "[Service] {k}={v}");
    }
    assert!(
        !get("User").is_empty() || get("DynamicUser") == ["yes"],
        "a dedicated or dynamic user"
    );
    let exec = get("ExecStart");
    assert!(
        exec.len() == 1 && exec[0].contains(" run "),
        "ExecStart runs `newswatch run`"
    );

    // systemd-analyze, when this machine has it, with the unit pointed at
    // the binary cargo built for this test.
    let have = |c: &str| {
        Command::new(c)
            .arg("--version")
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false)
    };
    if have("systemd-analyze") && Path::new("/bin/kill").exists() {
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("newswatch.service");
        std::fs::write(
            &copy,
            unit.replace("/usr/local/bin/newswatch", crate::util::BIN),
        )
        .unwrap();
        run(Command::new("systemd-analyze")
            .args(["verify", "--man=no"])
            .arg(&copy));
    }
}

/// Hot reload on Kubernetes: the kubelet updates a ConfigMap volume by
/// writing a new hidden `..<timestamp>` directory and renaming a `..data`
/// symlink over the old one. With rules.paths as the ConfigMap's files (as
/// in configmap.yaml), newswatch's watcher must see that swap, and still see
/// the next one (the old directory it could have been watching is gone).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_reload_when_kubernetes_updates_the_configmap_volume() {
    use newswatch::daemon::rules::RulesHandle;
    use std::os::unix::fs::symlink;
    use std::sync::Arc;

    let cfg = load_config(&k8s_config_toml(), &[]);
    let rules_dir = Path::new("/etc/newswatch/rules");
    let original = read(&root().join("config/rules/geopolitics.yaml"));
    let vol = tempfile::tempdir().unwrap();
    let v = vol.path();
    // The kubelet's atomic writer: new timestamped dir, ..data_tmp -> it,
    // rename over ..data, delete the old dir.
    let publish = |gen: u32, text: &str| {
        let ts = format!("..2025_01_01_00_00_0{gen}.000000001");
        std::fs::create_dir(v.join(&ts)).unwrap();
        std::fs::write(v.join(&ts).join("geopolitics.yaml"), text).unwrap();
        let old = std::fs::read_link(v.join("..data")).ok();
        symlink(&ts, v.join("..data_tmp")).unwrap();
        std::fs::rename(v.join("..data_tmp"), v.join("..data")).unwrap();
        if let Some(old) = old {
            std::fs::remove_dir_all(v.join(old)).unwrap();
        }
    };
    publish(1, &original);
    symlink("..data/geopolitics.yaml", v.join("geopolitics.yaml")).unwrap();

    let paths: Vec<PathBuf> = cfg
        .rules
        .paths
        .iter()
        .map(|p| {
            v.join(
                p.strip_prefix(rules_dir)
                    .expect("rules.paths under the mount"),
            )
        })
        .collect();
    let handle = Arc::new(RulesHandle::load(paths, cfg.event.clone()).expect("rules load"));
    let metrics = Arc::new(Metrics::new());
    let stop = tokio_util::sync::CancellationToken::new();
    handle.watch(metrics, stop.clone()).expect("watch");

    let severity_of_first =
        |h: &RulesHandle| h.current().rules.rules[0].severity.as_str().to_owned();
    let wait_for = |want: &'static str| {
        let handle = handle.clone();
        async move {
            for _ in 0..300 {
                if severity_of_first(&handle) == want {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!(
                "rules not reloaded after a ConfigMap update: first rule's severity is {}, want {want}",
                severity_of_first(&handle)
            );
        }
    };
    assert_eq!(severity_of_first(&handle), "high");
    publish(
        2,
        &original.replacen("severity: high", "severity: critical", 1),
    );
    wait_for("critical").await;
    publish(3, &original.replacen("severity: high", "severity: low", 1));
    wait_for("low").await;
    stop.cancel();
}
