//! Loopback networking for tests and tools: a free port, one plain HTTP/1.1
//! request, and polling with a deadline.
//!
//! The HTTP client is deliberately minimal (no TLS, no chunked decoding,
//! `Connection: close`): it talks only to the daemon's own listener, whose
//! answers are short and complete. A connection that fails is status 0, so
//! a caller polling a daemon that is not up yet just sees "not 200".

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// Panics when no port can be bound: the machine cannot run these tests.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot bind a port on 127.0.0.1: {e}"))
}

/// `METHOD path` on `addr` (`host:port`), no body: (status, body). Status 0
/// when there is no answer.
pub fn http(addr: &str, method: &str, path: &str) -> (u16, String) {
    let Ok(mut s) = TcpStream::connect(addr) else {
        return (0, String::new());
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    if s.write_all(request.as_bytes()).is_err() {
        return (0, String::new());
    }
    let mut buf = String::new();
    let _ = s.read_to_string(&mut buf);
    parse_response(&buf)
}

/// (status, body) of a raw HTTP/1.1 response; status 0 when unreadable.
fn parse_response(raw: &str) -> (u16, String) {
    let status = raw
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .unwrap_or(0);
    let body = raw
        .split_once("\r\n\r\n")
        .map(|x| x.1.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Poll `f` every 100 ms until it returns true (true) or `timeout` passes
/// (false).
pub fn wait_for(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < timeout {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses() {
        let check = |raw: &str, expected: (u16, &str)| {
            assert_eq!(
                parse_response(raw),
                (expected.0, expected.1.to_owned()),
                "{raw:?}"
            );
        };
        check(
            "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            (200, "ok"),
        );
        check("HTTP/1.1 503 Service Unavailable\r\n\r\n", (503, ""));
        check("", (0, ""));
        check("garbage", (0, ""));
    }
}
