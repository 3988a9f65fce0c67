//! The expression language of mapping files: how a canonical field is computed from a
//! row, and which rows a filter keeps.
//!
//! ```text
//! numero                               the value of column (field, element) `numero`
//! `Date de naissance`                  a column whose name has spaces or accents
//! 'active'                             a constant ("double quotes" work too)
//! concat('VET:', etape, '/', version)  text joined; absent if one part is absent
//! trim(x)  upper(x)  lower(x)          spaces removed, case changed
//! replace(x, 'old', 'new')             every occurrence replaced
//! date(x, '%d/%m/%Y')                  a date in that format, as YYYY-MM-DD
//! number(x)  number(x, ',')            a number, with a decimal comma when told
//! bool(x)                              1/0, true/false, oui/non, o/n, yes/no, y/n
//! lookup(x, regimes)                   through code table `regimes` (unknown: error)
//! lookup(x, regimes, 'other')          … with a fallback for unknown codes
//! lookup(x, classes.courseSourcedId)   a column of another file of the drop, by its key
//!                                      (a `[[references]]` of the mapping); on a list,
//!                                      each item looked up
//! same(x)                              the one value all the items of a list give (an
//!                                      error if they differ; absent for an empty list)
//! add(x, '-1')                         whole numbers added (constants are quoted: a bare
//!                                      `1` is column 1 of a file without a header)
//! split(x, '|')                        a list (special statuses), empty parts dropped
//! default(x, y)                        x, or y when x is absent or empty
//! eq(x, y)  ne(x, y)  in(x, 'a', 'b')  comparisons (filters)
//! empty(x)  not(c)  and(c, …)  or(c, …)
//! ```
//!
//! An expression is parsed once, when the mapping is loaded ([`Expr::parse`]): a typo is
//! an error pointing to the mapping's line, before any file is read.

use crate::row::Row;
use chrono::NaiveDate;
use std::collections::BTreeMap;
use std::fmt;

/// A parsed expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// The value of a column / field / element of the row.
    Column(String),
    /// A constant.
    Text(String),
    /// The name of a code table (`lookup`'s second argument): not a column of the row.
    Table(String),
    /// A function applied to arguments.
    Call(Function, Vec<Expr>),
}

/// The functions of the language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Function {
    /// Joins text.
    Concat,
    /// Removes surrounding spaces.
    Trim,
    /// Upper case.
    Upper,
    /// Lower case.
    Lower,
    /// Replaces every occurrence.
    Replace,
    /// Parses a date with an explicit format.
    Date,
    /// Parses a number, with an optional decimal separator.
    Number,
    /// Parses a boolean.
    Bool,
    /// Translates through a code table.
    Lookup,
    /// Splits into a list.
    Split,
    /// The first value unless absent or empty.
    Default,
    /// Equality.
    Eq,
    /// Inequality.
    Ne,
    /// Membership.
    In,
    /// Absent or empty.
    Empty,
    /// Negation.
    Not,
    /// Conjunction.
    And,
    /// Disjunction.
    Or,
    /// Whole-number addition.
    Add,
    /// The one value all the items of a list agree on.
    Same,
}

impl Function {
    /// Every function with its name and arity (`min`, `max`; `None`: any).
    const ALL: [(&'static str, Function, usize, Option<usize>); 20] = [
        ("concat", Function::Concat, 1, None),
        ("trim", Function::Trim, 1, Some(1)),
        ("upper", Function::Upper, 1, Some(1)),
        ("lower", Function::Lower, 1, Some(1)),
        ("replace", Function::Replace, 3, Some(3)),
        ("date", Function::Date, 2, Some(2)),
        ("number", Function::Number, 1, Some(2)),
        ("bool", Function::Bool, 1, Some(1)),
        ("lookup", Function::Lookup, 2, Some(3)),
        ("split", Function::Split, 2, Some(2)),
        ("default", Function::Default, 2, Some(2)),
        ("eq", Function::Eq, 2, Some(2)),
        ("ne", Function::Ne, 2, Some(2)),
        ("in", Function::In, 2, None),
        ("empty", Function::Empty, 1, Some(1)),
        ("not", Function::Not, 1, Some(1)),
        ("and", Function::And, 1, None),
        ("or", Function::Or, 1, None),
        ("add", Function::Add, 2, Some(2)),
        ("same", Function::Same, 1, Some(1)),
    ];

    fn named(name: &str) -> Option<(Function, usize, Option<usize>)> {
        Function::ALL
            .iter()
            .find(|(n, ..)| *n == name)
            .map(|&(_, f, min, max)| (f, min, max))
    }

    fn name(self) -> &'static str {
        Function::ALL
            .iter()
            .find(|(_, f, ..)| *f == self)
            .map_or("?", |(n, ..)| n)
    }

    fn names() -> String {
        Function::ALL.map(|(n, ..)| n).join(", ")
    }
}

/// The value of an expression for a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Nothing: an absent column, or a function of one.
    Absent,
    /// Text.
    Text(String),
    /// A list (from `split`).
    List(Vec<String>),
}

impl Value {
    fn text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            Value::Absent => true,
            Value::Text(t) => t.trim().is_empty(),
            Value::List(l) => l.is_empty(),
        }
    }

    fn truth(b: bool) -> Value {
        Value::Text(if b { "true" } else { "false" }.to_string())
    }

    /// Whether a filter's value keeps the row.
    pub fn is_true(&self) -> bool {
        matches!(self, Value::Text(t) if t == "true")
    }
}

/// Code tables by name (`[tables.<name>]` of the mapping, overridable by the source).
pub type Tables = BTreeMap<String, BTreeMap<String, String>>;

/// Why an expression could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError(pub String);

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Expr {
    /// Parses `text`; `tables` are the code tables a `lookup` may name.
    pub fn parse(text: &str, tables: &Tables) -> Result<Expr, ParseError> {
        let mut parser = Parser {
            text,
            at: 0,
            tables,
        };
        let expr = parser.expr()?;
        parser.space();
        if parser.at < text.len() {
            return Err(parser.error("unexpected text after the expression"));
        }
        Ok(expr)
    }

    /// The columns the expression reads (to tell a missing column from an empty one).
    pub fn columns(&self) -> Vec<&str> {
        match self {
            Expr::Column(name) => vec![name.as_str()],
            Expr::Text(_) | Expr::Table(_) => Vec::new(),
            Expr::Call(_, args) => args.iter().flat_map(Expr::columns).collect(),
        }
    }

    /// The value for `row`, or why it cannot be computed (the row is then quarantined
    /// with that reason).
    pub fn eval(&self, row: &Row, tables: &Tables) -> Result<Value, String> {
        match self {
            Expr::Column(name) => Ok(row
                .get(name)
                .map_or(Value::Absent, |v| Value::Text(v.to_string()))),
            Expr::Text(text) => Ok(Value::Text(text.clone())),
            // Read by `lookup` from its argument, never as a value.
            Expr::Table(_) => Ok(Value::Absent),
            Expr::Call(function, args) => {
                let values = args
                    .iter()
                    .map(|a| a.eval(row, tables))
                    .collect::<Result<Vec<_>, _>>()?;
                call(*function, &values, args, tables)
            }
        }
    }
}

/// Applies `function` to evaluated arguments (`args` are the expressions, for messages).
fn call(
    function: Function,
    values: &[Value],
    args: &[Expr],
    tables: &Tables,
) -> Result<Value, String> {
    let text = |i: usize| values.get(i).and_then(Value::text);
    let map = |f: &dyn Fn(&str) -> String| Ok(text(0).map_or(Value::Absent, |t| Value::Text(f(t))));
    match function {
        Function::Concat => Ok(values
            .iter()
            .map(Value::text)
            .collect::<Option<String>>()
            .map_or(Value::Absent, Value::Text)),
        Function::Trim => map(&|t| t.trim().to_string()),
        Function::Upper => map(&|t| t.to_uppercase()),
        Function::Lower => map(&|t| t.to_lowercase()),
        Function::Replace => {
            let (from, to) = (text(1).unwrap_or_default(), text(2).unwrap_or_default());
            map(&|t| t.replace(from, to))
        }
        Function::Date => date(text(0), text(1).unwrap_or_default()),
        Function::Number => number(text(0), text(1)),
        Function::Bool => boolean(text(0)),
        Function::Lookup => match &values[0] {
            Value::List(items) => (items.iter())
                .map(
                    |item| match lookup(Some(item), &args[1], text(2), tables)? {
                        Value::Text(found) => Ok(found),
                        _ => Err(format!("`{item}` has no value in {}", table_name(&args[1]))),
                    },
                )
                .collect::<Result<Vec<_>, _>>()
                .map(Value::List),
            _ => lookup(text(0), &args[1], text(2), tables),
        },
        Function::Split => Ok(text(0).map_or(Value::Absent, |t| {
            let separator = text(1).unwrap_or("|");
            Value::List(
                t.split(separator)
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect(),
            )
        })),
        Function::Default => Ok(if values[0].is_empty() {
            values[1].clone()
        } else {
            values[0].clone()
        }),
        Function::Eq => Ok(Value::truth(values[0] == values[1])),
        Function::Ne => Ok(Value::truth(values[0] != values[1])),
        Function::In => Ok(Value::truth(values[1..].contains(&values[0]))),
        Function::Empty => Ok(Value::truth(values[0].is_empty())),
        Function::Not => Ok(Value::truth(!values[0].is_true())),
        Function::And => Ok(Value::truth(values.iter().all(Value::is_true))),
        Function::Or => Ok(Value::truth(values.iter().any(Value::is_true))),
        Function::Add => add(text(0), text(1)),
        Function::Same => same(&values[0]),
    }
}

/// The name of a `lookup`'s table, for messages.
fn table_name(table: &Expr) -> &str {
    match table {
        Expr::Table(name) => name,
        _ => "?",
    }
}

/// The one value of a list whose items all agree (a text is its own value).
fn same(value: &Value) -> Result<Value, String> {
    let Value::List(items) = value else {
        return Ok(value.clone());
    };
    let Some(first) = items.first() else {
        return Ok(Value::Absent);
    };
    if items.iter().all(|item| item == first) {
        return Ok(Value::Text(first.clone()));
    }
    let quoted: Vec<String> = items.iter().map(|item| format!("`{item}`")).collect();
    Err(format!(
        "the items of the list do not agree ({}): they must all give one value",
        quoted.join(", ")
    ))
}

fn add(a: Option<&str>, b: Option<&str>) -> Result<Value, String> {
    let (Some(a), Some(b)) = (a.map(str::trim), b.map(str::trim)) else {
        return Ok(Value::Absent);
    };
    let whole = |t: &str| {
        t.parse::<i64>()
            .map_err(|_| format!("`{t}` is not a whole number"))
    };
    let sum = whole(a)?
        .checked_add(whole(b)?)
        .ok_or_else(|| format!("{a} + {b} is too large"))?;
    Ok(Value::Text(sum.to_string()))
}

fn date(value: Option<&str>, format: &str) -> Result<Value, String> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(Value::Absent);
    };
    NaiveDate::parse_from_str(value, format)
        .map(|d| Value::Text(d.format("%Y-%m-%d").to_string()))
        .map_err(|e| format!("`{value}` is not a date in the format `{format}` ({e})"))
}

fn number(value: Option<&str>, decimal: Option<&str>) -> Result<Value, String> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(Value::Absent);
    };
    let normal = match decimal {
        Some(",") => value.replace(['.', ' ', '\u{a0}'], "").replace(',', "."),
        _ => value.replace([' ', '\u{a0}'], ""),
    };
    normal
        .parse::<f64>()
        .ok()
        .filter(|n| n.is_finite())
        .map(|_| Value::Text(normal.clone()))
        .ok_or_else(|| match decimal {
            Some(sep) => format!("`{value}` is not a number with the decimal separator `{sep}`"),
            None => format!("`{value}` is not a number (a decimal comma needs number(x, ','))"),
        })
}

fn boolean(value: Option<&str>) -> Result<Value, String> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(Value::Absent);
    };
    match value.to_lowercase().as_str() {
        "1" | "true" | "oui" | "o" | "yes" | "y" | "vrai" => Ok(Value::truth(true)),
        "0" | "false" | "non" | "n" | "no" | "faux" => Ok(Value::truth(false)),
        _ => Err(format!(
            "`{value}` is not a boolean (1/0, true/false, oui/non, o/n, yes/no)"
        )),
    }
}

fn lookup(
    value: Option<&str>,
    table: &Expr,
    fallback: Option<&str>,
    tables: &Tables,
) -> Result<Value, String> {
    let Some(value) = value.map(str::trim) else {
        return Ok(Value::Absent);
    };
    // The parser checked that the table is named and exists.
    let Expr::Table(name) = table else {
        return Err("lookup: the table must be named".into());
    };
    let entries = tables
        .get(name)
        .ok_or_else(|| format!("no code table `{name}`"))?;
    if let Some(found) = entries.get(value) {
        return Ok(Value::Text(found.clone()));
    }
    // A key of a reference that is missing because two rows have it is an error even with
    // a fallback: the fallback is for a key that is not there, and this one is there twice.
    let reference = name.split_once('.').map(|(file, _)| file);
    if let Some((file, rows)) = reference.and_then(|f| Some((f, conflict(tables, f, value)?))) {
        return Err(format!(
            "reference `{file}` has two rows with the key `{value}` ({rows}), with different \
             values: which one is meant cannot be told; fix the drop"
        ));
    }
    // A key missing from a reference some rows of which could not be read may be on one of
    // them: a fallback would replace what the drop says by a default.
    if let Some((file, said)) = reference.and_then(|f| Some((f, unreadable(tables, f)?))) {
        return Err(format!(
            "no row of reference `{file}` has the key `{value}`, but {said}: the row it \
             names may exist, so nothing is assumed and the stored version is kept"
        ));
    }
    match (fallback, reference) {
        (Some(fallback), _) => Ok(Value::Text(fallback.to_string())),
        // A reference to another file of the drop: the row it names is not there.
        (None, Some(file)) => Err(format!(
            "no row of reference `{file}` has the key `{value}` (a row of another file names \
             it: is the drop complete?)"
        )),
        (None, None) => Err(format!(
            "code `{value}` is not in table `{name}` (add it to [tables.{name}] or give lookup \
             a fallback)"
        )),
    }
}

/// Which rows of reference `file` could not be read, when some could not.
fn unreadable<'t>(tables: &'t Tables, file: &str) -> Option<&'t String> {
    tables.get(&format!("{file}.#unreadable"))?.get("")
}

/// Where the two rows of reference `file` that share `key` are, when they conflict.
fn conflict<'t>(tables: &'t Tables, file: &str, key: &str) -> Option<&'t String> {
    tables.get(&format!("{file}.#conflicts"))?.get(key)
}

/// A recursive-descent parser over the expression text.
struct Parser<'a> {
    text: &'a str,
    at: usize,
    tables: &'a Tables,
}

impl Parser<'_> {
    fn error(&self, message: &str) -> ParseError {
        ParseError(format!(
            "{message} at column {} of `{}`",
            self.text[..self.at].chars().count() + 1,
            self.text
        ))
    }

    fn space(&mut self) {
        let rest = &self.text[self.at..];
        self.at += rest.len() - rest.trim_start().len();
    }

    fn peek(&self) -> Option<char> {
        self.text[self.at..].chars().next()
    }

    fn expr(&mut self) -> Result<Expr, ParseError> {
        self.space();
        match self.peek() {
            Some(quote @ ('\'' | '"')) => self.quoted(quote).map(Expr::Text),
            Some('`') => self.quoted('`').map(Expr::Column),
            Some(c) if is_name_char(c) => self.name_or_call(),
            Some(c) => Err(self.error(&format!("unexpected `{c}`"))),
            None => Err(self.error("an expression is missing")),
        }
    }

    /// Text between two `quote`s (a doubled quote stands for itself).
    fn quoted(&mut self, quote: char) -> Result<String, ParseError> {
        let start = self.at;
        self.at += quote.len_utf8();
        let mut out = String::new();
        while let Some(c) = self.peek() {
            self.at += c.len_utf8();
            if c != quote {
                out.push(c);
            } else if self.peek() == Some(quote) {
                self.at += c.len_utf8();
                out.push(c);
            } else {
                return Ok(out);
            }
        }
        self.at = start;
        Err(self.error(&format!("the {quote} opened here is never closed")))
    }

    fn name_or_call(&mut self) -> Result<Expr, ParseError> {
        let start = self.at;
        while self.peek().is_some_and(is_name_char) {
            self.at += self.peek().map_or(1, char::len_utf8);
        }
        let name = self.text[start..self.at].to_string();
        self.space();
        if self.peek() != Some('(') {
            return Ok(Expr::Column(name));
        }
        let Some((function, min, max)) = Function::named(&name) else {
            self.at = start;
            return Err(self.error(&format!(
                "unknown function `{name}` (known: {})",
                Function::names()
            )));
        };
        self.at += 1;
        let args = self.arguments()?;
        if args.len() < min || max.is_some_and(|max| args.len() > max) {
            self.at = start;
            let wanted = match max {
                Some(max) if max == min => format!("{min}"),
                Some(max) => format!("{min} to {max}"),
                None => format!("at least {min}"),
            };
            return Err(self.error(&format!(
                "`{name}` takes {wanted} argument(s), not {}",
                args.len()
            )));
        }
        let args = self.check_table(function, args, start)?;
        Ok(Expr::Call(function, args))
    }

    /// Arguments up to the closing parenthesis (the opening one is consumed).
    fn arguments(&mut self) -> Result<Vec<Expr>, ParseError> {
        let mut args = Vec::new();
        loop {
            self.space();
            if self.peek() == Some(')') && args.is_empty() {
                self.at += 1;
                return Ok(args);
            }
            args.push(self.expr()?);
            self.space();
            match self.peek() {
                Some(',') => self.at += 1,
                Some(')') => {
                    self.at += 1;
                    return Ok(args);
                }
                _ => return Err(self.error("`,` or `)` expected")),
            }
        }
    }

    /// `lookup`'s second argument names an existing code table: it becomes an
    /// [`Expr::Table`].
    fn check_table(
        &mut self,
        function: Function,
        mut args: Vec<Expr>,
        start: usize,
    ) -> Result<Vec<Expr>, ParseError> {
        if function != Function::Lookup {
            return Ok(args);
        }
        match &args[1] {
            Expr::Column(name) if self.tables.contains_key(name) => {
                args[1] = Expr::Table(name.clone());
                Ok(args)
            }
            Expr::Column(name) => {
                self.at = start;
                let known: Vec<&str> = self.tables.keys().map(String::as_str).collect();
                Err(self.error(&format!(
                    "{}: no code table `{name}` (the mapping has: {})",
                    function.name(),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )))
            }
            _ => {
                self.at = start;
                Err(self.error("lookup's second argument is the name of a code table"))
            }
        }
    }
}

fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '/' | '@' | '-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::row::{Location, Row};

    fn tables() -> Tables {
        let regimes = BTreeMap::from([("10".to_string(), "initial".to_string())]);
        let years = [("S1", "2025"), ("S2", "2025"), ("S3", "2026")]
            .map(|(k, v)| (k.to_string(), v.to_string()));
        BTreeMap::from([
            ("regimes".to_string(), regimes),
            ("sessions.schoolYear".to_string(), BTreeMap::from(years)),
        ])
    }

    #[test]
    fn a_list_is_looked_up_item_by_item_and_same_takes_its_one_value() {
        let years = "lookup(split(termes, ','), sessions.schoolYear)";
        assert_eq!(
            eval(years).unwrap(),
            Value::List(vec!["2025".into(), "2025".into()])
        );
        assert_eq!(
            eval(&format!("add(same({years}), '-1')")).unwrap(),
            text("2024")
        );
        let error = eval("same(lookup(split(deux_annees, ','), sessions.schoolYear))").unwrap_err();
        assert_eq!(
            error,
            "the items of the list do not agree (`2025`, `2026`): they must all give one value"
        );
        let unknown = eval("lookup(split('S1,S9', ','), sessions.schoolYear)").unwrap_err();
        assert!(
            unknown.contains("no row of reference `sessions` has the key `S9`"),
            "{unknown}"
        );
        assert_eq!(eval("same(split(vide, ','))").unwrap(), Value::Absent);
        assert_eq!(eval("same(numero)").unwrap(), text("00123"));
    }

    fn row() -> Row {
        let fields = [
            ("numero", "00123"),
            ("nom", " Lefèvre "),
            ("Date de naissance", "17/05/2004"),
            ("credits", "7,5"),
            ("regime", "10"),
            ("statuts", "employed| |disability"),
            ("vide", ""),
            ("termes", "S1,S2"),
            ("deux_annees", "S2,S3"),
        ];
        Row::new(
            Location::new("etudiants.csv".into(), 3),
            fields.map(|(k, v)| (k.into(), v.to_string())).to_vec(),
            String::new(),
        )
    }

    fn eval(text: &str) -> Result<Value, String> {
        let tables = tables();
        let expr = Expr::parse(text, &tables).map_err(|e| e.0)?;
        expr.eval(&row(), &tables)
    }

    fn text(value: &str) -> Value {
        Value::Text(value.to_string())
    }

    #[test]
    fn every_function_computes_what_its_doc_says() {
        assert_eq!(eval("numero").unwrap(), text("00123"));
        assert_eq!(eval("upper(trim(nom))").unwrap(), text("LEFÈVRE"));
        assert_eq!(
            eval("date(`Date de naissance`, '%d/%m/%Y')").unwrap(),
            text("2004-05-17")
        );
        assert_eq!(eval("number(credits, ',')").unwrap(), text("7.5"));
        assert_eq!(eval("lookup(regime, regimes)").unwrap(), text("initial"));
        assert_eq!(
            eval("lookup('99', regimes, 'other')").unwrap(),
            text("other")
        );
        assert_eq!(
            eval("split(statuts, '|')").unwrap(),
            Value::List(vec!["employed".into(), "disability".into()])
        );
        assert_eq!(
            eval("concat('VET:', numero, '/1')").unwrap(),
            text("VET:00123/1")
        );
        assert_eq!(eval("concat('x', absent)").unwrap(), Value::Absent);
        assert_eq!(eval("default(vide, 'n/a')").unwrap(), text("n/a"));
        assert_eq!(eval("bool('Oui')").unwrap(), text("true"));
        assert!(
            eval("and(eq(regime, '10'), not(empty(numero)), in(numero, 'x', '00123'))")
                .unwrap()
                .is_true()
        );
        assert_eq!(eval("replace(numero, '00', '')").unwrap(), text("123"));
        assert_eq!(eval("add(regime, '-1')").unwrap(), text("9"));
        assert!(eval("add(nom, '1')").unwrap_err().contains("whole number"));
        assert_eq!(eval("'it''s'").unwrap(), text("it's"));
    }

    #[test]
    fn bad_values_are_explained() {
        let message = eval("date(nom, '%Y-%m-%d')").unwrap_err();
        assert!(
            message.contains("Lefèvre") && message.contains("%Y-%m-%d"),
            "{message}"
        );
        assert!(eval("number(credits)")
            .unwrap_err()
            .contains("number(x, ',')"));
        assert!(eval("lookup('99', regimes)")
            .unwrap_err()
            .contains("[tables.regimes]"));
        assert!(eval("bool(nom)").is_err());
    }

    #[test]
    fn bad_expressions_are_refused_when_parsed() {
        let tables = tables();
        let error = |text: &str| Expr::parse(text, &tables).unwrap_err().0;
        assert!(error("dat(x, 'y')").contains("unknown function `dat`"));
        assert!(error("trim(a, b)").contains("takes 1 argument"));
        assert!(error("lookup(x, statuts)").contains("no code table `statuts`"));
        assert!(error("concat('a', ").contains("expression is missing"));
        assert!(error("'open").contains("never closed"));
        assert!(error("trim(a) b").contains("after the expression"));
    }

    #[test]
    fn a_lookup_reads_its_value_column_not_its_table() {
        let tables = tables();
        let expr = Expr::parse("lookup(regime, regimes)", &tables).unwrap();
        assert_eq!(expr.columns(), ["regime"]);
    }
}
