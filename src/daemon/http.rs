//! The HTTP endpoints (SPEC §10): metrics, health, readiness, the loaded
//! rules, and reload; and the listener that serves them ([`serve`]).
//!
//! The listener is served connection by connection with hyper rather than
//! through `axum::serve`, which sets no timer and so no header-read
//! timeout. Invariants, so that slow or stuck clients neither starve the
//! server nor delay shutdown:
//!
//! * a client gets [`HEADER_READ_TIMEOUT`] to send a request's headers,
//!   then its connection is closed;
//! * at most [`MAX_CONNECTIONS`] connections are open; one more is closed
//!   at once (the stuck ones free their slots within the timeout);
//! * after `stop`, no connection is accepted; open ones get
//!   [`SHUTDOWN_GRACE`] (or until `hard`) to finish, then are dropped, so
//!   [`serve`] always returns.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::ratelimit::LogLimiter;
use super::Shared;

/// How long a client may take to send a request's headers.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Open connections at most. Prometheus, probes and an operator need a
/// handful; the margin is for clients that stall until the timeout.
pub const MAX_CONNECTIONS: usize = 512;
/// How long open connections may finish after `stop`.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Backoff after a failed `accept` (out of file descriptors, say), so the
/// loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serve `app` on `listener` until `stop`; then let open connections finish
/// for [`SHUTDOWN_GRACE`] or until `hard`, whichever comes first, and drop
/// the rest.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    stop: CancellationToken,
    hard: CancellationToken,
) {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let builder = Arc::new(builder);
    // Cancelled when the grace is over: each connection then asks hyper to
    // close once its request is answered.
    let graceful = CancellationToken::new();
    let mut conns = JoinSet::new();
    let mut over_cap = LogLimiter::new(Duration::from_secs(60));
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            a = listener.accept() => a,
        };
        let (stream, peer) = match accepted {
            Ok(x) => x,
            Err(e) => {
                tracing::warn!(error = %e, "http: accept failed");
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(ACCEPT_BACKOFF) => continue,
                }
            }
        };
        if conns.len() >= MAX_CONNECTIONS {
            if let Some(held) = over_cap.allow() {
                tracing::warn!(%peer, max = MAX_CONNECTIONS, held_back = held, "http: connection cap reached, closing a new connection");
            }
            drop(stream);
            continue;
        }
        conns.spawn(connection(
            builder.clone(),
            stream,
            peer,
            app.clone(),
            graceful.clone(),
        ));
    }
    drop(listener);
    graceful.cancel();
    let drained = async { while conns.join_next().await.is_some() {} };
    tokio::select! {
        _ = drained => {}
        _ = tokio::time::sleep(SHUTDOWN_GRACE) => {}
        _ = hard.cancelled() => {}
    }
    if !conns.is_empty() {
        tracing::info!(
            open = conns.len(),
            "http: closing connections still open after the shutdown grace"
        );
    }
    conns.abort_all();
    while conns.join_next().await.is_some() {}
}

/// One client connection, until it closes, fails, or (after `graceful`)
/// has answered its request in flight.
async fn connection(
    builder: Arc<hyper::server::conn::http1::Builder>,
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    graceful: CancellationToken,
) {
    let io = hyper_util::rt::TokioIo::new(stream);
    let service = hyper_util::service::TowerToHyperService::new(app);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = graceful.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        // Timeouts and resets by clients are routine; not worth a warning.
        tracing::debug!(%peer, error = %e, "http: connection ended with an error");
    }
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/rules", get(rules))
        .route("/-/reload", post(reload))
        .merge(super::silences::routes())
        // Around every route, so a POST or DELETE route added later is
        // covered without opting in.
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            authorize,
        ))
        .with_state(shared)
}

/// With `http.auth_token_file` set, a POST or DELETE needs `Authorization:
/// Bearer <token>`; 401 otherwise (SPEC §10). Other methods stay open.
async fn authorize(
    State(s): State<Arc<Shared>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let Some(token) = &s.config.http.auth_token else {
        return next.run(request).await;
    };
    if !matches!(*request.method(), Method::POST | Method::DELETE) {
        return next.run(request).await;
    }
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| bearer(v.as_bytes()));
    if presented.is_some_and(|p| token.matches(p)) {
        return next.run(request).await;
    }
    tracing::warn!(
        method = %request.method(),
        path = request.uri().path(),
        "http: refused a request without a valid bearer token"
    );
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        "401 unauthorized: this endpoint needs Authorization: Bearer <token>\n",
    )
        .into_response()
}

/// The credentials of an `Authorization: Bearer …` header value (the
/// scheme is case-insensitive, RFC 9110 §11.1).
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    Some(rest.trim_ascii())
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    // Off the reactor: with a series per rule, 100k rules take a second to
    // render (operator guide §7).
    let Ok(text) = tokio::task::spawn_blocking(move || s.metrics.render()).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn healthz(State(s): State<Arc<Shared>>) -> Response {
    match s.health.check() {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n")).into_response(),
    }
}

async fn readyz(State(s): State<Arc<Shared>>) -> Response {
    match s.health.ready() {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(why) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        )
            .into_response(),
    }
}

/// The rules in force, each with its numbers since start (matches, alerts,
/// last match, verification work; `crate::rulestats`). Built off the
/// reactor: it grows with the rule count.
async fn rules(State(s): State<Arc<Shared>>) -> Response {
    match tokio::task::spawn_blocking(move || rules_json(&s)).await {
        Ok(body) => axum::Json(body).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

fn rules_json(s: &Shared) -> serde_json::Value {
    let engine = s.rules.current();
    let rs = &engine.rules;
    let stats = s
        .metrics
        .rule_stats()
        .of(rs.rules.iter().map(|r| r.id.as_str()));
    let list: Vec<_> = rs
        .rules
        .iter()
        .zip(stats)
        .map(|(r, st)| {
            json!({
                "id": r.id, "title": r.title, "severity": r.severity.as_str(), "mode": r.mode.name(),
                "matches": st.matches,
                "alerts": st.alerts,
                "last_match_at": st.last_match_at.map(|t| newswatch_core::event::format_time(&t)),
                "candidates": st.candidates,
                "eval_seconds": st.eval_seconds(),
            })
        })
        .collect();
    json!({
        "version": rs.version,
        "loaded_at": newswatch_core::event::format_time(&rs.loaded_at),
        "rules": list,
    })
}

async fn reload(State(s): State<Arc<Shared>>) -> Response {
    match s.rules.reload(&s.metrics, "http").await {
        Ok(engine) => axum::Json(json!({
            "status": "reloaded",
            "version": engine.rules.version,
            "rules": engine.rules.rules.len(),
        }))
        .into_response(),
        Err(errs) => (StatusCode::BAD_REQUEST, format!("{errs}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(value: &str, expected: Option<&str>) {
        assert_eq!(
            bearer(value.as_bytes()),
            expected.map(str::as_bytes),
            "{value:?}"
        );
    }

    #[test]
    fn bearer_credentials() {
        check("Bearer s3cret", Some("s3cret"));
        check("bearer s3cret", Some("s3cret"));
        check("BEARER  s3cret ", Some("s3cret"));
        check("Bearer ", Some(""));
        check("Basic czNjcmV0", None);
        check("Bearer", None);
        check("s3cret", None);
        check("", None);
    }
}
