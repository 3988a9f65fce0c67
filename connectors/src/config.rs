//! One source's configuration: the `[sources.<name>]` table of `conpere.toml` (with its
//! `CONPERE_SOURCES__<NAME>__<KEY>` environment overrides), typed on demand, with
//! secrets resolved from the environment or a file — never from the file itself.
//!
//! ```
//! use conpere_connectors::SourceConfig;
//! let config = SourceConfig::from_toml("files", r#"
//!     [sources.files]
//!     kind = "canonical"
//!     path = "/srv/canonical"
//! "#).unwrap();
//! assert_eq!(config.common.kind, "canonical");
//! #[derive(serde::Deserialize)]
//! struct Settings { path: String }
//! assert_eq!(config.settings::<Settings>().unwrap().path, "/srv/canonical");
//! ```

use figment::providers::{Format, Toml};
use figment::Figment;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// Keys every source accepts, whatever its kind.
pub const COMMON_KEYS: &[&str] = &[
    "kind",
    "schedule",
    "years",
    "deletion_hold",
    "deletion_hold_min",
    "batch_size",
    "run_timeout_seconds",
    "run_retries",
    "run_retry_delay_seconds",
    "jitter_seconds",
    "notify",
];

/// Configuration errors: each names the source, the key, where it was read and the fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value is missing or has the wrong type (the message names key and file).
    #[error("source `{source_name}`: {message}")]
    Invalid {
        /// Source name.
        source_name: String,
        /// figment's message: key, expected type, file.
        message: String,
    },
    /// A key this kind of source does not know.
    #[error(
        "source `{source_name}` (kind `{kind}`): unknown key `{key}` in [sources.{source_name}]{origin}; \
         known keys: {known}"
    )]
    UnknownKey {
        /// Source name.
        source_name: String,
        /// Its kind.
        kind: String,
        /// The unknown key.
        key: String,
        /// The keys it accepts.
        known: String,
        /// ` of <file>` when known.
        origin: String,
    },
    /// No connector of that kind.
    #[error("source `{source_name}`: unknown kind `{kind}`; available kinds: {known}")]
    UnknownKind {
        /// Source name.
        source_name: String,
        /// The kind asked for.
        kind: String,
        /// Registered kinds.
        known: String,
    },
    /// A secret was written in the configuration itself.
    #[error(
        "source `{source_name}`: `{key}` must not be written in the configuration file; put the value \
         in an environment variable and set `{key}_env = \"VAR\"`, or in a file readable only by \
         conpere and set `{key}_file = \"/path\"`"
    )]
    SecretInFile {
        /// Source name.
        source_name: String,
        /// The secret's key.
        key: String,
    },
    /// A required secret has no `_env` nor `_file`.
    #[error(
        "source `{source_name}`: no `{key}`: set `{key}_env = \"VAR\"` or `{key}_file = \"/path\"`"
    )]
    NoSecret {
        /// Source name.
        source_name: String,
        /// The secret's key.
        key: String,
    },
    /// The environment variable that should hold a secret is not set.
    #[error(
        "source `{source_name}`: `{key}` is read from the environment variable {variable} \
         (`{key}_env`), which is not set; export {variable} before running conpere \
         (e.g. in the systemd unit's EnvironmentFile)"
    )]
    MissingSecretVariable {
        /// Source name.
        source_name: String,
        /// The secret's key.
        key: String,
        /// The variable expected.
        variable: String,
    },
    /// The file that should hold a secret cannot be read.
    #[error("source `{source_name}`: `{key}` is read from {path} (`{key}_file`), which cannot be read: {error}")]
    SecretFile {
        /// Source name.
        source_name: String,
        /// The secret's key.
        key: String,
        /// The file.
        path: String,
        /// Why.
        error: String,
    },
}

/// Settings every source has, whatever its kind.
#[derive(Debug, Clone, Deserialize)]
pub struct CommonSettings {
    /// Connector kind (`canonical`, `apogee`, `pegase`…).
    pub kind: String,
    /// Cron expression with seconds (`conpere serve`), in the institution's time zone.
    #[serde(default)]
    pub schedule: Option<String>,
    /// Academic years to read (`None`: every year the source serves).
    #[serde(default)]
    pub years: Option<Vec<i32>>,
    /// A run that would delete more than this share of a scope is held (default 0.10).
    #[serde(default = "default_hold")]
    pub deletion_hold: f64,
    /// Deletions below this count never hold a run (default 10).
    #[serde(default = "default_hold_min")]
    pub deletion_hold_min: u64,
    /// Items per batch (bounds memory; default 5000).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
    /// `conpere serve`: a run taking longer is abandoned, nothing of it applied (default
    /// 6 hours).
    #[serde(default = "default_run_timeout")]
    pub run_timeout_seconds: u64,
    /// `conpere serve`: how many times a failed scheduled run is tried again (default 0).
    #[serde(default)]
    pub run_retries: u32,
    /// `conpere serve`: the wait before trying a failed run again (default 600).
    #[serde(default = "default_retry_delay")]
    pub run_retry_delay_seconds: u64,
    /// `conpere serve`: a scheduled run starts up to this many seconds late, at random, so
    /// that sources due at the same time do not all hit their SIS at once (default 0).
    #[serde(default)]
    pub jitter_seconds: u64,
    /// `conpere serve`: the channels (`[notifications.<name>]`) told when a run of this
    /// source fails or is held; none: `[server] notify`, the daemon's default.
    #[serde(default)]
    pub notify: Option<Vec<String>>,
}

fn default_run_timeout() -> u64 {
    6 * 3600
}
fn default_retry_delay() -> u64 {
    600
}

fn default_hold() -> f64 {
    0.10
}
fn default_hold_min() -> u64 {
    10
}
fn default_batch_size() -> usize {
    5000
}

/// A secret value. Its `Debug` and `Display` never show it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that sends it (an auth header, a login form).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Why a secret named by a variable or a file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretReadError {
    /// The variable is not set, or empty.
    #[error("the environment variable {0} is not set")]
    Variable(String),
    /// The file cannot be read.
    #[error("{path} cannot be read: {error}")]
    File {
        /// The file.
        path: String,
        /// Why.
        error: String,
    },
}

/// Reads a secret from the environment variable `variable`, else from `file` (without
/// its trailing line break); `None` when neither is named. Every `<key>_env` /
/// `<key>_file` pair of the configuration, sources' and daemon-wide, is read here.
///
/// ```
/// use conpere_connectors::config::{read_secret, SecretReadError};
/// assert!(read_secret(None, None).unwrap().is_none());
/// assert_eq!(
///     read_secret(Some("CONPERE_DOC_NO_SUCH_VARIABLE"), None).unwrap_err(),
///     SecretReadError::Variable("CONPERE_DOC_NO_SUCH_VARIABLE".into())
/// );
/// ```
pub fn read_secret(
    variable: Option<&str>,
    file: Option<&Path>,
) -> Result<Option<Secret>, SecretReadError> {
    if let Some(variable) = variable {
        return match std::env::var(variable) {
            Ok(value) if !value.is_empty() => Ok(Some(Secret(value))),
            _ => Err(SecretReadError::Variable(variable.to_string())),
        };
    }
    let Some(path) = file else {
        return Ok(None);
    };
    std::fs::read_to_string(path)
        .map(|v| Some(Secret(v.trim_end_matches(['\n', '\r']).to_string())))
        .map_err(|e| SecretReadError::File {
            path: path.display().to_string(),
            error: e.to_string(),
        })
}

/// The institution's time zone when `[institution] timezone` does not say.
pub const DEFAULT_TIMEZONE: &str = "Europe/Paris";

/// One `[sources.<name>]` table.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// The source's name (the table name): it keys its records in the store.
    pub name: String,
    /// Common settings.
    pub common: CommonSettings,
    figment: Figment,
    origin: Option<PathBuf>,
    state_dir: Option<PathBuf>,
}

impl SourceConfig {
    /// The same source, with a directory its connector may keep state in between runs
    /// (conpere gives `<data dir>/sources/<name>`).
    pub fn with_state_dir(self, dir: impl Into<PathBuf>) -> SourceConfig {
        SourceConfig {
            state_dir: Some(dir.into()),
            ..self
        }
    }

    /// Where the connector may keep state between runs (what a file source remembers of
    /// its reference files); `None` when none was given.
    pub fn state_dir(&self) -> Option<&std::path::Path> {
        self.state_dir.as_deref()
    }

    /// The source `name` of a loaded configuration (`figment` holds the whole file).
    pub fn from_figment(
        name: &str,
        figment: Figment,
        origin: Option<PathBuf>,
    ) -> Result<SourceConfig, ConfigError> {
        let common = figment
            .extract_inner::<CommonSettings>(&format!("sources.{name}"))
            .map_err(|e| ConfigError::Invalid {
                source_name: name.to_string(),
                message: e.to_string(),
            })?;
        if !(0.0..=1.0).contains(&common.deletion_hold) {
            return Err(ConfigError::Invalid {
                source_name: name.to_string(),
                message: format!(
                    "`deletion_hold` is a share between 0 and 1 (0.10 = 10 %), not {}",
                    common.deletion_hold
                ),
            });
        }
        Ok(SourceConfig {
            name: name.to_string(),
            common,
            figment,
            origin,
            state_dir: None,
        })
    }

    /// The source `name` of a TOML document (tests, examples).
    pub fn from_toml(name: &str, toml: &str) -> Result<SourceConfig, ConfigError> {
        SourceConfig::from_figment(name, Figment::from(Toml::string(toml)), None)
    }

    fn path(&self) -> String {
        format!("sources.{}", self.name)
    }

    /// The adapter's typed settings, read from the source's table. Keys the type does
    /// not know are ignored here; [`crate::Registry::build`] rejects them against the spec.
    pub fn settings<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        self.figment
            .extract_inner::<T>(&self.path())
            .map_err(|e| self.invalid(e.to_string()))
    }

    /// The institution's time zone (`[institution] timezone`, [`DEFAULT_TIMEZONE`] when
    /// absent): a SIS that sends a date as an instant (a birth date at local midnight,
    /// serialised in UTC) is read in it before the date is taken.
    pub fn institution_timezone(&self) -> Result<chrono_tz::Tz, ConfigError> {
        let name = self
            .figment
            .extract_inner::<String>("institution.timezone")
            .unwrap_or_else(|_| DEFAULT_TIMEZONE.to_string());
        name.parse().map_err(|_| {
            self.invalid(format!(
                "[institution] timezone = {name:?} is not an IANA time zone (e.g. \
                 \"Europe/Paris\", \"America/Cayenne\", \"Indian/Reunion\")"
            ))
        })
    }

    /// An error about this source.
    pub fn invalid(&self, message: impl Into<String>) -> ConfigError {
        ConfigError::Invalid {
            source_name: self.name.clone(),
            message: message.into(),
        }
    }

    /// The keys present in the source's table.
    pub fn keys(&self) -> Vec<String> {
        self.figment
            .find_value(&self.path())
            .ok()
            .and_then(|v| v.into_dict())
            .map(|d| d.into_keys().collect())
            .unwrap_or_default()
    }

    /// ` of <file>` for messages, when the configuration came from a file.
    pub fn origin_suffix(&self) -> String {
        self.origin
            .as_ref()
            .map(|p| format!(" of {}", p.display()))
            .unwrap_or_default()
    }

    fn string_key(&self, key: &str) -> Option<String> {
        self.figment
            .extract_inner::<String>(&format!("{}.{key}", self.path()))
            .ok()
    }

    /// Resolves secret `key` from `<key>_env` (a variable name) or `<key>_file` (a path);
    /// `None` when neither is set. A literal `<key>` in the file is refused.
    pub fn secret(&self, key: &str) -> Result<Option<Secret>, ConfigError> {
        if self.keys().iter().any(|k| k == key) {
            return Err(ConfigError::SecretInFile {
                source_name: self.name.clone(),
                key: key.to_string(),
            });
        }
        let variable = self.string_key(&format!("{key}_env"));
        let file = self.string_key(&format!("{key}_file")).map(PathBuf::from);
        read_secret(variable.as_deref(), file.as_deref()).map_err(|error| match error {
            SecretReadError::Variable(variable) => ConfigError::MissingSecretVariable {
                source_name: self.name.clone(),
                key: key.to_string(),
                variable,
            },
            SecretReadError::File { path, error } => ConfigError::SecretFile {
                source_name: self.name.clone(),
                key: key.to_string(),
                path,
                error,
            },
        })
    }

    /// Like [`SourceConfig::secret`], but the secret must be configured.
    pub fn required_secret(&self, key: &str) -> Result<Secret, ConfigError> {
        self.secret(key)?.ok_or_else(|| ConfigError::NoSecret {
            source_name: self.name.clone(),
            key: key.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_come_from_the_file() {
        let config = SourceConfig::from_toml(
            "apogee",
            "[sources.apogee]\nkind = \"apogee\"\npassword = \"hunter2\"\n",
        )
        .unwrap();
        let err = config.secret("password").unwrap_err().to_string();
        assert!(err.contains("password_env"), "{err}");
        assert!(!err.contains("hunter2"), "{err}");
    }

    #[test]
    fn missing_variable_is_named() {
        let config = SourceConfig::from_toml(
            "apogee",
            "[sources.apogee]\nkind = \"apogee\"\npassword_env = \"CONPERE_TEST_UNSET_VARIABLE\"\n",
        )
        .unwrap();
        let err = config.secret("password").unwrap_err().to_string();
        assert!(err.contains("CONPERE_TEST_UNSET_VARIABLE"), "{err}");
        assert_eq!(format!("{:?}", Secret("x".into())), "Secret(***)");
    }

    #[test]
    fn bad_type_names_the_key() {
        let err =
            SourceConfig::from_toml("f", "[sources.f]\nkind = \"canonical\"\nyears = \"2024\"\n")
                .unwrap_err()
                .to_string();
        assert!(err.contains("years"), "{err}");
    }

    #[test]
    fn the_institutions_time_zone_defaults_to_paris_and_is_checked() {
        let source = |institution: &str| {
            let toml = format!("{institution}[sources.f]\nkind = \"canonical\"\n");
            SourceConfig::from_toml("f", &toml).unwrap()
        };
        let zone = |institution: &str| source(institution).institution_timezone();
        assert_eq!(zone("").unwrap(), chrono_tz::Europe::Paris);
        let reunion = "[institution]\ntimezone = \"Indian/Reunion\"\n";
        assert_eq!(zone(reunion).unwrap(), chrono_tz::Indian::Reunion);
        let error = zone("[institution]\ntimezone = \"Paris\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("\"Paris\" is not an IANA time zone"),
            "{error}"
        );
    }
}
