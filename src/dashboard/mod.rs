//! `kiln dashboard`: a local, read-only web page of one or more sweeps that follows their
//! journals as they grow, and the JSON API it draws from.
//!
//! Every request reads state already folded by the follower thread ([`follow`]); nothing a
//! request says names a file: sweeps are chosen by their index, trials by their number, and
//! unknown query parameters are refused, so no request can reach outside the sweeps given.

mod api;
mod follow;

pub use follow::{Feed, Followed};

use crate::error::{Context, Error, Result};
use axum::Router;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The page and its script and style, inside the binary: the dashboard works offline.
const PAGE: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/style.css");

/// What the handlers share.
#[derive(Clone)]
struct Shared {
    sweeps: Arc<Vec<Followed>>,
    /// The `Host` headers a request may carry when listening on loopback (this server's own
    /// names): a page elsewhere that rebinds its DNS name to this address is refused. `None`
    /// on another address, whose names are not known here.
    hosts: Option<Arc<Vec<String>>>,
}

/// Serves `sweeps` on `host:port` until the process is stopped; `ready` is told the address.
pub fn serve(
    sweeps: Vec<Followed>,
    host: IpAddr,
    port: u16,
    ready: impl FnOnce(SocketAddr),
) -> Result<u8> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context(|| "cannot start the dashboard's runtime".into())?;
    let sweeps = Arc::new(sweeps);
    follow::follow(sweeps.clone());
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind((host, port))
            .await
            .map_err(|e| {
                Error::input(format!(
                    "cannot listen on {host}:{port}: {e}; choose another with --port"
                ))
            })?;
        let address = listener
            .local_addr()
            .context(|| "cannot read the dashboard's address".into())?;
        let shared = Shared {
            sweeps,
            hosts: host
                .is_loopback()
                .then(|| Arc::new(allowed_hosts(host, address.port()))),
        };
        ready(address);
        axum::serve(listener, router(shared))
            .await
            .context(|| "the dashboard stopped".into())?;
        Ok(0)
    })
}

/// The names this server answers to.
fn allowed_hosts(host: IpAddr, port: u16) -> Vec<String> {
    let mut names = vec![
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ];
    names.push(SocketAddr::new(host, port).to_string());
    names
}

fn router(shared: Shared) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset(PAGE, "text/html; charset=utf-8") }),
        )
        .route(
            "/app.js",
            get(|| async { asset(SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/style.css",
            get(|| async { asset(STYLE, "text/css; charset=utf-8") }),
        )
        .route("/api/sweeps", get(sweeps))
        .route("/api/sweep", get(sweep))
        .route("/api/trials", get(trials))
        .route("/api/curves", get(curves))
        .route("/api/trial", get(trial))
        .fallback(|| async {
            refuse(
                StatusCode::NOT_FOUND,
                "no such page; the API is under /api/ (see the README)".into(),
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            own_host_only,
        ))
        .with_state(shared)
}

async fn own_host_only(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    if let Some(hosts) = &shared.hosts
        && !hosts.iter().any(|h| h == host)
    {
        return refuse(
            StatusCode::FORBIDDEN,
            format!("the dashboard answers only to {}", hosts.join(", ")),
        );
    }
    next.run(request).await
}

fn asset(text: &'static str, kind: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(kind)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        text,
    )
        .into_response()
}

/// An error as JSON: `{"error": "..."}`.
fn refuse(status: StatusCode, why: String) -> Response {
    (status, Json(serde_json::json!({ "error": why }))).into_response()
}

/// Query parameters: only these, each checked; anything else is refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ask {
    /// The sweep's index in `/api/sweeps` (default: the first).
    #[serde(default)]
    sweep: usize,
    /// Only what changed after this version.
    since: Option<u64>,
    /// One trial.
    trial: Option<u64>,
    /// Several trials, comma-separated.
    trials: Option<String>,
}

type Asked = std::result::Result<Query<Ask>, axum::extract::rejection::QueryRejection>;

/// `answer` to the query, or a 400 that says what is allowed.
fn answer(query: Asked, answer: impl FnOnce(Ask) -> Response) -> Response {
    match query {
        Ok(Query(ask)) => answer(ask),
        Err(e) => refuse(
            StatusCode::BAD_REQUEST,
            format!(
                "{}; the parameters are sweep, since, trial and trials (numbers)",
                e.body_text()
            ),
        ),
    }
}

impl Shared {
    /// The view of the sweep asked for, handed to `answer`.
    fn with_view(&self, index: usize, answer: impl FnOnce(&follow::View) -> Response) -> Response {
        match self.sweeps.get(index) {
            Some(followed) => answer(&followed.view.read().expect("not poisoned")),
            None => refuse(
                StatusCode::NOT_FOUND,
                format!(
                    "no sweep {index}; this dashboard shows {} (from 0)",
                    self.sweeps.len()
                ),
            ),
        }
    }
}

async fn sweeps(State(shared): State<Shared>, query: Asked) -> Response {
    answer(query, |_| {
        let views: Vec<_> = shared
            .sweeps
            .iter()
            .map(|s| s.view.read().expect("not poisoned"))
            .collect();
        let summaries: Vec<_> = views
            .iter()
            .enumerate()
            .map(|(i, v)| api::summary(i, v))
            .collect();
        Json(serde_json::json!({ "sweeps": summaries })).into_response()
    })
}

async fn sweep(State(shared): State<Shared>, query: Asked) -> Response {
    answer(query, |ask| {
        shared.with_view(ask.sweep, |view| {
            Json(api::detail(ask.sweep, view)).into_response()
        })
    })
}

async fn trials(State(shared): State<Shared>, query: Asked) -> Response {
    answer(query, |ask| {
        shared.with_view(ask.sweep, |view| {
            Json(api::trials(view, ask.since)).into_response()
        })
    })
}

async fn curves(State(shared): State<Shared>, query: Asked) -> Response {
    answer(query, |ask| {
        let numbers: std::result::Result<Vec<u64>, _> = ask
            .trials
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::parse)
            .collect();
        let Ok(numbers) = numbers else {
            return refuse(
                StatusCode::BAD_REQUEST,
                "trials: trial numbers separated by commas, e.g. trials=3,7".into(),
            );
        };
        shared.with_view(ask.sweep, |view| {
            let curves = api::curves(view, &numbers);
            Json(serde_json::json!({ "version": view.version(), "curves": curves })).into_response()
        })
    })
}

async fn trial(State(shared): State<Shared>, query: Asked) -> Response {
    answer(query, |ask| {
        let Some(number) = ask.trial else {
            return refuse(
                StatusCode::BAD_REQUEST,
                "trial: which trial? e.g. trial=3".into(),
            );
        };
        shared.with_view(ask.sweep, |view| match api::trial(view, number) {
            Some(page) => Json(page).into_response(),
            None => refuse(
                StatusCode::NOT_FOUND,
                match view.state.trials.len() {
                    0 => format!("no trial {number}; the sweep has no trials yet"),
                    n => format!("no trial {number}; the sweep has trials 0 to {}", n - 1),
                },
            ),
        })
    })
}
