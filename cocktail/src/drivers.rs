//! The ODBC driver a connection string names: where its library is, and, when it is not
//! installed, where it comes from.
//!
//! conpere's driver manager is unixODBC built into the binary (`vendored-unix-odbc`). It
//! reads the drivers the system registered (`/etc/odbcinst.ini`), but loads a library with
//! a plain `dlopen`, without the module directory that a packaged unixODBC searches:
//! Debian registers its drivers by bare file name (`Driver=psqlodbcw.so`, found in
//! `/usr/lib/x86_64-linux-gnu/odbc`). [`with_driver_library`] therefore names the library
//! by its full path in the connection string (before a `DSN=`: the first of the two
//! decides which library unixODBC loads).
//!
//! Tests beware: once a process has loaded a library by full path, a `dlopen` of its bare
//! file name finds it loaded; a test of this module must load the driver first.
//!
//! The connection string is a secret: it is parsed here, never shown; only the driver's
//! name (no secret) appears in messages.

use odbc_api::Environment;
use std::borrow::Cow;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Where packaged unixODBC builds look for a driver registered by bare file name, in order.
fn module_dirs() -> Vec<PathBuf> {
    let arch = std::env::consts::ARCH;
    [
        format!("/usr/lib/{arch}-linux-gnu/odbc"),
        format!("/usr/lib/{arch}-linux-gnu"),
        "/usr/lib64".to_string(),
        "/usr/lib/odbc".to_string(),
        "/usr/local/lib".to_string(),
        "/usr/lib".to_string(),
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect()
}

/// One `key=value` attribute of a connection string: the key, and where its value is
/// (braces included: `{PostgreSQL Unicode}`).
struct Attribute<'a> {
    key: &'a str,
    value: Range<usize>,
}

/// The attributes of an ODBC connection string. A braced value may hold `;` and `=`
/// (`Pwd={a;b}`), and `}}` is a `}` inside braces.
fn attributes(text: &str) -> Vec<Attribute<'_>> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let Some(equals) = text[at..].find('=').map(|i| at + i) else {
            break;
        };
        let key = text[at..equals].trim_matches(|c: char| c == ';' || c.is_whitespace());
        let start = equals + 1;
        let end = match bytes.get(start) {
            Some(b'{') => braced_end(bytes, start),
            _ => text[start..].find(';').map_or(bytes.len(), |i| start + i),
        };
        found.push(Attribute {
            key,
            value: start..end,
        });
        at = end + 1;
    }
    found
}

/// The end of the braced value that starts at `open` (just past its closing brace).
fn braced_end(bytes: &[u8], open: usize) -> usize {
    let mut at = open + 1;
    while at < bytes.len() {
        match (bytes[at], bytes.get(at + 1)) {
            (b'}', Some(b'}')) => at += 2,
            (b'}', _) => return at + 1,
            _ => at += 1,
        }
    }
    bytes.len()
}

/// The value of attribute `key` (case-insensitive), without its braces.
fn attribute<'a>(text: &'a str, key: &str) -> Option<(&'a str, Range<usize>)> {
    let found = attributes(text)
        .into_iter()
        .find(|a| a.key.eq_ignore_ascii_case(key))?;
    let value = text[found.value.clone()].trim();
    let value = value
        .strip_prefix('{')
        .and_then(|v| v.strip_suffix('}'))
        .unwrap_or(value);
    Some((value, found.value))
}

/// The `Driver=` of a connection string, without its braces.
pub fn driver_name(connection_string: &str) -> Option<&str> {
    attribute(connection_string, "driver").map(|(value, _)| value)
}

/// The driver the connection string uses: its `Driver=`, or the driver of its `DSN=`.
fn driver_used(environment: &Environment, connection_string: &str) -> Option<String> {
    if let Some(driver) = driver_name(connection_string) {
        return Some(driver.to_string());
    }
    let (dsn, _) = attribute(connection_string, "dsn")?;
    let sources = environment.data_sources().ok()?;
    let source = sources
        .into_iter()
        .find(|s| s.server_name.eq_ignore_ascii_case(dsn))?;
    Some(source.driver)
}

/// The library registered for `driver` in odbcinst.ini, as written there.
fn registered_library(environment: &Environment, driver: &str) -> Option<String> {
    let drivers = environment.drivers().ok()?;
    let info = drivers
        .into_iter()
        .find(|d| d.description.eq_ignore_ascii_case(driver))?;
    let library = |key: &str| {
        info.attributes
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    library("Driver64").or_else(|| library("Driver"))
}

/// A library registered by bare file name, found in the usual module directories.
fn locate(library: &str) -> Option<PathBuf> {
    module_dirs()
        .into_iter()
        .map(|dir| dir.join(library))
        .find(|path| path.is_file())
}

/// `connection_string` with the full path of its driver's library as `Driver=`, when
/// the system registered that driver by bare file name (as Debian does); unchanged
/// otherwise, and when the library is nowhere to be found (the connection then fails, and
/// [`missing_driver`] explains).
pub fn with_driver_library<'a>(
    environment: &Environment,
    connection_string: &'a str,
) -> Cow<'a, str> {
    let Some(driver) = driver_used(environment, connection_string) else {
        return Cow::Borrowed(connection_string);
    };
    let Some(library) = registered_library(environment, &driver) else {
        return Cow::Borrowed(connection_string);
    };
    if library.contains('/') {
        return Cow::Borrowed(connection_string);
    }
    let Some(path) = locate(&library) else {
        return Cow::Borrowed(connection_string);
    };
    let path = path.display().to_string();
    let path = match path.contains([';', '{', '}']) {
        true => format!("{{{}}}", path.replace('}', "}}")),
        false => path,
    };
    Cow::Owned(match attribute(connection_string, "driver") {
        Some((_, value)) => {
            let mut replaced = connection_string.to_string();
            replaced.replace_range(value, &path);
            replaced
        }
        // A DSN's driver: the first of `Driver=` and `DSN=` decides which library
        // unixODBC loads, and the driver still gets the whole string, DSN included.
        None => format!("Driver={path};{connection_string}"),
    })
}

/// What is wrong when the connection string's driver is not installed, or its library
/// cannot be found; `None` when the driver is there (the failure is elsewhere).
pub fn missing_driver(environment: &Environment, connection_string: &str) -> Option<String> {
    let driver = driver_used(environment, connection_string)?;
    if driver.contains('/') {
        return (!Path::new(&driver).exists()).then(|| {
            format!("the ODBC driver library {driver} (Driver= of the connection string) does not exist")
        });
    }
    let installed: Vec<String> = environment
        .drivers()
        .ok()?
        .into_iter()
        .map(|d| d.description)
        .collect();
    if !installed
        .iter()
        .any(|name| name.eq_ignore_ascii_case(&driver))
    {
        let known = match installed.is_empty() {
            true => "none".to_string(),
            false => installed.join(", "),
        };
        return Some(format!(
            "the ODBC driver `{driver}` is not installed (the drivers registered in \
             /etc/odbcinst.ini are: {known}); {}",
            driver_source(&driver)
        ));
    }
    let library = registered_library(environment, &driver)?;
    let found = match library.contains('/') {
        true => Path::new(&library).is_file(),
        false => locate(&library).is_some(),
    };
    (!found).then(|| {
        format!(
            "the ODBC driver `{driver}` is registered in /etc/odbcinst.ini with the library \
             `{library}`, which is not on this machine (looked in {}); reinstall the driver: {}",
            module_dirs()
                .iter()
                .map(|d| d.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            driver_source(&driver)
        )
    })
}

/// Where the driver named `driver` comes from, by the name its package registers.
pub fn driver_source(driver: &str) -> String {
    let name = driver.to_ascii_lowercase();
    let debian = |package: &str| {
        format!("install it with `apt-get install {package}` (Debian/Ubuntu), which registers it")
    };
    if name.contains("postgres") {
        debian("odbc-postgresql")
    } else if name.contains("mariadb") || name.contains("mysql") {
        debian("odbc-mariadb")
    } else if name.contains("freetds") {
        debian("tdsodbc")
    } else if name.contains("sqlite") {
        debian("libsqliteodbc")
    } else if name.contains("oracle") {
        "Oracle's driver is not packaged by Debian: install Oracle Instant Client's Basic and \
         ODBC packages (oracle.com), then run their odbc_update_ini.sh, which registers it"
            .to_string()
    } else if name.contains("sql server") {
        "install Microsoft's msodbcsql18 package (packages.microsoft.com), which registers it"
            .to_string()
    } else {
        "install the database vendor's ODBC driver and register it under this name \
         (`odbcinst -i -d`), or name a registered driver (`odbcinst -q -d` lists them)"
            .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_read_braced_values_with_separators() {
        let text = "Driver={PostgreSQL Unicode};Pwd={a;b=}}c};Server=db; Port = 5432";
        assert_eq!(driver_name(text), Some("PostgreSQL Unicode"));
        assert_eq!(attribute(text, "pwd").unwrap().0, "a;b=}}c");
        assert_eq!(attribute(text, "SERVER").unwrap().0, "db");
        assert_eq!(attribute(text, "port").unwrap().0, "5432");
        assert_eq!(driver_name("DSN=cocktail;UID=x"), None);
        assert_eq!(driver_name("DRIVER=/opt/lib.so"), Some("/opt/lib.so"));
    }

    #[test]
    fn each_usual_driver_names_where_it_comes_from() {
        for (driver, expected) in [
            ("PostgreSQL Unicode", "apt-get install odbc-postgresql"),
            ("MariaDB Unicode", "apt-get install odbc-mariadb"),
            ("Oracle 19 ODBC driver", "Instant Client"),
            ("ODBC Driver 18 for SQL Server", "msodbcsql18"),
            ("Acme", "odbcinst -q -d"),
        ] {
            assert!(driver_source(driver).contains(expected), "{driver}");
        }
    }
}
