//! Reading the INS ext v2 registration feed (`flux-inscriptions/pagine`), full and
//! incremental, into batches of canonical records.
//!
//! Read-only by construction: [`FeedClient`] can only send GET requests (the token POST
//! is [`BearerProvider`]'s, the one non-GET request of the adapter).
//!
//! Incremental reads keep, per period, a high-water mark (the largest
//! `derniereModification` seen) and re-read from `mark - overlap`, so that changes
//! committed late with an older timestamp are not missed; the entries of that overlap
//! already read are recognised by their fingerprint (key and modification time, kept in
//! the cursor) and skipped. A long backlog is walked in windows of `window_days`.

use crate::config::PegaseConfig;
use crate::mapping::{self, Entry};
use conpere_connectors::bearer::BearerProvider;
use conpere_connectors::http::{HttpClient, Outcome, RequestSpec, Response, Url};
use conpere_connectors::ConnectorError;
use conpere_core::engine::{Batch, Mode};
use conpere_core::model::{Item, Record};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use tokio::sync::mpsc;

/// The feed's path under the INS module's base URL.
pub const FEED_PATH: &str = "/api/ins/ext/v2/gestion/flux-inscriptions/pagine";

/// The largest page the feed accepts (it answers 400 above).
pub const MAX_PAGE_SIZE: usize = 500;

/// GET-only access to the feed, with the bearer token.
#[derive(Debug, Clone)]
pub struct FeedClient {
    client: HttpClient,
    tokens: BearerProvider,
    url: Url,
}

/// One page of the feed.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FeedPage {
    /// Number of pages of the window.
    #[serde(default)]
    pub total_pages: usize,
    /// The entries, parsed one by one so that a bad one is rejected alone.
    #[serde(default)]
    pub resultats: Vec<serde_json::Value>,
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
    pub fn new(
        client: HttpClient,
        tokens: BearerProvider,
        ins_url: &Url,
    ) -> Result<FeedClient, String> {
        let base = ins_url.as_str().trim_end_matches('/');
        let url = Url::parse(&format!("{base}{FEED_PATH}"))
            .map_err(|e| format!("the INS feed URL cannot be built from {base}: {e}"))?;
        Ok(FeedClient {
            client,
            tokens,
            url,
        })
    }

    /// The token provider (`check` asks it for a token first).
    pub fn tokens(&self) -> &BearerProvider {
        &self.tokens
    }

    /// Page `page` (from 0) of `window`, `size` entries a page (capped at 500).
    pub async fn page(
        &self,
        window: Window<'_>,
        page: usize,
        size: usize,
    ) -> Result<FeedPage, ConnectorError> {
        let mut url = self.url.clone();
        url.query_pairs_mut()
            .append_pair("codePeriode", window.period)
            .append_pair("depuis", &window.since.to_string())
            .append_pair("jusqua", &window.until.to_string())
            .append_pair("page", &page.to_string())
            .append_pair("taille", &size.clamp(1, MAX_PAGE_SIZE).to_string());
        let operation = format!(
            "INS flux-inscriptions (period {}, page {page})",
            window.period
        );
        let request = RequestSpec::get(url, operation.clone());
        let response = self.tokens.send(&self.client, request, classify).await?;
        serde_json::from_slice(&response.body).map_err(|e| {
            ConnectorError::failed(
                operation,
                format!("the answer is not a feed page ({e}); check base_url / modules.ins"),
            )
        })
    }
}

/// Status rules, with what the server said: Pégase error bodies are JSON
/// (`{code, message}`), older modules answer plain text; either way the `correlationId`
/// header is what PC-Scol's support asks for.
fn classify(response: &Response) -> Outcome {
    let said = || describe_error(response);
    match Outcome::by_status(response) {
        Outcome::Done => Outcome::Done,
        Outcome::Retry(reason) => Outcome::Retry(format!("{reason}; {}", said())),
        Outcome::Fail(reason) => Outcome::Fail(format!("{reason}; {}", said())),
    }
}

/// The error body's message (JSON) or its nature (non-JSON), and the correlation id.
fn describe_error(response: &Response) -> String {
    let body = serde_json::from_slice::<serde_json::Value>(&response.body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .map(|m| format!("server message: {m}"))
        .unwrap_or_else(|| format!("non-JSON body of {} bytes", response.body.len()));
    let correlation = response
        .headers
        .get("correlationId")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("none");
    format!("{body}, correlationId {correlation}")
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

/// What a read does.
pub struct ReadPlan {
    /// The feed.
    pub feed: FeedClient,
    /// Settings.
    pub config: Arc<PegaseConfig>,
    /// Full or incremental.
    pub mode: Mode,
    /// The previous position (incremental).
    pub cursor: Cursor,
    /// Only these academic years, when set.
    pub years: Option<Vec<i32>>,
    /// Items per batch.
    pub batch_size: usize,
}

type Sender = mpsc::Sender<Result<Batch, ConnectorError>>;

/// Starts the reading task; batches arrive on the returned channel (2 deep, so memory
/// stays bounded), the last one carrying the new cursor.
pub fn start(plan: ReadPlan) -> mpsc::Receiver<Result<Batch, ConnectorError>> {
    let (sender, receiver) = mpsc::channel(2);
    tokio::spawn(async move {
        if let Err(error) = run(plan, &sender).await {
            // The receiver may be gone (the run was abandoned): nothing left to tell.
            let _ = sender.send(Err(error)).await;
        }
    });
    receiver
}

/// The state of a run: the batch being filled and what was already emitted.
struct Run<'a> {
    plan: &'a ReadPlan,
    sender: &'a Sender,
    items: Vec<Item>,
    students: HashSet<String>,
    registrations: HashSet<String>,
}

async fn run(plan: ReadPlan, sender: &Sender) -> Result<(), ConnectorError> {
    let now = chrono::Utc::now().timestamp();
    let mut run = Run {
        plan: &plan,
        sender,
        items: Vec::new(),
        students: HashSet::new(),
        registrations: HashSet::new(),
    };
    let mut cursor = Cursor::default();
    for period in &plan.config.periods {
        let previous = match plan.mode {
            Mode::Full => PeriodCursor::default(),
            Mode::Incremental => plan.cursor.periods.get(period).cloned().unwrap_or_default(),
        };
        let next = run.period(period, previous, now).await?;
        cursor.periods.insert(period.clone(), next);
    }
    let cursor = serde_json::to_value(&cursor)
        .map_err(|e| ConnectorError::failed("writing the Pégase cursor", e))?;
    let items = std::mem::take(&mut run.items);
    send(
        sender,
        Batch {
            items,
            cursor: Some(cursor),
        },
    )
    .await
}

async fn send(sender: &Sender, batch: Batch) -> Result<(), ConnectorError> {
    sender
        .send(Ok(batch))
        .await
        .map_err(|_| ConnectorError::failed("reading Pégase", "the run was abandoned"))
}

impl Run<'_> {
    /// Reads one period from its previous position; returns its new position.
    async fn period(
        &mut self,
        period: &str,
        previous: PeriodCursor,
        now: i64,
    ) -> Result<PeriodCursor, ConnectorError> {
        let config = &self.plan.config;
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
            self.window(window, &previous, &mut position).await?;
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
    ) -> Result<(), ConnectorError> {
        let mut page = 0;
        loop {
            let answer = self.plan.feed.page(window, page, MAX_PAGE_SIZE).await?;
            for raw in &answer.resultats {
                self.entry(raw, window.period, previous, position).await?;
            }
            page += 1;
            if page >= answer.total_pages || answer.resultats.is_empty() {
                return Ok(());
            }
        }
    }

    /// One entry: skipped when already read in the overlap, else mapped and queued.
    async fn entry(
        &mut self,
        raw: &serde_json::Value,
        period: &str,
        previous: &PeriodCursor,
        position: &mut PeriodCursor,
    ) -> Result<(), ConnectorError> {
        let location = format!("INS flux-inscriptions (period {period})");
        let entry: Entry = match serde_json::from_value(raw.clone()) {
            Ok(entry) => entry,
            Err(e) => {
                let reason = format!("a feed entry cannot be read: {e}");
                let rejected = mapping::rejected(reason, &location, raw);
                return self.push(Item::Rejected(rejected)).await;
            }
        };
        let modified = entry.derniere_modification;
        let fingerprint = fingerprint(&entry.key(), modified);
        position.mark = position.mark.max(Some(modified));
        position.seen.insert(fingerprint.clone(), modified);
        if previous.seen.contains_key(&fingerprint) || !self.wanted(&entry) {
            return Ok(());
        }
        self.emit(&entry, &location, raw).await
    }

    fn wanted(&self, entry: &Entry) -> bool {
        self.plan
            .years
            .as_ref()
            .is_none_or(|years| years.contains(&entry.annee_universitaire))
    }

    /// Queues the entry's student (once a run) and registration (once per key).
    async fn emit(
        &mut self,
        entry: &Entry,
        location: &str,
        raw: &serde_json::Value,
    ) -> Result<(), ConnectorError> {
        // A registration modified during the run can show up in two windows: keep one.
        if !self.registrations.insert(entry.key()) {
            return Ok(());
        }
        let registration = match entry.registration(&self.plan.config.tables) {
            Ok(registration) => registration,
            Err(reason) => {
                let rejected = mapping::rejected(reason, location, raw);
                return self.push(Item::Rejected(rejected)).await;
            }
        };
        if self.students.insert(entry.code_apprenant.clone()) {
            self.push(Record::Student(entry.student()).into()).await?;
        }
        self.push(Record::Registration(registration).into()).await
    }

    /// Adds an item; sends a full batch.
    async fn push(&mut self, item: Item) -> Result<(), ConnectorError> {
        self.items.push(item);
        if self.items.len() >= self.plan.batch_size.max(1) {
            let items = std::mem::take(&mut self.items);
            send(
                self.sender,
                Batch {
                    items,
                    cursor: None,
                },
            )
            .await?;
        }
        Ok(())
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
