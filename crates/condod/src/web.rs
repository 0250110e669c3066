//! The dashboard: its files, built into the binary, and browser sessions.
//!
//! A browser logs in once with a token and gets a session cookie (HttpOnly, SameSite=Strict).
//! A request carrying the cookie acts as the token's principal, looked up anew each time so a
//! revoked or expired token ends its sessions. A request that may change something must also
//! carry the session's CSRF token in `X-Condo-CSRF`; a WebSocket upgrade carries it as the `csrf`
//! query parameter and must come from the page's own origin.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use condo_api::{Principal, SessionInfo, SessionLogin};

use crate::error::{parse_json, ApiError, ApiResult};
use crate::App;

/// The cookie that names a session.
const COOKIE: &str = "condo_session";
/// The header that carries the CSRF token.
pub const CSRF_HEADER: &str = "x-condo-csrf";
/// How long a session lasts without use.
const IDLE: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; the least recently used goes first.
const MAX_SESSIONS: usize = 10_000;

/// One logged-in browser.
struct Session {
    token_hash: String,
    csrf: String,
    used: Instant,
}

/// The daemon's browser sessions, in memory: a daemon restart logs browsers out.
#[derive(Default)]
pub struct Sessions(Mutex<HashMap<String, Session>>);

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The token hash and CSRF token of session `id`, if it is alive; marks it used.
    fn touch(&self, id: &str) -> Option<(String, String)> {
        let mut m = self.lock();
        let s = m.get_mut(id)?;
        if s.used.elapsed() > IDLE {
            m.remove(id);
            return None;
        }
        s.used = Instant::now();
        Some((s.token_hash.clone(), s.csrf.clone()))
    }

    fn insert(&self, id: String, s: Session) {
        let mut m = self.lock();
        m.retain(|_, s| s.used.elapsed() <= IDLE);
        if m.len() >= MAX_SESSIONS {
            if let Some(oldest) = m.iter().min_by_key(|(_, s)| s.used).map(|(k, _)| k.clone()) {
                m.remove(&oldest);
            }
        }
        m.insert(id, s);
    }

    fn remove(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// A file of the dashboard.
struct Asset {
    path: &'static str,
    kind: &'static str,
    body: &'static [u8],
}

macro_rules! own {
    ($path:literal, $kind:expr, $file:literal) => {
        Asset {
            path: $path,
            kind: $kind,
            body: include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../web/", $file)),
        }
    };
}

macro_rules! vendored {
    ($path:literal, $kind:expr, $file:literal) => {
        Asset {
            path: $path,
            kind: $kind,
            body: include_bytes!(concat!(env!("OUT_DIR"), "/", $file)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

static ASSETS: &[Asset] = &[
    own!("/ui/", "text/html; charset=utf-8", "index.html"),
    own!("/ui/app.js", JS, "app.js"),
    own!("/ui/app.css", CSS, "app.css"),
    own!("/ui/favicon.svg", "image/svg+xml", "favicon.svg"),
    vendored!("/ui/xterm.js", JS, "xterm.js"),
    vendored!("/ui/xterm.css", CSS, "xterm.css"),
    vendored!("/ui/addon-fit.js", JS, "addon-fit.js"),
];

/// The dashboard's routes; they sit outside the API's authorisation layer and do their own.
pub fn router() -> Router<Arc<App>> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/ui/") }))
        .route("/ui", get(|| async { Redirect::to("/ui/") }))
        .route("/ui/", get(asset))
        .route("/ui/{file}", get(asset))
        .route("/ui/session", get(session).post(login).delete(logout))
}

async fn asset(req: Request) -> Response {
    let path = req.uri().path();
    let Some(a) = ASSETS.iter().find(|a| a.path == path) else {
        return ApiError::not_found("page", path).into_response();
    };
    let mut r = (
        [
            (header::CONTENT_TYPE, a.kind),
            (header::CACHE_CONTROL, "no-cache"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::X_FRAME_OPTIONS, "DENY"),
            (header::REFERRER_POLICY, "same-origin"),
        ],
        a.body,
    )
        .into_response();
    if a.path == "/ui/" {
        r.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; \
                 frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            ),
        );
    }
    r
}

/// The value of cookie `name` in `headers`.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// Whether the request's `Origin`, when it has one, is the host it was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let origin_host = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .unwrap_or("");
    !host.is_empty() && origin_host == host
}

fn info(principal: Principal, csrf: String) -> SessionInfo {
    SessionInfo { principal, csrf }
}

/// `POST /ui/session`: log in with a token. Every attempt goes to the audit log.
async fn login(
    State(app): State<Arc<App>>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<crate::auth::Peer>>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let mut rec = crate::api::audit::Record::new(&Method::POST, "/ui/session", "/ui/session");
    let tls = peer.is_some_and(|p| p.0 .0.tls);
    let resp = match start_session(&app, &headers, &body, &mut rec, tls) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    };
    crate::api::audit::answer(&app, Some(rec), resp).await
}

fn start_session(
    app: &App,
    headers: &HeaderMap,
    body: &[u8],
    rec: &mut crate::api::audit::Record,
    tls: bool,
) -> ApiResult<Response> {
    if !same_origin(headers) {
        return Err(ApiError::forbidden("log in from the dashboard's own page"));
    }
    let l: SessionLogin = parse_json(body)?;
    let hash = crate::auth::hash(l.token.trim());
    let principal = crate::auth::lookup_hash(app, &hash)?.ok_or_else(|| {
        let mut e = ApiError::unauthorized("the token is not valid (expired or revoked?)");
        e.0.field = Some("token".into());
        e
    })?;
    rec.principal(&principal);
    let id = crate::auth::random_hex(32).map_err(|e| ApiError::internal(e.to_string()))?;
    let csrf = crate::auth::random_hex(24).map_err(|e| ApiError::internal(e.to_string()))?;
    app.sessions.insert(
        id.clone(),
        Session {
            token_hash: hash,
            csrf: csrf.clone(),
            used: Instant::now(),
        },
    );
    // Over TLS the cookie is for TLS only: no plain-HTTP service on the same host gets it.
    let secure = if tls { "; Secure" } else { "" };
    let set = format!("{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict{secure}");
    Ok(([(header::SET_COOKIE, set)], Json(info(principal, csrf))).into_response())
}

/// `GET /ui/session`: who this browser is logged in as, and its CSRF token.
async fn session(State(app): State<Arc<App>>, headers: HeaderMap) -> ApiResult<Json<SessionInfo>> {
    let id = cookie(&headers, COOKIE).ok_or_else(|| ApiError::unauthorized("not logged in"))?;
    let (hash, csrf) = app
        .sessions
        .touch(id)
        .ok_or_else(|| ApiError::unauthorized("the session has ended: log in again"))?;
    match crate::auth::lookup_hash(&app, &hash)? {
        Some(p) => Ok(Json(info(p, csrf))),
        None => {
            app.sessions.remove(id);
            Err(ApiError::unauthorized(
                "the token behind this session is no longer valid",
            ))
        }
    }
}

/// `DELETE /ui/session`: log out.
async fn logout(State(app): State<Arc<App>>, headers: HeaderMap) -> Response {
    if let Some(id) = cookie(&headers, COOKIE) {
        if let Some((_, csrf)) = app.sessions.touch(id) {
            let given = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            if given != Some(csrf.as_str()) {
                return ApiError::forbidden(
                    "log out from the dashboard's own page (CSRF token missing)",
                )
                .into_response();
            }
            app.sessions.remove(id);
        }
    }
    (
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"),
        )],
    )
        .into_response()
}

/// The principal of a request that carries a session cookie and no token: `None` without a
/// cookie. A request that may change something needs the CSRF token besides.
pub fn cookie_principal(app: &App, req: &Request) -> Option<Result<Principal, ApiError>> {
    let id = cookie(req.headers(), COOKIE)?;
    Some(check_session(app, req, id))
}

fn check_session(app: &App, req: &Request, id: &str) -> Result<Principal, ApiError> {
    let (hash, csrf) = app
        .sessions
        .touch(id)
        .ok_or_else(|| ApiError::unauthorized("the session has ended: log in again"))?;
    let upgrade = req.headers().contains_key(header::UPGRADE);
    let safe = matches!(*req.method(), Method::GET | Method::HEAD) && !upgrade;
    if !safe {
        let given = if upgrade {
            req.uri()
                .query()
                .unwrap_or("")
                .split('&')
                .find_map(|kv| kv.strip_prefix("csrf="))
        } else {
            req.headers().get(CSRF_HEADER).and_then(|v| v.to_str().ok())
        };
        if given != Some(csrf.as_str()) || !same_origin(req.headers()) {
            return Err(ApiError::forbidden(
                "a request from the dashboard needs its CSRF token (X-Condo-CSRF) and its own origin",
            ));
        }
    }
    crate::auth::lookup_hash(app, &hash)
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| ApiError::unauthorized("the token behind this session is no longer valid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_and_origins() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; condo_session=abc; b=2"),
        );
        assert_eq!(cookie(&h, COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), None);
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
    }

    #[test]
    fn every_asset_is_there() {
        for a in ASSETS {
            assert!(!a.body.is_empty(), "{} is empty", a.path);
        }
    }
}
