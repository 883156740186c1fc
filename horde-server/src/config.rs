//! `Config`: how the server runs (database, registration, administrators, core rules).

use std::path::PathBuf;

use horde_core::HordeConfig;

use crate::http::HttpConfig;

/// How the server runs. `Default` is what `horde-server` with no arguments uses, except for
/// the listen address, which the binary fills in.
#[derive(Debug, Clone)]
pub struct Config {
    /// The SQLite database file. Default `horde.sqlite`.
    pub db: PathBuf,
    /// Most pages (of 4 KiB) the database may grow to; `None` (the default) is no cap. At the
    /// cap, commits fail and the server stops as when the disk is full (see
    /// docs/operations.md).
    pub max_db_pages: Option<u32>,
    /// Whether `POST /api/v2/register` is open. Default true.
    pub registration: bool,
    /// Registrations allowed per IP address per minute. Default 10.
    pub registrations_per_minute: u32,
    /// Administrators as `alias#id` usernames (from `--admins`). Both parts must match a
    /// user: a typo in the id does not make someone else an administrator.
    pub admins: Vec<String>,
    /// Core rules and limits.
    pub horde: HordeConfig,
    /// Connection limits and timeouts.
    pub http: HttpConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            db: PathBuf::from("horde.sqlite"),
            max_db_pages: None,
            registration: true,
            registrations_per_minute: 10,
            admins: Vec::new(),
            horde: HordeConfig::default(),
            http: HttpConfig::default(),
        }
    }
}
