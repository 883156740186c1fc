//! The embedded engine: SQLite through rusqlite, the zero-configuration default. One file,
//! guarded by an advisory lock file so that one process at a time uses it.

use std::path::Path;

use rusqlite::types::{FromSql, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags};

use super::checkpoint::Checkpointer;
use super::sql::{Engine, Row, Sql, Stmt, Value};
use super::StoreError;

impl ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Value::Null => ValueRef::Null,
            Value::Int(v) => ValueRef::Integer(*v),
            Value::Bool(v) => ValueRef::Integer(i64::from(*v)),
            Value::Text(v) => ValueRef::Text(v.as_bytes()),
            Value::Bytes(v) => ValueRef::Blob(v),
        }))
    }
}

impl FromSql for Value {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Value> {
        Ok(match value {
            ValueRef::Null => Value::Null,
            ValueRef::Integer(v) => Value::Int(v),
            ValueRef::Text(v) => Value::Text(String::from_utf8_lossy(v).into_owned()),
            ValueRef::Blob(v) => Value::Bytes(v.to_vec()),
            ValueRef::Real(_) => return Err(rusqlite::types::FromSqlError::InvalidType),
        })
    }
}

/// Statements on a connection (or a transaction, which derefs to one).
struct On<'c>(&'c Connection);

impl Sql for On<'_> {
    fn execute(&mut self, stmt: Stmt, params: &[Value]) -> Result<(), StoreError> {
        self.0
            .prepare_cached(stmt.text())?
            .execute(rusqlite::params_from_iter(params))?;
        Ok(())
    }

    fn query(&mut self, stmt: Stmt, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        let mut prepared = self.0.prepare_cached(stmt.text())?;
        let columns = prepared.column_count();
        let mut rows = prepared.query(rusqlite::params_from_iter(params))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let values = (0..columns)
                .map(|i| row.get::<_, Value>(i))
                .collect::<Result<_, _>>()?;
            out.push(Row(values));
        }
        Ok(out)
    }
}

/// A SQLite connection: the writer's (with its checkpointer and the file it watches) or a
/// reader's.
pub(crate) struct Sqlite {
    conn: Connection,
    checkpointer: Option<Checkpointer>,
    file: Option<DatabaseFile>,
}

/// The database file the writer opened, by path and identity: deleted or replaced under a
/// running server, its commits would go to a file nobody will open again, and the restart would
/// begin an empty horde. The writer checks it after every commit and fails (fail-stop) when it
/// is gone.
struct DatabaseFile {
    path: std::path::PathBuf,
    identity: (u64, u64),
}

impl DatabaseFile {
    fn of(path: &Path) -> Result<DatabaseFile, StoreError> {
        Ok(DatabaseFile {
            path: path.to_owned(),
            identity: identity(path)?,
        })
    }

    /// Fails if the path no longer names the file that was opened.
    fn still_there(&self) -> Result<(), StoreError> {
        match identity(&self.path) {
            Ok(identity) if identity == self.identity => Ok(()),
            Ok(_) => Err(StoreError::Commit(format!(
                "the database file {} was replaced while the server was using it",
                self.path.display()
            ))),
            Err(_) => Err(StoreError::Commit(format!(
                "the database file {} was deleted while the server was using it",
                self.path.display()
            ))),
        }
    }
}

/// SQLite creates the `-wal` and `-shm` files with the database file's permissions. A
/// database made read-only for a while (a backup, an operator's `chmod 0444`) leaves them
/// read-only after it is writable again, and the next start then fails to write. When the
/// database file is writable by its owner, its side files get its mode back.
fn repair_side_file_modes(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(db) = std::fs::metadata(path) else {
        return;
    };
    let mode = db.permissions().mode() & 0o777;
    if mode & 0o200 == 0 {
        return;
    }
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let side = std::path::PathBuf::from(side);
        let Ok(metadata) = std::fs::metadata(&side) else {
            continue;
        };
        if metadata.permissions().mode() & 0o777 != mode {
            match std::fs::set_permissions(&side, std::fs::Permissions::from_mode(mode)) {
                Ok(()) => tracing::warn!(
                    file = %side.display(),
                    mode = format!("{mode:o}"),
                    "gave the database's side file the database's permissions again"
                ),
                Err(e) => tracing::warn!(
                    file = %side.display(),
                    error = %e,
                    "the database's side file has other permissions than the database"
                ),
            }
        }
    }
}

/// A file's device and inode numbers.
fn identity(path: &Path) -> Result<(u64, u64), StoreError> {
    use std::os::unix::fs::MetadataExt;
    let metadata = std::fs::metadata(path)
        .map_err(|e| StoreError::Commit(format!("cannot read {}: {e}", path.display())))?;
    Ok((metadata.dev(), metadata.ino()))
}

impl Sqlite {
    /// Opens (creating and migrating) the database at `path`, capped at `max_pages` pages.
    pub(crate) fn open(path: &Path, max_pages: Option<u32>) -> Result<Sqlite, StoreError> {
        repair_side_file_modes(path);
        let conn = super::schema::open_connection(path)?;
        if let Some(pages) = max_pages {
            conn.pragma_update(None, "max_page_count", pages)?;
        }
        let checkpointer = Some(Checkpointer::start(path, &conn)?);
        let file = Some(DatabaseFile::of(path)?);
        Ok(Sqlite {
            conn,
            checkpointer,
            file,
        })
    }

    /// Opens `path` read-only, beside the writer (WAL lets it read while the writer writes).
    pub(crate) fn open_read_only(path: &Path) -> Result<Sqlite, StoreError> {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
        Ok(Sqlite {
            conn,
            checkpointer: None,
            file: None,
        })
    }
}

impl Sql for Sqlite {
    fn execute(&mut self, stmt: Stmt, params: &[Value]) -> Result<(), StoreError> {
        On(&self.conn).execute(stmt, params)
    }

    fn query(&mut self, stmt: Stmt, params: &[Value]) -> Result<Vec<Row>, StoreError> {
        On(&self.conn).query(stmt, params)
    }
}

impl Engine for Sqlite {
    fn transaction(
        &mut self,
        f: &mut dyn FnMut(&mut dyn Sql) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        f(&mut On(&tx))?;
        tx.commit()?;
        // Before the acknowledgement: a commit into a deleted file is not acknowledged.
        if let Some(file) = &self.file {
            file.still_there()?;
        }
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.after_commit(&self.conn);
        }
        Ok(())
    }

    fn check(&mut self) -> Result<(), StoreError> {
        self.file.as_ref().map_or(Ok(()), DatabaseFile::still_there)
    }

    fn close(&mut self) {
        if let Some(mut checkpointer) = self.checkpointer.take() {
            checkpointer.stop();
        }
        // Checkpoint so the main file is complete when the server stops cleanly.
        let _ = self.conn.pragma_update(None, "wal_checkpoint", "TRUNCATE");
    }
}

impl std::fmt::Debug for Sqlite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sqlite")
    }
}

/// Takes the advisory lock `<db>.lock`, held as long as the returned file is open, so that
/// two processes (two servers, or `create-admin` beside a running server) never work on one
/// database: each would assign the same new user ids.
pub(crate) fn lock_database(path: &Path) -> Result<std::fs::File, StoreError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = std::path::PathBuf::from(name);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StoreError::LockFile(lock_path.display().to_string(), e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(StoreError::Locked(path.display().to_string()))
        }
        Err(std::fs::TryLockError::Error(e)) => {
            Err(StoreError::LockFile(lock_path.display().to_string(), e))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn side_files_left_read_only_get_the_database_mode_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("h.sqlite");
        let mode = |p: &Path| std::fs::metadata(p).expect("metadata").permissions().mode() & 0o777;
        for (name, perm) in [
            ("h.sqlite", 0o640),
            ("h.sqlite-wal", 0o444),
            ("h.sqlite-shm", 0o444),
        ] {
            let file = dir.path().join(name);
            std::fs::write(&file, b"").expect("write");
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(perm)).expect("chmod");
        }
        repair_side_file_modes(&db);
        assert_eq!(mode(&dir.path().join("h.sqlite-wal")), 0o640);
        assert_eq!(mode(&dir.path().join("h.sqlite-shm")), 0o640);
        // A database that is itself read-only is left as it is.
        std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).expect("chmod");
        std::fs::set_permissions(
            dir.path().join("h.sqlite-wal"),
            std::fs::Permissions::from_mode(0o600),
        )
        .expect("chmod");
        repair_side_file_modes(&db);
        assert_eq!(mode(&dir.path().join("h.sqlite-wal")), 0o600);
    }
}
