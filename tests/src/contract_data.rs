//! A small university for the learning-contract tests: one student per flag, each the
//! plain case with one thing changed, written as canonical export lines.

use conpere_core::model::{parse_line, Item};

/// Items from canonical export lines (without `source`).
pub fn lines(text: &str) -> Vec<Item> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| parse_line(l).unwrap_or_else(|e| panic!("{l}: {e:?}")))
        .collect()
}

/// A small structure in 2024 (and 2023): two steps, each with a unit of 6 ECTS in S1 and
/// a choice list (exactly one option) of two 3-ECTS options; a big unit of 30 ECTS.
pub const STRUCTURE: &str = r#"
{"type":"node","year":2024,"node":"VET:A/1","kind":"step","code":"A","version":"1","label":"Step A","ects":60,"period":null}
{"type":"node","year":2024,"node":"VET:B/1","kind":"step","code":"B","version":"1","label":"Step B","ects":60,"period":null}
{"type":"node","year":2024,"node":"ELP:A1","kind":"unit","code":"A1","version":null,"label":"Unit A1","ects":6,"period":"S1"}
{"type":"node","year":2024,"node":"ELP:BIG","kind":"unit","code":"BIG","version":null,"label":"Big unit","ects":30,"period":"S1"}
{"type":"node","year":2024,"node":"ELP:B1","kind":"unit","code":"B1","version":null,"label":"Unit B1","ects":6,"period":"S1"}
{"type":"node","year":2024,"node":"LSE:AOPT","kind":"choice","code":"AOPT","version":null,"label":"Options A","ects":null,"period":null}
{"type":"node","year":2024,"node":"ELP:O1","kind":"unit","code":"O1","version":null,"label":"Option 1","ects":3,"period":"S1"}
{"type":"node","year":2024,"node":"ELP:O2","kind":"unit","code":"O2","version":null,"label":"Option 2","ects":3,"period":"S1"}
{"type":"edge","year":2024,"parent":"VET:A/1","child":"ELP:A1","mandatory":true,"min":null,"max":null,"position":1}
{"type":"edge","year":2024,"parent":"VET:A/1","child":"ELP:BIG","mandatory":false,"min":null,"max":null,"position":2}
{"type":"edge","year":2024,"parent":"VET:A/1","child":"LSE:AOPT","mandatory":true,"min":1,"max":1,"position":3}
{"type":"edge","year":2024,"parent":"LSE:AOPT","child":"ELP:O1","mandatory":false,"min":null,"max":null,"position":1}
{"type":"edge","year":2024,"parent":"LSE:AOPT","child":"ELP:O2","mandatory":false,"min":null,"max":null,"position":2}
{"type":"edge","year":2024,"parent":"VET:B/1","child":"ELP:B1","mandatory":true,"min":null,"max":null,"position":1}
{"type":"node","year":2023,"node":"VET:A/1","kind":"step","code":"A","version":"1","label":"Step A","ects":60,"period":null}
{"type":"node","year":2023,"node":"ELP:A1","kind":"unit","code":"A1","version":null,"label":"Unit A1","ects":6,"period":"S1"}
{"type":"edge","year":2023,"parent":"VET:A/1","child":"ELP:A1","mandatory":true,"min":null,"max":null,"position":1}
"#;

pub fn student(id: &str) -> String {
    format!(
        r#"{{"type":"student","student":"{id}","ine":null,"family_name":"Nom","usual_name":null,"given_name":"Prénom","birth_date":null,"email":null,"login":null}}"#
    )
}

pub fn registration(
    year: i32,
    id: &str,
    step: &str,
    main: bool,
    status: &str,
    statuses: &str,
) -> String {
    format!(
        r#"{{"type":"registration","year":{year},"student":"{id}","step":"{step}","diploma":null,"status":"{status}","regime":"initial","main":{main},"special_statuses":[{statuses}]}}"#
    )
}

pub fn enrolment(
    year: i32,
    id: &str,
    step: &str,
    node: &str,
    via: Option<&str>,
    carried: bool,
) -> String {
    let via = via.map_or("null".to_string(), |v| format!("\"{v}\""));
    format!(
        r#"{{"type":"enrolment","year":{year},"student":"{id}","step":"{step}","node":"{node}","via":{via},"carried_over":{carried},"exempted":false}}"#
    )
}

/// A student of step A in 2024 who follows A1 and one option: no flag, unless `change`
/// alters one line.
pub fn plain(id: &str) -> Vec<String> {
    vec![
        student(id),
        registration(2024, id, "VET:A/1", true, "active", ""),
        enrolment(2024, id, "VET:A/1", "ELP:A1", None, false),
        enrolment(2024, id, "VET:A/1", "ELP:O1", Some("LSE:AOPT"), false),
    ]
}

/// One student per flag, each the plain case with one thing changed (and PLAIN).
pub fn flag_cases() -> String {
    let mut out = vec![STRUCTURE.to_string()];
    out.extend(plain("PLAIN"));
    let mut special = plain("SPECIAL");
    special[1] = registration(2024, "SPECIAL", "VET:A/1", true, "active", r#""employed""#);
    out.extend(special);
    let mut double = plain("DOUBLE");
    double.push(registration(2024, "DOUBLE", "VET:B/1", false, "active", ""));
    double.push(enrolment(2024, "DOUBLE", "VET:B/1", "ELP:B1", None, false));
    out.extend(double);
    let mut repeater = plain("REPEAT");
    repeater.push(registration(2023, "REPEAT", "VET:A/1", true, "active", ""));
    repeater.push(enrolment(2023, "REPEAT", "VET:A/1", "ELP:A1", None, false));
    out.extend(repeater);
    let mut carried = plain("CARRIED");
    carried[2] = enrolment(2024, "CARRIED", "VET:A/1", "ELP:A1", None, true);
    out.extend(carried);
    out.extend([
        student("MISSING"),
        registration(2024, "MISSING", "VET:A/1", true, "active", ""),
    ]);
    let mut choice = plain("CHOICE");
    choice.push(enrolment(
        2024,
        "CHOICE",
        "VET:A/1",
        "ELP:O2",
        Some("LSE:AOPT"),
        false,
    ));
    out.extend(choice);
    let mut heavy = plain("HEAVY");
    heavy.push(enrolment(2024, "HEAVY", "VET:A/1", "ELP:BIG", None, false));
    out.extend(heavy);
    out.join("\n")
}
