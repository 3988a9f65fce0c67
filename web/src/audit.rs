//! The audit log: one line for each action taken through the APIs (a run started,
//! approved or rejected; a contract proposed, signed, validated, refused, edited, amended,
//! validated in bulk) and for each request refused for its credentials — who, what, on
//! what, and how it ended. Its target is `conpere::audit`, at `info`, so that it can be
//! kept or sent apart (`CONPERE_LOG=warn,conpere::audit=info`, or by target in the JSON
//! log). Never a token, secret or cookie: the caller is a login or the admin token's
//! configured name.

/// `caller` did `action` on `on` (a run, a source, a contract); `outcome` is `ok` or the
/// refusal's code.
pub fn action(caller: &str, action: &str, on: &str, outcome: &str) {
    tracing::info!(target: "conpere::audit", caller, action, on, outcome, "audit");
}

/// A request refused for its credentials (`why`: what was wrong, never the credential);
/// the path as the access log writes it (a person in it masked).
pub fn refused(method: &str, path: &str, why: &str) {
    let path = crate::access::loggable(path);
    tracing::warn!(target: "conpere::audit", method, %path, why, "audit: refused");
}

/// `result` of `caller`'s `what` on `on`, written to the audit log (`ok` or the error's
/// code) and handed back.
pub fn outcome<T>(
    caller: &str,
    what: &str,
    on: &str,
    result: Result<T, crate::error::ApiError>,
) -> Result<T, crate::error::ApiError> {
    let code = result.as_ref().map_or_else(|e| e.code, |_| "ok");
    action(caller, what, on, code);
    result
}
