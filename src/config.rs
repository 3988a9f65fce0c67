//! `conpere.toml`: loading, environment overrides (`CONPERE_<SECTION>__<KEY>`), and
//! errors that name the file, the key and the fix.

use crate::notify::settings::ChannelSettings;
use anyhow::{anyhow, bail};
use conpere_connectors::config::{read_secret, SecretReadError};
use conpere_connectors::{Secret, SourceConfig};
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const SECTIONS: [&str; 8] = [
    "institution",
    "database",
    "server",
    "notifications",
    "sources",
    "contracts",
    "auth",
    "roles",
];

/// `[institution]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Institution {
    /// Display name.
    #[serde(default)]
    pub name: String,
    /// Time zone of schedules.
    #[serde(default = "default_timezone")]
    pub timezone: String,
}

fn default_timezone() -> String {
    conpere_connectors::config::DEFAULT_TIMEZONE.into()
}

impl Default for Institution {
    fn default() -> Self {
        Institution {
            name: String::new(),
            timezone: default_timezone(),
        }
    }
}

/// `[database]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// A PostgreSQL URL or key=value string; without it conpere runs its embedded server.
    pub url: Option<String>,
    /// Environment variable holding the database password.
    pub password_env: Option<String>,
    /// File holding the database password.
    pub password_file: Option<PathBuf>,
    /// Where the embedded server keeps its cluster (default: see `default_data_dir`).
    pub data_dir: Option<PathBuf>,
    /// Directory of the PostgreSQL server binaries, when not found by itself.
    pub pg_bin_dir: Option<PathBuf>,
    /// Connections in the pool.
    pub pool_size: Option<usize>,
}

/// `[server]` (`conpere serve`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Listen address of the HTTP endpoints (default 127.0.0.1:8080).
    pub listen: Option<String>,
    /// A run due while the daemon was down: `once` (default) runs it at start-up,
    /// `skip` waits for the next one.
    pub catch_up: Option<CatchUp>,
    /// On SIGTERM, how long a run in progress may take to finish before it is abandoned
    /// (nothing of it applied), in seconds (default 60).
    pub shutdown_grace_seconds: Option<u64>,
    /// Environment variable holding the admin API token.
    pub admin_token_env: Option<String>,
    /// File holding the admin API token.
    pub admin_token_file: Option<PathBuf>,
    /// The channels (`[notifications.<name>]`) told about sources that name none.
    pub notify: Option<Vec<String>>,
    /// The address operators reach the admin API at (e.g. `https://conpere.univ.fr`),
    /// used for links in notifications; none: the messages give commands only.
    pub public_url: Option<String>,
    /// Who the admin token stands for, in the audit log and as `decided_by` of the runs
    /// it approves or rejects (default `admin-token`).
    pub admin_name: Option<String>,
    /// How long a client has to send a request's headers, and the most an idle
    /// connection stays open, in seconds (default 10).
    pub header_timeout_seconds: Option<u64>,
    /// How long a request has to be answered, in seconds (default 30).
    pub request_timeout_seconds: Option<u64>,
    /// Connections served at once (default 1024; more wait to be accepted).
    pub max_connections: Option<usize>,
    /// Origins that may frame the pages besides conpere itself (the ENT's:
    /// `["https://ent.univ.fr"]`); none by default.
    pub frame_ancestors: Option<Vec<String>>,
}

/// What a daemon does with a run that was due while it was down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CatchUp {
    /// Run it once at start-up.
    #[default]
    Once,
    /// Wait for the next one.
    Skip,
}

/// `[contracts]`: the measures catalogue and the flag rules (defaults when absent).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContractsSettings {
    /// A measures catalogue replacing the default one.
    pub measures: Option<PathBuf>,
    /// The flags that apply (default: every one).
    pub flags: Option<Vec<String>>,
    /// The most ECTS in one period before `ects_over_limit` (default 30).
    pub ects_limit: Option<f64>,
    /// The reason codes an amendment may give (default: path_change, measure_added,
    /// measure_ended, status_change, sis_change, reorientation).
    pub amendment_reasons: Option<Vec<String>>,
}

/// The whole configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[institution]`.
    pub institution: Institution,
    /// `[database]`.
    pub database: DatabaseSettings,
    /// `[server]`.
    pub server: ServerSettings,
    /// `[notifications.<name>]`: where run failures and holds are told.
    pub notifications: BTreeMap<String, ChannelSettings>,
    /// `[contracts]`.
    pub contracts: ContractsSettings,
    /// `[auth]`: how callers of the contracts API are authenticated (none: the API is
    /// not served).
    pub auth: Option<conpere_web::auth::AuthSettings>,
    /// `[roles]`.
    pub roles: conpere_web::roles::RolesSettings,
    /// Source names, sorted.
    pub source_names: Vec<String>,
    /// The file it came from.
    pub path: Option<PathBuf>,
    figment: Figment,
}

/// A configuration error (exit code 2).
#[derive(Debug)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// A usage error as an `anyhow::Error`.
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

/// A section, or its defaults when the file has none.
fn section<T: Default + serde::de::DeserializeOwned>(
    figment: &Figment,
    name: &str,
    file: &str,
) -> anyhow::Result<T> {
    if figment.find_value(name).is_err() {
        return Ok(T::default());
    }
    figment
        .extract_inner(name)
        .map_err(|e| anyhow!("{file}: {e}"))
}

impl Config {
    /// Loads `path`, or `./conpere.toml` when present, or the defaults.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Config> {
        let path = match path {
            Some(p) if !p.exists() => {
                return Err(usage(format!(
                    "configuration file {} not found; write one with `conpere init --out {}`",
                    p.display(),
                    p.display()
                )))
            }
            Some(p) => Some(p.to_path_buf()),
            None => Some(PathBuf::from("conpere.toml")).filter(|p| p.exists()),
        };
        let mut figment = Figment::new();
        if let Some(p) = &path {
            figment = figment.merge(Toml::file_exact(p));
        }
        figment = figment.merge(
            Env::prefixed("CONPERE_")
                .filter(|key| {
                    let key = key.as_str().to_ascii_lowercase();
                    SECTIONS.iter().any(|s| key.starts_with(&format!("{s}__")))
                })
                .split("__"),
        );
        Config::from_figment(figment, path).map_err(|e| usage(format!("{e:#}")))
    }

    fn from_figment(figment: Figment, path: Option<PathBuf>) -> anyhow::Result<Config> {
        let file = path
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "the configuration".into());
        let root: figment::value::Dict = figment.extract().map_err(|e| anyhow!("{file}: {e}"))?;
        if let Some(unknown) = root.keys().find(|k| !SECTIONS.contains(&k.as_str())) {
            bail!(
                "{file}: unknown section [{unknown}]; sections are {}",
                SECTIONS.map(|s| format!("[{s}]")).join(", ")
            );
        }
        let institution = section(&figment, "institution", &file)?;
        let database = section(&figment, "database", &file)?;
        let server = section(&figment, "server", &file)?;
        let notifications = section(&figment, "notifications", &file)?;
        let contracts = section(&figment, "contracts", &file)?;
        let auth = match figment.find_value("auth") {
            Ok(_) => Some(
                figment
                    .extract_inner("auth")
                    .map_err(|e| anyhow!("{file}: {e}"))?,
            ),
            Err(_) => None,
        };
        let roles = section(&figment, "roles", &file)?;
        let source_names = figment
            .find_value("sources")
            .ok()
            .and_then(|v| v.into_dict())
            .map(|d| d.into_keys().collect())
            .unwrap_or_default();
        let config = Config {
            institution,
            database,
            server,
            notifications,
            contracts,
            auth,
            roles,
            source_names,
            path,
            figment,
        };
        config.check_database_url(&file)?;
        Ok(config)
    }

    /// The measures catalogue and flag rules of `[contracts]`: a catalogue file that
    /// cannot be used, or an unknown flag, is a configuration error naming why.
    pub fn contract_rules(
        &self,
    ) -> anyhow::Result<(
        conpere_contracts::catalogue::Catalogue,
        conpere_contracts::rules::Rules,
    )> {
        use conpere_contracts::catalogue::Catalogue;
        use conpere_contracts::rules::Rules;
        let settings = &self.contracts;
        let catalogue = match &settings.measures {
            Some(path) => Catalogue::load(path).map_err(|e| usage(e.to_string()))?,
            None => Catalogue::default(),
        };
        let defaults = Rules::default();
        let rules = Rules {
            flags: settings.flags.clone().unwrap_or(defaults.flags),
            ects_limit: settings.ects_limit.unwrap_or(defaults.ects_limit),
            amendment_reasons: (settings.amendment_reasons.clone())
                .unwrap_or(defaults.amendment_reasons),
        };
        rules.check().map_err(usage)?;
        Ok((catalogue, rules))
    }

    /// Refuses a password written in the file's database URL.
    fn check_database_url(&self, file: &str) -> anyhow::Result<()> {
        let Some(url) = &self.database.url else {
            return Ok(());
        };
        let parsed: tokio_postgres::Config = url.parse().map_err(|e| {
            anyhow!(
                "{file}: [database] url is not a PostgreSQL connection string ({e}); \
                 e.g. url = \"postgres://conpere@db.example.fr/conpere\""
            )
        })?;
        let from_file = self
            .figment
            .find_metadata("database.url")
            .is_some_and(|m| m.name.contains("TOML"));
        if parsed.get_password().is_some() && from_file {
            bail!(
                "{file}: [database] url contains a password; secrets never go in the file: \
                 remove it from the url and set password_env = \"VAR\" or password_file = \"/path\""
            );
        }
        Ok(())
    }

    /// The configuration of source `name`.
    pub fn source(&self, name: &str) -> anyhow::Result<SourceConfig> {
        if !self.source_names.iter().any(|n| n == name) {
            let known = if self.source_names.is_empty() {
                "none is configured; add a [sources.<name>] table (see `conpere init`)".to_string()
            } else {
                format!("configured sources: {}", self.source_names.join(", "))
            };
            return Err(usage(format!("no source named `{name}`; {known}")));
        }
        let data_dir = (self.database.data_dir.clone())
            .unwrap_or_else(conpere_core::embedded::default_data_dir);
        SourceConfig::from_figment(name, self.figment.clone(), self.path.clone())
            .map(|source| source.with_state_dir(data_dir.join("sources").join(name)))
            .map_err(|e| usage(e.to_string()))
    }

    /// The source to use when the command names none: the only one configured.
    pub fn default_source(&self, asked: Option<&str>) -> anyhow::Result<String> {
        match (asked, self.source_names.as_slice()) {
            (Some(name), _) => Ok(name.to_string()),
            (None, [only]) => Ok(only.clone()),
            (None, []) => Err(usage(
                "no source is configured: add a [sources.<name>] table to conpere.toml (see `conpere init`), \
                 or try `conpere demo`",
            )),
            (None, names) => Err(usage(format!(
                "several sources are configured ({}); choose one with --source",
                names.join(", ")
            ))),
        }
    }

    /// The database password from `password_env` / `password_file`, if configured.
    pub fn database_password(&self) -> anyhow::Result<Option<String>> {
        let database = &self.database;
        let password = secret_setting(
            "[database] password",
            database.password_env.as_ref(),
            database.password_file.as_ref(),
        )?;
        Ok(password.map(|p| p.expose().to_string()))
    }
}

/// A daemon-wide secret named by `<what>_env` (a variable) or `<what>_file` (a path), as
/// `[database] password_*`, `[server] admin_token_*` and the notification channels give
/// them; `None` when neither is set. `what` names the setting in errors (e.g. `[server]
/// admin_token`).
pub fn secret_setting(
    what: &str,
    variable: Option<&String>,
    file: Option<&PathBuf>,
) -> anyhow::Result<Option<Secret>> {
    read_secret(variable.map(String::as_str), file.map(PathBuf::as_path)).map_err(|error| {
        usage(match error {
            SecretReadError::Variable(_) => format!(
                "{what}_env: {error}; export it before starting conpere \
                 (e.g. in the systemd unit's EnvironmentFile)"
            ),
            SecretReadError::File { .. } => format!("{what}_file: {error}"),
        })
    })
}
