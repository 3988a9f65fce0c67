//! The embedded PostgreSQL server: when no `[database] url` is configured, conpere creates and
//! runs a private cluster with the machine's own PostgreSQL server binaries.
//!
//! Layout of the cluster directory (`<data_dir>/postgres` by default):
//!
//! * `data/`: the cluster itself (PGDATA), created by `initdb` on first use;
//! * `run/`: the unix socket directory: the server listens there only, never on TCP, so its
//!   port number (always 5432) cannot conflict with any other server;
//! * `postgresql.log`: the server log;
//! * `start.lock`: an exclusive `flock` serializing start and stop across processes;
//! * `users.lock`: every process using the server holds a *shared* `flock` on it, so the last one
//!   to leave can tell (an exclusive `try_lock` succeeds) and stop the server.
//!
//! Several conpere processes (a daemon, a CLI command, test binaries) can therefore share one
//! cluster: the first starts it, the others reuse it, the last one stops it (when asked to).
//! A server left running by a killed process is simply reused by the next one.
//!
//! PostgreSQL refuses to run as root: when conpere runs as root, `initdb`, `pg_ctl` and the
//! server run as the `postgres` system account, which then owns the cluster directory.

#![warn(missing_docs)]

use std::ffi::{CString, OsStr, OsString};
use std::fmt::Write as _;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nix::unistd::{Gid, Uid, User};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls};

/// The port the server listens on. Only the socket file name depends on it, and the socket
/// directory is private to the cluster, so a fixed value never conflicts.
const PORT: u16 = 5432;
/// The superuser `initdb` creates; trust authentication on the private socket needs no password.
const SUPERUSER: &str = "conpere";
/// The system account the server runs as when conpere runs as root.
const SERVICE_ACCOUNT: &str = "postgres";
/// The server binaries a directory must hold to run a cluster.
const SERVER_TOOLS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];
/// How many lines of a command's output or of the server log an error shows.
const TAIL_LINES: usize = 20;
/// `sizeof(sun_path) - 1` on Linux: the longest unix socket path PostgreSQL can listen on.
const MAX_SOCKET_PATH: usize = 107;
/// How long a server found running may take to accept connections (it may still be starting).
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// The settings file conpere rewrites at each start, included from `postgresql.conf`.
const SETTINGS_FILE: &str = "conpere.conf";
/// Environment variables that would make the PostgreSQL tools act on another cluster or server.
const PG_ENV: [&str; 6] = [
    "PGDATA",
    "PGHOST",
    "PGPORT",
    "PGUSER",
    "PGDATABASE",
    "PGOPTIONS",
];

/// What went wrong while locating, starting, using or stopping the embedded server.
///
/// Every message says what failed and what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    /// No directory holding `initdb`, `pg_ctl` and `postgres` was found.
    #[error("{}", binaries_not_found_message(.searched, *.explicit))]
    BinariesNotFound {
        /// Where conpere looked, one description per place.
        searched: Vec<String>,
        /// Whether the search was limited to an explicitly configured directory.
        explicit: bool,
    },
    /// conpere runs as root, and the `postgres` account the server must run as does not exist.
    #[error(
        "conpere runs as root, and PostgreSQL refuses to run as root: the embedded server runs as \
         the `{SERVICE_ACCOUNT}` system account, which does not exist on this machine. Install the \
         PostgreSQL server package, which creates it (Debian/Ubuntu: `apt-get install postgresql`; \
         RHEL/Fedora: `dnf install postgresql-server`), or create it (`useradd --system \
         --home-dir /var/lib/postgresql --shell /bin/bash {SERVICE_ACCOUNT}`), or run conpere as \
         an ordinary user, or use an existing server: `[database] url = \"...\"` in conpere.toml \
         or CONPERE_DATABASE__URL"
    )]
    NoServiceAccount,
    /// conpere runs as root and the `postgres` account cannot reach the cluster directory.
    #[error(
        "the embedded PostgreSQL runs as `{account}`, which cannot enter {} (mode {mode:04o}, \
         owner uid {owner}) on the way to {}: choose a data directory it can reach, such as \
         /var/lib/conpere (CONPERE_DATA_DIR or [database] data_dir), or use an existing server: \
         `[database] url = \"...\"` in conpere.toml or CONPERE_DATABASE__URL",
        .blocked.display(),
        .dir.display()
    )]
    NotTraversable {
        /// The system account the server runs as.
        account: String,
        /// The cluster directory.
        dir: PathBuf,
        /// The ancestor directory the account cannot traverse.
        blocked: PathBuf,
        /// Its permission bits.
        mode: u32,
        /// Its owner.
        owner: u32,
    },
    /// The unix socket path would exceed what the operating system accepts.
    #[error(
        "the embedded PostgreSQL socket path {} is {len} bytes long, more than the {MAX_SOCKET_PATH} \
         a unix socket allows: choose a shorter data directory (CONPERE_DATA_DIR or \
         [database] data_dir)",
        .path.display()
    )]
    SocketPathTooLong {
        /// The socket path.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
    /// A file system operation on the cluster directory failed.
    #[error("could not {action} {}: {error}; check the permissions of the embedded PostgreSQL directory and the free space of its file system", .path.display())]
    Io {
        /// What conpere was doing, e.g. "create directory".
        action: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        error: io::Error,
    },
    /// A PostgreSQL tool could not be executed at all.
    #[error("could not run `{command}`: {error}; check that the PostgreSQL binaries are intact and executable ([database] pg_bin_dir names their directory)")]
    Spawn {
        /// The command line.
        command: String,
        /// The underlying error.
        error: io::Error,
    },
    /// A PostgreSQL tool ran and failed.
    #[error("`{command}` failed ({status}):\n{output}\n{hint}")]
    CommandFailed {
        /// The command line.
        command: String,
        /// How it ended.
        status: ExitStatus,
        /// The last lines of its error output and, for the server, of its log.
        output: String,
        /// What to do about it.
        hint: String,
    },
    /// The server was started or found running but does not accept connections.
    #[error(
        "the embedded PostgreSQL in {} does not accept connections on {}: {error}\n\
         last lines of {}:\n{log_tail}\n\
         if no PostgreSQL server runs for this directory any more, a stale data/postmaster.pid \
         may name a process that reused its pid: stop conpere, remove that file and retry",
        .dir.display(),
        .socket_dir.display(),
        .log.display()
    )]
    NotReady {
        /// The cluster directory.
        dir: PathBuf,
        /// The socket directory connections were attempted on.
        socket_dir: PathBuf,
        /// The server log.
        log: PathBuf,
        /// Its last lines.
        log_tail: String,
        /// The last connection error.
        error: String,
    },
    /// A statement on the embedded server failed.
    #[error("could not {action} on the embedded PostgreSQL ({}): {error}", .socket_dir.display())]
    Sql {
        /// What conpere was doing, e.g. "create database \"x\"".
        action: String,
        /// The server's socket directory.
        socket_dir: PathBuf,
        /// The server's error, with its SQLSTATE.
        error: String,
        /// The SQLSTATE, when the server reported one.
        code: Option<SqlState>,
    },
    /// The background task doing the blocking work panicked or was cancelled.
    #[error("the embedded PostgreSQL {what} task did not finish: {error}")]
    Task {
        /// Which task.
        what: &'static str,
        /// Why it did not finish.
        error: tokio::task::JoinError,
    },
}

type Result<T, E = EmbeddedError> = std::result::Result<T, E>;

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> EmbeddedError {
    let path = path.to_path_buf();
    move |error| EmbeddedError::Io {
        action,
        path,
        error,
    }
}

fn binaries_not_found_message(searched: &[String], explicit: bool) -> String {
    let what = "PostgreSQL server binaries (initdb, pg_ctl, postgres)";
    let mut msg = match explicit {
        true => format!("the {what} are not where [database] pg_bin_dir says."),
        false => format!("no {what} found."),
    };
    let _ = write!(
        msg,
        " Install them:\n\n    {}\n\nLooked in:\n",
        server_install_command()
    );
    for place in searched {
        let _ = writeln!(msg, "  {place}");
    }
    msg.push_str(
        "Without [database] url, conpere runs a private PostgreSQL server with the machine's \
         PostgreSQL binaries. If they are installed elsewhere, name their directory with \
         `[database] pg_bin_dir = \"/path/to/bin\"` in conpere.toml (or \
         CONPERE_DATABASE__PG_BIN_DIR); or use an existing PostgreSQL server: `[database] url = \
         \"postgres://user@host/db\"` in conpere.toml, or the CONPERE_DATABASE__URL environment \
         variable.",
    );
    msg
}

/// The one command that installs the PostgreSQL server on this machine's distribution.
fn server_install_command() -> &'static str {
    if Path::new("/etc/debian_version").exists() {
        "apt-get install postgresql"
    } else if Path::new("/etc/redhat-release").exists() {
        "dnf install postgresql-server"
    } else if Path::new("/etc/alpine-release").exists() {
        "apk add postgresql"
    } else {
        "apt-get install postgresql   (Debian/Ubuntu; RHEL/Fedora: dnf install postgresql-server)"
    }
}

/// A directory holding the PostgreSQL server binaries `initdb`, `pg_ctl` and `postgres`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgBinaries {
    dir: PathBuf,
}

impl PgBinaries {
    /// Finds the server binaries.
    ///
    /// An `explicit` directory (`[database] pg_bin_dir`) is the only place looked at when given:
    /// silently running other binaries than the configured ones would surprise. Otherwise, in
    /// order: each directory of `PATH`, `pg_config --bindir`, `/usr/lib/postgresql/*/bin`
    /// (Debian; highest version first), `/usr/local/pgsql/bin` (source builds) and
    /// `/usr/pgsql-*/bin` (PGDG packages on RHEL). The error says where it looked and what to do.
    pub fn locate(explicit: Option<&Path>) -> Result<PgBinaries, EmbeddedError> {
        match explicit {
            Some(dir) => Self::in_dir(dir).ok_or_else(|| EmbeddedError::BinariesNotFound {
                searched: vec![format!(
                    "{} (missing: {})",
                    dir.display(),
                    missing_tools(dir).join(", ")
                )],
                explicit: true,
            }),
            None => Self::search(),
        }
    }

    /// The search of [`locate`](PgBinaries::locate) without an explicit directory.
    fn search() -> Result<PgBinaries, EmbeddedError> {
        let mut searched = Vec::new();
        let path_dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).collect())
            .unwrap_or_default();
        searched.push(format!(
            "each directory of PATH ({})",
            join_paths(&path_dirs)
        ));
        if let Some(found) = first_holding_tools(path_dirs) {
            return Ok(found);
        }
        // Run only when needed: it is a process.
        match pg_config_bindir() {
            Some(dir) => {
                searched.push(format!("{} (from `pg_config --bindir`)", dir.display()));
                if let Some(found) = Self::in_dir(&dir) {
                    return Ok(found);
                }
            }
            None => searched.push("`pg_config --bindir` (no pg_config on PATH)".into()),
        }
        let usual = versioned_dirs(Path::new("/usr/lib/postgresql"), "", "bin")
            .into_iter()
            .chain([PathBuf::from("/usr/local/pgsql/bin")])
            .chain(versioned_dirs(Path::new("/usr"), "pgsql-", "bin"));
        searched.extend(
            [
                "/usr/lib/postgresql/*/bin",
                "/usr/local/pgsql/bin",
                "/usr/pgsql-*/bin",
            ]
            .map(String::from),
        );
        first_holding_tools(usual).ok_or(EmbeddedError::BinariesNotFound {
            searched,
            explicit: false,
        })
    }

    /// The directory holding the binaries.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of one tool of the directory, e.g. `pg_ctl`.
    pub fn tool(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn in_dir(dir: &Path) -> Option<PgBinaries> {
        missing_tools(dir).is_empty().then(|| PgBinaries {
            dir: dir.to_path_buf(),
        })
    }
}

fn join_paths(dirs: &[PathBuf]) -> String {
    let shown: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    shown.join(":")
}

fn missing_tools(dir: &Path) -> Vec<&'static str> {
    SERVER_TOOLS
        .into_iter()
        .filter(|tool| !is_executable(&dir.join(tool)))
        .collect()
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
}

fn first_holding_tools(dirs: impl IntoIterator<Item = PathBuf>) -> Option<PgBinaries> {
    dirs.into_iter().find_map(|dir| PgBinaries::in_dir(&dir))
}

/// Asks `pg_config` (often installed with the client library even where the server binaries are
/// not on PATH) where the binaries are.
fn pg_config_bindir() -> Option<PathBuf> {
    let out = Command::new("pg_config")
        .arg("--bindir")
        .stdin(Stdio::null())
        .output()
        .ok()?;
    let dir = String::from_utf8(out.stdout).ok()?;
    let dir = dir.trim();
    (out.status.success() && !dir.is_empty()).then(|| PathBuf::from(dir))
}

/// `<parent>/<prefix><version>/<sub>` for every version directory, highest version first.
fn versioned_dirs(parent: &Path, prefix: &str, sub: &str) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(parent) else {
        return Vec::new();
    };
    let mut found: Vec<(Vec<u32>, PathBuf)> = entries
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let name = entry.file_name().into_string().ok()?;
            let version = name.strip_prefix(prefix)?;
            let key = version
                .split('.')
                .map(|n| n.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            Some((key, entry.path().join(sub)))
        })
        .collect();
    found.sort_by(|a, b| b.0.cmp(&a.0));
    found.into_iter().map(|(_, dir)| dir).collect()
}

/// How to start (or join) the embedded server.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// The cluster directory, e.g. `<data_dir>/postgres` (see [`default_data_dir`]).
    pub dir: PathBuf,
    /// The directory of the PostgreSQL binaries (`[database] pg_bin_dir`); searched when `None`
    /// (see [`PgBinaries::locate`]).
    pub bin_dir: Option<PathBuf>,
    /// Stop the server when the last process using it stops using it. When `false` the server
    /// keeps running for the next conpere process, which starts faster.
    pub stop_on_exit: bool,
    /// For tests only: `fsync`, `synchronous_commit` and `full_page_writes` off and `initdb
    /// --no-sync`. Much faster; a machine crash can corrupt the cluster.
    pub fast_unsafe: bool,
}

impl EmbeddedOptions {
    /// Options for the cluster in `dir`: binaries searched, stopped on exit, durable.
    pub fn new(dir: impl Into<PathBuf>) -> EmbeddedOptions {
        EmbeddedOptions {
            dir: dir.into(),
            bin_dir: None,
            stop_on_exit: true,
            fast_unsafe: false,
        }
    }
}

/// The default conpere data directory (the embedded cluster lives in its `postgres`
/// subdirectory): `$CONPERE_DATA_DIR` if set; else `/var/lib/conpere` for root; else
/// `$XDG_DATA_HOME/conpere` or `$HOME/.local/share/conpere`; `./.conpere` as a last resort when
/// not even `HOME` is set.
pub fn default_data_dir() -> PathBuf {
    data_dir_from(|key| std::env::var_os(key), Uid::effective().is_root())
}

fn data_dir_from(env: impl Fn(&str) -> Option<OsString>, root: bool) -> PathBuf {
    // Empty values count as unset, as shells make `VAR=` easy to leave behind.
    let var = |key: &str| env(key).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = var("CONPERE_DATA_DIR") {
        return dir;
    }
    if root {
        return PathBuf::from("/var/lib/conpere");
    }
    // The XDG spec says relative values are invalid and must be ignored.
    if let Some(xdg) = var("XDG_DATA_HOME").filter(|d| d.is_absolute()) {
        return xdg.join("conpere");
    }
    match var("HOME") {
        Some(home) => home.join(".local/share/conpere"),
        None => PathBuf::from(".conpere"),
    }
}

/// The system account the PostgreSQL tools run as when conpere runs as root.
#[derive(Debug, Clone)]
struct Account {
    name: String,
    uid: Uid,
    gid: Gid,
    groups: Vec<Gid>,
    home: PathBuf,
}

impl Account {
    /// `None` when conpere does not run as root: the tools then run as conpere's own user.
    fn for_current_user() -> Result<Option<Account>> {
        if !Uid::effective().is_root() {
            return Ok(None);
        }
        let user = User::from_name(SERVICE_ACCOUNT)
            .map_err(|e| EmbeddedError::Io {
                action: "look up the system account",
                path: PathBuf::from(SERVICE_ACCOUNT),
                error: e.into(),
            })?
            .ok_or(EmbeddedError::NoServiceAccount)?;
        // Supplementary groups matter for directory access; unknown ones only make the
        // traversal check stricter.
        let groups = CString::new(user.name.clone())
            .ok()
            .and_then(|name| nix::unistd::getgrouplist(&name, user.gid).ok())
            .unwrap_or_else(|| vec![user.gid]);
        Ok(Some(Account {
            name: user.name,
            uid: user.uid,
            gid: user.gid,
            groups,
            home: user.dir,
        }))
    }

    /// Whether the account may enter (search) a directory, by the classic owner/group/other rule.
    fn can_traverse(&self, meta: &fs::Metadata) -> bool {
        let mode = meta.mode();
        if meta.uid() == self.uid.as_raw() {
            mode & 0o100 != 0
        } else if self.groups.iter().any(|g| g.as_raw() == meta.gid()) {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        }
    }

    /// Fails with a teaching message unless every existing ancestor of `dir` is traversable
    /// (those still to be created will be, unless the umask says otherwise: checked again once
    /// they exist).
    fn check_reachable(&self, dir: &Path) -> Result<()> {
        for ancestor in dir.ancestors().skip(1) {
            let meta = match fs::metadata(ancestor) {
                Ok(meta) => meta,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error("inspect", ancestor)(e)),
            };
            if !self.can_traverse(&meta) {
                return Err(EmbeddedError::NotTraversable {
                    account: self.name.clone(),
                    dir: dir.to_path_buf(),
                    blocked: ancestor.to_path_buf(),
                    mode: meta.mode() & 0o7777,
                    owner: meta.uid(),
                });
            }
        }
        Ok(())
    }

    fn chown(&self, path: &Path) -> Result<()> {
        std::os::unix::fs::chown(path, Some(self.uid.as_raw()), Some(self.gid.as_raw()))
            .map_err(io_error("change the owner of", path))
    }
}

/// One cluster directory and how to run the PostgreSQL tools on it.
#[derive(Debug, Clone)]
struct Cluster {
    /// Absolute, so that the socket directory written into the settings is absolute too.
    dir: PathBuf,
    bins: PgBinaries,
    account: Option<Account>,
}

impl Cluster {
    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn run_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    fn log_file(&self) -> PathBuf {
        self.dir.join("postgresql.log")
    }

    /// Opens (creating it if needed) one of the lock files of the cluster directory.
    fn lock_file(&self, name: &str) -> Result<File> {
        let path = self.dir.join(name);
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error("open lock file", &path))
    }

    /// Takes the exclusive start/stop lock; it is released when the returned file is dropped.
    fn lock_start(&self) -> Result<File> {
        let file = self.lock_file("start.lock")?;
        file.lock()
            .map_err(io_error("lock", &self.dir.join("start.lock")))?;
        Ok(file)
    }

    /// Creates the layout and, as root, hands it to the service account.
    fn prepare_layout(&self) -> Result<()> {
        let run = self.run_dir();
        fs::create_dir_all(&run).map_err(io_error("create directory", &run))?;
        // Private: only the server's user (and root) may reach the socket.
        set_mode(&run, 0o700)?;
        let Some(account) = &self.account else {
            return Ok(());
        };
        account.check_reachable(&self.dir)?;
        account.chown(&self.dir)?;
        account.chown(&run)?;
        let data = self.data();
        if data.exists() {
            account.chown(&data)?;
            // PostgreSQL refuses a data directory others can read.
            set_mode(&data, 0o700)?;
        }
        let log = self.log_file();
        if log.exists() {
            account.chown(&log)?;
        }
        Ok(())
    }

    /// A command running `tool` on this cluster: as the service account when root, with no
    /// environment pointing at another cluster or server.
    fn command(&self, tool: &str, args: &[&OsStr]) -> (Command, String) {
        let mut cmd = Command::new(self.bins.tool(tool));
        cmd.args(args).current_dir(&self.dir).stdin(Stdio::null());
        for var in PG_ENV {
            cmd.env_remove(var);
        }
        let mut shown = std::iter::once(OsStr::new(tool))
            .chain(args.iter().copied())
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(account) = &self.account {
            // std drops root's supplementary groups when it switches user.
            cmd.uid(account.uid.as_raw())
                .gid(account.gid.as_raw())
                .env("HOME", &account.home)
                .env("USER", &account.name)
                .env("LOGNAME", &account.name);
            let _ = write!(shown, " (as {})", account.name);
        }
        (cmd, shown)
    }

    /// Runs a tool to completion, capturing its output.
    fn output(&self, tool: &str, args: &[&OsStr]) -> Result<(Output, String)> {
        let (mut cmd, shown) = self.command(tool, args);
        tracing::debug!(command = %shown, "running");
        let out = cmd.output().map_err(|error| EmbeddedError::Spawn {
            command: shown.clone(),
            error,
        })?;
        Ok((out, shown))
    }

    /// Runs a tool that must succeed; on failure the error shows its output (and the server log
    /// when `with_log`) and `hint`.
    fn run(&self, tool: &str, args: &[&OsStr], with_log: bool, hint: &str) -> Result<()> {
        let (out, command) = self.output(tool, args)?;
        if out.status.success() {
            return Ok(());
        }
        let mut output = tail(&String::from_utf8_lossy(&out.stderr), TAIL_LINES);
        if output.trim().is_empty() {
            output = tail(&String::from_utf8_lossy(&out.stdout), TAIL_LINES);
        }
        if with_log {
            let log = self.log_file();
            let _ = write!(
                output,
                "\nlast lines of {}:\n{}",
                log.display(),
                tail_of_file(&log)
            );
        }
        Err(EmbeddedError::CommandFailed {
            command,
            status: out.status,
            output,
            hint: hint.to_string(),
        })
    }

    /// `pg_ctl status`: 0 means a live postmaster owns the data directory, 3 none, 4 no cluster.
    fn is_running(&self) -> Result<bool> {
        let data = self.data();
        let (out, command) =
            self.output("pg_ctl", &["status".as_ref(), "-D".as_ref(), data.as_ref()])?;
        match out.status.code() {
            Some(0) => Ok(true),
            Some(3) | Some(4) => Ok(false),
            _ => Err(EmbeddedError::CommandFailed {
                command,
                status: out.status,
                output: tail(&String::from_utf8_lossy(&out.stderr), TAIL_LINES),
                hint: "check that the PostgreSQL binaries match the cluster's version (data/PG_VERSION)".into(),
            }),
        }
    }

    /// Whether `initdb` completed: it writes `PG_VERSION` last.
    fn has_cluster(&self) -> bool {
        self.data().join("PG_VERSION").exists()
    }

    /// Creates the cluster unless one exists; a directory left by an interrupted `initdb` is
    /// cleared first.
    fn init_if_needed(&self, fast_unsafe: bool) -> Result<()> {
        if self.has_cluster() {
            return Ok(());
        }
        let data = self.data();
        if data.exists() {
            tracing::info!(data = %data.display(), "clearing the leftovers of an interrupted initdb");
            fs::remove_dir_all(&data).map_err(io_error("remove", &data))?;
        }
        tracing::info!(data = %data.display(), bin_dir = %self.bins.dir().display(), "initdb: creating the embedded PostgreSQL cluster");
        // C locale on purpose: byte-wise text order, independent of the locales installed.
        let mut args: Vec<&OsStr> = vec![
            "-D".as_ref(),
            data.as_ref(),
            "-U".as_ref(),
            SUPERUSER.as_ref(),
            "--auth=trust".as_ref(),
            "-E".as_ref(),
            "UTF8".as_ref(),
            "--locale=C".as_ref(),
        ];
        if fast_unsafe {
            args.push("--no-sync".as_ref());
        }
        self.run(
            "initdb",
            &args,
            false,
            "check the free space and permissions of the data directory; a partial data/ is \
             cleared at the next start",
        )
    }

    /// Writes the listening and durability settings into `data/conpere.conf`, included from
    /// `postgresql.conf`. Rewritten at each start, so a moved directory or changed options
    /// take effect.
    fn write_settings(&self, fast_unsafe: bool) -> Result<()> {
        let data = self.data();
        let settings = data.join(SETTINGS_FILE);
        fs::write(&settings, settings_text(&self.run_dir(), fast_unsafe))
            .map_err(io_error("write", &settings))?;
        if let Some(account) = &self.account {
            account.chown(&settings)?;
        }
        let conf = data.join("postgresql.conf");
        let text = fs::read_to_string(&conf).map_err(io_error("read", &conf))?;
        let include = format!("include_if_exists = '{SETTINGS_FILE}'");
        if !text.lines().any(|line| line.trim() == include) {
            // Appended: the last value of a setting wins, so these override the defaults above.
            let mut file = OpenOptions::new()
                .append(true)
                .open(&conf)
                .map_err(io_error("open", &conf))?;
            io::Write::write_all(
                &mut file,
                format!("\n# Settings of the conpere embedded server.\n{include}\n").as_bytes(),
            )
            .map_err(io_error("append to", &conf))?;
        }
        Ok(())
    }

    /// `pg_ctl start -w`: returns once the server accepts connections. A stale postmaster.pid
    /// (left by a crash or a reboot) does not block it: PostgreSQL checks whether the process
    /// it names is alive.
    fn start_server(&self) -> Result<()> {
        let data = self.data();
        let log = self.log_file();
        tracing::info!(dir = %self.dir.display(), "starting the embedded PostgreSQL");
        self.run(
            "pg_ctl",
            &[
                "start".as_ref(),
                "-w".as_ref(),
                "-s".as_ref(),
                "-D".as_ref(),
                data.as_ref(),
                "-l".as_ref(),
                log.as_ref(),
            ],
            true,
            "the server log above says why: a bad setting in data/postgresql.conf or \
             data/postgresql.auto.conf, a full disk, a damaged data directory (move it away to \
             start afresh: conpere then creates an empty cluster)",
        )
    }

    /// `pg_ctl stop -m fast`: disconnects the sessions, checkpoints and exits.
    fn stop_server(&self) -> Result<()> {
        if !self.is_running()? {
            return Ok(());
        }
        tracing::info!(dir = %self.dir.display(), "stopping the embedded PostgreSQL (last user)");
        let data = self.data();
        self.run(
            "pg_ctl",
            &[
                "stop".as_ref(),
                "-w".as_ref(),
                "-s".as_ref(),
                "-D".as_ref(),
                data.as_ref(),
                "-m".as_ref(),
                "fast".as_ref(),
            ],
            true,
            "the server may still be running: stop it with `pg_ctl stop -D <dir>/data -m fast`",
        )
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(io_error("change the mode of", path))
}

/// The contents of `conpere.conf`.
fn settings_text(run_dir: &Path, fast_unsafe: bool) -> String {
    // unix_socket_directories is a comma-separated list whose elements may be double-quoted:
    // quoting keeps a path with a comma or spaces whole.
    let socket_dir = format!("\"{}\"", run_dir.to_string_lossy().replace('"', "\"\""));
    let mut text = format!(
        "# Written by conpere at each start of its embedded server: edits are overwritten.\n\
         # Unix socket only, in a private directory: the port can never conflict.\n\
         listen_addresses = ''\n\
         unix_socket_directories = {}\n\
         port = {PORT}\n",
        conf_string(&socket_dir)
    );
    text.push_str(&format!(
        "# Sized for bulk loads: a night's sync reads and writes its tables whole (the\n\
         # default 128MB of buffers re-read them from the system; a 1M-row load writes more\n\
         # than the default 1GB of WAL between checkpoints).\n\
         shared_buffers = '{}MB'\nmax_wal_size = '4GB'\n\
         # No standby reads this server's WAL: a first load into empty tables (truncated in\n\
         # its transaction) writes them without WAL, synced at its commit. For a standby or\n\
         # base backups: ALTER SYSTEM SET wal_level = replica (read after this file).\n\
         wal_level = minimal\nmax_wal_senders = 0\n",
        shared_buffers_mib(memory_mib())
    ));
    if fast_unsafe {
        text.push_str(
            "# Tests only: durability traded for speed.\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n",
        );
    }
    text
}

/// PostgreSQL's advice: a quarter of the memory, here between the default 128 MiB and
/// 1 GiB (the server shares its machine with conpere, and often with more).
fn shared_buffers_mib(memory_mib: u64) -> u64 {
    (memory_mib / 4).clamp(128, 1024)
}

/// The machine's memory in MiB (`MemTotal`), or 0 when it cannot be told.
fn memory_mib() -> u64 {
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    (meminfo.lines())
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib / 1024)
}

/// A postgresql.conf string literal.
fn conf_string(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "''"))
}

/// The last `n` lines of a text.
fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// The last lines of a file, reading only its end (the server log only grows).
fn tail_of_file(path: &Path) -> String {
    let read_end = || -> io::Result<String> {
        let mut file = File::open(path)?;
        let len = file.metadata()?.len();
        file.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)))?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    };
    match read_end() {
        Ok(text) => tail(&text, TAIL_LINES),
        Err(e) => format!("(could not read {}: {e})", path.display()),
    }
}

/// A key=value connection string value, quoted when it needs to be.
fn conninfo_value(value: &str) -> String {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c.is_whitespace() || c == '\'' || c == '\\');
    if plain {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// A SQL identifier, quoted.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A tokio_postgres error with the server's message and SQLSTATE when there is one (its
/// `Display` alone says only "db error").
fn describe_pg_error(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        return format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
    }
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let _ = write!(text, ": {cause}");
        source = cause.source();
    }
    text
}

/// This process's registration as a user of the server: a shared lock on `users.lock`.
#[derive(Debug)]
struct Registration {
    users_lock: File,
    stop_on_exit: bool,
}

impl Registration {
    /// Unregisters; then, if asked to, stops the server unless another process still uses it.
    fn release(self, cluster: &Cluster) -> Result<()> {
        // Unlock explicitly rather than by closing: a child forked by another thread at
        // this moment holds a copy of the descriptor until it execs, and a close would
        // leave the shared lock alive through that copy.
        let _ = self.users_lock.unlock();
        drop(self.users_lock);
        if !self.stop_on_exit {
            return Ok(());
        }
        // Under the start lock no process can be between "found it running" and "registered".
        let _start = cluster.lock_start()?;
        let users = cluster.lock_file("users.lock")?;
        match users.try_lock() {
            Ok(()) => cluster.stop_server(),
            Err(TryLockError::WouldBlock) => {
                tracing::debug!(dir = %cluster.dir.display(), "embedded PostgreSQL still used by another process: left running");
                Ok(())
            }
            Err(TryLockError::Error(error)) => Err(EmbeddedError::Io {
                action: "lock",
                path: cluster.dir.join("users.lock"),
                error,
            }),
        }
    }
}

/// A running embedded PostgreSQL server, started by this process or reused.
///
/// The value registers this process as a user of the server for its whole life. Call
/// [`stop`](EmbeddedServer::stop) when done; dropping it does the same, synchronously and
/// best-effort (errors are logged).
#[derive(Debug)]
pub struct EmbeddedServer {
    cluster: Cluster,
    /// `<dir>/run`, kept to hand out borrows.
    socket_dir: PathBuf,
    reused: bool,
    /// `None` once stopped.
    registration: Option<Registration>,
}

impl EmbeddedServer {
    /// Starts the server of `opts.dir`, creating the cluster on first use, or joins the one
    /// already running for it; returns once it accepts connections.
    pub async fn start(opts: EmbeddedOptions) -> Result<EmbeddedServer, EmbeddedError> {
        let mut server = tokio::task::spawn_blocking(move || Self::start_blocking(opts))
            .await
            .map_err(|error| EmbeddedError::Task {
                what: "start",
                error,
            })??;
        if let Err(error) = server.wait_ready().await {
            // Never let the drop run `pg_ctl stop` here: the pid file may name an unrelated
            // process that reused a dead server's pid, and pg_ctl would signal it.
            if let Some(registration) = server.registration.as_mut() {
                registration.stop_on_exit = false;
            }
            return Err(error);
        }
        Ok(server)
    }

    fn start_blocking(opts: EmbeddedOptions) -> Result<EmbeddedServer> {
        let bins = PgBinaries::locate(opts.bin_dir.as_deref())?;
        let account = Account::for_current_user()?;
        if let Some(account) = &account {
            // Before creating anything, so a refused directory leaves no debris behind.
            let dir = std::path::absolute(&opts.dir).map_err(io_error("resolve", &opts.dir))?;
            account.check_reachable(&dir)?;
        }
        fs::create_dir_all(&opts.dir).map_err(io_error("create directory", &opts.dir))?;
        let dir = fs::canonicalize(&opts.dir).map_err(io_error("resolve", &opts.dir))?;
        check_socket_path(&dir.join("run"))?;
        let cluster = Cluster { dir, bins, account };
        let _start = cluster.lock_start()?;
        cluster.prepare_layout()?;
        // No PG_VERSION, no cluster: and `pg_ctl status` would choke on a half-written one.
        let reused = cluster.has_cluster() && cluster.is_running()?;
        if reused {
            tracing::info!(dir = %cluster.dir.display(), "reusing the running embedded PostgreSQL");
        } else {
            cluster.init_if_needed(opts.fast_unsafe)?;
            cluster.write_settings(opts.fast_unsafe)?;
            cluster.start_server()?;
        }
        // Registered before the start lock is released, so no stopper can miss us.
        let users_lock = cluster.lock_file("users.lock")?;
        users_lock
            .lock_shared()
            .map_err(io_error("lock", &cluster.dir.join("users.lock")))?;
        Ok(EmbeddedServer {
            socket_dir: cluster.run_dir(),
            cluster,
            reused,
            registration: Some(Registration {
                users_lock,
                stop_on_exit: opts.stop_on_exit,
            }),
        })
    }

    /// Waits until the server accepts connections: `pg_ctl start -w` already did for a server
    /// we started, but one found running may still be starting, or be a stale pid file.
    async fn wait_ready(&self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            match self.connect("postgres").await {
                Ok(_) => return Ok(()),
                Err(error) if Instant::now() >= deadline => {
                    let log = self.cluster.log_file();
                    return Err(EmbeddedError::NotReady {
                        dir: self.cluster.dir.clone(),
                        socket_dir: self.cluster.run_dir(),
                        log_tail: tail_of_file(&log),
                        log,
                        error: describe_pg_error(&error),
                    });
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Connects to a database, driving the connection on a spawned task.
    async fn connect(&self, dbname: &str) -> Result<Client, tokio_postgres::Error> {
        let (client, connection) = self.config(dbname).connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(error = %describe_pg_error(&error), "embedded PostgreSQL connection ended");
            }
        });
        Ok(client)
    }

    fn sql_error(&self, action: String) -> impl FnOnce(tokio_postgres::Error) -> EmbeddedError {
        let socket_dir = self.cluster.run_dir();
        move |error| EmbeddedError::Sql {
            action,
            socket_dir,
            error: describe_pg_error(&error),
            code: error.code().cloned(),
        }
    }

    /// Creates database `name` unless it exists. Safe against a concurrent creator.
    pub async fn ensure_database(&self, name: &str) -> Result<(), EmbeddedError> {
        let action = format!("create database {}", quote_ident(name));
        let client = self
            .connect("postgres")
            .await
            .map_err(self.sql_error(action.clone()))?;
        let exists = client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await
            .map_err(self.sql_error(action.clone()))?;
        if exists.is_some() {
            return Ok(());
        }
        match client
            .batch_execute(&format!("CREATE DATABASE {}", quote_ident(name)))
            .await
        {
            Ok(()) => {
                tracing::info!(
                    database = name,
                    "created database on the embedded PostgreSQL"
                );
                Ok(())
            }
            // A concurrent creator won. Its name check and ours may both pass, and then the
            // loser gets a unique violation on pg_database rather than duplicate_database.
            Err(e)
                if e.code() == Some(&SqlState::DUPLICATE_DATABASE)
                    || e.code() == Some(&SqlState::UNIQUE_VIOLATION) =>
            {
                Ok(())
            }
            Err(e) => Err(self.sql_error(action)(e)),
        }
    }

    /// Drops database `name` if it exists, disconnecting its sessions.
    pub async fn drop_database(&self, name: &str) -> Result<(), EmbeddedError> {
        let action = format!("drop database {}", quote_ident(name));
        let client = self
            .connect("postgres")
            .await
            .map_err(self.sql_error(action.clone()))?;
        client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                quote_ident(name)
            ))
            .await
            .map_err(self.sql_error(action))?;
        tracing::debug!(
            database = name,
            "dropped database on the embedded PostgreSQL"
        );
        Ok(())
    }

    /// Connection settings for database `dbname`: the private socket, user `conpere`.
    pub fn config(&self, dbname: &str) -> tokio_postgres::Config {
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(self.socket_dir())
            .port(PORT)
            .user(SUPERUSER)
            .dbname(dbname);
        config
    }

    /// The same settings as [`config`](EmbeddedServer::config) as a key=value connection
    /// string (`host=<run dir> port=5432 user=conpere dbname=<name>`), for libpq-style
    /// consumers and `tokio_postgres::Config::from_str`.
    pub fn connection_string(&self, dbname: &str) -> String {
        conninfo(self.socket_dir(), dbname)
    }

    /// The unix socket directory the server listens in (`<dir>/run`).
    pub fn socket_dir(&self) -> &Path {
        &self.socket_dir
    }

    /// The cluster directory, absolute.
    pub fn dir(&self) -> &Path {
        &self.cluster.dir
    }

    /// Whether the server was already running (started by another process) when this value
    /// was created.
    pub fn reused(&self) -> bool {
        self.reused
    }

    /// Stops using the server; when [`EmbeddedOptions::stop_on_exit`] was set and no other
    /// process uses it, stops it.
    pub async fn stop(mut self) -> Result<(), EmbeddedError> {
        let Some(registration) = self.registration.take() else {
            return Ok(());
        };
        let cluster = self.cluster.clone();
        tokio::task::spawn_blocking(move || registration.release(&cluster))
            .await
            .map_err(|error| EmbeddedError::Task {
                what: "stop",
                error,
            })?
    }
}

impl Drop for EmbeddedServer {
    fn drop(&mut self) {
        if let Some(registration) = self.registration.take() {
            if let Err(error) = registration.release(&self.cluster) {
                tracing::warn!(%error, "could not stop the embedded PostgreSQL cleanly");
            }
        }
    }
}

fn conninfo(socket_dir: &Path, dbname: &str) -> String {
    format!(
        "host={} port={PORT} user={SUPERUSER} dbname={}",
        conninfo_value(&socket_dir.to_string_lossy()),
        conninfo_value(dbname)
    )
}

fn check_socket_path(run_dir: &Path) -> Result<()> {
    let path = run_dir.join(format!(".s.PGSQL.{PORT}"));
    let len = path.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(EmbeddedError::SocketPathTooLong { path, len });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A temporary directory with tempdir's historical private mode (0700, owned by us), which
    /// the code must open to the `postgres` account when running as root.
    fn private_tempdir() -> tempfile::TempDir {
        tempfile::Builder::new()
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir()
            .expect("tempdir")
    }

    fn test_options(dir: &Path) -> EmbeddedOptions {
        EmbeddedOptions {
            fast_unsafe: true,
            ..EmbeddedOptions::new(dir)
        }
    }

    fn socket_file(server: &EmbeddedServer) -> PathBuf {
        server.socket_dir().join(format!(".s.PGSQL.{PORT}"))
    }

    async fn select_one(server: &EmbeddedServer, dbname: &str) -> i32 {
        let client = server.connect(dbname).await.expect("connect");
        client
            .query_one("SELECT 1", &[])
            .await
            .expect("SELECT 1")
            .get(0)
    }

    async fn database_exists(server: &EmbeddedServer, name: &str) -> bool {
        let client = server.connect("postgres").await.expect("connect");
        client
            .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
            .await
            .expect("query pg_database")
            .is_some()
    }

    #[test]
    fn locate_in_an_empty_explicit_dir_teaches() {
        let empty = tempfile::tempdir().expect("tempdir");
        let error = PgBinaries::locate(Some(empty.path())).expect_err("nothing there");
        let message = error.to_string();
        for expected in [
            &empty.path().display().to_string(),
            "initdb, pg_ctl, postgres",
            &format!("Install them:\n\n    {}\n", server_install_command()),
            "[database] url",
            "CONPERE_DATABASE__URL",
            "pg_bin_dir",
        ] {
            assert!(
                message.contains(expected),
                "{expected:?} missing in:\n{message}"
            );
        }
    }

    #[test]
    fn locate_finds_the_installed_server() {
        let bins = PgBinaries::locate(None).expect("PostgreSQL server binaries installed");
        assert!(missing_tools(bins.dir()).is_empty());
        assert_eq!(
            PgBinaries::locate(Some(bins.dir())).as_ref().ok(),
            Some(&bins)
        );
    }

    #[test]
    fn default_data_dir_follows_the_environment() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |key: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map(|(_, v)| OsString::from(v))
            }
        };
        let all = &[
            ("CONPERE_DATA_DIR", "/srv/c"),
            ("XDG_DATA_HOME", "/x"),
            ("HOME", "/h"),
        ];
        assert_eq!(data_dir_from(env(all), true), Path::new("/srv/c"));
        let user = &[
            ("XDG_DATA_HOME", "/x"),
            ("HOME", "/h"),
            ("CONPERE_DATA_DIR", ""),
        ];
        assert_eq!(
            data_dir_from(env(user), true),
            Path::new("/var/lib/conpere")
        );
        assert_eq!(data_dir_from(env(user), false), Path::new("/x/conpere"));
        let relative_xdg = &[("XDG_DATA_HOME", "x"), ("HOME", "/h")];
        assert_eq!(
            data_dir_from(env(relative_xdg), false),
            Path::new("/h/.local/share/conpere")
        );
    }

    #[test]
    fn connection_strings_parse_back_even_with_odd_paths() {
        for dir in ["/tmp/c/run", "/tmp/with space/it's\\run"] {
            let text = conninfo(Path::new(dir), "db one");
            let config: tokio_postgres::Config = text.parse().expect("parses");
            assert_eq!(
                config.get_hosts(),
                &[tokio_postgres::config::Host::Unix(PathBuf::from(dir))]
            );
            assert_eq!(config.get_ports(), &[PORT]);
            assert_eq!(config.get_user(), Some(SUPERUSER));
            assert_eq!(config.get_dbname(), Some("db one"));
        }
        assert_eq!(
            conninfo(Path::new("/d/run"), "x"),
            "host=/d/run port=5432 user=conpere dbname=x"
        );
    }

    #[test]
    fn settings_quote_the_socket_directory() {
        let text = settings_text(Path::new("/a,b/it's"), false);
        assert!(
            text.contains("unix_socket_directories = '\"/a,b/it''s\"'"),
            "{text}"
        );
        assert!(!text.contains("fsync"));
        assert!(settings_text(Path::new("/a"), true).contains("fsync = off"));
    }

    #[test]
    fn the_buffers_are_a_quarter_of_the_memory_within_bounds() {
        assert_eq!(shared_buffers_mib(0), 128, "memory unknown: the default");
        assert_eq!(shared_buffers_mib(2048), 512);
        assert_eq!(shared_buffers_mib(24 * 1024), 1024);
        assert!(memory_mib() > 0, "this machine's memory is told");
    }

    #[test]
    fn overlong_socket_paths_are_refused() {
        let long = PathBuf::from(format!("/{}", "d".repeat(100)));
        let error = check_socket_path(&long).expect_err("too long");
        assert!(error.to_string().contains("shorter data directory"));
        assert!(check_socket_path(Path::new("/var/lib/conpere/postgres/run")).is_ok());
    }

    #[tokio::test]
    async fn root_needs_a_reachable_directory() {
        if !Uid::effective().is_root() {
            return; // only root hands the cluster to the `postgres` account
        }
        let tmp = private_tempdir();
        let dir = tmp.path().join("data/postgres");
        let error = EmbeddedServer::start(test_options(&dir))
            .await
            .expect_err("postgres cannot enter the temp dir");
        let message = error.to_string();
        assert!(
            matches!(&error, EmbeddedError::NotTraversable { blocked, .. } if blocked == tmp.path()),
            "{message}"
        );
        assert!(message.contains("/var/lib/conpere"), "{message}");
    }

    async fn show(server: &EmbeddedServer, setting: &str) -> String {
        let client = server.connect("postgres").await.expect("connect");
        client
            .query_one(&format!("SHOW {setting}"), &[])
            .await
            .expect("SHOW")
            .get(0)
    }

    /// One cluster: two processes' worth of users racing to start it (one starts, the other
    /// reuses), its settings, databases, and a stop by the last user only.
    #[tokio::test]
    async fn start_reuse_and_stop_by_the_last_user() {
        let tmp = private_tempdir();
        let (a, b) = tokio::join!(
            EmbeddedServer::start(test_options(tmp.path())),
            EmbeddedServer::start(test_options(tmp.path())),
        );
        let (first, second) = match (a.expect("start a"), b.expect("start b")) {
            (a, b) if b.reused() => (a, b),
            (a, b) => (b, a),
        };
        assert!(!first.reused() && second.reused(), "exactly one started it");

        if let Some(account) = &first.cluster.account {
            for dir in [
                first.dir().to_path_buf(),
                first.cluster.data(),
                first.cluster.run_dir(),
            ] {
                let meta = fs::metadata(&dir).expect("stat");
                assert_eq!(meta.uid(), account.uid.as_raw(), "{} owner", dir.display());
            }
        }
        assert_eq!(show(&first, "listen_addresses").await, "");
        // Quoted as a list element (see settings_text); the server then listens right there.
        let socket_dirs = format!("\"{}\"", first.socket_dir().display());
        assert_eq!(show(&first, "unix_socket_directories").await, socket_dirs);
        assert!(socket_file(&first).exists());
        assert_eq!(show(&first, "fsync").await, "off");
        assert_eq!(show(&first, "lc_collate").await, "C");

        first.ensure_database("lifecycle").await.expect("create");
        first
            .ensure_database("lifecycle")
            .await
            .expect("idempotent");
        for name in ["race1", "race2", "race3"] {
            let (a, b) = tokio::join!(first.ensure_database(name), second.ensure_database(name));
            a.and(b).expect("concurrent creators both succeed");
        }
        assert_eq!(select_one(&first, "lifecycle").await, 1);
        let parsed: tokio_postgres::Config =
            first.connection_string("lifecycle").parse().expect("parse");
        let (client, connection) = parsed.connect(NoTls).await.expect("connect by string");
        tokio::spawn(connection);
        let one: i32 = client
            .query_one("SELECT 1", &[])
            .await
            .expect("query")
            .get(0);
        assert_eq!(one, 1);
        drop(client);

        first.stop().await.expect("first stop");
        assert!(socket_file(&second).exists(), "still used by the second");
        assert_eq!(select_one(&second, "lifecycle").await, 1);

        second.drop_database("lifecycle").await.expect("drop");
        second.drop_database("lifecycle").await.expect("drop again");
        assert!(!database_exists(&second, "lifecycle").await);
        let socket = socket_file(&second);
        let cluster = second.cluster.clone();
        second.stop().await.expect("second stop");
        assert!(!socket.exists(), "the last user stopped the server");
        assert!(!cluster.is_running().expect("pg_ctl status"));
    }

    /// One cluster: a half-done initdb is redone, a stale postmaster.pid (as after a reboot)
    /// does not block a start, and dropping the value stops the server.
    #[tokio::test]
    async fn recovers_from_interrupted_initdb_and_stale_pid_file() {
        let tmp = private_tempdir();
        fs::create_dir_all(tmp.path().join("data/base")).expect("mkdir");
        fs::write(tmp.path().join("data/postgresql.conf"), "half").expect("write");
        let server = EmbeddedServer::start(test_options(tmp.path()))
            .await
            .expect("start after an interrupted initdb");
        let data = server.cluster.data();
        let pid_file = fs::read_to_string(data.join("postmaster.pid")).expect("pid file");
        server.stop().await.expect("stop");

        let dead_pid = (30_000..32_000)
            .rev()
            .find(|pid| {
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(*pid), None)
                    == Err(nix::errno::Errno::ESRCH)
            })
            .expect("a free pid");
        let mut lines: Vec<&str> = pid_file.lines().collect();
        let dead = dead_pid.to_string();
        lines[0] = &dead;
        fs::write(data.join("postmaster.pid"), lines.join("\n") + "\n").expect("stale pid");

        let server = EmbeddedServer::start(test_options(tmp.path()))
            .await
            .expect("start despite a stale postmaster.pid");
        assert!(!server.reused());
        assert_eq!(select_one(&server, "postgres").await, 1);
        let socket = socket_file(&server);
        drop(server);
        assert!(!socket.exists(), "drop stopped the server");
    }
}
