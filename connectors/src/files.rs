//! Files of a source (canonical files, export drops): their content hash, the one
//! identity that says a file was already read whatever its name or time stamps.

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

/// Bytes as lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

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
