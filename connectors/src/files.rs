//! Files of a source (canonical files, export drops): their content hash, the one
//! identity that says a file was already read whatever its name or time stamps, and
//! lines read with a bound on what is held of each.

use crate::connector::ConnectorError;
use sha2::{Digest, Sha256};
use std::path::Path;
use tokio::io::AsyncReadExt;

/// The SHA-256 of the file at `path`, in lower-case hex, read in 256 KiB blocks.
pub async fn sha256(path: &Path) -> Result<String, ConnectorError> {
    let failed =
        |e: std::io::Error| ConnectorError::failed(format!("reading {}", path.display()), e);
    let mut file = tokio::fs::File::open(path).await.map_err(failed)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; 256 * 1024];
    loop {
        let n = file.read(&mut buffer).await.map_err(failed)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// The longest record a file source holds by default (`max_record_bytes`): far above any
/// real record, far below what would strain memory.
pub const DEFAULT_MAX_RECORD_BYTES: usize = 1024 * 1024;

/// The smallest `max_record_bytes` accepted: below it, ordinary records would not fit.
pub const MIN_MAX_RECORD_BYTES: usize = 1024;

/// The serde default of a source's `max_record_bytes` setting.
pub fn default_max_record_bytes() -> usize {
    DEFAULT_MAX_RECORD_BYTES
}

/// Checks a configured `max_record_bytes`: the error says why it is refused.
pub fn check_max_record_bytes(max: usize) -> Result<usize, String> {
    if max < MIN_MAX_RECORD_BYTES {
        return Err(format!(
            "max_record_bytes = {max} is below {MIN_MAX_RECORD_BYTES}: no record fits"
        ));
    }
    Ok(max)
}

/// What [`read_line`] read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// The end of the input.
    End,
    /// A whole line, in the buffer.
    Read,
    /// A line longer than the limit, of this many bytes (its newline included): the
    /// buffer holds its start only.
    TooLong(u64),
}

/// Appends one line to `buffer` (its newline included), holding at most `max` bytes of it
/// (the newline aside): the rest of a longer line is read past, never held, so that
/// memory stays bounded whatever a file holds.
pub fn read_line(
    reader: &mut impl std::io::BufRead,
    buffer: &mut Vec<u8>,
    max: usize,
) -> std::io::Result<Line> {
    let mut length = 0u64;
    loop {
        let available = reader.fill_buf()?;
        if available.is_empty() {
            return Ok(match length {
                0 => Line::End,
                _ if length > max as u64 => Line::TooLong(length),
                _ => Line::Read,
            });
        }
        let (chunk, done) = match available.iter().position(|b| *b == b'\n') {
            Some(at) => (&available[..=at], true),
            None => (available, false),
        };
        let room = (max + 1).saturating_sub(buffer.len());
        buffer.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let taken = chunk.len();
        length += taken as u64;
        reader.consume(taken);
        if done {
            return Ok(match length - 1 > max as u64 {
                true => Line::TooLong(length),
                false => Line::Read,
            });
        }
    }
}

/// Bytes as lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_over_the_limit_is_read_past_without_being_held() {
        let text = b"12345\n123456\n1234567\n\n12345678";
        // A small buffer, so that lines span several fills.
        let mut reader = std::io::BufReader::with_capacity(3, &text[..]);
        let mut lengths = Vec::new();
        loop {
            let mut buffer = Vec::new();
            match read_line(&mut reader, &mut buffer, 6).unwrap() {
                Line::End => break,
                Line::Read => lengths.push(format!("{} read", buffer.len())),
                Line::TooLong(n) => {
                    assert!(buffer.len() <= 7, "held {} bytes", buffer.len());
                    lengths.push(format!("{n} too long"));
                }
            }
        }
        assert_eq!(
            lengths,
            ["6 read", "7 read", "8 too long", "1 read", "8 too long"]
        );
    }

    #[tokio::test]
    async fn the_hash_is_the_sha256_of_the_content() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.csv");
        std::fs::write(&path, b"abc").unwrap();
        assert_eq!(
            sha256(&path).await.unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
