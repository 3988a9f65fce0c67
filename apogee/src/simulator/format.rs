//! How canonical values are written in Apogée's XML types.

use chrono::{Datelike, Days, NaiveDate, Weekday};

/// An `xsd:dateTime` at local midnight in Paris, as Apogée writes dates that have no time
/// (`dateNaissance`, `dateIAE`): `2004-02-29T00:00:00+01:00`. The offset is the one of that
/// date, so a reader that keeps the date as written gets it back, and one that converts
/// to UTC gets the previous day (the mistake the README warns about).
pub(crate) fn midnight_in_paris(date: NaiveDate) -> String {
    let offset = if paris_summer_time_at_midnight(date) {
        "+02:00"
    } else {
        "+01:00"
    };
    format!("{}T00:00:00{offset}", date.format("%Y-%m-%d"))
}

/// Whether Paris is on summer time (UTC+2) at 00:00 local time on `date`.
///
/// EU rules: summer time from the last Sunday of March to the last Sunday of October
/// since 1996, of September from 1981 to 1995; no summer time before 1976. The few
/// irregular years 1976–1980 follow the 1981 rule here (off by a week at most, for
/// people born then: no student of the generated universities). Both changes happen
/// during the night after midnight, so midnight on the day of the spring change is still
/// winter time and midnight on the day of the autumn change is still summer time.
fn paris_summer_time_at_midnight(date: NaiveDate) -> bool {
    let year = date.year();
    if year < 1976 {
        return false;
    }
    let end_month = if year >= 1996 { 10 } else { 9 };
    match (last_sunday(year, 3), last_sunday(year, end_month)) {
        (Some(start), Some(end)) => start < date && date <= end,
        _ => false,
    }
}

/// The last Sunday of `month` in `year`.
fn last_sunday(year: i32, month: u32) -> Option<NaiveDate> {
    let first_of_next = if month == 12 {
        NaiveDate::from_ymd_opt(year + 1, 1, 1)?
    } else {
        NaiveDate::from_ymd_opt(year, month + 1, 1)?
    };
    let last = first_of_next.pred_opt()?;
    let back = last.weekday().num_days_from_sunday();
    last.checked_sub_days(Days::new(u64::from(back)))
        .filter(|d| d.weekday() == Weekday::Sun)
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
    fn offsets_follow_paris_summer_time() {
        assert_eq!(
            midnight_in_paris(date(2004, 2, 29)),
            "2004-02-29T00:00:00+01:00"
        );
        assert_eq!(
            midnight_in_paris(date(2004, 7, 14)),
            "2004-07-14T00:00:00+02:00"
        );
        // 2024: summer time from Sunday 31 March to Sunday 27 October.
        assert!(!paris_summer_time_at_midnight(date(2024, 3, 31)));
        assert!(paris_summer_time_at_midnight(date(2024, 4, 1)));
        assert!(paris_summer_time_at_midnight(date(2024, 10, 27)));
        assert!(!paris_summer_time_at_midnight(date(2024, 10, 28)));
        // Before 1996 summer time ended in September.
        assert!(!paris_summer_time_at_midnight(date(1990, 10, 15)));
        assert!(paris_summer_time_at_midnight(date(1990, 9, 30)));
        assert!(!paris_summer_time_at_midnight(date(1970, 7, 1)));
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
