//! Credentials: the `Authorization` an [`HttpClient`](super::HttpClient) sends with every
//! request, never shown.

use std::fmt;

/// How the client authenticates. `Debug` never shows the credentials.
///
/// `#[non_exhaustive]`: other schemes may join `Basic` (bearer tokens are handled by
/// [`crate::bearer`], which sets the header per request).
///
/// ```
/// use conpere_connectors::http::Auth;
/// let auth = Auth::basic("ws-conpere", "hunter2");
/// assert!(!format!("{auth:?}").contains("hunter2"));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum Auth {
    /// HTTP Basic authentication (Apogée web services behind Tomcat or a gateway).
    Basic {
        /// Account name.
        username: String,
        /// Its password, resolved from `password_env` / `password_file`.
        password: String,
    },
}

impl Auth {
    /// Basic authentication.
    ///
    /// ```
    /// use conpere_connectors::http::Auth;
    /// let auth = Auth::basic("ws-conpere", "hunter2");
    /// # drop(auth);
    /// ```
    pub fn basic(username: impl Into<String>, password: impl Into<String>) -> Auth {
        Auth::Basic {
            username: username.into(),
            password: password.into(),
        }
    }

    pub(super) fn apply(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            // reqwest marks the header sensitive, so its own Debug hides it too.
            Auth::Basic { username, password } => request.basic_auth(username, Some(password)),
        }
    }
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Basic { .. } => f.write_str("Auth::Basic(***)"),
        }
    }
}
