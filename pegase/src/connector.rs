//! `kind = "pegase"`: the [`Connector`] over Pégase's REST APIs (this increment: students
//! and registrations of the INS ext v2 feed).
//!
//! * `check` obtains a token, then reads one entry of each configured period's feed.
//! * `discover` declares students and registrations, full and incremental reads.
//! * `read` streams batches (see [`crate::feed`]).

use crate::config::{PegaseConfig, SPEC};
use crate::feed::{self, Cursor, FeedClient, ReadPlan, Window};
use conpere_connectors::bearer::{BearerProvider, BearerSettings};
use conpere_connectors::http::HttpClient;
use conpere_connectors::{
    BatchStream, Capabilities, CheckReport, ConfigError, Connector, ConnectorError,
    ConnectorFactory, ConnectorSpec, ReadRequest, SourceConfig,
};
use conpere_core::model::Kind;
use futures::StreamExt;
use std::sync::Arc;

/// Builds [`PegaseConnector`]s.
pub struct PegaseFactory;

impl ConnectorFactory for PegaseFactory {
    fn spec(&self) -> &'static ConnectorSpec {
        &SPEC
    }

    fn build(&self, source: &SourceConfig) -> Result<Box<dyn Connector>, ConfigError> {
        let config = PegaseConfig::from_source(source)?;
        Ok(Box::new(PegaseConnector::new(config, source)?))
    }
}

/// Reads a Pégase tenant through its REST APIs, read-only.
#[derive(Debug, Clone)]
pub struct PegaseConnector {
    config: Arc<PegaseConfig>,
    feed: FeedClient,
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
        let feed = FeedClient::new(client, tokens, &config.ins_url).map_err(invalid)?;
        Ok(PegaseConnector {
            config: Arc::new(config),
            feed,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &PegaseConfig {
        &self.config
    }
}

#[async_trait::async_trait]
impl Connector for PegaseConnector {
    fn spec(&self) -> &'static ConnectorSpec {
        &SPEC
    }

    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        self.feed.tokens().token().await?;
        let mut details = vec![format!(
            "obtained a bearer token for `{}` from {}",
            self.config.username,
            self.config.auth_url.origin().ascii_serialization()
        )];
        for period in &self.config.periods {
            let window = Window {
                period,
                since: 0,
                until: chrono::Utc::now().timestamp() + 1,
            };
            self.feed.page(window, 0, 1).await?;
            details.push(format!("read the INS registration feed of period {period}"));
        }
        Ok(CheckReport { details })
    }

    async fn discover(&self) -> Result<Capabilities, ConnectorError> {
        Ok(Capabilities {
            kinds: vec![Kind::Student, Kind::Registration],
            full: true,
            incremental: true,
            snapshot_kinds: Vec::new(),
            // Periods are configured by code; their years show only in the data.
            years: Vec::new(),
        })
    }

    async fn read(&self, request: ReadRequest) -> Result<BatchStream, ConnectorError> {
        let plan = ReadPlan {
            feed: self.feed.clone(),
            config: Arc::clone(&self.config),
            mode: request.mode,
            cursor: Cursor::from_request(request.cursor.as_ref())?,
            years: request.years,
            batch_size: request.batch_size,
        };
        let receiver = feed::start(plan);
        Ok(tokio_stream_of(receiver))
    }
}

/// The channel as a stream.
fn tokio_stream_of(
    receiver: tokio::sync::mpsc::Receiver<Result<conpere_core::engine::Batch, ConnectorError>>,
) -> BatchStream {
    futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|batch| (batch, receiver))
    })
    .boxed()
}
