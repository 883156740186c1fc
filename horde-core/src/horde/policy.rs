//! What the core knows of a user besides their balance: their policy and their roles.

use super::*;

/// What the core needs to know of a user besides their balance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserPolicy {
    /// Generations the user may have open at once.
    pub concurrency: u32,
    /// The user's workers count as trusted.
    pub trusted: bool,
    /// The user shows themselves as the owner of their workers to everyone (AI Horde's
    /// `public_workers`); otherwise only they and administrators see it.
    #[serde(default)]
    pub public_workers: bool,
    /// Flagged for review (by suspicion or an administrator): cannot transfer, their workers
    /// are paused, their requests wait behind everyone else's.
    #[serde(default)]
    pub flagged: bool,
    /// When the user registered (for automatic trust).
    #[serde(default)]
    pub registered_at: Timestamp,
    /// What administrators let the user do beyond the ordinary.
    #[serde(default)]
    pub roles: Roles,
}

/// AI Horde's user roles besides trust, set by administrators. The core acts on
/// [`Roles::customizer`]; the server on the others.
///
/// ```
/// use horde_core::Roles;
/// let roles = Roles { moderator: true, vpn: true, ..Roles::default() };
/// assert_eq!(Roles::from_bits(roles.bits()), roles);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Roles {
    /// Awards kudos and switches the horde's invite-only and raid modes.
    pub moderator: bool,
    /// A service account (a front-end acting for its own users): may name the user a request
    /// is for (`proxied_account`).
    pub service: bool,
    /// Runs custom models: their workers' models that the model reference does not know are
    /// paid by the size in their name (capped at the reference's largest), instead of
    /// `unknown_model_size_b`.
    pub customizer: bool,
    /// Shares its address with strangers (a VPN): not held to per-address limits on calls
    /// that have a per-user limit.
    pub vpn: bool,
}

impl Roles {
    /// The roles as bits (moderator 1, service 2, customizer 4, vpn 8), for storage.
    pub fn bits(self) -> u8 {
        u8::from(self.moderator)
            | u8::from(self.service) << 1
            | u8::from(self.customizer) << 2
            | u8::from(self.vpn) << 3
    }

    /// The roles of `bits` (see [`Roles::bits`]); unknown bits are ignored.
    pub fn from_bits(bits: u8) -> Roles {
        Roles {
            moderator: bits & 1 != 0,
            service: bits & 2 != 0,
            customizer: bits & 4 != 0,
            vpn: bits & 8 != 0,
        }
    }
}
