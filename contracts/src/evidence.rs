//! The evidence chain: every action on a contract is an event, appended to the contract's
//! hash-chained log (DESIGN.md, "Evidence").
//!
//! An event is `{seq, at, actor {id, role, auth, idp}, action, version, version_hash,
//! reason?, consent_text?, client {user_agent}}`, plus the `contract` it belongs to,
//! for a bulk action its `bulk` id, and for the validation of one section of a double
//! licence the `steps` it covers. Its hash is `sha256:` + hex SHA-256 of the previous
//! event's hash, `"\n"` and the RFC 8785 serialisation of the event without its hash; the
//! first event's previous hash is [`GENESIS`]. Nothing secret is ever in an event: the
//! actor is a login and the kind of authentication, never a ticket, token or cookie.

use crate::content::{self, canonical_typed};
use crate::ContractsError;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::fmt;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::CopyInSink;

/// The previous hash of a chain's first event.
pub const GENESIS: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// What a person (or conpere itself) acts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The contract's student.
    Student,
    /// A directeur d'études.
    Directeur,
    /// The scolarité: reads everything, manages the catalogue.
    Scolarite,
    /// An administrator.
    Admin,
    /// conpere itself (generation, a sync's refresh).
    System,
}

impl Role {
    /// Its name in events and errors.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Student => "student",
            Role::Directeur => "directeur",
            Role::Scolarite => "scolarite",
            Role::Admin => "admin",
            Role::System => "system",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the actor was authenticated: a kind, never the credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthKind {
    /// A CAS ticket, validated.
    Cas,
    /// An OpenID Connect login or bearer token.
    Oidc,
    /// A trusted header from the reverse proxy.
    Header,
    /// The command line, run by whoever may run it on the server.
    Cli,
    /// The demo's login page (`conpere demo --serve` only): a person picked, no password.
    Demo,
    /// conpere itself.
    System,
}

/// Who acts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// Login (or student number), as the authentication gave it.
    pub id: String,
    /// The role the action is taken in.
    pub role: Role,
    /// How they were authenticated.
    pub auth: AuthKind,
    /// The identity provider (CAS server, OIDC issuer), when there is one.
    pub idp: Option<String>,
    /// The client's User-Agent, when there is one.
    pub user_agent: Option<String>,
}

impl Actor {
    /// conpere itself: generation and the refresh of a sync.
    pub fn system() -> Actor {
        Actor {
            id: "conpere".into(),
            role: Role::System,
            auth: AuthKind::System,
            idp: None,
            user_agent: None,
        }
    }

    /// Someone at the command line, in `role`.
    pub fn cli(id: impl Into<String>, role: Role) -> Actor {
        Actor {
            id: id.into(),
            role,
            auth: AuthKind::Cli,
            idp: None,
            user_agent: None,
        }
    }
}

/// An event to append, before its place in the chain is known.
#[derive(Debug, Clone)]
pub struct NewEvent<'a> {
    /// generate, refresh, edit, propose, sign, validate, refuse, amend, withdraw, close.
    pub action: &'static str,
    /// Who.
    pub actor: &'a Actor,
    /// When (microseconds, as PostgreSQL keeps them).
    pub at: DateTime<Utc>,
    /// The version acted on.
    pub version: i32,
    /// Its hash.
    pub version_hash: &'a str,
    /// Why (a refusal's reason, an amendment's reason code).
    pub reason: Option<&'a str>,
    /// The text the student was shown before signing.
    pub consent_text: Option<&'a str>,
    /// The bulk action this event is one of.
    pub bulk: Option<i64>,
    /// The sections (by step) a validation covers, when a directeur validates their own
    /// section of a contract with several (a double licence); none: the whole contract.
    pub steps: Option<&'a [String]>,
}

// The serialised event, fields in RFC 8785 order.
#[derive(Serialize)]
struct EventText<'a> {
    action: &'a str,
    actor: ActorText<'a>,
    at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    bulk: Option<i64>,
    client: ClientText<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    consent_text: Option<&'a str>,
    contract: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    seq: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    steps: Option<&'a [String]>,
    version: i32,
    version_hash: &'a str,
}

#[derive(Serialize)]
struct ActorText<'a> {
    auth: AuthKind,
    id: &'a str,
    idp: Option<&'a str>,
    role: Role,
}

#[derive(Serialize)]
struct ClientText<'a> {
    user_agent: Option<&'a str>,
}

/// An event in its place: its text and hash.
#[derive(Debug, Clone)]
pub struct Sealed {
    /// The contract.
    pub contract: i64,
    /// Its number in the contract's chain, from 1.
    pub seq: i32,
    /// What the event repeats for queries.
    pub action: &'static str,
    /// When.
    pub at: DateTime<Utc>,
    /// The version acted on, and its hash.
    pub version: i32,
    /// Its hash.
    pub version_hash: String,
    /// The bulk action.
    pub bulk: Option<i64>,
    /// The RFC 8785 text of the event.
    pub text: String,
    /// The previous event's hash.
    pub prev_hash: String,
    /// This event's hash.
    pub hash: String,
}

/// The instant an event is stamped with: now, to the microsecond.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}

/// An instant as events write it: RFC 3339, UTC, microseconds.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The canonical texts of an event's `actor` and `client` fields, for events built by
/// SQL (bulk validation).
pub fn actor_texts(actor: &Actor) -> (String, String) {
    let text = canonical_typed(&ActorText {
        auth: actor.auth,
        id: &actor.id,
        idp: actor.idp.as_deref(),
        role: actor.role,
    });
    let client = canonical_typed(&ClientText {
        user_agent: actor.user_agent.as_deref(),
    });
    (text, client)
}

/// The hash of an event's text after `prev_hash`.
pub fn chain_hash(prev_hash: &str, text: &str) -> String {
    let mut digest = Sha256::new();
    digest.update(prev_hash.as_bytes());
    digest.update(b"\n");
    digest.update(text.as_bytes());
    content::hex_hash(&digest.finalize())
}

impl NewEvent<'_> {
    /// The event as the `seq`th of `contract`'s chain, after `prev_hash`.
    pub fn seal(&self, contract: i64, seq: i32, prev_hash: &str) -> Sealed {
        let text = canonical_typed(&EventText {
            action: self.action,
            actor: ActorText {
                auth: self.actor.auth,
                id: &self.actor.id,
                idp: self.actor.idp.as_deref(),
                role: self.actor.role,
            },
            at: timestamp(self.at),
            bulk: self.bulk,
            client: ClientText {
                user_agent: self.actor.user_agent.as_deref(),
            },
            consent_text: self.consent_text,
            contract,
            reason: self.reason,
            seq,
            steps: self.steps,
            version: self.version,
            version_hash: self.version_hash,
        });
        Sealed {
            contract,
            seq,
            action: self.action,
            at: self.at,
            version: self.version,
            version_hash: self.version_hash.to_owned(),
            bulk: self.bulk,
            hash: chain_hash(prev_hash, &text),
            text,
            prev_hash: prev_hash.to_owned(),
        }
    }
}

/// The COPY statement [`write`] feeds.
pub const COPY_EVENTS: &str = "COPY contract_event (contract_id, seq, action, at, version, \
     version_hash, bulk_id, event, prev_hash, hash) FROM STDIN BINARY";

/// Writes sealed events with one binary COPY: `sink` is `copy_in(COPY_EVENTS)` on the
/// client or transaction the events belong to.
pub async fn write(
    sink: CopyInSink<bytes::Bytes>,
    events: &[Sealed],
) -> Result<(), ContractsError> {
    let types = [
        Type::INT8,
        Type::INT4,
        Type::TEXT,
        Type::TIMESTAMPTZ,
        Type::INT4,
        Type::TEXT,
        Type::INT8,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
    ];
    let rows = events.iter().map(|e| -> [&(dyn ToSql + Sync); 10] {
        [
            &e.contract,
            &e.seq,
            &e.action,
            &e.at,
            &e.version,
            &e.version_hash,
            &e.bulk,
            &e.text,
            &e.prev_hash,
            &e.hash,
        ]
    });
    crate::copy::rows(sink, &types, rows, "writing the evidence").await
}
