//! `newswatch silence add|list|expire` (SPEC §1): a client of the running
//! daemon's `/silences` API (SPEC §10), the way `amtool silence` is one of
//! Alertmanager's.
//!
//! The daemon's URL is `--url`, else `http://` + the config's `http.listen`
//! (an unspecified address such as `0.0.0.0` means this host). Credentials
//! for POST and DELETE come from `--token-file`, else `$NEWSWATCH_TOKEN`.
//! Exit codes: 0 done, 1 refused by the daemon (its errors printed) or the
//! daemon unreachable, 2 usage errors (clap's, and a config or token file
//! that cannot be read).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use chrono::DateTime;
use clap::{ArgGroup, Args, Subcommand};
use serde_json::{json, Value};

/// Each request waits at most this long (a POST waits for the broker).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The environment variable holding the bearer token.
pub const TOKEN_ENV: &str = "NEWSWATCH_TOKEN";

#[derive(Args)]
pub struct SilenceArgs {
    /// The config whose http.listen gives the default --url.
    #[arg(short, long, global = true)]
    config: Option<PathBuf>,
    /// The daemon's HTTP address, e.g. http://10.0.0.5:9464.
    #[arg(long, global = true)]
    url: Option<String>,
    /// A file holding the bearer token (default: $NEWSWATCH_TOKEN).
    #[arg(long, global = true)]
    token_file: Option<PathBuf>,
    #[command(subcommand)]
    action: Action,
}

#[derive(Subcommand)]
enum Action {
    /// Create a silence; prints its id.
    #[command(group(ArgGroup::new("end").required(true).args(["duration", "until"])))]
    Add {
        /// A rule id, or a glob over rule ids (quote it: 'ru-*').
        #[arg(long)]
        rule: String,
        /// Only alerts of rules with this label (repeatable).
        #[arg(long = "label", value_name = "K=V", value_parser = key_value)]
        labels: Vec<(String, String)>,
        /// Only alerts of this group value (repeatable).
        #[arg(long = "group", value_name = "K=V", value_parser = key_value)]
        group: Vec<(String, String)>,
        /// How long, from now: 30m, 6h, 2d.
        #[arg(long = "for", value_name = "DURATION", value_parser = duration)]
        duration: Option<String>,
        /// Until when (RFC 3339): 2026-07-12T18:00:00Z.
        #[arg(long, value_name = "TIME", value_parser = time)]
        until: Option<String>,
        /// Why (required).
        #[arg(long)]
        comment: String,
        /// Who (default: $USER).
        #[arg(long)]
        created_by: Option<String>,
    },
    /// List the active silences.
    List,
    /// End a silence now.
    Expire { id: String },
}

fn key_value(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

fn duration(s: &str) -> Result<String, String> {
    humantime::parse_duration(s)
        .map(|_| s.to_owned())
        .map_err(|e| format!("{s:?} is not a duration ({e}); e.g. 30m, 6h, 2d"))
}

fn time(s: &str) -> Result<String, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|_| s.to_owned())
        .map_err(|e| format!("{s:?} is not an RFC 3339 time ({e}); e.g. 2026-07-12T18:00:00Z"))
}

#[derive(Debug, thiserror::Error)]
enum CliError {
    /// Exit 2: the command cannot be run as given.
    #[error("{0}")]
    Usage(String),
    /// Exit 1: the daemon refused, or could not be reached.
    #[error("{0}")]
    Refused(String),
}

/// Run a `silence` command; its exit code.
pub fn run(args: SilenceArgs) -> ExitCode {
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Refused(format!("cannot start the async runtime: {e}")))
        .and_then(|rt| rt.block_on(dispatch(args)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(e)) => {
            eprintln!("newswatch silence: {e}");
            ExitCode::from(2)
        }
        Err(CliError::Refused(e)) => {
            eprintln!("newswatch silence: {e}");
            ExitCode::from(1)
        }
    }
}

async fn dispatch(args: SilenceArgs) -> Result<(), CliError> {
    let base = base_url(&args)?;
    let token = token(&args)?;
    let client = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| CliError::Refused(format!("cannot build the HTTP client: {e}")))?;
    let api = Api {
        client,
        base,
        token,
    };
    match args.action {
        Action::Add {
            rule,
            labels,
            group,
            duration,
            until,
            comment,
            created_by,
        } => {
            let mut body = json!({
                "rule": rule,
                "labels": labels.into_iter().collect::<BTreeMap<_, _>>(),
                "group": group.into_iter().collect::<BTreeMap<_, _>>(),
                "comment": comment,
                "created_by": created_by.or_else(|| std::env::var("USER").ok()).unwrap_or_default(),
            });
            match (duration, until) {
                (Some(d), _) => body["duration"] = d.into(),
                (None, Some(t)) => body["ends_at"] = t.into(),
                (None, None) => {}
            }
            let answer = api
                .call(reqwest::Method::POST, "/silences", Some(body))
                .await?;
            println!("{}", answer["id"].as_str().unwrap_or_default());
        }
        Action::List => {
            let answer = api.call(reqwest::Method::GET, "/silences", None).await?;
            print!("{}", table(&answer));
        }
        Action::Expire { id } => {
            let path = format!("/silences/{}", url_segment(&id));
            api.call(reqwest::Method::DELETE, &path, None).await?;
            println!("expired {id}");
        }
    }
    Ok(())
}

/// `--url`, else `http://` + the config's `http.listen`.
fn base_url(args: &SilenceArgs) -> Result<reqwest::Url, CliError> {
    let text = match &args.url {
        Some(u) => u.clone(),
        None => {
            let path = newswatch::config::resolve_path(args.config.as_deref());
            let cfg = newswatch::Config::load(path.as_deref()).map_err(|e| {
                CliError::Usage(format!("{e} (or give the daemon's address with --url)"))
            })?;
            let mut addr = cfg.http.listen;
            // Listening on every address: this host answers on loopback.
            match addr.ip() {
                IpAddr::V4(ip) if ip.is_unspecified() => addr.set_ip(Ipv4Addr::LOCALHOST.into()),
                IpAddr::V6(ip) if ip.is_unspecified() => addr.set_ip(Ipv6Addr::LOCALHOST.into()),
                _ => {}
            }
            format!("http://{addr}")
        }
    };
    reqwest::Url::parse(&text)
        .map_err(|e| CliError::Usage(format!("--url {text:?} is not a URL: {e}")))
}

/// The bearer token: `--token-file`, else `$NEWSWATCH_TOKEN`, else none.
fn token(args: &SilenceArgs) -> Result<Option<String>, CliError> {
    if let Some(f) = &args.token_file {
        let t = std::fs::read_to_string(f)
            .map_err(|e| CliError::Usage(format!("--token-file {}: {e}", f.display())))?;
        let t = t.trim();
        if t.is_empty() {
            return Err(CliError::Usage(format!(
                "--token-file {} holds no token",
                f.display()
            )));
        }
        return Ok(Some(t.to_owned()));
    }
    Ok(std::env::var(TOKEN_ENV)
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty()))
}

/// A path segment with everything but unreserved characters escaped.
fn url_segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

struct Api {
    client: reqwest::Client,
    base: reqwest::Url,
    token: Option<String>,
}

impl Api {
    /// One request; the answer's JSON, or the daemon's errors.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CliError> {
        let url = self
            .base
            .join(path)
            .map_err(|e| CliError::Usage(format!("{}{path}: {e}", self.base)))?;
        let mut req = self.client.request(method, url.clone());
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| CliError::Refused(format!("cannot reach the daemon at {url}: {e}")))?;
        let status = resp.status();
        let text = resp.text().await.unwrap_or_default();
        let json: Option<Value> = serde_json::from_str(&text).ok();
        if status.is_success() {
            return Ok(json.unwrap_or(Value::Null));
        }
        let errs: Vec<String> = json
            .as_ref()
            .and_then(|j| j["errors"].as_array())
            .map(|a| {
                a.iter()
                    .map(|e| e.as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_else(|| vec![text.trim().to_owned()]);
        let mut msg = format!("refused ({status}):");
        for e in errs {
            msg.push_str("\n  ");
            msg.push_str(&e);
        }
        Err(CliError::Refused(msg))
    }
}

/// The active silences as aligned columns, a header first.
fn table(list: &Value) -> String {
    let header = ["ID", "RULE", "MATCHERS", "ENDS AT", "CREATED BY", "COMMENT"].map(String::from);
    let mut rows = vec![header.to_vec()];
    for s in list.as_array().into_iter().flatten() {
        let text = |k: &str| s[k].as_str().unwrap_or_default().to_owned();
        let mut matchers: Vec<String> = Vec::new();
        for (kind, key) in [("label", "labels"), ("group", "group")] {
            for (k, v) in s[key].as_object().into_iter().flatten() {
                let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
                matchers.push(format!("{kind}:{k}={v}"));
            }
        }
        rows.push(vec![
            text("id"),
            text("rule"),
            if matchers.is_empty() {
                "-".into()
            } else {
                matchers.join(",")
            },
            text("ends_at"),
            text("created_by"),
            text("comment"),
        ]);
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, cell) in r.iter().enumerate() {
            if i + 1 < r.len() {
                line.push_str(&format!("{cell:<w$}  ", w = widths[i]));
            } else {
                line.push_str(cell);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(input: &str, expected: Result<(&str, &str), ()>) {
        let got = key_value(input);
        match expected {
            Ok((k, v)) => assert_eq!(got, Ok((k.to_owned(), v.to_owned())), "{input}"),
            Err(()) => assert!(got.is_err(), "{input}: {got:?}"),
        }
    }

    #[test]
    fn key_values() {
        check("desk=asia", Ok(("desk", "asia")));
        check("source=a=b", Ok(("source", "a=b")));
        check("desk=", Ok(("desk", "")));
        check("=asia", Err(()));
        check("desk", Err(()));
    }

    #[test]
    fn segments_and_table() {
        assert_eq!(url_segment("ab-1_.~"), "ab-1_.~");
        assert_eq!(url_segment("a/b c"), "a%2Fb%20c");
        let t = table(
            &json!([{"id": "1a", "rule": "ru-*", "labels": {"desk": "asia"},
            "group": {"n": 3}, "ends_at": "2026-07-12T18:00:00Z", "created_by": "ann",
            "comment": "night"}]),
        );
        assert_eq!(
            t,
            "ID  RULE  MATCHERS                   ENDS AT               CREATED BY  COMMENT\n\
             1a  ru-*  label:desk=asia,group:n=3  2026-07-12T18:00:00Z  ann         night\n"
        );
        assert_eq!(table(&json!([])).lines().count(), 1);
    }

    #[test]
    fn values_are_checked_before_sending() {
        assert!(duration("6h").is_ok());
        assert!(duration("six").is_err());
        assert!(time("2026-07-12T18:00:00Z").is_ok());
        assert!(time("tomorrow").is_err());
    }
}
