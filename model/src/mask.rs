//! Masking of personal identifiers in logs and error messages.
//!
//! Student numbers and INE are personal data: logs (which travel to log servers and
//! tickets) show only enough of them to tell two apart, never the whole value.
//!
//! ```
//! use conpere_model::mask::Masked;
//! assert_eq!(Masked("21901234").to_string(), "******34");
//! assert_eq!(Masked("7").to_string(), "*");
//! ```

use std::fmt;

/// Displays an identifier with all but its last two characters replaced by `*`
/// (everything masked when it has fewer than four characters).
#[derive(Debug, Clone, Copy)]
pub struct Masked<'a>(pub &'a str);

impl fmt::Display for Masked<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let count = self.0.chars().count();
        let shown = if count >= 4 { 2 } else { 0 };
        for (i, c) in self.0.chars().enumerate() {
            if i + shown < count {
                f.write_str("*")?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}
