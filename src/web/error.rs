//! The one mapping from service errors to Apollo's JSON error shape
//! `{"status", "message", "timestamp", "exception"}`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

use crate::domain::time::{now_ms, rfc3339};
use crate::service::ServiceError;

/// An HTTP error with Apollo's body.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
    pub exception: &'static str,
}

#[derive(Serialize)]
struct Body<'a> {
    status: u16,
    message: &'a str,
    timestamp: String,
    exception: &'a str,
}

impl ApiError {
    /// 400 with a message.
    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::BAD_REQUEST, message: message.into(), exception: "BadRequestException" }
    }

    /// 401 with a message.
    pub fn unauthorized(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::UNAUTHORIZED, message: message.into(), exception: "UnauthorizedException" }
    }

    /// 404 with a message.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError { status: StatusCode::NOT_FOUND, message: message.into(), exception: "NotFoundException" }
    }

    /// 405.
    pub fn method_not_allowed() -> ApiError {
        ApiError {
            status: StatusCode::METHOD_NOT_ALLOWED,
            message: "this method is not allowed on this path".into(),
            exception: "HttpRequestMethodNotSupportedException",
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status.as_u16(), self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let body = Body {
            status: self.status.as_u16(),
            message: &self.message,
            timestamp: rfc3339(now_ms()),
            exception: self.exception,
        };
        HttpResponse::build(self.status).content_type("application/json;charset=UTF-8").json(body)
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> ApiError {
        let (status, exception) = match &e {
            ServiceError::NotFound(_) => (StatusCode::NOT_FOUND, "NotFoundException"),
            ServiceError::AlreadyExists(_) | ServiceError::Invalid(_) | ServiceError::Conflict(_) => {
                (StatusCode::BAD_REQUEST, "BadRequestException")
            }
            ServiceError::Unauthenticated(_) => (StatusCode::UNAUTHORIZED, "UnauthorizedException"),
            ServiceError::Forbidden(_) => (StatusCode::FORBIDDEN, "AccessForbiddenException"),
            ServiceError::Throttled(_) => (StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsException"),
            ServiceError::Internal(source) if e.is_disk_full() => {
                tracing::warn!(error = %source, "write refused: disk full");
                return ApiError {
                    status: StatusCode::INSUFFICIENT_STORAGE,
                    message: format!("{source}; nothing was changed, retry once space is freed"),
                    exception: "InsufficientStorageException",
                };
            }
            ServiceError::Internal(source) if e.is_storage_unavailable() => {
                tracing::warn!(error = %source, "write refused: storage unavailable");
                return ApiError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    message: format!("{source}; nothing was changed, retry later"),
                    exception: "ServiceUnavailableException",
                };
            }
            ServiceError::Internal(source) => {
                let id = crate::service::incident_id();
                tracing::error!(request_id = %id, error = %source, "internal error");
                return ApiError {
                    status: StatusCode::INTERNAL_SERVER_ERROR,
                    message: format!("internal error, request id {id}"),
                    exception: "InternalServerError",
                };
            }
        };
        match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => tracing::info!(%e, "denied"),
            _ => tracing::debug!(%e, "rejected"),
        }
        ApiError { status, message: e.to_string(), exception }
    }
}

/// Result alias for API handlers.
pub type ApiResult<T> = Result<T, ApiError>;

impl actix_web::Responder for ApiError {
    type Body = actix_web::body::BoxBody;

    fn respond_to(self, _req: &actix_web::HttpRequest) -> HttpResponse {
        self.error_response()
    }
}
