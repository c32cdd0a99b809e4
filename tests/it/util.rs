//! Helpers that need the daemon's own crate (so they cannot live in the
//! testkit, which the engine's benches use without it).

use std::collections::HashMap;

/// The `newswatch` binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_newswatch");

/// Load a config file's text through the daemon's own loader, with an
/// explicit environment (so the test's own environment cannot leak in).
/// The error is the loader's message.
pub fn load_config_text(toml: &str, env: &[(&str, &str)]) -> Result<newswatch::Config, String> {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("newswatch.toml");
    std::fs::write(&p, toml).unwrap();
    let env: HashMap<String, String> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    newswatch::Config::load_with_env(Some(&p), Some(env)).map_err(|e| e.to_string())
}

/// The payloads `replay` (or `tail --json`) printed, one JSON object per
/// line, each held to its JSON Schema (`schemas/`): a line that is not a
/// valid alert or digest fails the test.
#[track_caller]
pub fn payloads(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| newswatch_testkit::schemas::assert_payload(l.as_bytes()).1)
        .collect()
}
