//! `conpere contracts verify`: every version hash and every evidence chain recomputed from
//! what the store holds, and the first break named.
//!
//! Each column of a version or an event is bound to something `verify` recomputes: a
//! version's content to its hash; its number, hash, creation time and reason to the
//! event that created it; an event's columns to its text, its text to its hash, its hash
//! to the next event's and, for the last, to the contract's head. So an edit by hand of
//! any of them — or an event or version removed, moved or added — is caught.

use crate::content;
use crate::evidence::{chain_hash, GENESIS};
use crate::ContractsError;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::HashMap;
use std::fmt;
use tokio_postgres::Client;

/// Contracts checked per round trip.
const BLOCK: usize = 500;

/// Actions that create the version they name.
const CREATING: [&str; 4] = ["generate", "refresh", "edit", "amend"];

/// Where a chain or a version does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Break {
    /// The contract.
    pub contract: i64,
    /// The event (seq), or the version, where it breaks.
    pub at: String,
    /// What was checked.
    pub what: String,
    /// What it should be.
    pub expected: String,
    /// What the store holds.
    pub found: String,
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "contract #{}, {}: {}: expected {}, found {}",
            self.contract, self.at, self.what, self.expected, self.found
        )
    }
}

/// What a verification found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Contracts checked.
    pub contracts: u64,
    /// Versions checked.
    pub versions: u64,
    /// Events checked.
    pub events: u64,
    /// The first break of each broken contract.
    pub breaks: Vec<Break>,
}

struct Version {
    number: i32,
    hash: String,
    content: String,
    created_at: DateTime<Utc>,
    reason: Option<String>,
}

struct Event {
    seq: i32,
    action: String,
    at: DateTime<Utc>,
    version: i32,
    version_hash: String,
    bulk: Option<i64>,
    text: String,
    prev_hash: String,
    hash: String,
}

struct Head {
    version: i32,
    hash: String,
    events: i32,
    head_hash: String,
}

/// Verifies every contract, or one.
pub async fn verify(client: &Client, contract: Option<i64>) -> Result<Report, ContractsError> {
    let failed = ContractsError::db("reading the contracts to verify");
    let ids: Vec<i64> = client
        .query(
            "SELECT id FROM contract WHERE $1::bigint IS NULL OR id = $1 ORDER BY id",
            &[&contract],
        )
        .await
        .map_err(&failed)?
        .iter()
        .map(|row| row.get(0))
        .collect();
    if let (Some(id), true) = (contract, ids.is_empty()) {
        return Err(ContractsError::NotFound(id));
    }
    let mut report = Report::default();
    // Versions and events of no contract (neither table has a foreign key: see
    // migrations V9 and V12).
    if contract.is_none() {
        for row in client
            .query(
                "SELECT 'version', v.contract_id, min(v.version), count(*) \
                 FROM contract_version v \
                 WHERE NOT EXISTS (SELECT 1 FROM contract k WHERE k.id = v.contract_id) \
                 GROUP BY 2 \
                 UNION ALL \
                 SELECT 'event', e.contract_id, min(e.seq), count(*) FROM contract_event e \
                 WHERE NOT EXISTS (SELECT 1 FROM contract k WHERE k.id = e.contract_id) \
                 GROUP BY 2 ORDER BY 2, 1 DESC",
                &[],
            )
            .await
            .map_err(&failed)?
        {
            let (what, found): (&str, i64) = (row.get(0), row.get(3));
            report.breaks.push(Break {
                contract: row.get(1),
                at: format!("{what} {}", row.get::<_, i32>(2)),
                what: "contract".into(),
                expected: "an existing contract".into(),
                found: format!("{found} {what}(s) of none"),
            });
        }
    }
    for block in ids.chunks(BLOCK) {
        let (heads, mut versions, mut events) = read(client, block).await?;
        for id in block {
            let versions = versions.remove(id).unwrap_or_default();
            let events = events.remove(id).unwrap_or_default();
            report.contracts += 1;
            report.versions += versions.len() as u64;
            report.events += events.len() as u64;
            if let Err(broken) = check(*id, &heads[id], &versions, &events) {
                report.breaks.push(broken);
            }
        }
    }
    Ok(report)
}

type Read = (
    HashMap<i64, Head>,
    HashMap<i64, Vec<Version>>,
    HashMap<i64, Vec<Event>>,
);

async fn read(client: &Client, ids: &[i64]) -> Result<Read, ContractsError> {
    let failed = ContractsError::db("reading the contracts to verify");
    let heads = client
        .query(
            "SELECT id, version, events, head_hash, hash FROM contract WHERE id = ANY($1)",
            &[&ids],
        )
        .await
        .map_err(&failed)?;
    let heads = (heads.iter())
        .map(|r| {
            let head = Head {
                version: r.get(1),
                events: r.get(2),
                head_hash: r.get(3),
                hash: r.get(4),
            };
            (r.get(0), head)
        })
        .collect();
    let mut versions: HashMap<i64, Vec<Version>> = HashMap::new();
    for r in client
        .query(
            "SELECT contract_id, version, hash, content, created_at, reason FROM contract_version \
             WHERE contract_id = ANY($1) ORDER BY contract_id, version",
            &[&ids],
        )
        .await
        .map_err(&failed)?
    {
        versions.entry(r.get(0)).or_default().push(Version {
            number: r.get(1),
            hash: r.get(2),
            content: r.get(3),
            created_at: r.get(4),
            reason: r.get(5),
        });
    }
    let mut events: HashMap<i64, Vec<Event>> = HashMap::new();
    for r in client
        .query(
            "SELECT contract_id, seq, action, at, version, version_hash, bulk_id, event, \
                    prev_hash, hash FROM contract_event WHERE contract_id = ANY($1) \
             ORDER BY contract_id, seq",
            &[&ids],
        )
        .await
        .map_err(&failed)?
    {
        events.entry(r.get(0)).or_default().push(Event {
            seq: r.get(1),
            action: r.get(2),
            at: r.get(3),
            version: r.get(4),
            version_hash: r.get(5),
            bulk: r.get(6),
            text: r.get(7),
            prev_hash: r.get(8),
            hash: r.get(9),
        });
    }
    Ok((heads, versions, events))
}

/// The first thing that does not hold in one contract.
fn check(id: i64, head: &Head, versions: &[Version], events: &[Event]) -> Result<(), Break> {
    let broken =
        |at: String, what: &str, expected: &dyn fmt::Display, found: &dyn fmt::Display| Break {
            contract: id,
            at,
            what: what.to_owned(),
            expected: expected.to_string(),
            found: found.to_string(),
        };
    let mut by_number = HashMap::new();
    for (i, v) in versions.iter().enumerate() {
        let at = format!("version {}", v.number);
        let expected_number = i as i32 + 1;
        if v.number != expected_number {
            return Err(broken(at, "version number", &expected_number, &v.number));
        }
        let recomputed = content::hash(&v.content);
        if recomputed != v.hash {
            return Err(broken(at, "version hash", &recomputed, &v.hash));
        }
        by_number.insert(v.number, v);
    }
    match by_number.get(&head.version) {
        None => {
            let expected = "an existing version";
            return Err(broken(
                "head".into(),
                "current version",
                &expected,
                &head.version,
            ));
        }
        Some(v) if v.hash != head.hash => {
            return Err(broken("head".into(), "current hash", &v.hash, &head.hash));
        }
        Some(_) => {}
    }
    let mut prev = GENESIS.to_owned();
    let mut created = HashMap::new();
    for (i, e) in events.iter().enumerate() {
        let at = format!("event {}", e.seq);
        let expected_seq = i as i32 + 1;
        if e.seq != expected_seq {
            return Err(broken(at, "seq", &expected_seq, &e.seq));
        }
        if e.prev_hash != prev {
            return Err(broken(at, "prev_hash", &prev, &e.prev_hash));
        }
        let recomputed = chain_hash(&prev, &e.text);
        if recomputed != e.hash {
            return Err(broken(at, "event hash", &recomputed, &e.hash));
        }
        let reason = check_columns(e, id)
            .map_err(|(what, expected, found)| broken(at.clone(), &what, &expected, &found))?;
        match by_number.get(&e.version) {
            Some(v) if v.hash == e.version_hash => {}
            Some(v) => return Err(broken(at, "version_hash", &v.hash, &e.version_hash)),
            None => return Err(broken(at, "version", &"an existing version", &e.version)),
        }
        if CREATING.contains(&e.action.as_str()) {
            created.insert(e.version, (e, reason));
        }
        prev = e.hash.clone();
    }
    if head.events != events.len() as i32 || head.head_hash != prev {
        return Err(broken(
            "head".into(),
            "last event",
            &format!("{} events ending {}", events.len(), prev),
            &format!("{} events ending {}", head.events, head.head_hash),
        ));
    }
    for v in versions {
        let at = format!("version {}", v.number);
        let Some((e, reason)) = created.get(&v.number) else {
            return Err(broken(at, "creating event", &"an event", &"none"));
        };
        if e.at != v.created_at {
            return Err(broken(at, "created_at", &e.at, &v.created_at));
        }
        if reason.as_deref() != v.reason.as_deref() {
            let show = |r: Option<&str>| r.unwrap_or("none").to_owned();
            return Err(broken(
                at,
                "reason",
                &show(reason.as_deref()),
                &show(v.reason.as_deref()),
            ));
        }
    }
    Ok(())
}

/// The event's text is canonical and its columns say what it says; its reason.
fn check_columns(e: &Event, contract: i64) -> Result<Option<String>, (String, String, String)> {
    let mismatch =
        |what: &str, expected: String, found: String| Err((what.to_owned(), expected, found));
    let Ok(value) = serde_json::from_str::<Value>(&e.text) else {
        return mismatch("event text", "JSON".into(), e.text.clone());
    };
    if content::canonical(&value) != e.text {
        return mismatch("event text", "its RFC 8785 form".into(), e.text.clone());
    }
    let text_at = value["at"]
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok());
    let checks: [(&str, Value, Value); 7] = [
        ("seq", value["seq"].clone(), e.seq.into()),
        ("contract", value["contract"].clone(), contract.into()),
        ("action", value["action"].clone(), e.action.clone().into()),
        ("version", value["version"].clone(), e.version.into()),
        (
            "version_hash",
            value["version_hash"].clone(),
            e.version_hash.clone().into(),
        ),
        (
            "bulk",
            value.get("bulk").cloned().unwrap_or(Value::Null),
            e.bulk.into(),
        ),
        (
            "at",
            text_at.map(|t| t.with_timezone(&Utc).to_rfc3339()).into(),
            e.at.to_rfc3339().into(),
        ),
    ];
    for (what, said, column) in checks {
        if said != column {
            return mismatch(what, said.to_string(), column.to_string());
        }
    }
    Ok(value["reason"].as_str().map(str::to_owned))
}
