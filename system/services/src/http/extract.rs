//! `ApiJson<T>`: axum's `Json` with every rejection mapped to the standard
//! error body — wrong types and unknown fields are 422, malformed JSON 400,
//! a missing content type 415, an oversize body 413, a body slower than its
//! read deadline 408.
//!
//! Layer: plumbing; imports `error` only.

use crate::error::{ApiError, ErrorPayload};
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::de::DeserializeOwned;

#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

/// How long [`ApiJson`] waits for the whole body (set per router by
/// `finish_router`); past it the answer is 408 `REQUEST_TIMEOUT`.
#[derive(Debug, Clone, Copy)]
pub struct BodyReadTimeout(pub std::time::Duration);

/// The rejection of [`ApiJson`], rendered by the trace middleware.
#[derive(Debug)]
pub struct JsonError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        ErrorPayload::respond(self.status, self.code, self.message)
    }
}

/// For handlers that take `Result<ApiJson<T>, JsonError>` so that they
/// check credentials before the body: the refusal stays what it was.
impl From<JsonError> for ApiError {
    fn from(e: JsonError) -> Self {
        ApiError::Rejected(e.status, e.code, e.message)
    }
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = JsonError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if let Some(charset) = foreign_charset(req.headers()) {
            return Err(JsonError {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code: "UNSUPPORTED_MEDIA_TYPE",
                message: format!("JSON bodies are UTF-8; charset {charset:?} is not accepted"),
            });
        }
        if !is_json(req.headers()) {
            return Err(JsonError {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code: "UNSUPPORTED_MEDIA_TYPE",
                message: "send the body as Content-Type: application/json".to_owned(),
            });
        }
        let deadline = req.extensions().get::<BodyReadTimeout>().map(|t| t.0);
        let read = axum::body::Bytes::from_request(req, state);
        let read = match deadline {
            Some(d) => tokio::time::timeout(d, read).await.map_err(|_| JsonError {
                status: StatusCode::REQUEST_TIMEOUT,
                code: "REQUEST_TIMEOUT",
                message: format!("the body did not arrive within {} ms", d.as_millis()),
            })?,
            None => read.await,
        };
        let bytes = read.map_err(|rejection| {
            let status = rejection.status();
            let (code, message) = match status {
                StatusCode::PAYLOAD_TOO_LARGE => (
                    "PAYLOAD_TOO_LARGE",
                    "the body is larger than allowed".to_owned(),
                ),
                _ => ("BAD_REQUEST", rejection.body_text()),
            };
            JsonError {
                status,
                code,
                message,
            }
        })?;
        parse(&bytes).map(ApiJson)
    }
}

/// `application/json` or `application/*+json`.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(ct) = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let essence = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// The body as `T`: malformed JSON anywhere is 400 `MALFORMED_JSON` (the
/// whole text is checked first); a well-formed body that is not a `T` —
/// wrong type, unknown or duplicate field — is 422 `VALIDATION_FAILED`,
/// its message naming the field and the rule.
fn parse<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, JsonError> {
    if let Err(e) = serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
        return Err(JsonError {
            status: StatusCode::BAD_REQUEST,
            code: "MALFORMED_JSON",
            message: format!("the body is not valid JSON: {}", plain(&e.to_string())),
        });
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize::<_, T>(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        let message = if path == "." {
            describe(&inner)
        } else {
            describe(&format!("{path}: {inner}"))
        };
        JsonError {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code: "VALIDATION_FAILED",
            message,
        }
    })
}

/// A declared charset other than UTF-8 on a JSON content type.
fn foreign_charset(headers: &axum::http::HeaderMap) -> Option<String> {
    let ct = headers
        .get(axum::http::header::CONTENT_TYPE)?
        .to_str()
        .ok()?;
    let charset = ct.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| v.trim().trim_matches('"').to_owned())
    })?;
    let utf8 = charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("utf8");
    (!utf8).then_some(charset)
}

/// A deserialization error as the client should read it: the JSON field
/// and the rule broken, in the contract's words, not the server's types.
/// (`serde_json::Error`'s text, e.g. `holdSeconds: invalid type: string
/// "x", expected u64 at line 1 column 20`.)
pub fn describe(serde_text: &str) -> String {
    let text = serde_text
        .strip_prefix("Failed to deserialize the JSON body into the target type: ")
        .unwrap_or(serde_text);
    let text = plain(text);
    // `field.path: message`, unless the message is about the whole body.
    let (field, rule) = match text.split_once(": ") {
        Some((f, r)) if !f.contains(' ') => (Some(f), r),
        _ => (None, text.as_str()),
    };
    let rule = if let Some(f) = rule.strip_prefix("missing field ") {
        format!("{f} is required")
    } else if let Some(rest) = rule.strip_prefix("unknown field ") {
        let (f, allowed) = rest.split_once(", expected ").unwrap_or((rest, ""));
        let allowed = allowed.trim_start_matches("one of ");
        format!("unknown field {f} (the fields are {allowed})")
    } else if let Some((got, want)) = rule.split_once(", expected ") {
        let got = got
            .trim_start_matches("invalid type: ")
            .trim_start_matches("invalid value: ")
            .trim_start_matches("invalid length ");
        format!("must be {}, not {got}", wanted(want))
    } else {
        rule.to_owned()
    };
    match field {
        // An unknown field names itself.
        Some(f) if !rule.starts_with("unknown field") => format!("{f}: {rule}"),
        _ => rule,
    }
}

/// What serde expected, in JSON's words.
fn wanted(serde_expected: &str) -> &'static str {
    let e = serde_expected;
    let whole = [
        "u8", "u16", "u32", "u64", "u128", "usize", "i8", "i16", "i32", "i64", "i128", "isize",
    ];
    if whole.contains(&e) {
        "a whole number in range"
    } else if e == "f32" || e == "f64" {
        "a number"
    } else if e.starts_with("struct ") || e.starts_with("a map") {
        "a JSON object with the documented fields"
    } else if e.starts_with("a sequence") || e.starts_with("tuple") {
        "a list"
    } else if e.starts_with("a string") || e.starts_with("a borrowed string") || e == "a character"
    {
        "text"
    } else if e.starts_with("a boolean") {
        "true or false"
    } else if e.starts_with("unit") || e.starts_with("null") {
        "null"
    } else {
        "the documented type"
    }
}

/// Drops serde's ` at line L column C` (the body is one line for most
/// clients; the field name is the useful part).
fn plain(text: &str) -> String {
    match text.rfind(" at line ") {
        Some(i) if text[i..].contains(" column ") => text[..i].to_owned(),
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn messages_name_the_field_and_the_rule_not_rust_types() {
        let cases = [
            (
                "Failed to deserialize the JSON body into the target type: holdSeconds: invalid type: string \"x\", expected u64 at line 1 column 20",
                "holdSeconds: must be a whole number in range, not string \"x\"",
            ),
            (
                "invalid length 2, expected struct HoldBody with 3 elements at line 1 column 9",
                "must be a JSON object with the documented fields, not 2",
            ),
            (
                "missing field `holdId` at line 1 column 2",
                "`holdId` is required",
            ),
            (
                "unknown field `holdID`, expected `holdId` at line 1 column 9",
                "unknown field `holdID` (the fields are `holdId`)",
            ),
            (
                "seatIds[1]: invalid type: integer `3`, expected a string at line 1 column 30",
                "seatIds[1]: must be text, not integer `3`",
            ),
        ];
        for (serde, want) in cases {
            let got = describe(serde);
            assert_eq!(got, want);
            for leak in ["u64", "struct", "HoldBody", "line 1"] {
                assert!(!got.contains(leak), "{got}");
            }
        }
    }
}
