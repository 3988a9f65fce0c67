//! The access log: one line per request (method, path, status, milliseconds), at `info`
//! for the APIs and `debug` for the probes (`/health`, `/ready`, `/metrics`, called every
//! few seconds). Student numbers and INE are personal data, and logs travel: the query
//! string (where a search `q` goes) is never logged, and the one path segment that names
//! a person (`/students/{student}/…`) is masked but for its last two characters.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use conpere_core::mask::Masked;
use std::time::Instant;

/// The middleware ([`crate::app`] installs it).
pub async fn log(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = loggable(request.uri().path());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16();
    let ms = started.elapsed().as_millis() as u64;
    if is_probe(&path) {
        tracing::debug!(%method, %path, status, ms, "request");
    } else {
        tracing::info!(%method, %path, status, ms, "request");
    }
    response
}

fn is_probe(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/metrics")
}

/// The path as logged: the segment after `students` masked.
pub fn loggable(path: &str) -> String {
    let mut masked = Vec::new();
    let mut after_students = false;
    for segment in path.split('/') {
        if after_students && !segment.is_empty() {
            masked.push(Masked(segment).to_string());
        } else {
            masked.push(segment.to_string());
        }
        after_students = segment == "students";
    }
    masked.join("/")
}

#[cfg(test)]
mod tests {
    use super::loggable;

    #[test]
    fn a_person_in_a_path_is_masked() {
        assert_eq!(
            loggable("/api/v1/students/21901234/contracts"),
            "/api/v1/students/******34/contracts"
        );
        assert_eq!(
            loggable("/api/v1/students/0912345678A"),
            "/api/v1/students/*********8A"
        );
        assert_eq!(loggable("/api/v1/contracts/42"), "/api/v1/contracts/42");
        assert_eq!(loggable("/health"), "/health");
    }
}
