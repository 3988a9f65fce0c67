//! From a row to a canonical item, as an [`Input`] of a mapping file says: the row is
//! skipped (filter), becomes a tombstone, a record, or — when it holds a value the input
//! does not expect, a value cannot be computed or the record does not validate — a
//! quarantined row naming its file, line, field and reason, with the row as its payload,
//! and the key of its record whenever the key fields can be computed (the engine then
//! keeps that record's stored version).

use crate::expr::{Tables, Value};
use crate::fields::{Field, FieldType};
use crate::format::{FieldExpr, Input};
use crate::row::Row;
use chrono::{DateTime, Utc};
use conpere_model::{Item, Record, RecordKey, Rejected};
use serde::Deserialize;
use serde_json::{Map, Value as Json};

/// What a row becomes.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// The filter skipped it.
    Skipped,
    /// A record, a tombstone or a quarantined row, and when the source last changed it
    /// (the input's `modified`, for a record or a tombstone).
    Item(Item, Option<DateTime<Utc>>),
}

impl Input {
    /// Maps one row.
    pub fn map(&self, row: &Row, tables: &Tables) -> Outcome {
        match self.decide(row, tables) {
            Ok(outcome) => outcome,
            Err(reason) => Outcome::Item(self.quarantine(row, reason, tables), None),
        }
    }

    /// The row quarantined for `reason`, with the key of its record when it can be told.
    pub fn quarantine(&self, row: &Row, reason: String, tables: &Tables) -> Item {
        let key = self.key_of(row, tables);
        Item::Rejected(self.reject(row, reason, key))
    }

    fn decide(&self, row: &Row, tables: &Tables) -> Result<Outcome, String> {
        if let Some(expect) = &self.expect {
            let expected = expect
                .expr
                .eval(row, tables)
                .map_err(|e| format!("expect: {e}"))?;
            if !expected.is_true() {
                return Err(unexpected(expect, row));
            }
        }
        if let Some(filter) = &self.filter {
            let keep = filter
                .expr
                .eval(row, tables)
                .map_err(|e| format!("filter: {e}"))?;
            if !keep.is_true() {
                return Ok(Outcome::Skipped);
            }
        }
        let modified = self.modified(row, tables)?;
        let json = self.json(row, tables)?;
        let tombstone = match &self.tombstone {
            Some(test) => test
                .eval(row, tables)
                .map_err(|e| format!("tombstone: {e}"))?
                .is_true(),
            None => false,
        };
        if tombstone {
            let key = RecordKey::from_json(self.kind, &Json::Object(json))?;
            return Ok(Outcome::Item(Item::Tombstone(key), modified));
        }
        let item = self.record(row, json);
        let modified = modified.filter(|_| matches!(item, Item::Record(_)));
        Ok(Outcome::Item(item, modified))
    }

    /// When the source last changed the row's record, when the input says (`modified`):
    /// an RFC 3339 instant (`2024-09-01T10:00:00.000Z`) or a date (midnight UTC).
    fn modified(&self, row: &Row, tables: &Tables) -> Result<Option<DateTime<Utc>>, String> {
        let Some(modified) = &self.modified else {
            return Ok(None);
        };
        let context = |reason: String| format!("modified (`{}`): {reason}", modified.text);
        let text = match modified.expr.eval(row, tables).map_err(context)? {
            Value::Text(text) if !text.trim().is_empty() => text,
            _ => return Ok(None),
        };
        let text = text.trim();
        DateTime::parse_from_rfc3339(text)
            .map(|instant| instant.with_timezone(&Utc))
            .or_else(|_| {
                chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .map(|date| date.and_time(chrono::NaiveTime::MIN).and_utc())
            })
            .map(Some)
            .map_err(|_| {
                context(format!(
                    "`{text}` is not a date-time (expected 2024-09-01T10:00:00.000Z) nor a date"
                ))
            })
    }

    /// The record of `json`, or the row quarantined with why it is not one.
    fn record(&self, row: &Row, json: Map<String, Json>) -> Item {
        let value = Json::Object(json);
        let record = Record::deserialize(&value)
            .map_err(|e| format!("not a valid {}: {e}", self.kind))
            .and_then(|r| r.validate().map(|()| r).map_err(|e| e.to_string()));
        match record {
            Ok(record) => Item::Record(record),
            // The key, when the row has one, is worked out only for the rows rejected.
            Err(reason) => {
                let key = RecordKey::from_json(self.kind, &value).ok();
                let key = key.filter(|k| k.problem().is_none());
                Item::Rejected(self.reject(row, reason, key))
            }
        }
    }

    /// The key of the record the row stands for, when its key fields can be computed
    /// (another of its fields may not).
    fn key_of(&self, row: &Row, tables: &Tables) -> Option<RecordKey> {
        let mut json = Map::new();
        for name in RecordKey::field_names(self.kind) {
            let field = crate::fields::fields(self.kind)
                .iter()
                .find(|f| f.name == *name)?;
            let value = match self.fields.iter().find(|(f, _)| f.name == *name) {
                Some((_, expr)) => convert(field, expr, row, tables).ok()?,
                None => default(field),
            };
            json.insert((*name).into(), value);
        }
        let key = RecordKey::from_json(self.kind, &Json::Object(json)).ok()?;
        key.problem().is_none().then_some(key)
    }

    /// The canonical fields of the row as JSON (`type` included): each mapped field
    /// computed and converted to its type, the others at their defaults.
    fn json(&self, row: &Row, tables: &Tables) -> Result<Map<String, Json>, String> {
        let mut json = Map::new();
        json.insert("type".into(), Json::String(self.kind.as_str().into()));
        for field in crate::fields::fields(self.kind) {
            let value = match self.fields.iter().find(|(f, _)| f.name == field.name) {
                Some((_, expr)) => convert(field, expr, row, tables)?,
                None => default(field),
            };
            json.insert(field.name.into(), value);
        }
        Ok(json)
    }

    fn reject(&self, row: &Row, reason: String, key: Option<RecordKey>) -> Rejected {
        Rejected {
            kind: Some(self.kind),
            key,
            reason,
            location: Some(row.location.to_string()),
            payload: row.raw(),
        }
    }
}

/// The values a condition read of a row: `role \`teacher\``, for messages and counts.
pub fn values_read(condition: &FieldExpr, row: &Row) -> String {
    let values: Vec<String> = condition
        .expr
        .columns()
        .into_iter()
        .map(|column| match row.get(column) {
            Some(value) => format!("{column} `{value}`"),
            None => format!("{column} (absent)"),
        })
        .collect();
    values.join(", ")
}

/// Why a row fails `expect`: the values it read, and what was expected.
fn unexpected(expect: &FieldExpr, row: &Row) -> String {
    format!(
        "unexpected value: {} is not what this input expects (`{}`); the row is \
         quarantined rather than filtered out",
        values_read(expect, row),
        expect.text
    )
}

fn default(field: &Field) -> Json {
    field
        .default
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(Json::Null)
}

/// The field's value for `row`, as its canonical type.
fn convert(field: &Field, expr: &FieldExpr, row: &Row, tables: &Tables) -> Result<Json, String> {
    let context = |reason: String| format!("field `{}` (`{}`): {reason}", field.name, expr.text);
    let value = expr.expr.eval(row, tables).map_err(context)?;
    let text = match value {
        Value::Absent => return absent(field, row, expr).map_err(context),
        Value::List(items) if field.kind == FieldType::List => {
            return Ok(Json::Array(items.into_iter().map(Json::String).collect()))
        }
        Value::List(items) => items.join(" "),
        Value::Text(text) => text,
    };
    typed(field.kind, text.trim()).map_err(context)
}

/// An absent value: the field's default, else null (a required field then fails the
/// record's validation, naming the field). A column missing from the file altogether is
/// said so, with the columns it has: usually a typo in the mapping or a changed export.
fn absent(field: &Field, row: &Row, expr: &FieldExpr) -> Result<Json, String> {
    let missing: Vec<&str> = expr
        .expr
        .columns()
        .into_iter()
        .filter(|c| row.get(c).is_none() && !row.names().any(|n| n == *c))
        .collect();
    if field.required && field.default.is_none() && !missing.is_empty() {
        let names: Vec<&str> = row.names().collect();
        return Err(format!(
            "the row has no column {} (it has: {})",
            missing.join(", "),
            names.join(", ")
        ));
    }
    Ok(default(field))
}

/// `text` as JSON of `kind`; empty text is null (an optional field left blank).
fn typed(kind: FieldType, text: &str) -> Result<Json, String> {
    if text.is_empty() {
        return Ok(match kind {
            FieldType::List => Json::Array(Vec::new()),
            _ => Json::Null,
        });
    }
    match kind {
        FieldType::Text | FieldType::Date => Ok(Json::String(text.to_string())),
        FieldType::Integer => text
            .parse::<i64>()
            .map(Json::from)
            .map_err(|_| format!("`{text}` is not a whole number")),
        FieldType::Decimal => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Json::Number)
            .ok_or_else(|| {
                format!("`{text}` is not a number (a decimal comma needs number(x, ','))")
            }),
        FieldType::Boolean => match text {
            "true" => Ok(Json::Bool(true)),
            "false" => Ok(Json::Bool(false)),
            other => Err(format!("`{other}` is not true or false (use bool(x))")),
        },
        FieldType::List => Ok(Json::Array(vec![Json::String(text.to_string())])),
    }
}
