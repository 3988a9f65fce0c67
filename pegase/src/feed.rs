//! Reading the INS ext v2 registration feed (`flux-inscriptions/pagine`), full and
//! incremental, into batches of canonical records.
//!
//! Incremental reads keep, per period, a high-water mark (the largest
//! `derniereModification` seen) and re-read from `mark - overlap`, so that changes
//! committed late with an older timestamp are not missed; the entries of that overlap
//! already read are recognised by their fingerprint (key and modification time, kept in
//! the cursor) and skipped. A long backlog is walked in windows of `window_days`.

use crate::api::{self, PageWalk, PegaseApi};
use crate::config::PegaseConfig;
use crate::mapping::{self, Entry};
use conpere_connectors::batches::BatchSender;
use conpere_connectors::http::Url;
use conpere_connectors::ConnectorError;
use conpere_model::{Item, Kind, Record};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// The feed's path under the INS module's base URL.
pub const FEED_PATH: &str = "/api/ins/ext/v2/gestion/flux-inscriptions/pagine";

/// The largest page the feed accepts (it answers 400 above).
pub const MAX_PAGE_SIZE: usize = 500;

/// The feed of the INS module.
#[derive(Debug, Clone)]
pub struct FeedClient {
    api: PegaseApi,
    url: Url,
}

/// A window of the feed: `[since, until)` in epoch seconds, of one period.
#[derive(Debug, Clone, Copy)]
pub struct Window<'a> {
    /// Period code.
    pub period: &'a str,
    /// `depuis`, inclusive.
    pub since: i64,
    /// `jusqua`, exclusive.
    pub until: i64,
}

impl FeedClient {
    /// A feed client on the INS module at `ins_url`.
    pub fn new(api: PegaseApi, ins_url: &Url) -> Result<FeedClient, ConnectorError> {
        let url = api::module_url(ins_url, FEED_PATH, &[])?;
        Ok(FeedClient { api, url })
    }

    /// The pages of `window`, `size` entries a page (capped at 500).
    pub fn pages(&self, window: Window<'_>, size: usize) -> PageWalk<'_> {
        let mut url = self.url.clone();
        url.query_pairs_mut()
            .append_pair("codePeriode", window.period)
            .append_pair("depuis", &window.since.to_string())
            .append_pair("jusqua", &window.until.to_string());
        let operation = format!("INS flux-inscriptions (period {})", window.period);
        let size = size.clamp(1, MAX_PAGE_SIZE);
        PageWalk::new(&self.api, url, size, operation, "a feed page")
    }
}

/// Where the last run stopped, per period.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Cursor {
    /// Period code → its position.
    #[serde(default)]
    pub periods: BTreeMap<String, PeriodCursor>,
}

/// The position in one period's feed.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PeriodCursor {
    /// The largest `derniereModification` seen (none yet: read the whole period).
    pub mark: Option<i64>,
    /// Fingerprints of the entries read within the overlap before `mark`, with their
    /// modification time: the next overlap re-read skips them.
    #[serde(default)]
    pub seen: BTreeMap<String, i64>,
}

impl Cursor {
    /// The cursor of a request (an unreadable one is an error: guessing would re-read or
    /// skip changes silently).
    pub fn from_request(value: Option<&serde_json::Value>) -> Result<Cursor, ConnectorError> {
        value
            .map(|v| serde_json::from_value(v.clone()))
            .transpose()
            .map(Option::unwrap_or_default)
            .map_err(|e| {
                ConnectorError::failed(
                    "reading the Pégase cursor",
                    format!("{e}; run a full read to start a new cursor"),
                )
            })
    }
}

/// Walks the feed of the periods read, emitting each registration once and each
/// student once per run.
pub struct FeedWalk<'a> {
    feed: &'a FeedClient,
    config: &'a PegaseConfig,
    students: HashSet<String>,
    registrations: HashSet<String>,
}

impl<'a> FeedWalk<'a> {
    /// A walk of `feed`.
    pub fn new(feed: &'a FeedClient, config: &'a PegaseConfig) -> FeedWalk<'a> {
        FeedWalk {
            feed,
            config,
            students: HashSet::new(),
            registrations: HashSet::new(),
        }
    }

    /// Reads one period from its previous position (the default one reads it whole);
    /// returns its new position.
    pub async fn period(
        &mut self,
        period: &str,
        previous: PeriodCursor,
        now: i64,
        out: &mut BatchSender,
    ) -> Result<PeriodCursor, ConnectorError> {
        let config = self.config;
        // `jusqua` is exclusive: now + 1 includes what changed this very second.
        let until = now + 1;
        let mut position = previous.clone();
        let mut since = previous.mark.map_or(0, |m| m - config.overlap_seconds);
        loop {
            // Without a mark there is no backlog to bound: the whole period at once.
            let end = match previous.mark {
                Some(_) => (since + config.window_seconds).min(until),
                None => until,
            };
            let window = Window {
                period,
                since,
                until: end,
            };
            self.window(window, &previous, &mut position, out).await?;
            if end >= until {
                break;
            }
            since = end;
        }
        if let Some(mark) = position.mark {
            position
                .seen
                .retain(|_, at| *at >= mark - config.overlap_seconds);
        }
        Ok(position)
    }

    /// Walks every page of a window.
    async fn window(
        &mut self,
        window: Window<'_>,
        previous: &PeriodCursor,
        position: &mut PeriodCursor,
        out: &mut BatchSender,
    ) -> Result<(), ConnectorError> {
        let location = format!("INS flux-inscriptions (period {})", window.period);
        let feed = self.feed.clone();
        let mut pages = feed.pages(window, MAX_PAGE_SIZE);
        while let Some(entries) = pages.next().await? {
            for raw in &entries {
                self.entry(raw, &location, previous, position, out).await?;
            }
        }
        Ok(())
    }

    /// One entry: skipped when already read in the overlap, else mapped and queued.
    async fn entry(
        &mut self,
        raw: &serde_json::Value,
        location: &str,
        previous: &PeriodCursor,
        position: &mut PeriodCursor,
        out: &mut BatchSender,
    ) -> Result<(), ConnectorError> {
        let entry = match Entry::deserialize(raw) {
            Ok(entry) => entry,
            Err(e) => {
                let reason = format!("a feed entry cannot be read: {e}");
                let rejected = mapping::rejected(Kind::Registration, reason, location, raw);
                return Ok(out.push(Item::Rejected(rejected)).await?);
            }
        };
        let modified = entry.derniere_modification;
        let key = entry.key();
        let fingerprint = fingerprint(&key, modified);
        position.mark = position.mark.max(Some(modified));
        position.seen.insert(fingerprint.clone(), modified);
        if previous.seen.contains_key(&fingerprint) {
            return Ok(());
        }
        self.emit(&entry, key, location, raw, out).await
    }

    /// Queues the entry's student (once a run) and registration (once per key).
    async fn emit(
        &mut self,
        entry: &Entry,
        key: String,
        location: &str,
        raw: &serde_json::Value,
        out: &mut BatchSender,
    ) -> Result<(), ConnectorError> {
        // A registration modified during the run can show up in two windows: keep one.
        if !self.registrations.insert(key) {
            return Ok(());
        }
        let registration = match entry.registration(&self.config.tables) {
            Ok(registration) => registration,
            Err(reason) => {
                let rejected = mapping::rejected(Kind::Registration, reason, location, raw);
                return Ok(out.push(Item::Rejected(rejected)).await?);
            }
        };
        if self.students.insert(entry.code_apprenant.clone()) {
            out.push(Record::Student(entry.student()).into()).await?;
        }
        Ok(out.push(Record::Registration(registration).into()).await?)
    }
}

/// A short, stable fingerprint of an entry's version (FNV-1a, 64 bits): the cursor keeps
/// no student numbers.
fn fingerprint(key: &str, modified: i64) -> String {
    let text = format!("{key}@{modified}");
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    });
    format!("{hash:016x}")
}
