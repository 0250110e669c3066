//! The error body every failed request answers with.

use serde::{Deserialize, Serialize};

/// What kind of failure an [`ErrorBody`] reports; each maps to one HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The body is not JSON, or not the JSON this endpoint takes (400).
    InvalidJson,
    /// A value is well-formed but not acceptable (400).
    InvalidValue,
    /// No credentials, or credentials that are not valid (401).
    Unauthorized,
    /// The principal may not do this (403).
    Forbidden,
    /// The resource does not exist, or is not visible to this principal (404).
    NotFound,
    /// The resource's state forbids the operation, or the name is taken (409).
    Conflict,
    /// The tenant's quota does not leave room for this (409).
    QuotaExceeded,
    /// The daemon failed to do what was asked (500).
    Internal,
    /// A server the daemon relies on (an image registry) failed or refused (502).
    Upstream,
}

impl ErrorCode {
    /// The HTTP status this code is sent with.
    pub fn status(self) -> u16 {
        match self {
            ErrorCode::InvalidJson | ErrorCode::InvalidValue => 400,
            ErrorCode::Unauthorized => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::Conflict | ErrorCode::QuotaExceeded => 409,
            ErrorCode::Internal => 500,
            ErrorCode::Upstream => 502,
        }
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ErrorBody {
    /// Machine-readable kind.
    pub code: ErrorCode,
    /// What went wrong, naming the resource or the field.
    pub message: String,
    /// The request field at fault, as a dotted path (`limits.memory`), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

impl ErrorBody {
    /// An error without a field.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ErrorBody {
        ErrorBody {
            code,
            message: message.into(),
            field: None,
        }
    }

    /// An error naming a field.
    pub fn field(
        code: ErrorCode,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ErrorBody {
        ErrorBody {
            code,
            message: message.into(),
            field: Some(field.into()),
        }
    }
}

impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ErrorBody {}
