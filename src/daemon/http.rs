//! The HTTP endpoints (SPEC §10): metrics, health, readiness, the loaded
//! rules, and reload.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::json;

use super::Shared;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/rules", get(rules))
        .route("/-/reload", post(reload))
        .with_state(shared)
}

async fn metrics(State(s): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(),
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

async fn rules(State(s): State<Arc<Shared>>) -> Response {
    let engine = s.rules.current();
    let rs = &engine.rules;
    let list: Vec<_> = rs
        .rules
        .iter()
        .map(|r| json!({"id": r.id, "title": r.title, "severity": r.severity.as_str(), "mode": r.mode.name()}))
        .collect();
    axum::Json(json!({
        "version": rs.version,
        "loaded_at": newswatch_core::event::format_time(&rs.loaded_at),
        "rules": list,
    }))
    .into_response()
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
