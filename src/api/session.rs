//! GUI sessions (SPEC §8): the page asks for the operator token once and
//! trades it for an HttpOnly, SameSite=Strict cookie (`POST /api/v1/session`
//! with `Authorization: Bearer <token>` -> 204 + `Set-Cookie`), which the
//! operator API and its event stream then accept in the token's place.
//! `DELETE /api/v1/session` logs out.
//!
//! A request that rides on the cookie and changes something must say
//! `content-type: application/json`: a cross-site HTML form cannot send
//! that, so the cookie cannot be used to post from another site
//! (SameSite=Strict already keeps it off cross-site requests; this is the
//! second lock).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

/// The session cookie's name.
pub const COOKIE: &str = "ztpd_session";
/// How long a session lasts without use: a working day and then some.
const IDLE: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; the least recently used goes first. Far above the
/// operators one daemon has, and a bound on what repeated logins can cost.
const MAX_SESSIONS: usize = 1024;

/// The live sessions, by id.
pub struct Sessions {
    live: Mutex<HashMap<String, Instant>>,
    /// Bumped whenever a session is closed: what a stream opened with a
    /// cookie (`/api/v1/events`) watches, to end when its session does.
    closed: tokio::sync::watch::Sender<u64>,
}

impl Default for Sessions {
    fn default() -> Self {
        Sessions {
            live: Mutex::default(),
            closed: tokio::sync::watch::channel(0).0,
        }
    }
}

impl Sessions {
    /// Told each time a session is closed (then check yours with
    /// [`Sessions::is_live`]).
    pub fn closings(&self) -> tokio::sync::watch::Receiver<u64> {
        self.closed.subscribe()
    }

    /// Whether `id` is a live session, without counting this as a use.
    pub fn is_live(&self, id: &str) -> bool {
        let live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        live.iter().any(|(k, used)| {
            super::same(k.as_bytes(), id.as_bytes()) && now.duration_since(*used) < IDLE
        })
    }

    /// A new session id (32 random bytes from the OS, hex).
    pub fn open(&self) -> String {
        let id = super::random_hex(32);
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        live.retain(|_, used| now.duration_since(*used) < IDLE);
        if live.len() >= MAX_SESSIONS {
            if let Some(oldest) = live.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone()) {
                live.remove(&oldest);
            }
        }
        live.insert(id.clone(), now);
        id
    }

    /// Whether `id` is a live session; using it keeps it alive.
    pub fn check(&self, id: &str) -> bool {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        // Constant-time per entry, so an id cannot be guessed byte by byte.
        let found = live
            .keys()
            .find(|k| super::same(k.as_bytes(), id.as_bytes()))
            .cloned();
        match found {
            Some(k) if now.duration_since(live[&k]) < IDLE => {
                live.insert(k, now);
                true
            }
            Some(k) => {
                live.remove(&k);
                false
            }
            None => false,
        }
    }

    /// End every session (the token that bought them was replaced).
    pub fn close_all(&self) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.clear();
        drop(live);
        self.closed.send_modify(|n| *n += 1);
    }

    pub fn close(&self, id: &str) {
        let mut live = self.live.lock().unwrap_or_else(|p| p.into_inner());
        live.retain(|k, _| !super::same(k.as_bytes(), id.as_bytes()));
        drop(live);
        self.closed.send_modify(|n| *n += 1);
    }
}

/// The session cookie's value in a request, if any.
pub fn cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.trim())
}

/// Refusal for a cookie-authenticated change without a JSON body type.
pub fn needs_json(method: &Method, headers: &HeaderMap) -> Option<Response> {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return None;
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    (!json).then(|| {
        (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Json(serde_json::json!({"error": "a change made with the session cookie must send content-type: application/json"})),
        )
            .into_response()
    })
}

fn set_cookie(value: &str, max_age: Option<u64>) -> HeaderValue {
    let age = max_age
        .map(|s| format!("; Max-Age={s}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/{age}"
    ))
    .unwrap_or_else(|_| HeaderValue::from_static("ztpd_session=; Max-Age=0"))
}

/// `POST /api/v1/session`: only with the token itself (the route checks it).
pub fn login(sessions: &Sessions) -> Response {
    let id = sessions.open();
    (
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, set_cookie(&id, Some(IDLE.as_secs())))],
    )
        .into_response()
}

/// `DELETE /api/v1/session`: forget the session and clear the cookie.
pub fn logout(sessions: &Sessions, headers: &HeaderMap) -> Response {
    if let Some(id) = cookie(headers) {
        sessions.close(id);
    }
    (
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, set_cookie("", Some(0)))],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_open_check_and_close() {
        let s = Sessions::default();
        let id = s.open();
        assert_eq!(id.len(), 64);
        assert!(s.check(&id));
        assert!(!s.check("nope"));
        assert!(!s.check(&id[..63]));
        s.close(&id);
        assert!(!s.check(&id));
    }

    #[test]
    fn the_cookie_is_found_among_others_and_json_is_required_for_changes() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; ztpd_session=abc ; b=2"),
        );
        assert_eq!(cookie(&h), Some("abc"));
        assert!(needs_json(&Method::GET, &h).is_none());
        assert!(needs_json(&Method::POST, &h).is_some());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json; charset=utf-8"),
        );
        assert!(needs_json(&Method::POST, &h).is_none());
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        assert!(needs_json(&Method::DELETE, &h).is_some());
    }
}
