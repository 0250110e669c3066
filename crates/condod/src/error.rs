//! API errors and the JSON body extractor that names the field at fault.

use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use condo_api::{ErrorBody, ErrorCode};
use serde::de::DeserializeOwned;

/// An error answer: an [`ErrorBody`] sent with the status of its code.
#[derive(Debug)]
pub struct ApiError(pub ErrorBody);

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// 404 for a resource the caller cannot see.
    pub fn not_found(what: &str, reference: &str) -> ApiError {
        ApiError(ErrorBody::new(
            ErrorCode::NotFound,
            format!("{what} \"{reference}\" does not exist"),
        ))
    }

    /// 409.
    pub fn conflict(message: impl Into<String>) -> ApiError {
        ApiError(ErrorBody::new(ErrorCode::Conflict, message))
    }

    /// 400 naming a field.
    pub fn invalid(field: &str, message: impl Into<String>) -> ApiError {
        ApiError(ErrorBody::field(ErrorCode::InvalidValue, field, message))
    }

    /// 500.
    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError(ErrorBody::new(ErrorCode::Internal, message))
    }

    /// 502: a registry or another server failed.
    pub fn upstream(message: impl Into<String>) -> ApiError {
        ApiError(ErrorBody::new(ErrorCode::Upstream, message))
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError(ErrorBody::new(ErrorCode::Unauthorized, message))
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError(ErrorBody::new(ErrorCode::Forbidden, message))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(self.0)).into_response()
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> ApiError {
        ApiError::internal(format!("database: {e}"))
    }
}

impl From<condo_runtime::Error> for ApiError {
    fn from(e: condo_runtime::Error) -> ApiError {
        match e {
            condo_runtime::Error::WrongStatus { .. } => ApiError::conflict(e.to_string()),
            condo_runtime::Error::NotFound(_) => {
                ApiError::conflict(format!("the container is not running ({e})"))
            }
            other => ApiError::internal(other.to_string()),
        }
    }
}

/// A JSON request body: malformed JSON, unknown fields and wrong types become a 400 that names
/// the field, before the handler runs.
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                ApiError(ErrorBody::new(
                    ErrorCode::InvalidJson,
                    format!("cannot read the body: {e}"),
                ))
            })?;
        parse_json(&bytes).map(Body)
    }
}

/// Parses a request body, naming the field at fault on error.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        return Err(ApiError(ErrorBody::new(
            ErrorCode::InvalidJson,
            "the request needs a JSON body",
        )));
    }
    // Every body is an object: serde would also take an array as a struct's fields in order.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError(ErrorBody::new(
            ErrorCode::InvalidJson,
            "the body must be a JSON object ({…})",
        )));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let mut path = e.path().to_string();
        let inner = e.into_inner();
        let msg = inner.to_string();
        if let Some(name) = msg
            .strip_prefix("unknown field `")
            .and_then(|r| r.split('`').next())
        {
            if path == "." || path.is_empty() {
                path = name.to_string();
            } else if !path.ends_with(name) {
                path = format!("{path}.{name}");
            }
        }
        // serde_json calls a value of the wrong kind for an enumeration a syntax error; JSON
        // that parses as a whole is well-formed, and the fault is the field's.
        let syntax = matches!(
            inner.classify(),
            serde_json::error::Category::Syntax | serde_json::error::Category::Eof
        ) && serde_json::from_slice::<serde::de::IgnoredAny>(bytes).is_err();
        if syntax || path == "." || path.is_empty() {
            let what = if syntax {
                "malformed JSON"
            } else {
                "invalid body"
            };
            ApiError(ErrorBody::new(
                ErrorCode::InvalidJson,
                format!("{what}: {msg}"),
            ))
        } else {
            ApiError(ErrorBody::field(
                ErrorCode::InvalidJson,
                path.clone(),
                format!("{path}: {msg}"),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_field() {
        let e = parse_json::<condo_api::ContainerCreate>(br#"{"limits": {"memory": "lots"}}"#)
            .unwrap_err();
        assert_eq!(e.0.field.as_deref(), Some("limits.memory"));
        let e = parse_json::<condo_api::ContainerCreate>(br#"{"nmae": "x"}"#).unwrap_err();
        assert_eq!(e.0.field.as_deref(), Some("nmae"));
        let e =
            parse_json::<condo_api::ContainerCreate>(br#"{"restart": {"policy": 5}}"#).unwrap_err();
        assert_eq!(e.0.field.as_deref(), Some("restart.policy"));
        // An array would fill a struct's fields in order: refused.
        let e = parse_json::<condo_api::Limits>(b"[1, 2]").unwrap_err();
        assert_eq!(e.0.code, ErrorCode::InvalidJson);
        let e = parse_json::<condo_api::ContainerCreate>(br#"{"name": "#).unwrap_err();
        assert_eq!(e.0.code, ErrorCode::InvalidJson);
        assert!(e.0.field.is_none());
    }
}
