//! `ApiJson<T>`: axum's `Json` with every rejection mapped to the standard
//! error body — wrong types and unknown fields are 422, malformed JSON 400,
//! a missing content type 415, an oversize body 413.
//!
//! Layer: plumbing; imports `error` only.

use crate::error::{ApiError, ErrorPayload};
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

/// The rejection of [`ApiJson`], rendered by the trace middleware.
#[derive(Debug)]
pub struct JsonError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        let mut resp = self.status.into_response();
        resp.extensions_mut().insert(ErrorPayload {
            code: self.code,
            message: self.message,
            extra: None,
        });
        resp
    }
}

impl From<JsonError> for ApiError {
    fn from(e: JsonError) -> Self {
        ApiError::Validation(e.message)
    }
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = JsonError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => {
                let status = rejection.status();
                let code = match (&rejection, status) {
                    (_, StatusCode::PAYLOAD_TOO_LARGE) => "PAYLOAD_TOO_LARGE",
                    (JsonRejection::MissingJsonContentType(_), _) => "UNSUPPORTED_MEDIA_TYPE",
                    (JsonRejection::JsonDataError(_), _) => "VALIDATION_FAILED",
                    (JsonRejection::JsonSyntaxError(_), _) => "MALFORMED_JSON",
                    _ => "BAD_REQUEST",
                };
                Err(JsonError {
                    status,
                    code,
                    message: rejection.body_text(),
                })
            }
        }
    }
}
