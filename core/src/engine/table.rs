//! How each record kind maps to its table: columns, binary COPY values, and the SQL
//! fragments the merge is built from. One description per kind; every statement of the
//! engine and the export is generated from it, so the six kinds share one code path.

use crate::model::{
    CourseResult, Edge, Enrolment, KeyPart, Kind, Node, NodeKind, Record, RecordKey, Regime,
    Registration, RegistrationStatus, Student,
};
use bytes::BytesMut;
use chrono::NaiveDate;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::Row;

/// One column of a record table.
pub(crate) struct Column {
    pub name: &'static str,
    pub ty: Type,
    pub sql: &'static str,
}

const fn col(name: &'static str, ty: Type, sql: &'static str) -> Column {
    Column { name, ty, sql }
}

const KEY_TEXT: &str = "text COLLATE \"C\"";

/// The table of one record kind: key columns (within a source), then data columns.
pub(crate) struct TableSpec {
    pub kind: Kind,
    pub key: &'static [Column],
    pub data: &'static [Column],
}

static STUDENT: TableSpec = TableSpec {
    kind: Kind::Student,
    key: &[col("student", Type::TEXT, KEY_TEXT)],
    data: &[
        col("ine", Type::TEXT, "text"),
        col("family_name", Type::TEXT, "text"),
        col("usual_name", Type::TEXT, "text"),
        col("given_name", Type::TEXT, "text"),
        col("birth_date", Type::DATE, "date"),
        col("email", Type::TEXT, "text"),
        col("login", Type::TEXT, "text"),
    ],
};

static NODE: TableSpec = TableSpec {
    kind: Kind::Node,
    key: &[
        col("year", Type::INT4, "int"),
        col("node", Type::TEXT, KEY_TEXT),
    ],
    data: &[
        col("kind", Type::TEXT, "text"),
        col("code", Type::TEXT, "text"),
        col("version", Type::TEXT, "text"),
        col("label", Type::TEXT, "text"),
        col("ects", Type::FLOAT8, "double precision"),
        col("period", Type::TEXT, "text"),
    ],
};

static EDGE: TableSpec = TableSpec {
    kind: Kind::Edge,
    key: &[
        col("year", Type::INT4, "int"),
        col("parent", Type::TEXT, KEY_TEXT),
        col("child", Type::TEXT, KEY_TEXT),
    ],
    data: &[
        col("mandatory", Type::BOOL, "boolean"),
        col("min", Type::INT4, "int"),
        col("max", Type::INT4, "int"),
        col("position", Type::INT4, "int"),
    ],
};

static REGISTRATION: TableSpec = TableSpec {
    kind: Kind::Registration,
    key: &[
        col("year", Type::INT4, "int"),
        col("student", Type::TEXT, KEY_TEXT),
        col("step", Type::TEXT, KEY_TEXT),
    ],
    data: &[
        col("diploma", Type::TEXT, "text"),
        col("status", Type::TEXT, "text"),
        col("regime", Type::TEXT, "text"),
        col("main", Type::BOOL, "boolean"),
        col("special_statuses", Type::TEXT_ARRAY, "text[]"),
    ],
};

static ENROLMENT: TableSpec = TableSpec {
    kind: Kind::Enrolment,
    key: &[
        col("year", Type::INT4, "int"),
        col("student", Type::TEXT, KEY_TEXT),
        col("step", Type::TEXT, KEY_TEXT),
        col("node", Type::TEXT, KEY_TEXT),
    ],
    data: &[
        col("via", Type::TEXT, "text"),
        col("carried_over", Type::BOOL, "boolean"),
        col("exempted", Type::BOOL, "boolean"),
    ],
};

static RESULT: TableSpec = TableSpec {
    kind: Kind::Result,
    key: &[
        col("year", Type::INT4, "int"),
        col("student", Type::TEXT, KEY_TEXT),
        col("node", Type::TEXT, KEY_TEXT),
        col("session", Type::TEXT, KEY_TEXT),
    ],
    data: &[
        col("grade", Type::FLOAT8, "double precision"),
        col("scale", Type::FLOAT8, "double precision"),
        col("outcome", Type::TEXT, "text"),
        col("ects_earned", Type::FLOAT8, "double precision"),
    ],
};

impl TableSpec {
    /// The description of `kind`'s table.
    pub fn of(kind: Kind) -> &'static TableSpec {
        match kind {
            Kind::Student => &STUDENT,
            Kind::Node => &NODE,
            Kind::Edge => &EDGE,
            Kind::Registration => &REGISTRATION,
            Kind::Enrolment => &ENROLMENT,
            Kind::Result => &RESULT,
        }
    }

    /// The record table's name (the kind's name).
    pub fn table(&self) -> &'static str {
        self.kind.as_str()
    }

    /// The history table's name.
    pub fn history(&self) -> String {
        format!("{}_history", self.kind.as_str())
    }

    /// The stage table's name.
    pub fn stage(&self) -> String {
        format!("stage_{}", self.kind.as_str())
    }

    /// `(SELECT count(*) …)` of the stage's live rows: records read as they are now (not
    /// tombstones, not held back).
    pub fn live_stage_count(&self) -> String {
        format!(
            "(SELECT count(*) FROM {} WHERE NOT tombstone AND NOT skip)",
            self.stage()
        )
    }

    /// Key then data columns.
    pub fn columns(&self) -> impl Iterator<Item = &'static Column> {
        self.key.iter().chain(self.data.iter())
    }

    /// Whether the kind has a `year` column.
    pub fn has_year(&self) -> bool {
        self.kind.is_year_scoped()
    }

    /// Comma-separated quoted column names, each prefixed with `alias.` when given.
    pub fn list(&self, alias: Option<&str>, cols: &[&Column]) -> String {
        cols.iter()
            .map(|c| match alias {
                Some(a) => format!("{a}.\"{}\"", c.name),
                None => format!("\"{}\"", c.name),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// All columns (key then data) as a quoted list.
    pub fn all_list(&self, alias: Option<&str>) -> String {
        self.list(alias, &self.columns().collect::<Vec<_>>())
    }

    /// Key columns as a quoted list.
    pub fn key_list(&self, alias: Option<&str>) -> String {
        self.list(alias, &self.key.iter().collect::<Vec<_>>())
    }

    /// `a.k1 = b.k1 AND …` over the key columns.
    pub fn key_match(&self, a: &str, b: &str) -> String {
        self.key
            .iter()
            .map(|c| format!("{a}.\"{n}\" = {b}.\"{n}\"", n = c.name))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    /// `jsonb_build_object(…)` of the given columns of `alias`.
    fn json_of<'a>(&self, alias: &str, cols: impl Iterator<Item = &'a Column>) -> String {
        let fields = cols
            .map(|c| format!("'{n}', {alias}.\"{n}\"", n = c.name))
            .collect::<Vec<_>>()
            .join(", ");
        format!("jsonb_build_object({fields})")
    }

    /// The whole record as JSON, with the export's field names.
    pub fn record_json(&self, alias: &str) -> String {
        self.json_of(alias, self.columns())
    }

    /// The key as JSON.
    pub fn key_json(&self, alias: &str) -> String {
        self.json_of(alias, self.key.iter())
    }

    /// The key as readable text (`2024 / 21901234 / VET:L2INF/120`), for quarantine rows.
    pub fn key_text(&self, alias: &str) -> String {
        let parts = self
            .key
            .iter()
            .map(|c| format!("{alias}.\"{}\"::text", c.name))
            .collect::<Vec<_>>()
            .join(", ");
        format!("concat_ws(' / ', {parts})")
    }

    /// `alias.year` or a NULL int, so per-year counts have one shape for every kind.
    pub fn year_expr(&self, alias: &str) -> String {
        if self.has_year() {
            format!("{alias}.year")
        } else {
            "NULL::int".to_string()
        }
    }

    /// DDL of the stage table: the record's columns plus its hash and flags, and where it
    /// was read (`origin`: a file of `stage_origin`; `line`), when its reader said.
    pub fn stage_ddl(&self) -> String {
        let cols = self
            .columns()
            .map(|c| format!("\"{}\" {}", c.name, c.sql))
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "CREATE TEMP TABLE {} ({cols}, hash bigint NOT NULL, key_hash bigint NOT NULL, \
             tombstone boolean NOT NULL, skip boolean NOT NULL, origin int, line int, \
             modified timestamptz) ON COMMIT DROP",
            self.stage()
        )
    }

    /// Column types of the stage table, in COPY order.
    pub fn stage_types(&self) -> Vec<Type> {
        let mut types: Vec<Type> = self.columns().map(|c| c.ty.clone()).collect();
        types.extend([
            Type::INT8,
            Type::INT8,
            Type::BOOL,
            Type::BOOL,
            Type::INT4,
            Type::INT4,
            Type::TIMESTAMPTZ,
        ]);
        types
    }

    /// `COPY stage (…) FROM STDIN BINARY`.
    pub fn stage_copy(&self) -> String {
        format!(
            "COPY {} ({}, hash, key_hash, tombstone, skip, origin, line, modified) FROM STDIN BINARY",
            self.stage(),
            self.all_list(None)
        )
    }
}

/// A borrowed value of a COPY row: one enum so a row is a flat `Vec` with no allocation
/// per field.
#[derive(Debug)]
pub(crate) enum Value<'a> {
    Null,
    Text(&'a str),
    Int(i32),
    BigInt(i64),
    Float(f64),
    Bool(bool),
    Date(NaiveDate),
    Instant(chrono::DateTime<chrono::Utc>),
    TextArray(&'a [String]),
}

impl ToSql for Value<'_> {
    fn to_sql(
        &self,
        ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self {
            Value::Null => Ok(IsNull::Yes),
            Value::Text(v) => v.to_sql(ty, out),
            Value::Int(v) => v.to_sql(ty, out),
            Value::BigInt(v) => v.to_sql(ty, out),
            Value::Float(v) => v.to_sql(ty, out),
            Value::Bool(v) => v.to_sql(ty, out),
            Value::Date(v) => v.to_sql(ty, out),
            Value::Instant(v) => v.to_sql(ty, out),
            Value::TextArray(v) => v.to_sql(ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        // Types are checked by construction: each kind's values follow its TableSpec.
        true
    }

    to_sql_checked!();
}

fn text(s: &str) -> Value<'_> {
    Value::Text(s)
}

fn opt_text(s: &Option<String>) -> Value<'_> {
    s.as_deref().map_or(Value::Null, Value::Text)
}

fn opt<T>(v: Option<T>, f: impl Fn(T) -> Value<'static>) -> Value<'static> {
    v.map_or(Value::Null, f)
}

/// The record's column values, key then data, in its TableSpec's order.
pub(crate) fn record_values(record: &Record) -> Vec<Value<'_>> {
    match record {
        Record::Student(r) => vec![
            text(&r.student),
            opt_text(&r.ine),
            text(&r.family_name),
            opt_text(&r.usual_name),
            text(&r.given_name),
            opt(r.birth_date, Value::Date),
            opt_text(&r.email),
            opt_text(&r.login),
        ],
        Record::Node(r) => vec![
            Value::Int(r.year),
            text(&r.node),
            text(r.kind.as_str()),
            text(&r.code),
            opt_text(&r.version),
            text(&r.label),
            opt(r.ects, Value::Float),
            opt_text(&r.period),
        ],
        Record::Edge(r) => vec![
            Value::Int(r.year),
            text(&r.parent),
            text(&r.child),
            Value::Bool(r.mandatory),
            opt(r.min, Value::Int),
            opt(r.max, Value::Int),
            opt(r.position, Value::Int),
        ],
        Record::Registration(r) => vec![
            Value::Int(r.year),
            text(&r.student),
            text(&r.step),
            opt_text(&r.diploma),
            text(r.status.as_str()),
            text(r.regime.as_str()),
            Value::Bool(r.main),
            Value::TextArray(&r.special_statuses),
        ],
        Record::Enrolment(r) => vec![
            Value::Int(r.year),
            text(&r.student),
            text(&r.step),
            text(&r.node),
            opt_text(&r.via),
            Value::Bool(r.carried_over),
            Value::Bool(r.exempted),
        ],
        Record::Result(r) => vec![
            Value::Int(r.year),
            text(&r.student),
            text(&r.node),
            text(&r.session),
            opt(r.grade, Value::Float),
            opt(r.scale, Value::Float),
            opt_text(&r.outcome),
            opt(r.ects_earned, Value::Float),
        ],
    }
}

/// A key's column values followed by NULL data columns (tombstones and held-back keys).
pub(crate) fn key_values(key: &RecordKey) -> Vec<Value<'_>> {
    let spec = TableSpec::of(key.kind);
    let mut values: Vec<Value<'_>> = key
        .parts
        .iter()
        .map(|p| match p {
            KeyPart::Year(y) => Value::Int(*y),
            KeyPart::Text(s) => Value::Text(s),
        })
        .collect();
    values.extend(spec.data.iter().map(|_| Value::Null));
    values
}

/// A hash of a key (year and text parts), so duplicate keys are found by grouping one
/// integer rather than several text columns. Equal keys, equal hash; the rare collision
/// only costs a closer look.
pub(crate) fn key_hash(year: Option<i32>, texts: &[&str]) -> i64 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    if let Some(y) = year {
        hasher.update(&y.to_le_bytes());
    }
    for text in texts {
        hasher.update(text.as_bytes());
        // 0xFF never occurs in UTF-8: parts cannot run into each other.
        hasher.update(&[0xFF]);
    }
    hasher.digest() as i64
}

/// [`key_hash`] of a [`RecordKey`].
pub(crate) fn record_key_hash(key: &RecordKey) -> i64 {
    let year = key.year();
    let texts: Vec<&str> = key
        .parts
        .iter()
        .filter_map(|p| match p {
            KeyPart::Text(s) => Some(s.as_str()),
            KeyPart::Year(_) => None,
        })
        .collect();
    key_hash(year, &texts)
}

/// The content hash of a (normalized) record: equal content, equal hash. The hash of its
/// canonical JSON, written into a buffer kept by the thread and hashed at once: streamed into
/// the hasher piece by piece, the same text took twice as long (0.66 s instead of 0.33 s
/// per million enrolments).
pub(crate) fn content_hash(record: &Record) -> i64 {
    thread_local! {
        static JSON: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    JSON.with_borrow_mut(|json| {
        json.clear();
        serde_json::to_writer(&mut *json, record).expect("canonical records always serialize");
        xxhash_rust::xxh3::xxh3_64(json) as i64
    })
}

fn parse_enum<T: serde::de::DeserializeOwned>(value: &str) -> Result<T, String> {
    serde_json::from_value(serde_json::Value::from(value))
        .map_err(|_| format!("unexpected stored value `{value}`"))
}

/// Reads a record back from a row holding its table's columns (key then data) in order.
pub(crate) fn record_from_row(kind: Kind, row: &Row) -> Result<Record, String> {
    Ok(match kind {
        Kind::Student => Record::Student(Student {
            student: row.get(0),
            ine: row.get(1),
            family_name: row.get(2),
            usual_name: row.get(3),
            given_name: row.get(4),
            birth_date: row.get(5),
            email: row.get(6),
            login: row.get(7),
        }),
        Kind::Node => Record::Node(Node {
            year: row.get(0),
            node: row.get(1),
            kind: parse_enum::<NodeKind>(row.get(2))?,
            code: row.get(3),
            version: row.get(4),
            label: row.get(5),
            ects: row.get(6),
            period: row.get(7),
        }),
        Kind::Edge => Record::Edge(Edge {
            year: row.get(0),
            parent: row.get(1),
            child: row.get(2),
            mandatory: row.get(3),
            min: row.get(4),
            max: row.get(5),
            position: row.get(6),
        }),
        Kind::Registration => Record::Registration(Registration {
            year: row.get(0),
            student: row.get(1),
            step: row.get(2),
            diploma: row.get(3),
            status: parse_enum::<RegistrationStatus>(row.get(4))?,
            regime: parse_enum::<Regime>(row.get(5))?,
            main: row.get(6),
            special_statuses: row.get(7),
        }),
        Kind::Enrolment => Record::Enrolment(Enrolment {
            year: row.get(0),
            student: row.get(1),
            step: row.get(2),
            node: row.get(3),
            via: row.get(4),
            carried_over: row.get(5),
            exempted: row.get(6),
        }),
        Kind::Result => Record::Result(CourseResult {
            year: row.get(0),
            student: row.get(1),
            node: row.get(2),
            session: row.get(3),
            grade: row.get(4),
            scale: row.get(5),
            outcome: row.get(6),
            ects_earned: row.get(7),
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stored hashes are those of the whole JSON text, or every stored record would look
    /// changed.
    #[test]
    fn the_content_hash_is_the_hash_of_the_whole_json_text() {
        let record = Record::Student(Student {
            student: "21901234".into(),
            ine: Some("1234567890A".into()),
            family_name: "Lefèvre".into(),
            usual_name: None,
            given_name: "Zoé".into(),
            birth_date: chrono::NaiveDate::from_ymd_opt(2004, 7, 1),
            email: None,
            login: Some("zlefevre".into()),
        });
        let text = serde_json::to_vec(&record).unwrap();
        assert_eq!(
            content_hash(&record),
            xxhash_rust::xxh3::xxh3_64(&text) as i64
        );
        // The thread's buffer holds the last record's text only.
        let other = Record::Student(Student {
            student: "1".into(),
            ..match record {
                Record::Student(student) => student,
                _ => unreachable!(),
            }
        });
        let text = serde_json::to_vec(&other).unwrap();
        assert_eq!(
            content_hash(&other),
            xxhash_rust::xxh3::xxh3_64(&text) as i64
        );
    }
}
