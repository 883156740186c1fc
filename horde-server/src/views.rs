//! Read models: how the server shows what the core holds (a user's details), shared by the
//! API and the web pages.

use horde_core::{Timestamp, UserId, UserPolicy};

use crate::auth::username;
use crate::driver::Core;
use crate::store::UserRow;
use crate::wire::{Contribution, UserDetails, UserKudosDetails, UserRecords};

/// The view of a user, as `find_user` and `users/{id}` answer, for `viewer` (an
/// administrator if `admin`): which workers are theirs is listed only to themselves and
/// administrators, unless they made their workers public (their count is public).
pub fn user_details(
    core: &Core,
    row: &UserRow,
    now: Timestamp,
    viewer: UserId,
    admin: bool,
) -> UserDetails {
    let horde = core.horde();
    let account = horde.ledger().account(row.id);
    let policy = horde.user(row.id).unwrap_or(UserPolicy {
        concurrency: 0,
        trusted: false,
        public_workers: false,
        flagged: false,
        registered_at: Timestamp(0),
        roles: Default::default(),
    });
    let d = account.details;
    let workers: Vec<_> = horde.workers_of(row.id).collect();
    let show_workers = policy.public_workers || admin || viewer == row.id;
    UserDetails {
        username: username(row),
        id: row.id.0,
        kudos: account.balance,
        kudos_details: UserKudosDetails {
            accumulated: d.accumulated,
            gifted: d.gifted,
            received: d.received,
            awarded: d.awarded,
            admin: d.admin,
            uptime: d.uptime,
            evaluating: account.escrow,
        },
        concurrency: policy.concurrency,
        trusted: policy.trusted,
        moderator: policy.roles.moderator,
        service: policy.roles.service,
        customizer: policy.roles.customizer,
        vpn: policy.roles.vpn,
        public_workers: policy.public_workers,
        worker_ids: if show_workers {
            workers.iter().map(|w| w.id.to_string()).collect()
        } else {
            Vec::new()
        },
        worker_count: workers.len(),
        records: UserRecords {
            contribution: Contribution {
                tokens: workers.iter().map(|w| w.tokens_generated).sum(),
                fulfillments: workers.iter().map(|w| w.requests_fulfilled).sum(),
            },
        },
        account_age: now.millis().saturating_sub(row.created_at) / 1000,
    }
}
