//! Who may use the page: on loopback, requests that name this host (a page of another site
//! that rebinds its DNS name to 127.0.0.1 names its own); elsewhere, only requests carrying
//! the token. Every POST carries the page's CSRF token, which another site cannot read.

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use super::App;
use super::reply::ApiError;

/// The header the page sends its CSRF token in.
pub(super) const CSRF_HEADER: &str = "x-weir-csrf";

pub(super) async fn check(
    State(app): State<Arc<App>>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let headers = request.headers();
    if !app.hosts.is_empty() && !host_allowed(headers, &app.hosts) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "this server answers only requests for its own address",
            "open the address weir serve printed",
        ));
    }
    if let Some(token) = &app.token
        && !carries_token(&request, token)
    {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "a token is required",
            "open the page with ?token=T (the --token or WEIR_SERVE_TOKEN it was started with)",
        ));
    }
    if request.method() == Method::POST
        && !same(
            headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()),
            &app.csrf,
        )
    {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "missing or wrong CSRF token",
            "send the request from the page (its X-Weir-Csrf header comes from /api/meta)",
        ));
    }
    Ok(next.run(request).await)
}

fn host_allowed(headers: &HeaderMap, hosts: &[String]) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    host.is_some_and(|h| hosts.iter().any(|a| a.eq_ignore_ascii_case(h)))
}

fn carries_token(request: &Request, token: &str) -> bool {
    let bearer = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if same(bearer, token) {
        return true;
    }
    let query = request.uri().query().unwrap_or_default();
    url::form_urlencoded::parse(query.as_bytes())
        .any(|(k, v)| k == "token" && same(Some(&v), token))
}

/// Equal, in time that does not depend on where they differ.
fn same(given: Option<&str>, expected: &str) -> bool {
    let Some(given) = given else { return false };
    given.len() == expected.len()
        && given
            .bytes()
            .zip(expected.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// `Host` values a loopback server accepts; none (no check) on other addresses, where the
/// token guards it and the host is whatever name the machine is reached by.
pub(super) fn allowed_hosts(bind: IpAddr, port: u16) -> Vec<String> {
    if !bind.is_loopback() {
        return Vec::new();
    }
    ["127.0.0.1", "localhost", "[::1]"]
        .iter()
        .flat_map(|h| [format!("{h}:{port}"), h.to_string()])
        .collect()
}

/// 128 random bits in hex.
pub(super) fn random_token() -> String {
    let mut bytes = [0u8; 16];
    // getrandom fails only where the OS has no source of randomness; the clock and the pid
    // are then the best there is.
    if getrandom::fill(&mut bytes).is_err() {
        let seed = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
        bytes.copy_from_slice(&blake3::hash(seed.as_bytes()).as_bytes()[..16]);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
