//! The flags that make a contract "specific" (DESIGN.md), computed for every contract
//! generated; which of them apply, and the ECTS limit, are settings.

use serde::Deserialize;

/// Every flag conpere computes, in the order they are listed.
pub const FLAGS: [&str; 7] = [
    "special_status",
    "double_registration",
    "repeater",
    "carried_over",
    "missing_pedagogical_registration",
    "choice_rule",
    "ects_over_limit",
];

/// What each flag means, for `show` and the README.
pub fn meaning(flag: &str) -> &'static str {
    match flag {
        "special_status" => "a registration carries a special status",
        "double_registration" => "two registrations or more this year (double licence)",
        "repeater" => "the same step in an earlier year",
        "carried_over" => "an element carried over from an earlier year",
        "missing_pedagogical_registration" => "an active registration without any enrolment",
        "choice_rule" => "a choice list's minimum or maximum not met",
        "ects_over_limit" => "more ECTS than the limit in one period",
        _ => "",
    }
}

/// `[contracts]` settings of the flags.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rules {
    /// The flags that apply (default: all of [`FLAGS`]).
    #[serde(default = "all_flags")]
    pub flags: Vec<String>,
    /// `ects_over_limit`: the most ECTS in one period (default 30, a semester).
    #[serde(default = "default_ects_limit")]
    pub ects_limit: f64,
    /// The reason codes an amendment may give (default: [`AMENDMENT_REASONS`]).
    #[serde(default = "default_amendment_reasons")]
    pub amendment_reasons: Vec<String>,
}

/// The default amendment reasons (DESIGN.md); `sis_change` is the one a sync gives.
pub const AMENDMENT_REASONS: [&str; 6] = [
    "path_change",
    "measure_added",
    "measure_ended",
    "status_change",
    "sis_change",
    "reorientation",
];

fn default_amendment_reasons() -> Vec<String> {
    AMENDMENT_REASONS.map(String::from).to_vec()
}

fn all_flags() -> Vec<String> {
    FLAGS.map(String::from).to_vec()
}

fn default_ects_limit() -> f64 {
    30.0
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            flags: all_flags(),
            ects_limit: default_ects_limit(),
            amendment_reasons: default_amendment_reasons(),
        }
    }
}

impl Rules {
    /// Unknown flag names, refused with the known ones.
    pub fn check(&self) -> Result<(), String> {
        // A sync opens its amendments with `sis_change`: it cannot be configured away.
        if !self.amendment_reasons.iter().any(|r| r == "sis_change") {
            return Err(
                "[contracts] amendment_reasons: keep `sis_change`, the reason a sync's \
                        amendments give"
                    .into(),
            );
        }
        match self.flags.iter().find(|f| !FLAGS.contains(&f.as_str())) {
            Some(unknown) => Err(format!(
                "[contracts] flags: `{unknown}` is not a flag (known: {})",
                FLAGS.join(", ")
            )),
            None => Ok(()),
        }
    }
}
