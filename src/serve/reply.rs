//! Answers: JSON, and errors as `{"error", "help"}` with a status, secrets masked as in every
//! other output.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

pub struct ApiError {
    status: StatusCode,
    error: String,
    help: String,
}

impl ApiError {
    pub(super) fn new(
        status: StatusCode,
        error: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error: error.into(),
            help: help.into(),
        }
    }

    pub(super) fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, what, "")
    }
}

/// A weir error as the CLI would print it (without colour): a mistake in what was asked
/// (exit code 2) is the request's fault, anything else the server's.
impl From<crate::Error> for ApiError {
    fn from(e: crate::Error) -> Self {
        let status = match e.exit_code() {
            2 => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let help = miette::Diagnostic::help(&e)
            .map(|h| h.to_string())
            .unwrap_or_default();
        Self::new(status, rendered(&e), help)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        crate::Error::from(e).into()
    }
}

impl From<crate::flow::FlowError> for ApiError {
    fn from(e: crate::flow::FlowError) -> Self {
        crate::Error::from(e).into()
    }
}

/// The diagnostic as text: the message, and for a query the place in it that is wrong.
fn rendered(e: &crate::Error) -> String {
    let handler =
        miette::GraphicalReportHandler::new_themed(miette::GraphicalTheme::unicode_nocolor())
            .with_links(false);
    let mut out = String::new();
    match handler.render_report(&mut out, e) {
        Ok(()) => out,
        Err(_) => e.to_string(),
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let error = crate::config::secrets::redact(&self.error).into_owned();
        let help = crate::config::secrets::redact(&self.help).into_owned();
        (self.status, Json(json!({ "error": error, "help": help }))).into_response()
    }
}

/// A value as JSON, secrets masked.
pub(super) fn json(value: serde_json::Value) -> Response {
    let text = value.to_string();
    let text = crate::config::secrets::redact(&text).into_owned();
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        text,
    )
        .into_response()
}

pub(super) type Reply = Result<Response, ApiError>;

/// Runs a handler's work on a blocking thread of its own, driven there: weir's session
/// futures borrow across awaits in ways the compiler cannot prove `Send` for, which a server's
/// handlers must be (the CLI and REPL drive them in place too).
pub(super) async fn off_thread<F, Fut>(work: F) -> Reply
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Reply>,
{
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || handle.block_on(work()))
        .await
        .unwrap_or_else(|e| {
            Err(ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("the request's work stopped: {e}"),
                "",
            ))
        })
}
