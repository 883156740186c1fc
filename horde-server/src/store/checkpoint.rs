//! SQLite's checkpoints off the writer's path: a thread of its own, on a connection of its
//! own, copies committed pages from the write-ahead log into the main file while the writer
//! goes on committing; the writer itself checkpoints only when the log has grown long.
//!
//! A checkpoint writes every page the log holds into the main file and syncs that file; done by
//! the writer at the end of every commit that finds the log long (SQLite's automatic
//! checkpoint) it stalls every write waiting for the next commit, a few milliseconds each time
//! under load. Here the writer only wakes this thread after each commit; the thread runs a
//! `PASSIVE` checkpoint (which never blocks the writer) at most every [`PAUSE`].
//!
//! SQLite can restart the log from its beginning only when a write transaction starts with
//! every frame already copied, which a checkpoint running beside a busy writer never achieves.
//! So the writer keeps a backstop: after a commit that leaves [`WRITER_CHECKPOINT_FRAMES`] or
//! more frames in the log it checkpoints on its own connection, and its next transaction
//! restarts the log. SQLite's automatic checkpoint cannot be that backstop: it gives up at once
//! when another connection's checkpoint is running, and under load it collided with this
//! thread's often enough to let the log grow past any bound. Both checkpoints therefore take
//! [`Checkpointer`]'s turn lock, so the writer's waits for the thread's to end instead of being
//! skipped, and the log never holds much more than the threshold plus one group commit.

use std::cell::Cell;
use std::os::raw::c_int;
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use rusqlite::hooks::Wal;
use rusqlite::{Connection, OpenFlags};

use super::StoreError;

/// Frames the log may hold before the writer checkpoints it itself at the end of a commit
/// (SQLite's default is 1,000). With 4 KiB pages the log stays under about 16 MiB.
pub(crate) const WRITER_CHECKPOINT_FRAMES: u32 = 4000;

/// Least time between two background checkpoints: under a steady load this thread wakes at
/// most 200 times a second, and sleeps while nothing is written.
const PAUSE: Duration = Duration::from_millis(5);

thread_local! {
    /// Frames in the log after the last commit made on this thread (SQLite's WAL hook reports
    /// it during the commit, on the committing thread).
    static LOG_FRAMES: Cell<u32> = const { Cell::new(0) };
}

fn note_log_frames(_: &Wal, frames: c_int) -> rusqlite::Result<()> {
    LOG_FRAMES.with(|cell| cell.set(u32::try_from(frames).unwrap_or(0)));
    Ok(())
}

/// The checkpointing thread; stops when dropped (or with [`Checkpointer::stop`]).
#[derive(Debug)]
pub(crate) struct Checkpointer {
    wake: Option<mpsc::SyncSender<()>>,
    thread: Option<JoinHandle<()>>,
    /// Held by whichever connection is checkpointing: SQLite lets only one checkpoint run at a
    /// time and answers any other with "busy" instead of waiting.
    turn: Arc<Mutex<()>>,
    /// The writer's backstop checkpoint has failed and said so (said once, not per commit).
    writer_failing: Cell<bool>,
}

impl Checkpointer {
    /// Starts checkpointing the database at `path` (which must exist, in WAL mode) beside
    /// `writer`, the connection that commits to it: SQLite's automatic checkpoint is turned off
    /// on `writer`, whose commits must then be followed by [`Checkpointer::after_commit`].
    pub(crate) fn start(path: &Path, writer: &Connection) -> Result<Checkpointer, StoreError> {
        // In this order: the pragma replaces any WAL hook with SQLite's own (or none).
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        writer.wal_hook(Some(note_log_frames));
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Copied pages reach the disk before the log may be reused, as the writer's would.
        conn.pragma_update(None, "synchronous", "FULL")?;
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        let turn = Arc::new(Mutex::new(()));
        let thread_turn = Arc::clone(&turn);
        let thread = std::thread::Builder::new()
            .name("horde-checkpointer".into())
            .spawn(move || run(&conn, &woken, &thread_turn))
            .map_err(|e| StoreError::Commit(format!("cannot start the checkpointer: {e}")))?;
        Ok(Checkpointer {
            wake: Some(wake),
            thread: Some(thread),
            turn,
            writer_failing: Cell::new(false),
        })
    }

    /// Called on the writer's thread after each commit of `writer`: wakes the thread (never
    /// blocks; wake-ups while one is pending coalesce) and, when the log is long, checkpoints on
    /// `writer` itself, so that its next transaction starts the log again from the beginning.
    /// A failed checkpoint is logged, not returned: the commit is durable in the log already.
    pub(crate) fn after_commit(&self, writer: &Connection) {
        if let Some(wake) = &self.wake {
            let _ = wake.try_send(());
        }
        if LOG_FRAMES.with(Cell::get) < WRITER_CHECKPOINT_FRAMES {
            return;
        }
        let _turn = self.turn.lock();
        match checkpoint(writer) {
            Ok(()) if self.writer_failing.replace(false) => {
                tracing::info!("the writer's checkpoints work again");
            }
            Ok(()) => {}
            Err(e) if !self.writer_failing.replace(true) => {
                tracing::warn!(error = %e, "the writer's checkpoint failed; the log grows until one works");
            }
            Err(_) => {}
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

/// A `PASSIVE` checkpoint: copies what it can without waiting for readers or the writer.
fn checkpoint(conn: &Connection) -> rusqlite::Result<()> {
    // Returns (busy, frames in the log, frames copied); busy cannot come from another
    // checkpoint (the turn lock) and only means a reader kept some frames for now.
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
        row.get::<_, i64>(0)
    })
    .map(drop)
}

fn run(conn: &Connection, woken: &mpsc::Receiver<()>, turn: &Mutex<()>) {
    let mut failing = false;
    while woken.recv().is_ok() {
        let result = {
            let _turn = turn.lock();
            checkpoint(conn)
        };
        match result {
            Ok(()) if failing => {
                tracing::info!("background checkpoints work again");
                failing = false;
            }
            Ok(()) => {}
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
                    webhook_secret: None,
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
        // past this. The writer checkpoints once a commit leaves the threshold's frames in the
        // log, waiting for the background checkpoint if one is running, so the log holds at most
        // the threshold plus one group commit (a few hundred frames here).
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
