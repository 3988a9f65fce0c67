//! Secrets handed to a source the way production ones are: in a file only its owner can
//! read, named by `password_file` (never written in a configuration). `conpere demo` and
//! the benchmarks give the simulators' fixed passwords this way.

use anyhow::Context;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Writes `secret` to `dir/name` (created or truncated, mode 0600; `dir` is created) and
/// returns the file's path.
pub fn write(dir: &Path, name: &str, secret: &str) -> anyhow::Result<PathBuf> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join(name);
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&path)
        .and_then(|mut file| file.write_all(secret.as_bytes()))
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The source `name` of `kind` for a simulated SIS: its `settings` (TOML lines), and
/// `password` in a file `<name>-password` under `dir`, named by `password_file`.
pub fn source_with_password_file(
    dir: &Path,
    name: &str,
    kind: &str,
    settings: &str,
    password: &str,
) -> anyhow::Result<conpere_connectors::SourceConfig> {
    let password_file = write(dir, &format!("{name}-password"), password)?;
    let toml = format!(
        "[sources.{name}]\nkind = {kind:?}\n{settings}password_file = {:?}\n",
        password_file.display().to_string()
    );
    Ok(conpere_connectors::SourceConfig::from_toml(name, &toml)?)
}
