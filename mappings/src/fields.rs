//! The canonical fields a mapping can fill, per record kind, with their types: the fields
//! of the export format (DESIGN.md "Canonical export"), which a mapping targets by name.
//! A test checks this table against the export lines of a generated university, so it
//! cannot drift from the model.

use conpere_model::Kind;

/// The type of a canonical field, and how a mapped text becomes its JSON value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldType {
    /// Text.
    Text,
    /// A whole number.
    Integer,
    /// A decimal number.
    Decimal,
    /// `true` / `false`.
    Boolean,
    /// `YYYY-MM-DD` (use `date(x, format)` to get there).
    Date,
    /// A list of text (use `split(x, '|')`).
    List,
}

/// One canonical field.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// Its name in the export format.
    pub name: &'static str,
    /// Its type.
    pub kind: FieldType,
    /// Whether a record needs it (the mapping must give it, or it has a default).
    pub required: bool,
    /// The JSON value used when the mapping does not give the field.
    pub default: Option<&'static str>,
}

const fn field(name: &'static str, kind: FieldType, required: bool) -> Field {
    Field {
        name,
        kind,
        required,
        default: None,
    }
}

/// A required field with a natural default, so that mappings need not spell it out.
const fn defaulted(name: &'static str, kind: FieldType, default: &'static str) -> Field {
    Field {
        name,
        kind,
        required: true,
        default: Some(default),
    }
}

use FieldType::{Boolean, Date, Decimal, Integer, List, Text};

const STUDENT: &[Field] = &[
    field("student", Text, true),
    field("ine", Text, false),
    field("family_name", Text, true),
    field("usual_name", Text, false),
    field("given_name", Text, true),
    field("birth_date", Date, false),
    field("email", Text, false),
    field("login", Text, false),
];

const NODE: &[Field] = &[
    field("year", Integer, true),
    field("node", Text, true),
    field("kind", Text, true),
    field("code", Text, true),
    field("version", Text, false),
    field("label", Text, true),
    field("ects", Decimal, false),
    field("period", Text, false),
];

const EDGE: &[Field] = &[
    field("year", Integer, true),
    field("parent", Text, true),
    field("child", Text, true),
    defaulted("mandatory", Boolean, "true"),
    field("min", Integer, false),
    field("max", Integer, false),
    field("position", Integer, false),
];

const REGISTRATION: &[Field] = &[
    field("year", Integer, true),
    field("student", Text, true),
    field("step", Text, true),
    field("diploma", Text, false),
    field("status", Text, true),
    field("regime", Text, true),
    defaulted("main", Boolean, "true"),
    defaulted("special_statuses", List, "[]"),
];

const ENROLMENT: &[Field] = &[
    field("year", Integer, true),
    field("student", Text, true),
    field("step", Text, true),
    field("node", Text, true),
    field("via", Text, false),
    defaulted("carried_over", Boolean, "false"),
    defaulted("exempted", Boolean, "false"),
];

const RESULT: &[Field] = &[
    field("year", Integer, true),
    field("student", Text, true),
    field("node", Text, true),
    field("session", Text, true),
    field("grade", Decimal, false),
    field("scale", Decimal, false),
    field("outcome", Text, false),
    field("ects_earned", Decimal, false),
];

/// The fields of `kind`, in model order.
pub fn fields(kind: Kind) -> &'static [Field] {
    match kind {
        Kind::Student => STUDENT,
        Kind::Node => NODE,
        Kind::Edge => EDGE,
        Kind::Registration => REGISTRATION,
        Kind::Enrolment => ENROLMENT,
        Kind::Result => RESULT,
    }
}

/// The field `name` of `kind`, if it exists.
pub fn field_of(kind: Kind, name: &str) -> Option<&'static Field> {
    fields(kind).iter().find(|f| f.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use conpere_model::to_export_line;
    use conpere_synth::{SynthConfig, University};
    use std::collections::BTreeMap;

    /// Every kind's fields are exactly the keys of its export lines, in order.
    #[test]
    fn the_table_matches_the_export_format() {
        let mut seen: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for record in University::generate(SynthConfig {
            results: true,
            ..SynthConfig::new(3, 20)
        })
        .records()
        {
            let line: serde_json::Value =
                serde_json::from_str(&to_export_line("s", &record)).unwrap();
            let keys: Vec<String> = line
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| *k != "type" && *k != "source")
                .cloned()
                .collect();
            seen.entry(record.kind().as_str()).or_insert(keys);
        }
        for kind in Kind::ALL {
            let names: Vec<String> = fields(kind).iter().map(|f| f.name.to_string()).collect();
            let mut expected = seen[kind.as_str()].clone();
            let mut sorted_names = names.clone();
            expected.sort();
            sorted_names.sort();
            assert_eq!(sorted_names, expected, "{kind}");
        }
    }
}
