//! Keyset pagination: lists are ordered by id, and a page's `next_cursor` is the last id
//! it holds, so the next page starts after it — a page never repeats nor skips a row
//! inserted meanwhile (an offset would).

use crate::error::ApiError;
use axum::http::StatusCode;
use serde_json::{json, Value};

/// A page is at most this long.
pub const MAX_PAGE: i64 = 200;

/// A page is this long unless asked otherwise.
pub const DEFAULT_PAGE: i64 = 50;

/// Where a page starts and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// The page holds ids after this one (0: from the start).
    pub after: i64,
    /// Its length.
    pub limit: i64,
}

impl PageRequest {
    /// From a request's `cursor` (a `next_cursor` this API gave) and `limit` (clamped to
    /// 1..=[`MAX_PAGE`]); a cursor that is not one of ours is 422.
    pub fn parse(cursor: Option<&str>, limit: Option<i64>) -> Result<PageRequest, ApiError> {
        let after = match cursor {
            None => 0,
            Some(cursor) => cursor.parse().map_err(|_| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    "cursor: not one this API gave",
                )
            })?,
        };
        let limit = limit.unwrap_or(DEFAULT_PAGE).clamp(1, MAX_PAGE);
        Ok(PageRequest { after, limit })
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
            .then(|| fetched.last().map(|item| item["id"].to_string()))
            .flatten();
        json!({ "items": fetched, "next_cursor": next })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_says_whether_more_follow() {
        let page = PageRequest::parse(Some("10"), Some(2)).unwrap();
        assert_eq!((page.after, page.fetch()), (10, 3));
        let rows = |ids: &[i64]| ids.iter().map(|id| json!({ "id": id })).collect();
        assert_eq!(
            page.answer(rows(&[11, 12, 13])),
            json!({ "items": [{"id": 11}, {"id": 12}], "next_cursor": "12" })
        );
        assert_eq!(page.answer(rows(&[11]))["next_cursor"], Value::Null);
        assert_eq!(
            PageRequest::parse(None, Some(10_000)).unwrap().limit,
            MAX_PAGE
        );
        assert_eq!(PageRequest::parse(Some("x"), None).unwrap_err().status, 422);
    }
}
