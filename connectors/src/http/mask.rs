//! URL paths as logs show them: segments that look like identifiers masked.

use super::Url;

/// The URL path for logs: no query string, and segments that look like identifiers
/// (six digits or more: student numbers, INE) masked but for their last two characters.
pub(super) fn log_path(url: &Url) -> String {
    url.path()
        .split('/')
        .map(mask_segment)
        .collect::<Vec<_>>()
        .join("/")
}

pub(super) fn mask_segment(segment: &str) -> String {
    let digits = segment.chars().filter(char::is_ascii_digit).count();
    if digits < 6 {
        return segment.to_string();
    }
    let chars: Vec<char> = segment.chars().collect();
    let kept = chars.len().saturating_sub(2);
    chars
        .iter()
        .enumerate()
        .map(|(i, c)| if i < kept { '*' } else { *c })
        .collect()
}
