//! `kind = "cocktail"`: a SQL source reading a published set of views through ODBC, by
//! default the view contract (`V_CONPERE_*`, one view per canonical record kind), or any
//! mapping file whose inputs are `format = "sql"`.
//!
//! ```toml
//! [sources.cocktail]
//! kind = "cocktail"
//! connection_env = "COCKTAIL_ODBC"   # the ODBC connection string: a secret (it holds the
//!                                    # password), from the environment or a file
//! # mapping = "view-contract"        # or the path of a mapping over your own views
//! ```

use crate::odbc::{self, Database};
use conpere_connectors::batches::{self, BatchSender};
use conpere_connectors::{
    BatchStream, Capabilities, CheckReport, ConfigError, Connector, ConnectorError, ConnectorSpec,
    Factory, FieldSpec, FromSource, ReadRequest, Secret, SourceConfig,
};
use conpere_mappings::format::{Input, MappingFile};
use conpere_mappings::mapping::Outcome;
use conpere_mappings::readers::Format;
use serde::Deserialize;
use std::sync::Arc;

/// The shipped view contract.
pub const VIEW_CONTRACT: &str = include_str!("../shipped/view-contract.toml");

/// The configuration keys of a Cocktail (SQL views) source.
pub static SPEC: ConnectorSpec = ConnectorSpec {
    kind: "cocktail",
    description:
        "Cocktail, or any SIS database publishing the V_CONPERE_* views, read through ODBC",
    fields: &[
        FieldSpec::new(
            "connection",
            true,
            true,
            "the ODBC connection string (Driver=…;Server=…;Uid=…;Pwd=…): it holds the \
             password, so it comes from the environment or a file",
            "\"COCKTAIL_ODBC\"",
        ),
        FieldSpec::new(
            "mapping",
            false,
            false,
            "view-contract (default: the V_CONPERE_* views) or the path of a mapping file \
             whose inputs are format = \"sql\"",
            "\"view-contract\"",
        ),
    ],
    shared_fields: &[],
};

#[derive(Deserialize)]
struct Settings {
    #[serde(default)]
    mapping: Option<String>,
}

/// Builds [`CocktailConnector`]s.
pub type CocktailFactory = Factory<CocktailConnector>;

/// Reads SQL views through ODBC and a mapping.
#[derive(Debug, Clone)]
pub struct CocktailConnector {
    connection: Secret,
    mapping: Arc<MappingFile>,
}

/// The view an input reads (SQL inputs only).
fn view(input: &Input) -> Option<&str> {
    match &input.format {
        Format::Sql(options) => Some(&options.view),
        _ => None,
    }
}

/// Runs `work` with a connection, on a blocking thread (ODBC calls block).
async fn with_connection<T: Send + 'static>(
    connection: &Secret,
    work: impl FnOnce(&odbc_api::Connection<'_>) -> Result<T, String> + Send + 'static,
) -> Result<T, ConnectorError> {
    let connection = connection.clone();
    tokio::task::spawn_blocking(move || {
        let database = Database::new()?;
        let open = database.connect(connection.expose())?;
        work(&open)
    })
    .await
    .map_err(|e| ConnectorError::failed("reading the views", e))?
    .map_err(|message| ConnectorError::failed("reading the views", message))
}

#[async_trait::async_trait]
impl Connector for CocktailConnector {
    fn spec(&self) -> &'static ConnectorSpec {
        &SPEC
    }

    async fn check(&self) -> Result<CheckReport, ConnectorError> {
        let mapping = Arc::clone(&self.mapping);
        with_connection(&self.connection, move |connection| {
            let mut details = vec![format!("connected; mapping `{}`", mapping.name)];
            for input in &mapping.inputs {
                let view = view(input).unwrap_or_default();
                let columns = odbc::columns(connection, view)?;
                let missing: Vec<&str> = input
                    .fields
                    .iter()
                    .flat_map(|(_, e)| e.expr.columns())
                    .filter(|c| !columns.iter().any(|k| k == c))
                    .collect();
                if !missing.is_empty() {
                    return Err(format!(
                        "{view} has no column {} (it has: {})",
                        missing.join(", "),
                        columns.join(", ")
                    ));
                }
                details.push(format!(
                    "{view}: {} columns, as the mapping reads",
                    columns.len()
                ));
            }
            Ok(CheckReport { details })
        })
        .await
    }

    async fn discover(&self) -> Result<Capabilities, ConnectorError> {
        Ok(Capabilities {
            kinds: self.mapping.kinds(),
            full: true,
            incremental: false,
            snapshot_kinds: Vec::new(),
            years: Vec::new(),
        })
    }

    async fn read(&self, request: ReadRequest) -> Result<BatchStream, ConnectorError> {
        let (mut sender, stream) = batches::channel(request.batch_size);
        let mapping = Arc::clone(&self.mapping);
        let connection = self.connection.clone();
        tokio::task::spawn_blocking(move || {
            // Once the run stopped listening, nobody gets the outcome.
            match read_views(&connection, &mapping, &request, &mut sender) {
                Ok(()) => {
                    let _ = sender.finish_blocking(None);
                }
                Err(error) => sender.fail_blocking(error),
            }
        });
        Ok(stream)
    }
}

/// Reads every input's view, sending full batches (the last, partial one is left to send).
fn read_views(
    connection: &Secret,
    mapping: &MappingFile,
    request: &ReadRequest,
    sender: &mut BatchSender,
) -> Result<(), ConnectorError> {
    let failed = |message: String| ConnectorError::failed("reading the views", message);
    let database = Database::new().map_err(failed)?;
    let open = database.connect(connection.expose()).map_err(failed)?;
    let size = request.batch_size.max(1);
    for input in &mapping.inputs {
        let view = view(input).unwrap_or_default();
        odbc::read_view(&open, view, size, |row| {
            if let Outcome::Item(item, modified) = input.map(&row, &mapping.tables) {
                if request.wants(&item) {
                    if let Some(instant) = modified {
                        sender.modified_at(instant);
                    }
                    sender
                        .push_blocking(item)
                        .map_err(|stopped| stopped.to_string())?;
                }
            }
            Ok(())
        })
        .map_err(failed)?;
    }
    Ok(())
}

impl FromSource for CocktailConnector {
    const SPEC: &'static ConnectorSpec = &SPEC;

    fn from_source(source: &SourceConfig) -> Result<CocktailConnector, ConfigError> {
        let settings: Settings = source.settings()?;
        let mapping = match settings.mapping.as_deref() {
            None | Some("view-contract") => {
                MappingFile::parse("shipped:view-contract", VIEW_CONTRACT)
            }
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| {
                    source.invalid(format!("`mapping = {path:?}` cannot be read: {e}"))
                })?;
                MappingFile::parse(path, &text)
            }
        }
        .map_err(|e| source.invalid(e.to_string()))?;
        // References are joined files of a drop; over SQL, the view does the join.
        if let Some(reference) = mapping.references.first() {
            return Err(source.invalid(format!(
                "{}:{}: reference `{}`: a SQL source does not load references (lookups through \
                 it would find nothing); join it in the view instead",
                mapping.origin, reference.line, reference.name
            )));
        }
        if let Some(input) = mapping.inputs.iter().find(|i| view(i).is_none()) {
            return Err(source.invalid(format!(
                "{}:{}: this source reads SQL views: every input needs format = \"sql\"",
                mapping.origin, input.line
            )));
        }
        Ok(CocktailConnector {
            connection: source.required_secret("connection")?,
            mapping: Arc::new(mapping),
        })
    }
}
