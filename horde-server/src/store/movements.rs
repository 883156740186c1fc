//! Reading a user's recent kudos movements back from the `postings` table (the account page
//! shows them), on a reader connection beside the writer.

use horde_core::{Kudos, UserId};

use super::sql::{params, Sql, Stmt};
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

/// `user`'s last `limit` movements and generation totals, read on `sql` (a reader beside the
/// writer).
pub(super) fn account_history(
    sql: &mut dyn Sql,
    user: UserId,
    limit: usize,
) -> Result<AccountHistory, StoreError> {
    let user_id = user.0 as i64;
    let user_of = |id: Option<i64>| id.map(|id| UserId(id as u64));
    let movements = sql
        .query(Stmt::SelectMovements, &params![user_id, limit as i64])?
        .iter()
        .map(|row| {
            Ok(Movement {
                at: row.int(0)? as u64,
                kind: row.text(1)?,
                from: (user_of(row.opt_int(2)?), row.flag(3)?),
                to: (user_of(row.opt_int(4)?), row.flag(5)?),
                amount: Kudos::from_milli(row.int(6)?),
            })
        })
        .collect::<Result<_, StoreError>>()?;
    let mut sum = |stmt| -> Result<Kudos, StoreError> {
        let rows = sql.query(stmt, &params![user_id])?;
        let milli = rows.first().map(|row| row.int(0)).transpose()?;
        Ok(Kudos::from_milli(milli.unwrap_or(0)))
    };
    Ok(AccountHistory {
        movements,
        earned: sum(Stmt::SumEarned)?,
        spent: sum(Stmt::SumSpent)?,
    })
}
