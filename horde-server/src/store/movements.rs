//! Reading a user's recent kudos movements back from the `postings` table (the account page
//! shows them). A read-only connection of its own: WAL lets it read beside the writer.

use std::path::Path;

use horde_core::{Kudos, UserId};
use rusqlite::{params, Connection, OpenFlags};

use super::StoreError;

/// One movement of kudos as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    /// When, ms since the epoch.
    pub at: u64,
    /// `generation`, `uptime`, `transfer`, `admin` or `release`.
    pub kind: String,
    /// The user debited (`None`: the horde), and whether from their escrow.
    pub from: (Option<UserId>, bool),
    /// The user credited (`None`: the horde), and whether into their escrow.
    pub to: (Option<UserId>, bool),
    /// How much.
    pub amount: Kudos,
}

/// What the account page shows of a user's kudos history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountHistory {
    /// The last movements in or out of the user's accounts, newest first.
    pub movements: Vec<Movement>,
    /// Earned with the user's workers' generations, in all (escrowed earnings included).
    pub earned: Kudos,
    /// Spent on the user's own requests, in all.
    pub spent: Kudos,
}

/// `user`'s last `limit` movements and generation totals, on one read-only connection.
pub fn account_history(
    db: &Path,
    user: UserId,
    limit: usize,
) -> Result<AccountHistory, StoreError> {
    let conn = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    let mut stmt = conn.prepare(
        "SELECT at, kind, from_user, from_escrow, to_user, to_escrow, amount FROM postings
         WHERE from_user = ?1 OR to_user = ?1 ORDER BY seq DESC LIMIT ?2",
    )?;
    let user_of = |id: Option<i64>| id.map(|id| UserId(id as u64));
    let rows = stmt.query_map(params![user.0 as i64, limit as i64], |row| {
        Ok(Movement {
            at: row.get::<_, i64>(0)? as u64,
            kind: row.get(1)?,
            from: (user_of(row.get(2)?), row.get(3)?),
            to: (user_of(row.get(4)?), row.get(5)?),
            amount: Kudos::from_milli(row.get(6)?),
        })
    })?;
    let movements = rows.collect::<Result<_, _>>()?;
    let sum = |column: &str| -> Result<Kudos, StoreError> {
        let sql = format!(
            "SELECT COALESCE(SUM(amount), 0) FROM postings WHERE {column} = ?1 \
             AND kind = 'generation'"
        );
        let milli: i64 = conn.query_row(&sql, params![user.0 as i64], |row| row.get(0))?;
        Ok(Kudos::from_milli(milli))
    };
    Ok(AccountHistory {
        movements,
        earned: sum("to_user")?,
        spent: sum("from_user")?,
    })
}
