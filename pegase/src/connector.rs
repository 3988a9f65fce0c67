//! `kind = "pegase"`: the [`Connector`] over Pégase's REST APIs.
//!
//! * `check` obtains a token, finds each configured period among ODF's espaces, and reads
//!   one entry of its INS feed.
//! * `discover` declares every kind but results, full and incremental reads; structure
//!   and enrolments are read whole even incrementally (no change feed for them), unless
//!   `incremental_scope = "registrations"` leaves them to full runs.
//! * `read` streams batches (see [`crate::read`]).

use crate::api::PegaseApi;
use crate::choices::ChcClient;
use crate::config::{IncrementalScope, PegaseConfig, SPEC};
use crate::feed::{Cursor, FeedClient, Window};
use crate::read::{self, ReadPlan};
use crate::structure::OdfClient;
use conpere_connectors::bearer::{BearerProvider, BearerSettings};
use conpere_connectors::http::HttpClient;
use conpere_connectors::{
    BatchStream, Capabilities, CheckReport, ConfigError, Connector, ConnectorError, ConnectorSpec,
    Factory, FromSource, ReadRequest, SourceConfig,
};
use conpere_model::Kind;
use std::sync::Arc;

/// Builds [`PegaseConnector`]s.
pub type PegaseFactory = Factory<PegaseConnector>;

impl FromSource for PegaseConnector {
    const SPEC: &'static ConnectorSpec = &SPEC;

    fn from_source(source: &SourceConfig) -> Result<PegaseConnector, ConfigError> {
        PegaseConnector::new(PegaseConfig::from_source(source)?, source)
    }
}

/// Reads a Pégase tenant through its REST APIs, read-only.
#[derive(Debug, Clone)]
pub struct PegaseConnector {
    config: Arc<PegaseConfig>,
    client: HttpClient,
    api: PegaseApi,
    feed: FeedClient,
    odf: OdfClient,
    chc: ChcClient,
}

impl PegaseConnector {
    /// A connector for a checked configuration (contacts nothing); `source` names the
    /// source in configuration errors.
    pub fn new(
        config: PegaseConfig,
        source: &SourceConfig,
    ) -> Result<PegaseConnector, ConfigError> {
        let invalid = |message: String| source.invalid(message);
        // One client for the token and the data calls: its concurrency bound and rate cap
        // cover both. It carries no credentials of its own (the bearer token is added).
        let client = HttpClient::new(&config.http).map_err(|e| invalid(e.to_string()))?;
        let settings = BearerSettings::new(
            config.auth_url.clone(),
            config.username.clone(),
            config.password.clone(),
        );
        let tokens =
            BearerProvider::new(settings, client.clone()).map_err(|e| invalid(e.to_string()))?;
        let api = PegaseApi::new(tokens);
        let feed =
            FeedClient::new(api.clone(), &config.ins_url).map_err(|e| invalid(e.to_string()))?;
        let odf = OdfClient::new(api.clone(), config.odf_url.clone(), &config.structure);
        let chc = ChcClient::new(api.clone(), config.chc_url.clone(), &config.structure);
        Ok(PegaseConnector {
            config: Arc::new(config),
            client,
            api,
            feed,
            odf,
            chc,
        })
    }

    /// The HTTP client of every call (its counters: requests sent, retries…).
    pub fn client(&self) -> &HttpClient {
        &self.client
    }
}

#[async_trait::async_trait]
impl Connector for PegaseConnector {
    fn spec(&self) -> &'static ConnectorSpec {
        &SPEC
    }

    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        self.api.tokens().token().await?;
        let mut details = vec![format!(
            "obtained a bearer token for `{}` from {}",
            self.config.username,
            self.config.auth_url.origin().ascii_serialization()
        )];
        let spaces = self.odf.periods().await?;
        for period in &self.config.periods {
            let space = read::period_space(&spaces, period, &self.config.structure)?;
            let window = Window {
                period,
                since: 0,
                until: chrono::Utc::now().timestamp() + 1,
            };
            self.feed.pages(window, 1).next().await?;
            details.push(format!(
                "period {period} ({}-{}) found in ODF; read its INS registration feed",
                space.year,
                space.year + 1
            ));
        }
        Ok(CheckReport { details })
    }

    async fn discover(&self) -> Result<Capabilities, ConnectorError> {
        Ok(Capabilities {
            kinds: vec![
                Kind::Student,
                Kind::Node,
                Kind::Edge,
                Kind::Registration,
                Kind::Enrolment,
            ],
            full: true,
            incremental: true,
            snapshot_kinds: match self.config.incremental_scope {
                IncrementalScope::All => vec![Kind::Node, Kind::Edge, Kind::Enrolment],
                IncrementalScope::Registrations => Vec::new(),
            },
            // Periods are configured by code; their years show only in the data.
            years: Vec::new(),
        })
    }

    async fn read(&self, request: ReadRequest) -> Result<BatchStream, ConnectorError> {
        let plan = ReadPlan {
            feed: self.feed.clone(),
            odf: self.odf.clone(),
            chc: self.chc.clone(),
            config: Arc::clone(&self.config),
            mode: request.mode,
            cursor: Cursor::from_request(request.cursor.as_ref())?,
            years: request.years,
            batch_size: request.batch_size,
        };
        Ok(read::start(plan))
    }
}
