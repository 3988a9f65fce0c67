//! How canonical values are written in Apogée's XML types.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Paris;

/// Local midnight of `date` in Paris, the simulated university's time zone.
fn paris_midnight(date: NaiveDate) -> Option<DateTime<chrono_tz::Tz>> {
    // Midnight exists on every day in Paris (the clocks change at 02:00 and 03:00).
    Paris
        .from_local_datetime(&date.and_hms_opt(0, 0, 0)?)
        .earliest()
}

/// An `xsd:dateTime` at local midnight in Paris, with its offset: `2004-02-29T00:00:00+01:00`,
/// `2004-07-14T00:00:00+02:00`. One of the two forms dates without a time take in the
/// field.
pub(crate) fn midnight_in_paris(date: NaiveDate) -> Option<String> {
    Some(
        paris_midnight(date)?
            .format("%Y-%m-%dT%H:%M:%S%:z")
            .to_string(),
    )
}

/// The same instant as Axis serialises a `java.util.Date`: in UTC, with milliseconds.
/// Midnight in Paris is the evening before in UTC: `2004-06-30T22:00:00.000Z` is 1 July
/// 2004. The other form of the field, and the one a reader that takes the date as written
/// gets a day early.
pub(crate) fn axis_instant(date: NaiveDate) -> Option<String> {
    let utc = paris_midnight(date)?.with_timezone(&Utc);
    Some(utc.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
}

/// A date as Apogée writes dates typed `xsd:string` (`EtudiantDTO2.dateNaissance`) and
/// reads them in parameters: `dd/MM/yyyy`.
pub(crate) fn french_date(date: NaiveDate) -> String {
    date.format("%d/%m/%Y").to_string()
}

/// An `xsd:decimal`: Rust's `Display` of a finite `f64` never uses an exponent, so it is
/// a valid decimal (`30`, `4.5`); a non-finite value has no decimal form and stays nil.
pub(crate) fn decimal(value: Option<f64>) -> Option<String> {
    value.filter(|v| v.is_finite()).map(|v| v.to_string())
}

/// A value for an `xsd:int` field, written as it is so that a student number keeps its
/// leading zeros (`01000003` is a valid `xsd:int` lexical form); `None` when it is not an
/// `xsd:int` at all (the field is then nil rather than invalid).
pub(crate) fn int(value: &str) -> Option<String> {
    let digits = value.strip_prefix(['-', '+']).unwrap_or(value);
    let valid = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && value.parse::<i32>().is_ok();
    valid.then(|| value.to_owned())
}

/// An `xsd:int` from a number of credits or a scale, when it is a whole number.
pub(crate) fn whole(value: Option<f64>) -> Option<String> {
    value
        .filter(|v| v.is_finite() && v.fract() == 0.0 && v.abs() <= f64::from(i32::MAX))
        .map(|v| format!("{v:.0}"))
}

/// `O` or `N`, Apogée's booleans (témoins).
pub(crate) fn temoin(value: bool) -> &'static str {
    if value {
        "O"
    } else {
        "N"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn midnight_in_paris_in_both_forms() {
        let forms = |d| (midnight_in_paris(d).unwrap(), axis_instant(d).unwrap());
        assert_eq!(
            forms(date(2004, 2, 29)),
            (
                "2004-02-29T00:00:00+01:00".into(),
                "2004-02-28T23:00:00.000Z".into()
            )
        );
        assert_eq!(
            forms(date(2004, 7, 1)),
            (
                "2004-07-01T00:00:00+02:00".into(),
                "2004-06-30T22:00:00.000Z".into()
            )
        );
        // 2024: summer time from Sunday 31 March (at 02:00) to Sunday 27 October.
        assert_eq!(forms(date(2024, 3, 31)).1, "2024-03-30T23:00:00.000Z");
        assert_eq!(forms(date(2024, 10, 27)).1, "2024-10-26T22:00:00.000Z");
    }

    #[test]
    fn numbers_are_valid_xsd_lexical_forms() {
        assert_eq!(decimal(Some(30.0)).as_deref(), Some("30"));
        assert_eq!(decimal(Some(4.5)).as_deref(), Some("4.5"));
        assert_eq!(decimal(Some(f64::NAN)), None);
        assert_eq!(decimal(None), None);
        assert_eq!(whole(Some(20.0)).as_deref(), Some("20"));
        assert_eq!(whole(Some(20.5)), None);
        assert_eq!(int("01000003").as_deref(), Some("01000003"));
        assert_eq!(int("12a"), None);
        assert_eq!(int("99999999999"), None);
        assert_eq!(int(""), None);
        assert_eq!(french_date(date(2004, 2, 9)), "09/02/2004");
    }
}
