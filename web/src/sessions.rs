//! Browser sessions, stored in PostgreSQL through `tower-sessions`: [`PgSessions`] keeps
//! each session under the SHA-256 of its id (the table never holds a cookie's value),
//! expiring; [`layer`] sets the cookie `HttpOnly`, `SameSite=Lax`, and `Secure` unless
//! the public URL is plain http on localhost. A login renews the session id (no session
//! fixation) and stores the caller's [`Identity`].

use conpere_contracts::evidence::AuthKind;
use deadpool_postgres::Pool;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tower_sessions::cookie::SameSite;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{Error, Result};
use tower_sessions::{Expiry, SessionManagerLayer, SessionStore};

/// The session's key of the caller's identity.
pub const IDENTITY: &str = "identity";

/// Who a session (or a request) is, as the authentication said.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// The login (CAS `user`, OIDC `sub` or preferred username, the proxy's header).
    pub login: String,
    /// The e-mail address, when the identity provider gives one.
    pub mail: Option<String>,
    /// The INE, when the identity provider gives one.
    pub ine: Option<String>,
    /// How they were authenticated.
    pub auth: AuthKind,
    /// The identity provider (CAS server, OIDC issuer).
    pub idp: Option<String>,
    /// The SHA-256 of the CAS ticket that opened the session (single logout finds the
    /// session by it; the ticket itself is never kept).
    pub session_index: Option<String>,
}

impl Identity {
    /// The login a trusted proxy vouches for; in header mode, the header carries what
    /// `student_match` says (a login, an e-mail address or an INE).
    pub fn from_proxy(login: String) -> Identity {
        Identity {
            mail: Some(login.clone()),
            ine: Some(login.clone()),
            login,
            auth: AuthKind::Header,
            idp: None,
            session_index: None,
        }
    }
}

/// The hex SHA-256 of a secret value (a session id, a ticket): what is stored instead.
pub fn digest(value: &str) -> String {
    let hash = Sha256::digest(value.as_bytes());
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

/// Browser sessions' settings, the same in every mode that has them.
#[derive(Debug, Clone)]
pub struct BrowserSessions {
    /// conpere's public URL (`[server] public_url`), without a trailing slash.
    pub public_url: String,
    /// Its origin, which a session's state-changing requests must come from.
    pub origin: String,
    /// Whether the session cookie is `Secure` (always, but for plain http on localhost).
    pub secure: bool,
    /// A session ends after this long without a request.
    pub idle: time::Duration,
}

impl BrowserSessions {
    /// Sessions for the conpere at `public_url`; refused when it is plain http anywhere
    /// but on this machine (the session cookie would travel in clear).
    pub fn new(public_url: &str, idle_hours: u64) -> std::result::Result<BrowserSessions, String> {
        let origin = crate::csrf::origin_of(public_url);
        let local = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|l| origin == *l || origin.starts_with(&format!("{l}:")));
        let secure = origin.starts_with("https://");
        if !secure && !local {
            return Err(format!(
                "[server] public_url = \"{public_url}\": browser sessions need https (plain \
                 http only on localhost), or the session cookie would travel in clear"
            ));
        }
        Ok(BrowserSessions {
            public_url: public_url.trim_end_matches('/').to_owned(),
            origin,
            secure,
            idle: time::Duration::hours(idle_hours as i64),
        })
    }

    /// The session layer on `pool` with these settings.
    pub fn layer(&self, pool: Pool) -> SessionManagerLayer<PgSessions> {
        layer(PgSessions::new(pool), self.secure, self.idle)
    }
}

/// The sessions table (migration V11) on the store's pool.
#[derive(Debug, Clone)]
pub struct PgSessions {
    pool: Pool,
}

impl PgSessions {
    /// On `pool`.
    pub fn new(pool: Pool) -> PgSessions {
        PgSessions { pool }
    }

    async fn client(&self) -> Result<deadpool_postgres::Object> {
        self.pool
            .get()
            .await
            .map_err(|e| Error::Backend(e.to_string()))
    }

    /// Deletes the sessions past their expiry (they are never loaded, but would stay).
    pub async fn delete_expired(&self) -> Result<u64> {
        let client = self.client().await?;
        client
            .execute("DELETE FROM web_session WHERE expires_at < now()", &[])
            .await
            .map_err(backend)
    }

    /// Ends every session opened by the CAS ticket whose SHA-256 is `session_index`;
    /// how many.
    pub async fn end_cas_sessions(&self, session_index: &str) -> Result<u64> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM web_session WHERE data -> 'identity' ->> 'session_index' = $1",
                &[&session_index],
            )
            .await
            .map_err(backend)
    }
}

fn backend(error: tokio_postgres::Error) -> Error {
    Error::Backend(conpere_core::engine::pg_message(&error))
}

fn expiry(record: &Record) -> chrono::DateTime<chrono::Utc> {
    let at = record.expiry_date;
    chrono::DateTime::from_timestamp(at.unix_timestamp(), at.nanosecond()).unwrap_or_default()
}

fn data(record: &Record) -> Result<serde_json::Value> {
    serde_json::to_value(&record.data).map_err(|e| Error::Encode(e.to_string()))
}

#[async_trait::async_trait]
impl SessionStore for PgSessions {
    async fn create(&self, record: &mut Record) -> Result<()> {
        let client = self.client().await?;
        loop {
            let inserted = client
                .execute(
                    "INSERT INTO web_session (key, data, expires_at) VALUES ($1, $2, $3) \
                     ON CONFLICT (key) DO NOTHING",
                    &[
                        &digest(&record.id.to_string()),
                        &data(record)?,
                        &expiry(record),
                    ],
                )
                .await
                .map_err(backend)?;
            if inserted == 1 {
                return Ok(());
            }
            record.id = Id::default(); // a collision: another id
        }
    }

    async fn save(&self, record: &Record) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO web_session (key, data, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (key) DO UPDATE SET data = EXCLUDED.data, \
                 expires_at = EXCLUDED.expires_at",
                &[
                    &digest(&record.id.to_string()),
                    &data(record)?,
                    &expiry(record),
                ],
            )
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT data, extract(epoch FROM expires_at)::float8 FROM web_session \
                 WHERE key = $1 AND expires_at > now()",
                &[&digest(&id.to_string())],
            )
            .await
            .map_err(backend)?;
        let Some(row) = row else { return Ok(None) };
        let data = serde_json::from_value(row.get(0)).map_err(|e| Error::Decode(e.to_string()))?;
        let seconds: f64 = row.get(1);
        let expiry_date = time::OffsetDateTime::from_unix_timestamp(seconds as i64)
            .map_err(|e| Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        let client = self.client().await?;
        client
            .execute(
                "DELETE FROM web_session WHERE key = $1",
                &[&digest(&id.to_string())],
            )
            .await
            .map_err(backend)?;
        Ok(())
    }
}

/// The session layer: sessions in `store`, the cookie `conpere_session`, `Secure` when
/// `secure`, expiring after `idle` without a request.
pub fn layer(
    store: PgSessions,
    secure: bool,
    idle: time::Duration,
) -> SessionManagerLayer<PgSessions> {
    SessionManagerLayer::new(store)
        .with_name("conpere_session")
        .with_secure(secure)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_path("/")
        .with_expiry(Expiry::OnInactivity(idle))
}

#[cfg(test)]
mod tests {
    use super::BrowserSessions;

    #[test]
    fn cookies_are_secure_but_on_localhost_and_plain_http_elsewhere_is_refused() {
        let public = BrowserSessions::new("https://conpere.univ.fr/", 8).unwrap();
        assert!(public.secure);
        assert_eq!(public.origin, "https://conpere.univ.fr");
        assert_eq!(public.public_url, "https://conpere.univ.fr");
        assert!(
            !BrowserSessions::new("http://127.0.0.1:8080", 8)
                .unwrap()
                .secure
        );
        assert!(!BrowserSessions::new("http://localhost", 8).unwrap().secure);
        let refused = BrowserSessions::new("http://conpere.univ.fr", 8).unwrap_err();
        assert!(refused.contains("https"), "{refused}");
        assert!(BrowserSessions::new("http://localhost.evil.example", 8).is_err());
    }
}
