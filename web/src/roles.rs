//! Who a login is: a student (matched in the store by login, e-mail or INE, linked across
//! sources by INE), a directeur d'études of some steps, the scolarité, an administrator —
//! or several of these. What they may see follows ([`User::sees`]).

use crate::auth::Authentication;
use crate::error::ApiError;
use crate::oidc::OidcError;
use crate::sessions::{Identity, IDENTITY};
use crate::Api;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use conpere_contracts::evidence::AuthKind;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio_postgres::Client;
use tower_sessions::Session;

/// `[roles]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesSettings {
    /// Logins of administrators.
    #[serde(default)]
    pub admins: Vec<String>,
    /// Logins of the scolarité (read everything).
    #[serde(default)]
    pub scolarite: Vec<String>,
    /// Directeurs d'études: login → the steps they direct.
    #[serde(default)]
    pub directeurs: BTreeMap<String, Vec<String>>,
    /// Whom a person conpere does not know should ask (an address, a service), told in
    /// the refusal (default: the scolarité).
    #[serde(default)]
    pub contact: Option<String>,
}

/// How a login finds its student (`[auth] student_match`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StudentMatch {
    /// The student's login in the SIS.
    #[default]
    Login,
    /// The student's e-mail.
    Email,
    /// The student's INE.
    Ine,
}

/// An authenticated caller and what they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The login.
    pub login: String,
    /// An administrator.
    pub admin: bool,
    /// The scolarité.
    pub scolarite: bool,
    /// The steps they direct.
    pub steps: Vec<String>,
    /// The students they are, as (source id, student number), across sources.
    pub students: Vec<(i32, String)>,
    /// How they were authenticated (for the evidence).
    pub auth: AuthKind,
    /// Their identity provider, when there is one.
    pub idp: Option<String>,
}

impl User {
    /// Sees every contract.
    pub fn sees_all(&self) -> bool {
        self.admin || self.scolarite
    }

    /// Their role names.
    pub fn roles(&self) -> Vec<&'static str> {
        let mut roles = Vec::new();
        if !self.students.is_empty() {
            roles.push("student");
        }
        if !self.steps.is_empty() {
            roles.push("directeur");
        }
        if self.scolarite {
            roles.push("scolarite");
        }
        if self.admin {
            roles.push("admin");
        }
        roles
    }

    /// The parameters of [`VISIBLE_SQL`]: $a all, $b steps, $c sources, $d students.
    pub fn scope(&self) -> (bool, Vec<String>, Vec<i32>, Vec<String>) {
        let (sources, students) = self.students.iter().cloned().unzip();
        (self.sees_all(), self.steps.clone(), sources, students)
    }
}

/// A contract `k` this user may see, given [`User::scope`] as `$1..$4`.
pub const VISIBLE_SQL: &str = "($1::bool \
  OR EXISTS (SELECT 1 FROM unnest($3::int[], $4::text[]) AS me (source_id, student) \
             WHERE me.source_id = k.source_id AND me.student = k.student) \
  OR EXISTS (SELECT 1 FROM registration r WHERE r.source_id = k.source_id \
             AND r.year = k.year AND r.student = k.student AND r.step = ANY($2::text[])))";

/// Who `identity` is: the students its login, e-mail or INE (as `matching` says) finds,
/// and the roles of its login.
pub async fn resolve(
    client: &Client,
    identity: &Identity,
    roles: &RolesSettings,
    matching: StudentMatch,
) -> Result<User, ApiError> {
    let login = identity.login.as_str();
    let (column, key) = match matching {
        StudentMatch::Login => ("login", Some(login)),
        StudentMatch::Email => ("email", identity.mail.as_deref()),
        StudentMatch::Ine => ("ine", identity.ine.as_deref()),
    };
    // The students the login matches, and every other record of the same INE.
    let rows = client
        .query(
            &format!(
                "WITH me AS (SELECT source_id, student, ine FROM student \
                   WHERE {column} = $1 AND deleted_at IS NULL) \
                 SELECT source_id, student FROM me \
                 UNION SELECT s.source_id, s.student FROM student s JOIN me \
                   ON s.ine = me.ine AND s.deleted_at IS NULL"
            ),
            &[&key],
        )
        .await
        .map_err(ApiError::unavailable)?;
    let user = User {
        login: login.to_owned(),
        admin: roles.admins.iter().any(|a| a == login),
        scolarite: roles.scolarite.iter().any(|s| s == login),
        steps: roles.directeurs.get(login).cloned().unwrap_or_default(),
        students: rows.iter().map(|r| (r.get(0), r.get(1))).collect(),
        auth: identity.auth,
        idp: identity.idp.clone(),
    };
    if user.roles().is_empty() {
        let contact = roles.contact.as_deref().unwrap_or("your scolarité");
        return Err(ApiError::forbidden(format!(
            "{login} is no student of conpere and has no role in it ([roles]): if you \
             should, ask {contact}"
        )));
    }
    Ok(user)
}

/// The caller, authenticated ([`crate::auth`]) and resolved, as a handler argument. A
/// browser session's state-changing request must come from conpere's own origin
/// ([`crate::csrf`]).
impl FromRequestParts<Arc<Api>> for User {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, api: &Arc<Api>) -> Result<User, ApiError> {
        let refused = |parts: &Parts, error: &ApiError| {
            crate::audit::refused(parts.method.as_str(), parts.uri.path(), &error.message)
        };
        let identity = match &api.auth {
            Authentication::Header(header) => {
                let login = header
                    .login(&parts.headers)
                    .inspect_err(|e| refused(parts, e))?;
                // The proxy's own session is an ambient credential too.
                if crate::csrf::sendable_cross_site(&parts.headers) {
                    crate::csrf::check(&parts.method, &parts.headers, None)
                        .inspect_err(|e| refused(parts, e))?;
                }
                Identity::from_proxy(login)
            }
            Authentication::Oidc(oidc) if crate::auth::bearer(&parts.headers).is_some() => {
                let token = crate::auth::bearer(&parts.headers).unwrap_or_default();
                oidc.verify_bearer(token)
                    .await
                    .map_err(|error| match error {
                        OidcError::Refused(_) => {
                            let refusal = ApiError::unauthenticated(error.to_string());
                            refused(parts, &refusal);
                            refusal
                        }
                        OidcError::Unavailable(_) => ApiError::unavailable(error),
                    })?
            }
            Authentication::Cas(_) | Authentication::Oidc(_) | Authentication::Demo(_) => {
                let Some(sessions) = api.auth.browser() else {
                    let refusal = ApiError::unauthenticated("a bearer token is required");
                    refused(parts, &refusal);
                    return Err(refusal);
                };
                let session = Session::from_request_parts(parts, api)
                    .await
                    .map_err(|(_, why)| ApiError::unavailable(why))?;
                let identity: Option<Identity> = (session.get(IDENTITY).await)
                    .map_err(|e| ApiError::unavailable(format!("the session store: {e}")))?;
                let identity = identity
                    .ok_or_else(|| {
                        ApiError::unauthenticated("not logged in: log in at /auth/login")
                    })
                    .inspect_err(|e| refused(parts, e))?;
                crate::csrf::check(&parts.method, &parts.headers, Some(&sessions.origin))
                    .inspect_err(|e| refused(parts, e))?;
                identity
            }
        };
        let client = api.client().await?;
        resolve(&client, &identity, &api.roles, api.student_match).await
    }
}
