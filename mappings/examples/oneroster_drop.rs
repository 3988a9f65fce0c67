//! Writes a generated university as a OneRoster 1.1 package, for measurements by hand:
//!
//! ```text
//! cargo run --release -p conpere-mappings --example oneroster_drop -- DIR STUDENTS [BIG_CELL_MB]
//! ```
//!
//! With `BIG_CELL_MB`, the first student's `familyName` in `users.csv` is that many MB
//! long: the drop then shows what a record over `max_record_bytes` costs (peak memory of
//! `conpere sync` on it against the same drop without it).

use conpere_synth::{SynthConfig, University};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: oneroster_drop DIR STUDENTS [BIG_CELL_MB]";
    let dir = PathBuf::from(args.next().ok_or(usage)?);
    let students: usize = args.next().ok_or(usage)?.parse()?;
    let big_cell_mb: Option<usize> = args.next().map(|mb| mb.parse()).transpose()?;
    std::fs::create_dir_all(&dir)?;
    let university = University::generate(SynthConfig::new(2024, students));
    let records: Vec<_> = university.records().collect();
    conpere_mappings::oneroster::write_drop(&dir, &records)?;
    if let Some(mb) = big_cell_mb {
        enlarge_first_family_name(&dir.join("users.csv"), mb * 1_000_000)?;
    }
    Ok(())
}

/// Replaces the `familyName` of the first student row of `users.csv` by `length` letters.
fn enlarge_first_family_name(path: &PathBuf, length: usize) -> std::io::Result<()> {
    let text = std::fs::read_to_string(path)?;
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let header: Vec<&str> = lines[0].split(',').collect();
    let column = header
        .iter()
        .position(|h| *h == "familyName")
        .expect("familyName");
    let row = (1..lines.len())
        .find(|i| lines[*i].contains(",student,"))
        .expect("a student row");
    let mut cells: Vec<String> = lines[row].split(',').map(str::to_string).collect();
    cells[column] = "x".repeat(length);
    lines[row] = cells.join(",");
    std::fs::write(path, lines.join("\r\n") + "\r\n")
}
