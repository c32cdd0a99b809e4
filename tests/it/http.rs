//! The HTTP listener against hostile clients (SPEC §10): half-open
//! (slowloris) connections neither starve the server nor delay SIGTERM.
//! The daemon runs as a child process on a real broker (Tansu).

use std::io::Write;
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
    let read = std::io::Read::read(&mut one, &mut buf);
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
