//! The built-in endpoints and their JSON bodies.
//!
//! Every handler reads one [`HostStatus`] snapshot per request, so a body is
//! always consistent with its status code.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use steward_core::{
    Blocked, Health as HealthLevel, HostHandle, HostStatus, ServiceState, ServiceStatus,
};

/// The built-in routes, `GET /healthz`, `GET /readyz` and `GET /status`, as a
/// router whose state is the [`HostHandle`] they report on.
///
/// [`HttpServer`](crate::HttpServer) serves these already; use this function
/// to mount them in an axum application of your own instead.
///
/// ```
/// use steward_core::Host;
///
/// let host = Host::builder().build()?;
/// let app: axum::Router = axum::Router::new()
///     .nest("/internal", steward_http::routes())
///     .with_state(host.handle());
/// # Ok::<(), steward_core::ConfigError>(())
/// ```
pub fn routes() -> Router<HostHandle> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/status", get(status))
}

/// `{"status":"ok"|"degraded"|"faulted"|"blocked"|"unhealthy",
/// "faulted":[{"name","state":"faulted","error","at"}],
/// "blocked":[{"name","since","message"}],
/// "unhealthy":[{"name","problem"}], "degraded":[{"name","problem"}]}`
#[derive(Serialize)]
struct Health<'a> {
    status: &'static str,
    faulted: Vec<NamedState<'a>>,
    blocked: Vec<NamedBlocked<'a>>,
    unhealthy: Vec<NamedProblem<'a>>,
    degraded: Vec<NamedProblem<'a>>,
}

/// A service that is not healthy and why:
/// `{"name":"flaky","problem":"crash-looping: restarted 3 times, ..."}`.
#[derive(Serialize)]
struct NamedProblem<'a> {
    name: &'a str,
    problem: &'a str,
}

fn problems(status: &HostStatus, health: HealthLevel) -> Vec<NamedProblem<'_>> {
    status
        .with_health(health)
        .map(|s| NamedProblem {
            name: &s.name,
            problem: s.problem.as_deref().unwrap_or(""),
        })
        .collect()
}

/// A service holding its runtime thread, as the host's watchdog saw it:
/// `{"name":"hog","since":"...","message":"blocking its runtime thread"}`.
#[derive(Serialize)]
struct NamedBlocked<'a> {
    name: &'a str,
    #[serde(flatten)]
    blocked: &'a Blocked,
}

/// `{"status":"ready"|"not_ready"|"shutting_down","shutting_down":bool,"not_ready":[...]}`
#[derive(Serialize)]
struct Readiness<'a> {
    status: &'static str,
    shutting_down: bool,
    not_ready: Vec<NamedState<'a>>,
}

/// A service named with its state, flattened the way `/status` shows it:
/// `{"name":"flaky","state":"faulted","error":"...","at":"..."}`, or
/// `{"name":"warming","state":"starting","ready":false}`.
#[derive(Serialize)]
struct NamedState<'a> {
    name: &'a str,
    #[serde(flatten)]
    state: &'a ServiceState,
    ready: bool,
}

impl<'a> From<&'a ServiceStatus> for NamedState<'a> {
    fn from(s: &'a ServiceStatus) -> Self {
        NamedState {
            name: &s.name,
            state: &s.state,
            ready: s.ready,
        }
    }
}

/// Liveness: 200 unless a service is unhealthy (faulted, blocking its
/// runtime thread, or silent past its liveness interval), 503 naming each
/// with why otherwise. A crash-looping service makes the body say
/// `degraded` but keeps the 200: restarting is the host doing its job.
/// Served from the server's own thread, so it answers while the host's
/// runtime is blocked.
async fn healthz(State(host): State<HostHandle>) -> Response {
    let status = host.status();
    let faulted: Vec<_> = status.faulted().map(NamedState::from).collect();
    let blocked: Vec<_> = status
        .services
        .iter()
        .filter_map(|s| {
            s.blocked.as_ref().map(|blocked| NamedBlocked {
                name: &s.name,
                blocked,
            })
        })
        .collect();
    let unhealthy = problems(&status, HealthLevel::Unhealthy);
    let degraded = problems(&status, HealthLevel::Degraded);
    let (code, label) = if status.live {
        let label = if degraded.is_empty() {
            "ok"
        } else {
            "degraded"
        };
        (StatusCode::OK, label)
    } else if !faulted.is_empty() {
        (StatusCode::SERVICE_UNAVAILABLE, "faulted")
    } else if !blocked.is_empty() {
        (StatusCode::SERVICE_UNAVAILABLE, "blocked")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "unhealthy")
    };
    let body = Health {
        status: label,
        faulted,
        blocked,
        unhealthy,
        degraded,
    };
    (code, Json(body)).into_response()
}

/// Readiness: 200 when the host is ready, 503 naming the services that are
/// not (and saying whether the host is shutting down) otherwise.
async fn readyz(State(host): State<HostHandle>) -> Response {
    let status = host.status();
    let not_ready = status.not_ready().map(NamedState::from).collect();
    let (code, label) = readiness_label(&status);
    let body = Readiness {
        status: label,
        shutting_down: status.shutting_down,
        not_ready,
    };
    (code, Json(body)).into_response()
}

fn readiness_label(status: &HostStatus) -> (StatusCode, &'static str) {
    if status.ready {
        (StatusCode::OK, "ready")
    } else if status.shutting_down {
        (StatusCode::SERVICE_UNAVAILABLE, "shutting_down")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
    }
}

/// The whole [`HostStatus`], always 200: it describes the host, it does not
/// judge it.
async fn status(State(host): State<HostHandle>) -> Json<HostStatus> {
    Json(host.status())
}

/// `{"error":"not found","method":"GET","path":"/nope"}`
#[derive(Serialize)]
struct RouteError<'a> {
    error: &'static str,
    method: &'a str,
    path: &'a str,
}

/// Unknown paths answer in JSON like everything else, so that a probe
/// pointed at the wrong path fails with a body that says so.
pub(crate) async fn not_found(method: Method, uri: Uri) -> Response {
    let body = RouteError {
        error: "not found",
        method: method.as_str(),
        path: uri.path(),
    };
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

/// A known path with the wrong method (`POST /healthz`).
pub(crate) async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let body = RouteError {
        error: "method not allowed",
        method: method.as_str(),
        path: uri.path(),
    };
    (StatusCode::METHOD_NOT_ALLOWED, Json(body)).into_response()
}
