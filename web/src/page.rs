//! Keyset pagination: lists are ordered by id (or, for a directeur's list, specific
//! contracts first and then by id), and a page's `next_cursor` is the key of the last
//! row it holds (`123`, or `specific:123` / `standard:123`), so the next page starts
//! after it — a page never repeats nor skips a row inserted meanwhile (an offset would).

use crate::error::ApiError;
use axum::http::StatusCode;
use serde_json::{json, Value};

/// A page is at most this long.
pub const MAX_PAGE: i64 = 200;

/// A page is this long unless asked otherwise.
pub const DEFAULT_PAGE: i64 = 50;

/// The order of a page of contracts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PageOrder {
    /// By id: the API's order (new contracts come last, a cursor never skips one).
    #[default]
    Id,
    /// Specific contracts (with flags) first, then standard ones, each by id: a
    /// directeur's list, where the contracts that need a person's eye come first.
    SpecificFirst,
}

/// Where a page starts and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// The page holds ids after this one (0: from the start).
    pub after: i64,
    /// Its length.
    pub limit: i64,
    /// The list's order.
    pub order: PageOrder,
    /// In [`PageOrder::SpecificFirst`]: whether the page starts among the standard
    /// contracts (`None`: from the start).
    pub after_standard: Option<bool>,
}

impl PageRequest {
    /// From a request's `cursor` (a `next_cursor` this API gave for the same `order`)
    /// and `limit` (clamped to 1..=[`MAX_PAGE`]); a cursor that is not one of ours is 422.
    pub fn parse(
        cursor: Option<&str>,
        limit: Option<i64>,
        order: PageOrder,
    ) -> Result<PageRequest, ApiError> {
        let refused = || {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "cursor: not one this API gave for this order",
            )
        };
        let (after_standard, id) = match (order, cursor) {
            (_, None) => (None, "0"),
            (PageOrder::Id, Some(id)) => (None, id),
            (PageOrder::SpecificFirst, Some(cursor)) => match cursor.split_once(':') {
                Some(("specific", id)) => (Some(false), id),
                Some(("standard", id)) => (Some(true), id),
                _ => return Err(refused()),
            },
        };
        let after = id.parse().map_err(|_| refused())?;
        let limit = limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
        Ok(PageRequest {
            after,
            limit,
            order,
            after_standard,
        })
    }

    /// How many rows to fetch: one more than the page, to tell whether more follow.
    pub fn fetch(&self) -> i64 {
        self.limit + 1
    }

    /// `{items, next_cursor}` from the rows fetched (as JSON objects with an `id`).
    pub fn answer(&self, mut fetched: Vec<Value>) -> Value {
        let more = fetched.len() as i64 > self.limit;
        fetched.truncate(self.limit as usize);
        let next = more
            .then(|| fetched.last().map(|item| self.key(item)))
            .flatten();
        json!({ "items": fetched, "next_cursor": next })
    }
}

impl PageRequest {
    /// The cursor of a page ending with `item`.
    fn key(&self, item: &Value) -> String {
        match self.order {
            PageOrder::Id => item["id"].to_string(),
            PageOrder::SpecificFirst => {
                let standard = item["flags"].as_array().is_none_or(Vec::is_empty);
                let group = if standard { "standard" } else { "specific" };
                format!("{group}:{}", item["id"])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_says_whether_more_follow() {
        let page = PageRequest::parse(Some("10"), Some(2), PageOrder::Id).unwrap();
        assert_eq!((page.after, page.fetch()), (10, 3));
        let rows = |ids: &[i64]| ids.iter().map(|id| json!({ "id": id })).collect();
        assert_eq!(
            page.answer(rows(&[11, 12, 13])),
            json!({ "items": [{"id": 11}, {"id": 12}], "next_cursor": "12" })
        );
        assert_eq!(page.answer(rows(&[11]))["next_cursor"], Value::Null);
        assert_eq!(
            PageRequest::parse(None, Some(10_000), PageOrder::Id)
                .unwrap()
                .limit,
            MAX_PAGE
        );
        assert_eq!(
            (PageRequest::parse(Some("x"), None, PageOrder::Id).unwrap_err()).status,
            422
        );
    }

    #[test]
    fn specific_contracts_come_first_and_the_cursor_says_in_which_group_a_page_ends() {
        let order = PageOrder::SpecificFirst;
        let page = PageRequest::parse(None, Some(1), order).unwrap();
        let flagged = json!({ "id": 7, "flags": ["repeater"] });
        let plain = json!({ "id": 3, "flags": [] });
        let answer = page.answer(vec![flagged.clone(), plain.clone()]);
        assert_eq!(answer["next_cursor"], "specific:7");
        let next = PageRequest::parse(Some("specific:7"), Some(1), order).unwrap();
        assert_eq!((next.after_standard, next.after), (Some(false), 7));
        assert_eq!(
            next.answer(vec![plain, flagged])["next_cursor"],
            "standard:3"
        );
        for foreign in ["7", "other:7", "standard:x"] {
            assert!(PageRequest::parse(Some(foreign), None, order).is_err());
        }
        assert!(PageRequest::parse(Some("standard:3"), None, PageOrder::Id).is_err());
    }
}
