//! The HTTP listener against hostile clients (SPEC §10): half-open
//! (slowloris) connections neither starve the server nor delay SIGTERM,
//! and with `http.auth_token_file` a POST needs the bearer token. The
//! daemon runs as a child process on a real broker (Tansu).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use newswatch_testkit::*;

use crate::util::BIN;

const RULES: &str = r#"
rules:
  - id: lavrov
    title: Lavrov
    query: 'lavrov'
"#;

/// Stalled clients: more than a few, fewer than the connection cap.
const STALLED: usize = 300;
/// The fixture's `kafka.shutdown_timeout`.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);

/// `n` connections that each send half a request line and then nothing.
fn stall(addr: &str, n: usize) -> Vec<TcpStream> {
    (0..n)
        .filter_map(|_| {
            let mut s = TcpStream::connect(addr).ok()?;
            s.write_all(b"GET /healthz HT").ok()?;
            Some(s)
        })
        .collect()
}

#[test]
fn slowloris_neither_starves_the_server_nor_delays_sigterm() {
    let fx = Fixture::new(RULES, 1, &[], "");
    let mut daemon = fx.spawn(BIN);
    daemon.wait_ready(Duration::from_secs(60));

    let stalled = stall(&fx.http, STALLED);
    assert_eq!(
        stalled.len(),
        STALLED,
        "could not open the stalled connections"
    );
    // A fresh client is still served while they hold on.
    assert_eq!(
        daemon.get("/healthz").0,
        200,
        "healthz behind {STALLED} stalled connections"
    );
    assert_eq!(daemon.get("/rules").0, 200);

    // And the server lets go of a stalled client after the header-read
    // timeout (10 s): the read sees the connection end, not our deadline.
    let mut one = &stalled[0];
    one.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut buf = [0u8; 256];
    // A signal to the test process (another test's child exiting) may
    // interrupt the read: read again.
    let read = loop {
        match std::io::Read::read(&mut one, &mut buf) {
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            r => break r,
        }
    };
    assert!(
        read.is_ok()
            || read
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "stalled connection not closed by the server: {read:?}"
    );

    let t = Instant::now();
    daemon.signal("TERM");
    let st = daemon.wait_exit(SHUTDOWN_TIMEOUT);
    // Reported, not asserted: the bound above is the contract.
    eprintln!(
        "exit {} ms after SIGTERM with {STALLED} stalled connections",
        t.elapsed().as_millis()
    );
    assert!(
        st.is_some_and(|s| s.success()),
        "exit within shutdown_timeout after SIGTERM with {STALLED} stalled connections: {st:?}"
    );
    drop(stalled);
}

/// The status of `METHOD path` on `addr`, with `Authorization: Bearer
/// <token>` when given (the testkit's client sends no headers); 0 when
/// there is no answer.
fn request(addr: &str, method: &str, path: &str, token: Option<&str>) -> u16 {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return 0;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Connection: close\r\nContent-Length: 0\r\n\r\n"
    );
    if s.write_all(req.as_bytes()).is_err() {
        return 0;
    }
    let mut raw = String::new();
    let _ = s.read_to_string(&mut raw);
    raw.split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0)
}

#[test]
fn reload_needs_the_bearer_token_and_gets_stay_open() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "  canary-t0ken\n").unwrap();
    let fx = Fixture::new(
        RULES,
        1,
        &[],
        &format!("auth_token_file = {:?}\n", token_file.display().to_string()),
    );
    let mut daemon = fx.spawn(BIN);
    daemon.wait_ready(Duration::from_secs(60));

    assert_eq!(request(&fx.http, "POST", "/-/reload", None), 401);
    assert_eq!(request(&fx.http, "POST", "/-/reload", Some("wrong")), 401);
    assert_eq!(
        request(&fx.http, "POST", "/-/reload", Some("canary-t0ken")),
        200
    );
    assert_eq!(request(&fx.http, "GET", "/rules", None), 200);
    assert_eq!(request(&fx.http, "GET", "/healthz", None), 200);
    // One reload went through, the refused ones never reached it.
    assert_eq!(
        daemon.metric(r#"newswatch_rules_reloads_total{result="success"}"#),
        Some(1.0)
    );
    daemon.terminate(SHUTDOWN_TIMEOUT);
    assert!(
        !daemon.log().contains("canary-t0ken"),
        "the token is logged"
    );
}

#[test]
fn an_empty_token_file_stops_the_start_with_a_config_error() {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "\n").unwrap();
    let fx = Fixture::new(
        RULES,
        1,
        &[],
        &format!("auth_token_file = {:?}\n", token_file.display().to_string()),
    );
    let mut daemon = fx.spawn(BIN);
    let st = daemon.wait_exit(Duration::from_secs(30));
    assert!(st.is_some_and(|s| !s.success()), "exit: {st:?}");
    let log = daemon.log();
    assert!(
        log.contains("http.auth_token_file") && log.contains("holds no token"),
        "{log}"
    );
}
