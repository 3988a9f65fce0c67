//! A person's contracts and one contract, and the student's signature or refusal — read
//! and taken through the API's own functions ([`crate::contracts`]).

use super::i18n::Lang;
use super::{filled, incomplete, layout, PageError};
use crate::contracts::{read_page, take, visible, ActionBody, ListQuery};
use crate::error::ApiError;
use crate::page::{PageOrder, PageRequest};
use crate::roles::User;
use crate::Api;
use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::Redirect;
use axum::Form;
use conpere_contracts::diff;
use conpere_contracts::lifecycle::{Action, Amendment, MeasureInput};
use conpere_core::model::SPECIAL_STATUSES;
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The list's filters, as the form sends them (empty fields: no filter).
#[derive(Debug, Default, Deserialize)]
pub struct Filters {
    step: Option<String>,
    state: Option<String>,
    kind: Option<String>,
    flag: Option<String>,
    status: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
}

impl Filters {
    fn given(value: &Option<String>) -> Option<String> {
        value
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    fn query(&self) -> ListQuery {
        ListQuery {
            step: Filters::given(&self.step),
            state: Filters::given(&self.state),
            flagged: match self.kind.as_deref() {
                Some("specific") => Some(true),
                Some("standard") => Some(false),
                _ => None,
            },
            flag: Filters::given(&self.flag),
            status: Filters::given(&self.status),
            q: Filters::given(&self.q),
            cursor: Filters::given(&self.cursor),
            ..ListQuery::default()
        }
    }

    /// The link to the page after `cursor`, with the same filters.
    fn next(&self, cursor: &str) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("step", &self.step),
            ("state", &self.state),
            ("kind", &self.kind),
            ("flag", &self.flag),
            ("status", &self.status),
            ("q", &self.q),
        ] {
            if let Some(value) = Filters::given(value) {
                query.append_pair(name, &value);
            }
        }
        query.append_pair("cursor", cursor);
        format!("/?{}", query.finish())
    }
}

/// `GET /`: the contracts the person may see (their own, for a student), filtered (for
/// the staff) and page by page.
pub async fn home(
    State(api): State<Arc<Api>>,
    lang: Lang,
    user: Result<User, ApiError>,
    Query(filters): Query<Filters>,
) -> Result<Markup, PageError> {
    let failed = |e| PageError::new(lang, e);
    let user = user.map_err(failed)?;
    let query = filters.query();
    // The staff see the contracts that need a person's eye first.
    let staff = user.sees_all() || !user.steps.is_empty();
    let order = if staff {
        PageOrder::SpecificFirst
    } else {
        PageOrder::Id
    };
    let page = PageRequest::parse(query.cursor.as_deref(), None, order).map_err(failed)?;
    let fetched = (read_page(&api, &user, &query, page).await).map_err(failed)?;
    let answer = page.answer(fetched);
    let items: Vec<Value> = answer["items"].as_array().cloned().unwrap_or_default();
    let body = html! {
        @if staff { (filter_form(lang, &api, &user, &filters)) }
        (super::bulk::start_form(lang, &user))
        @if items.is_empty() {
            p { (lang.t("home-empty")) }
        } @else {
            table {
                thead { tr {
                    th scope="col" { (lang.t("home-year")) }
                    th scope="col" { (lang.t("home-student")) }
                    th scope="col" { (lang.t("home-state")) }
                    th scope="col" { (lang.t("home-kind")) }
                } }
                tbody {
                    @for item in &items {
                        @let id = item["id"].as_i64().unwrap_or_default();
                        tr {
                            @let opens = lang.t_with("home-open", &[("id", id.to_string())]);
                            // The accessible name begins with the visible text (WCAG 2.5.3).
                            td { a href={ "/contracts/" (id) } aria-label={ (years(item)) " — " (opens) } { (years(item)) } }
                            td { (text(&item["student"])) }
                            td { (state(lang, item)) }
                            td { (kind(lang, item)) }
                        }
                    }
                }
            }
        }
        @if let Some(cursor) = answer["next_cursor"].as_str() {
            p { a href=(filters.next(cursor)) rel="next" { (lang.t("next-page")) } }
        }
    };
    Ok(layout::page(lang, &lang.t("home-title"), body))
}

/// The staff's filters: step, state, standard or specific, a flag, a special status, a
/// name or number.
fn filter_form(lang: Lang, api: &Api, user: &User, filters: &Filters) -> Markup {
    let coded_options = |kind: &str, codes: &[&str]| -> Vec<(String, String)> {
        (codes.iter())
            .map(|code| (code.to_string(), coded(lang, kind, code)))
            .collect()
    };
    let steps: Vec<(String, String)> = (user.steps.iter())
        .map(|step| (step.clone(), step.clone()))
        .collect();
    let states = [
        "draft",
        "proposed",
        "signed",
        "validated",
        "refused",
        "closed",
    ];
    let flags: Vec<&str> = api.rules.flags.iter().map(String::as_str).collect();
    html! {
        form method="get" action="/" role="search" {
            h2 { (lang.t("filter-title")) }
            div.fields {
                (choice(lang, "step", "filter-step", &steps, &filters.step))
                (choice(lang, "state", "filter-state", &coded_options("state", &states), &filters.state))
                (choice(lang, "kind", "filter-kind", &coded_options("kind", &["standard", "specific"]), &filters.kind))
                (choice(lang, "flag", "filter-flag", &coded_options("flag", &flags), &filters.flag))
                (choice(lang, "status", "filter-status", &coded_options("status", &SPECIAL_STATUSES), &filters.status))
                div.field {
                    label for="q" { (lang.t("filter-q")) }
                    input #q type="search" name="q" value=(filters.q.clone().unwrap_or_default());
                }
            }
            button type="submit" { (lang.t("filter-submit")) }
        }
    }
}

/// A labelled list `name` of `options` (value, text), "any" first, `chosen` selected.
fn choice(
    lang: Lang,
    name: &str,
    label: &str,
    options: &[(String, String)],
    chosen: &Option<String>,
) -> Markup {
    html! {
        div.field {
            label for=(name) { (lang.t(label)) }
            select id=(name) name=(name) {
                option value="" { (lang.t("filter-any")) }
                @for (value, text) in options {
                    option value=(value) selected[chosen.as_deref() == Some(value.as_str())] { (text) }
                }
            }
        }
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn years(summary: &Value) -> String {
    let year = summary["year"].as_i64().unwrap_or_default();
    format!("{year}–{}", year + 1)
}

fn state(lang: Lang, summary: &Value) -> String {
    lang.t(&format!("state-{}", text(&summary["state"])))
}

/// Standard, or specific with its flags.
fn kind(lang: Lang, summary: &Value) -> String {
    let flags: Vec<String> = (summary["flags"].as_array().into_iter().flatten())
        .map(|flag| coded(lang, "flag", &text(flag)))
        .collect();
    if flags.is_empty() {
        lang.t("kind-standard")
    } else {
        format!("{} ({})", lang.t("kind-specific"), flags.join(", "))
    }
}

/// A code (`kind` `flag`, `status` or `reason`) as people read it; a code the
/// institution added without a message, as it is.
fn coded(lang: Lang, kind: &str, code: &str) -> String {
    let id = format!("{kind}-{code}");
    if lang.has(&id) {
        lang.t(&id)
    } else {
        code.to_owned()
    }
}

#[derive(Deserialize)]
pub struct Done {
    done: Option<String>,
}

/// `GET /contracts/{id}`: the contract, and what the person may do with it now.
pub async fn contract(
    State(api): State<Arc<Api>>,
    lang: Lang,
    user: Result<User, ApiError>,
    Path(id): Path<i64>,
    Query(done): Query<Done>,
) -> Result<Markup, PageError> {
    let failed = |e| PageError::new(lang, e);
    let user = user.map_err(failed)?;
    let seen = visible(&api, &user, id).await.map_err(failed)?;
    let (summary, content) = (&seen.summary, &seen.content);
    let year = summary["year"].as_i64().unwrap_or_default();
    let title = lang.t_with(
        "contract-title",
        &[("year", year.to_string()), ("next", (year + 1).to_string())],
    );
    let state_code = text(&summary["state"]);
    let hash = text(&summary["version_hash"]);
    let done = (done.done).filter(|d| {
        ["edit", "propose", "sign", "validate", "refuse", "amend"].contains(&d.as_str())
    });
    // An open amendment is read against the version in force it would replace.
    let amendment = match (
        summary["amendment_of"].as_i64(),
        summary["version"].as_i64(),
    ) {
        (Some(from), Some(to)) => {
            let client = api.client().await.map_err(failed)?;
            let changes = diff::diff(&client, id, from as i32, to as i32).await;
            Some(changes.map_err(|e| failed(e.into()))?)
        }
        _ => None,
    };
    let body = html! {
        @if let Some(done) = done {
            p.notice role="status" { (lang.t(&format!("done-{done}"))) }
        }
        p { (lang.t_with("contract-state", &[("state", state(lang, summary))])) " · " (kind(lang, summary)) }
        p { (lang.t_with("contract-next", &[("next", lang.t(&format!("next-{state_code}")))])) }
        @if let Some(changes) = &amendment { (changes_of(lang, changes)) }
        h2 { (lang.t("contract-sections")) }
        @for section in content["sections"].as_array().into_iter().flatten() {
            h3 { (lang.t_with("contract-section", &[("step", text(&section["step"])), ("regime", text(&section["regime"]))])) }
            div.path { (tree(lang, section)) }
            @let periods: Vec<String> = (section["ects_per_period"].as_object().into_iter().flatten())
                .map(|(period, ects)| format!("{period} {}", text(ects)))
                .collect();
            p { (lang.t("contract-period")) " : " (periods.join(" · ")) }
        }
        h2 { (lang.t("contract-statuses")) }
        (list(lang, &content["special_statuses"], "contract-no-status", |s| coded(lang, "status", &text(s))))
        h2 { (lang.t("contract-measures")) }
        (list(lang, &content["measures"], "contract-no-measure", |m| {
            let details = text(&m["details"]);
            if details.is_empty() { text(&m["label"]) } else { format!("{} — {details}", text(&m["label"])) }
        }))
        h2 { (lang.t("contract-objectives")) }
        (list(lang, &content["objectives"], "contract-no-objective", text))
        p { (lang.t_with("contract-version", &[("version", text(&summary["version"]))])) }
        p { (lang.t("contract-hash")) " : " span.hash { (hash) } }
        @if seen.is_student && state_code == "proposed" {
            (sign_form(lang, id, &hash))
            (refuse_form(lang, id, &hash))
        }
        @if (seen.is_directeur || user.admin) && matches!(state_code.as_str(), "draft" | "refused") {
            (edit_form(lang, &api, id, content))
            (plain_form(lang, id, &hash, "propose"))
        }
        @if (seen.is_directeur || user.admin) && state_code == "signed" {
            (plain_form(lang, id, &hash, "validate"))
            (refuse_form(lang, id, &hash))
        }
        @if (seen.is_directeur || user.admin) && state_code == "validated" {
            (amend_form(lang, &api, id))
        }
    };
    Ok(layout::page(lang, &title, body))
}

/// What an amendment changes: its reason, the elements, measures and statuses added and
/// removed.
fn changes_of(lang: Lang, changes: &diff::Diff) -> Markup {
    let elements = |list: &[diff::Element]| -> Vec<String> {
        list.iter()
            .map(|e| format!("{} ({})", e.label, e.step))
            .collect()
    };
    let measures = |list: &[diff::MeasureRef]| -> Vec<String> {
        list.iter().map(|m| m.label.clone()).collect()
    };
    let parts = [
        ("diff-added-elements", elements(&changes.elements_added)),
        ("diff-removed-elements", elements(&changes.elements_removed)),
        ("diff-added-measures", measures(&changes.measures_added)),
        ("diff-removed-measures", measures(&changes.measures_removed)),
        ("diff-added-statuses", changes.statuses_added.clone()),
        ("diff-removed-statuses", changes.statuses_removed.clone()),
    ];
    html! {
        section aria-labelledby="changes" {
            h2 #changes { (lang.t_with("diff-title", &[("version", changes.from.to_string())])) }
            @if let Some(reason) = &changes.reason {
                p { (lang.t_with("diff-reason", &[("reason", coded(lang, "reason", reason))])) }
            }
            @for (title, items) in parts {
                @if !items.is_empty() {
                    h3 { (lang.t(title)) }
                    ul { @for item in items { li { (item) } } }
                }
            }
        }
    }
}

/// A list of `items`, or `none` when there is none.
fn list(lang: Lang, items: &Value, none: &str, show: impl Fn(&Value) -> String) -> Markup {
    let items: Vec<&Value> = items.as_array().into_iter().flatten().collect();
    html! {
        @if items.is_empty() { p { (lang.t(none)) } }
        @else { ul { @for item in items { li { (show(item)) } } } }
    }
}

/// A section's path as a tree: each element under its parent in the path.
fn tree(lang: Lang, section: &Value) -> Markup {
    let elements: Vec<&Value> = section["path"].as_array().into_iter().flatten().collect();
    let nodes: Vec<String> = elements.iter().map(|e| text(&e["node"])).collect();
    let mut children: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for element in &elements {
        let parent = text(&element["parent"]);
        let key = if nodes.contains(&parent) {
            parent
        } else {
            String::new()
        };
        children.entry(key).or_default().push(element);
    }
    branch(lang, &children, "")
}

fn branch(lang: Lang, children: &BTreeMap<String, Vec<&Value>>, parent: &str) -> Markup {
    let Some(here) = children.get(parent) else {
        return html! {};
    };
    html! {
        ul {
            @for element in here {
                @let node = text(&element["node"]);
                li {
                    (text(&element["label"]))
                    @if let Some(ects) = element["ects"].as_f64() {
                        " — " (lang.t_with("contract-ects", &[("ects", ects.to_string())]))
                    }
                    (branch(lang, children, &node))
                }
            }
        }
    }
}

fn sign_form(lang: Lang, id: i64, hash: &str) -> Markup {
    let consent = lang.t("sign-consent");
    html! {
        form method="post" action={ "/contracts/" (id) "/sign" } {
            h2 { (lang.t("sign-title")) }
            p #consent { (consent) }
            input type="hidden" name="version_hash" value=(hash);
            input type="hidden" name="consent_text" value=(consent);
            input #read type="checkbox" name="read" value="yes" required aria-describedby="consent";
            label for="read" { (lang.t("sign-confirm")) }
            button type="submit" { (lang.t("sign-submit")) }
        }
    }
}

/// The draft's measures (from the catalogue, each with its details) and objectives.
fn edit_form(lang: Lang, api: &Api, id: i64, content: &Value) -> Markup {
    let current: BTreeMap<String, String> = (content["measures"].as_array().into_iter().flatten())
        .map(|m| (text(&m["code"]), text(&m["details"])))
        .collect();
    let objectives: Vec<String> = (content["objectives"].as_array().into_iter().flatten())
        .map(text)
        .collect();
    html! {
        form method="post" action={ "/contracts/" (id) "/draft" } {
            h2 { (lang.t("edit-title")) }
            fieldset {
                legend { (lang.t("edit-measures")) }
                @for measure in &api.catalogue.measures {
                    @let code = &measure.code;
                    @let label = if lang == Lang::Fr { &measure.label_fr } else { &measure.label_en };
                    div {
                        input id={ "m-" (code) } type="checkbox" name="measure" value=(code) checked[current.contains_key(code)];
                        label for={ "m-" (code) } { (label) }
                        label for={ "d-" (code) } { (lang.t_with("edit-details", &[("measure", label.clone())])) }
                        input id={ "d-" (code) } type="text" name={ "details:" (code) } value=(current.get(code).cloned().unwrap_or_default());
                    }
                }
            }
            label for="objectives" { (lang.t("edit-objectives")) }
            textarea #objectives name="objectives" aria-describedby="objectives-help" { (objectives.join("\n")) }
            p #objectives-help { (lang.t("edit-objectives-help")) }
            button type="submit" { (lang.t("edit-submit")) }
        }
    }
}

/// `POST /contracts/{id}/draft`: the measures ticked (with their details) and the
/// objectives (one a line) set on the draft, back to the contract.
pub async fn edit(
    State(api): State<Arc<Api>>,
    lang: Lang,
    user: Result<User, ApiError>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    form: Result<Form<Vec<(String, String)>>, FormRejection>,
) -> Result<Redirect, PageError> {
    let failed = PageError::on_contract(lang, id);
    let user = user.map_err(failed)?;
    let Form(fields) = filled(form).map_err(failed)?;
    let value = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.trim())
    };
    let measures: Vec<MeasureInput> = (fields.iter())
        .filter(|(name, _)| name == "measure")
        .map(|(_, code)| MeasureInput {
            code: code.clone(),
            details: value(&format!("details:{code}"))
                .filter(|d| !d.is_empty())
                .map(str::to_owned),
        })
        .collect();
    let objectives: Vec<String> = (value("objectives").unwrap_or_default().lines())
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    crate::changes::edit(&api, &user, &headers, id, &measures, &objectives)
        .await
        .map_err(failed)?;
    Ok(Redirect::to(&format!("/contracts/{id}?done=edit")))
}

/// Opening an amendment of the version in force: its reason; the measures, objectives
/// and path are then changed on the amendment's draft, which is proposed like a first
/// version.
fn amend_form(lang: Lang, api: &Api, id: i64) -> Markup {
    html! {
        form method="post" action={ "/contracts/" (id) "/amend" } {
            h2 { (lang.t("amend-title")) }
            p #amend-help { (lang.t("amend-help")) }
            label for="amend-reason" { (lang.t("amend-reason")) }
            select #amend-reason name="reason" required aria-describedby="amend-help" {
                @for code in &api.rules.amendment_reasons {
                    option value=(code) { (coded(lang, "reason", code)) }
                }
            }
            button type="submit" { (lang.t("amend-submit")) }
        }
    }
}

/// The amendment form's one field.
#[derive(Deserialize)]
pub struct AmendForm {
    reason: String,
}

/// `POST /contracts/{id}/amend`: an amendment opened with the measures and objectives in
/// force, back to its draft (where measures are added or ended).
pub async fn amend(
    State(api): State<Arc<Api>>,
    lang: Lang,
    user: Result<User, ApiError>,
    headers: HeaderMap,
    Path(id): Path<i64>,
    form: Result<Form<AmendForm>, FormRejection>,
) -> Result<Redirect, PageError> {
    let failed = PageError::on_contract(lang, id);
    let user = user.map_err(failed)?;
    let Form(form) = filled(form).map_err(failed)?;
    let amendment = Amendment {
        reason: form.reason.trim(),
        measures: None,
        objectives: None,
    };
    crate::changes::open(&api, &user, &headers, id, amendment)
        .await
        .map_err(failed)?;
    Ok(Redirect::to(&format!("/contracts/{id}?done=amend")))
}

/// A form that needs only the hash of the version shown (propose, validate).
fn plain_form(lang: Lang, id: i64, hash: &str, action: &str) -> Markup {
    html! {
        form method="post" action={ "/contracts/" (id) "/" (action) } {
            h2 { (lang.t(&format!("{action}-title"))) }
            input type="hidden" name="version_hash" value=(hash);
            button type="submit" { (lang.t(&format!("{action}-submit"))) }
        }
    }
}

fn refuse_form(lang: Lang, id: i64, hash: &str) -> Markup {
    html! {
        form method="post" action={ "/contracts/" (id) "/refuse" } {
            h2 { (lang.t("refuse-title")) }
            input type="hidden" name="version_hash" value=(hash);
            label for="reason" { (lang.t("refuse-reason")) }
            textarea #reason name="reason" required {}
            button type="submit" { (lang.t("refuse-submit")) }
        }
    }
}

/// An action's form: the hash of the version shown, and what the action needs (the
/// consent text shown and the ticked box to sign, a reason to refuse).
#[derive(Deserialize)]
pub struct ActionForm {
    version_hash: String,
    consent_text: Option<String>,
    reason: Option<String>,
    read: Option<String>,
}

/// `POST /contracts/{id}/{propose|sign|validate|refuse}`: taken, back to the contract.
pub async fn act(
    State(api): State<Arc<Api>>,
    lang: Lang,
    user: Result<User, ApiError>,
    headers: HeaderMap,
    Path((id, action)): Path<(i64, String)>,
    form: Result<Form<ActionForm>, FormRejection>,
) -> Result<Redirect, PageError> {
    let failed = PageError::on_contract(lang, id);
    let user = user.map_err(failed)?;
    let action = match action.as_str() {
        "propose" => Action::Propose,
        "sign" => Action::Sign,
        "validate" => Action::Validate,
        "refuse" => Action::Refuse,
        _ => return Err(failed(ApiError::not_found("no such action"))),
    };
    let Form(form) = filled(form).map_err(failed)?;
    if action == Action::Sign && form.read.as_deref() != Some("yes") {
        return Err(failed(incomplete()));
    }
    let body = ActionBody {
        version_hash: form.version_hash,
        reason: form.reason.filter(|_| action == Action::Refuse),
        consent_text: form.consent_text.filter(|_| action == Action::Sign),
    };
    take(&api, &user, &headers, id, action, &body)
        .await
        .map_err(failed)?;
    let done = action.as_str();
    Ok(Redirect::to(&format!("/contracts/{id}?done={done}")))
}
