//! What every handler shares: the served data, the tokens, the injected faults, the
//! counters.

use super::auth::Tokens;
use super::data::Dataset;
use super::faults::FaultControl;
use super::http::ApiError;
use super::stats::Counters;
use super::Period;
use std::sync::Arc;

/// What every handler shares.
pub(crate) struct AppState {
    /// The served data.
    pub data: Dataset,
    /// `codeStructure` accepted in paths.
    pub structure: String,
    /// UAI of the institution (`UAI` of the feed).
    pub uai: String,
    /// Periods served.
    pub periods: Vec<Period>,
    /// Issued tokens and the credentials that get one.
    pub tokens: Tokens,
    /// Injected faults.
    pub faults: FaultControl,
    /// Counters.
    pub counters: Counters,
}

impl AppState {
    /// The period of this code, or a 404 naming it.
    pub(crate) fn period(&self, code: &str) -> Result<&Period, ApiError> {
        self.periods.iter().find(|p| p.code == code).ok_or_else(|| {
            ApiError::not_found("periode.inconnue", format!("période {code} inconnue"))
        })
    }

    /// A 404 unless `cs` is the configured structure.
    pub(crate) fn check_structure(&self, cs: &str) -> Result<(), ApiError> {
        if cs == self.structure {
            return Ok(());
        }
        Err(ApiError::not_found(
            "structure.inconnue",
            format!("structure {cs} inconnue"),
        ))
    }
}

/// Shared state as handlers receive it.
pub(crate) type Shared = Arc<AppState>;
