//! SQLite's checkpoints off the writer's path: a thread of its own, on a connection of its
//! own, copies committed pages from the write-ahead log into the main file while the writer
//! goes on committing.
//!
//! A checkpoint writes every page the log holds into the main file and syncs that file; done by
//! the writer at the end of a commit (SQLite's automatic checkpoint) it stalls every write
//! waiting for the next commit, a few milliseconds each time under load. Here the writer only
//! wakes this thread after each commit; the thread runs a `PASSIVE` checkpoint (which never
//! blocks the writer) at most every [`PAUSE`]. SQLite can restart the log from its beginning
//! only when a write transaction starts with every frame already copied, which a checkpoint
//! running beside a busy writer never achieves: the writer's own automatic checkpoint stays on,
//! with a higher threshold ([`WRITER_CHECKPOINT_FRAMES`]), and finds almost everything already
//! copied when it runs.

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use super::StoreError;

/// Frames the log may hold before the writer checkpoints it itself at the end of a commit
/// (SQLite's default is 1,000). With 4 KiB pages the log stays under about 16 MiB.
pub(crate) const WRITER_CHECKPOINT_FRAMES: u32 = 4000;

/// Least time between two background checkpoints: under a steady load this thread wakes at
/// most 200 times a second, and sleeps while nothing is written.
const PAUSE: Duration = Duration::from_millis(5);

/// The checkpointing thread; stops when dropped (or with [`Checkpointer::stop`]).
#[derive(Debug)]
pub(crate) struct Checkpointer {
    wake: Option<mpsc::SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path` (which must exist, in WAL mode).
    pub(crate) fn start(path: &Path) -> Result<Checkpointer, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Copied pages reach the disk before the log may be reused, as the writer's would.
        conn.pragma_update(None, "synchronous", "FULL")?;
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("horde-checkpointer".into())
            .spawn(move || run(&conn, &woken))
            .map_err(|e| StoreError::Commit(format!("cannot start the checkpointer: {e}")))?;
        Ok(Checkpointer {
            wake: Some(wake),
            thread: Some(thread),
        })
    }

    /// Asks for a checkpoint soon; never blocks (wake-ups while one is pending coalesce).
    pub(crate) fn wake(&self) {
        if let Some(wake) = &self.wake {
            let _ = wake.try_send(());
        }
    }

    /// Stops the thread and waits for it (and its connection) to end.
    pub(crate) fn stop(&mut self) {
        self.wake.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(conn: &Connection, woken: &mpsc::Receiver<()>) {
    let mut failing = false;
    while woken.recv().is_ok() {
        // Returns (busy, frames in the log, frames copied); busy only means another checkpoint
        // (the writer's) ran at the same moment.
        match conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            row.get::<_, i64>(0)
        }) {
            Ok(_) if failing => {
                tracing::info!("background checkpoints work again");
                failing = false;
            }
            Ok(_) => {}
            // Commits do not depend on it (the writer checkpoints by itself when the log is
            // long): say so once, not on every try.
            Err(e) if !failing => {
                tracing::warn!(error = %e, "a background checkpoint failed");
                failing = true;
            }
            Err(_) => {}
        }
        std::thread::sleep(PAUSE);
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use horde_core::UserId;
    use rusqlite::Connection;

    use super::WRITER_CHECKPOINT_FRAMES;

    use super::super::{Contention, Store, UserRow, Write};

    fn open(dir: &Path) -> Store {
        let config = crate::Config {
            db: dir.join("c.sqlite"),
            ..crate::Config::default()
        };
        let metrics = Arc::new(crate::metrics::Metrics::new());
        let (store, _) =
            Store::open(&config, metrics, Contention::Refuse, &|| true).expect("open the store");
        store
    }

    /// `count` users from id `first` on, with names long enough to fill pages quickly (1,000
    /// bytes, far beyond the API's limit, which the store does not check).
    fn users(first: u64, count: u64) -> Vec<Write> {
        (first..first + count)
            .map(|id| {
                let mut key_hash = [0; 32];
                key_hash[..8].copy_from_slice(&id.to_le_bytes());
                Write::User(UserRow {
                    id: UserId(id),
                    alias: format!("{id:0>1000}"),
                    key_hash: Some(key_hash),
                    created_at: id,
                    is_admin: false,
                })
            })
            .collect()
    }

    /// How many users the main database file holds by itself, read from a copy of it without
    /// its write-ahead log: only what a checkpoint copied there.
    fn users_in_main_file(dir: &Path) -> i64 {
        let copy = dir.join("copy.sqlite");
        let _ = std::fs::remove_file(dir.join("copy.sqlite-wal"));
        std::fs::copy(dir.join("c.sqlite"), &copy).expect("copy the main file");
        let conn = Connection::open(&copy).expect("open the copy");
        conn.query_row("SELECT count(*) FROM users", [], |row| row.get(0))
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn commits_reach_the_main_file_long_before_the_writer_would_checkpoint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        // A few commits: far fewer frames than the writer's own checkpoint threshold.
        for round in 0..3 {
            store
                .submit(users(1 + round * 10, 10))
                .wait()
                .await
                .expect("commit");
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while users_in_main_file(dir.path()) < 30 {
            assert!(
                Instant::now() < deadline,
                "no checkpoint copied the commits into the main file"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::task::spawn_blocking(move || store.close())
            .await
            .expect("close");
    }

    #[tokio::test]
    async fn the_log_stays_short_while_the_writer_never_pauses() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open(dir.path());
        let wal = dir.path().join("c.sqlite-wal");
        // Without a pause between commits a checkpoint beside the writer never catches up;
        // only the writer's own checkpoint lets the log restart from its beginning. Batches are
        // queued ahead so that the writer always has the next one.
        const ROUNDS: u64 = 1500;
        const ROWS: u64 = 60;
        let (mut pending, mut longest) = (Vec::new(), 0u64);
        for round in 0..ROUNDS {
            pending.push(store.submit(users(1 + round * ROWS, ROWS)));
            if pending.len() == 8 {
                for committed in pending.drain(..) {
                    committed.wait().await.expect("commit");
                }
                longest = longest.max(std::fs::metadata(&wal).map_or(0, |m| m.len()));
            }
        }
        for committed in pending {
            committed.wait().await.expect("commit");
        }
        // Every row went through the log at least once: without restarts it would have grown
        // past this.
        // (The writer's own checkpoint may find the background one running and try again at its
        // next commit: the log can run past the threshold, by a bounded amount.)
        let logged_at_least = ROUNDS * ROWS * 1000;
        let bound = 2 * u64::from(WRITER_CHECKPOINT_FRAMES) * (4096 + 24);
        assert!(
            logged_at_least > 2 * bound,
            "the test must write more than the bound"
        );
        assert!(longest < bound, "the log grew to {longest} bytes");
        tokio::task::spawn_blocking(move || store.close())
            .await
            .expect("close");
        assert!(!wal.exists(), "a clean stop leaves no log behind");
    }
}
