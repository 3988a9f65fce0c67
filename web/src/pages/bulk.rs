//! Validating a step at once: the directeur chooses a step and a year, sees how many
//! signed standard contracts will be validated and which are skipped and why (the very
//! statement, rolled back: `bulk::preview`), confirms, and sees what was done — one
//! screen for a step of 300 students, not 300.

use super::i18n::Lang;
use super::{layout, PageError};
use crate::contracts::actor;
use crate::error::ApiError;
use crate::roles::User;
use crate::Api;
use axum::extract::rejection::FormRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Form;
use conpere_contracts::bulk::{self, BulkReport, BulkValidation, Selection};
use conpere_contracts::evidence::Role;
use maud::{html, Markup};
use serde::Deserialize;
use std::sync::Arc;

/// A step and a year.
#[derive(Debug, Deserialize)]
pub struct StepYear {
    step: String,
    year: i32,
}

/// The bulk validation `user` may take on `chosen`: a directeur for a step of theirs,
/// an administrator for any.
fn validation(user: &User, chosen: &StepYear) -> Result<(BulkValidation, Role), ApiError> {
    let role = match (user.admin, user.steps.contains(&chosen.step)) {
        (_, true) => Role::Directeur,
        (true, false) => Role::Admin,
        _ => return Err(ApiError::forbidden("not a directeur of this step")),
    };
    let bulk = BulkValidation {
        selection: Selection::Year {
            year: chosen.year,
            step: Some(chosen.step.clone()),
        },
        standard_only: true,
        steps: (role == Role::Directeur).then(|| user.steps.clone()),
    };
    Ok((bulk, role))
}

/// `GET /validate?step&year`: what would be validated, and a button to do it.
pub async fn confirm(
    State(api): State<Arc<Api>>,
    lang: Lang,
    user: Result<User, ApiError>,
    headers: HeaderMap,
    query: Result<Query<StepYear>, axum::extract::rejection::QueryRejection>,
) -> Result<Markup, PageError> {
    let failed = |e| PageError::new(lang, e);
    let user = user.map_err(failed)?;
    let Query(chosen) = super::filled(query).map_err(failed)?;
    let (bulk, role) = validation(&user, &chosen).map_err(failed)?;
    let mut client = api.client().await.map_err(failed)?;
    let preview = bulk::preview(&mut client, &bulk, &actor(&user, role, &headers))
        .await
        .map_err(|e| failed(e.into()))?;
    let body = html! {
        p { (lang.t_with("bulk-will", &[("count", preview.validated.to_string()), ("step", chosen.step.clone()), ("year", chosen.year.to_string())])) }
        (skipped(lang, &preview))
        @if preview.validated > 0 {
            form method="post" action="/validate" {
                input type="hidden" name="step" value=(chosen.step);
                input type="hidden" name="year" value=(chosen.year);
                button type="submit" { (lang.t_with("bulk-confirm", &[("count", preview.validated.to_string())])) }
            }
        }
    };
    Ok(layout::page(lang, &lang.t("bulk-title"), body))
}

/// `POST /validate`: validated, and what was skipped.
pub async fn validate(
    State(api): State<Arc<Api>>,
    lang: Lang,
    user: Result<User, ApiError>,
    headers: HeaderMap,
    form: Result<Form<StepYear>, FormRejection>,
) -> Result<Markup, PageError> {
    let failed = |e| PageError::new(lang, e);
    let user = user.map_err(failed)?;
    let Form(chosen) = super::filled(form).map_err(failed)?;
    let (bulk, role) = validation(&user, &chosen).map_err(failed)?;
    let mut client = api.client().await.map_err(failed)?;
    let done = bulk::validate(&mut client, &bulk, &actor(&user, role, &headers)).await;
    let on = format!("step {} {}", chosen.step, chosen.year);
    let done = crate::audit::outcome(
        &user.login,
        "validate_all",
        &on,
        done.map_err(ApiError::from),
    )
    .map_err(failed)?;
    let body = html! {
        p.notice role="status" { (lang.t_with("bulk-done", &[("count", done.validated.to_string())])) }
        (skipped(lang, &done))
        p { a href="/" { (lang.t("error-back")) } }
    };
    Ok(layout::page(lang, &lang.t("bulk-title"), body))
}

/// The contracts skipped, each with why.
fn skipped(lang: Lang, report: &BulkReport) -> Markup {
    html! {
        @if !report.skipped_contracts.is_empty() {
            h2 { (lang.t_with("bulk-skipped", &[("count", report.skipped_contracts.len().to_string())])) }
            ul {
                @for (id, reason) in &report.skipped_contracts {
                    li {
                        a href={ "/contracts/" (id) } { (lang.t_with("home-open", &[("id", id.to_string())])) }
                        " — " (lang.t(reason_message(reason)))
                    }
                }
            }
        }
    }
}

fn reason_message(reason: &str) -> &'static str {
    match reason {
        bulk::NOT_SIGNED => "skip-not-signed",
        bulk::SPECIFIC => "skip-specific",
        bulk::STALE => "skip-stale",
        bulk::NOT_THEIR_STEP => "skip-not-theirs",
        bulk::SHARED => "skip-shared",
        bulk::PARTLY_VALIDATED => "skip-partly",
        _ => "skip-other",
    }
}

/// The academic year `day` falls in (named by the year it starts, in September): the
/// year a directeur validates, by default.
fn academic_year(day: chrono::NaiveDate) -> i32 {
    use chrono::Datelike;
    if day.month() >= 9 {
        day.year()
    } else {
        day.year() - 1
    }
}

/// The home page's way in: a step of the directeur's and a year (the current academic
/// year, by default).
pub fn start_form(lang: Lang, user: &User) -> Markup {
    html! {
        @if !user.steps.is_empty() {
            form method="get" action="/validate" {
                h2 { (lang.t("bulk-title")) }
                div.fields {
                    div.field {
                        label for="bulk-step" { (lang.t("filter-step")) }
                        select #bulk-step name="step" {
                            @for step in &user.steps { option value=(step) { (step) } }
                        }
                    }
                    div.field {
                        label for="bulk-year" { (lang.t("home-year")) }
                        input #bulk-year type="number" name="year" required min="2000" max="2100" value=(academic_year(chrono::Local::now().date_naive()));
                    }
                }
                button type="submit" { (lang.t("bulk-check")) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::academic_year;
    use chrono::NaiveDate;

    #[test]
    fn the_academic_year_starts_in_september() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(academic_year(day(2026, 12, 7)), 2026);
        assert_eq!(academic_year(day(2027, 6, 30)), 2026);
        assert_eq!(academic_year(day(2027, 9, 1)), 2027);
    }
}
