//! Users and API keys: registration, salted key hashes, lookup by key, usernames.
//!
//! Keys are 16 bytes from the OS RNG, url-safe base64 without padding (22 characters, the shape
//! horde-sdk accepts). Only `SHA-256(server secret ‖ key)` is stored; the secret is generated
//! on first start and kept in the database. A 128-bit random key needs no slow hash: there is
//! nothing to brute-force, and the salt stops precomputed tables across hordes.

use std::collections::HashMap;

use base64::Engine;
use horde_core::{Timestamp, UserId};
use sha2::{Digest, Sha256};

use crate::store::{Recorded, UserRow, Write};

/// Why identity could not be proven or changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No such API key.
    #[error("invalid API key")]
    UnknownKey,
    /// The alias is not acceptable; the message says why.
    #[error("{0}")]
    InvalidAlias(String),
    /// No such user (or one without a key).
    #[error("no such user")]
    UnknownUser,
    /// The OS gave no randomness for a key or token.
    #[error("OS RNG: {0}")]
    Randomness(String),
}

/// The shared anonymous key.
pub const ANONYMOUS_KEY: &str = "0000000000";

/// Longest alias accepted.
const ALIAS_MAX: usize = 50;

/// Registered users, indexed by id and key hash.
#[derive(Debug)]
pub struct Users {
    secret: [u8; 32],
    by_id: HashMap<UserId, UserRow>,
    by_key: HashMap<[u8; 32], UserId>,
    next_id: u64,
}

impl Users {
    /// The registry of `rows`, hashing keys with `secret`.
    pub fn new(secret: [u8; 32], rows: impl IntoIterator<Item = UserRow>) -> Users {
        let mut users = Users {
            secret,
            by_id: HashMap::new(),
            by_key: HashMap::new(),
            next_id: 1,
        };
        for row in rows {
            users.put(row);
        }
        users
    }

    /// Adds or replaces a user.
    fn put(&mut self, row: UserRow) {
        if let Some(old) = self.by_id.get(&row.id).and_then(|u| u.key_hash) {
            self.by_key.remove(&old);
        }
        if let Some(hash) = row.key_hash {
            self.by_key.insert(hash, row.id);
        }
        self.next_id = self.next_id.max(row.id.0 + 1);
        self.by_id.insert(row.id, row);
    }

    /// A user by id.
    pub fn get(&self, id: UserId) -> Option<&UserRow> {
        self.by_id.get(&id)
    }

    /// All users, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &UserRow> {
        self.by_id.values()
    }

    /// The user an `apikey` header names: the anonymous key gives Anonymous; a missing or
    /// unknown key is `InvalidAPIKey`.
    pub fn authenticate(&self, key: Option<&str>) -> Result<UserId, AuthError> {
        let key = key.map(str::trim).unwrap_or(ANONYMOUS_KEY);
        if key == ANONYMOUS_KEY || key.is_empty() {
            return Ok(UserId::ANONYMOUS);
        }
        self.by_key
            .get(&hash_key(&self.secret, key))
            .copied()
            .ok_or(AuthError::UnknownKey)
    }

    /// Registers `alias` at `now` — an administrator if `admin`: returns the new row and its
    /// API key (shown once), with the write that persists the row.
    pub fn register(
        &mut self,
        alias: &str,
        now: Timestamp,
        admin: bool,
    ) -> Result<Recorded<(UserRow, String)>, AuthError> {
        let alias = alias.trim();
        let invalid = AuthError::InvalidAlias;
        if let Some(reason) = horde_core::name_problem(alias) {
            return Err(invalid(format!("the username {reason}")));
        }
        if alias.chars().count() > ALIAS_MAX || alias.contains('#') {
            return Err(invalid(format!(
                "the username must be 1 to {ALIAS_MAX} characters, without '#'"
            )));
        }
        let key = new_api_key()?;
        let row = UserRow {
            id: UserId(self.next_id),
            alias: alias.to_owned(),
            key_hash: Some(hash_key(&self.secret, &key)),
            created_at: now.millis(),
            is_admin: admin,
            webhook_secret: None,
        };
        self.put(row.clone());
        Ok(Recorded::new((row.clone(), key), vec![Write::User(row)]))
    }

    /// Sets (`Some`) or removes (`None`) `user`'s webhook secret, with the write that persists
    /// it.
    pub fn set_webhook_secret(
        &mut self,
        user: UserId,
        secret: Option<String>,
    ) -> Result<Recorded<()>, AuthError> {
        let mut row = self.registered(user)?;
        row.webhook_secret = secret;
        self.put(row.clone());
        Ok(Recorded::new((), vec![Write::User(row)]))
    }

    /// A copy of `user`'s row, if they are registered (have a key: not Anonymous).
    fn registered(&self, user: UserId) -> Result<UserRow, AuthError> {
        self.by_id
            .get(&user)
            .filter(|row| row.key_hash.is_some())
            .cloned()
            .ok_or(AuthError::UnknownUser)
    }

    /// A salted digest of `token` (how session ids are kept, like API keys).
    pub fn digest(&self, token: &str) -> [u8; 32] {
        hash_key(&self.secret, token)
    }

    /// Gives `user` a new API key (the old one stops working at once); returns the row and the
    /// key (shown once), with the write that persists the row.
    pub fn rekey(&mut self, user: UserId) -> Result<Recorded<(UserRow, String)>, AuthError> {
        let mut row = self.registered(user)?;
        let key = new_api_key()?;
        row.key_hash = Some(hash_key(&self.secret, &key));
        self.put(row.clone());
        Ok(Recorded::new((row.clone(), key), vec![Write::User(row)]))
    }

    /// The user a `alias#id` username names (the alias compared case-insensitively).
    pub fn find_by_username(&self, username: &str) -> Option<&UserRow> {
        let (alias, id) = username.rsplit_once('#')?;
        let user = self.by_id.get(&UserId(id.trim().parse().ok()?))?;
        user.alias
            .eq_ignore_ascii_case(alias.trim())
            .then_some(user)
    }
}

impl Users {
    /// An opaque fingerprint of a client address (keyed with the server's secret, so it says
    /// nothing about the address to whoever reads the database).
    pub fn fingerprint(&self, ip: std::net::IpAddr) -> u64 {
        let mut hasher = Sha256::new();
        hasher.update(self.secret);
        hasher.update(b"origin:");
        hasher.update(ip.to_string().as_bytes());
        let digest = hasher.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        u64::from_le_bytes(first)
    }
}

/// `alias#id`, as users are shown.
pub fn username(row: &UserRow) -> String {
    format!("{}#{}", row.alias, row.id.0)
}

fn hash_key(secret: &[u8; 32], key: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(secret);
    hasher.update(key.as_bytes());
    hasher.finalize().into()
}

fn new_api_key() -> Result<String, AuthError> {
    new_token()
}

/// 16 bytes from the OS RNG as 22 url-safe base64 characters: API keys, session ids, CSRF
/// tokens, OAuth `state`s.
pub fn new_token() -> Result<String, AuthError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| AuthError::Randomness(e.to_string()))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// `alias` made valid for registration: hidden characters and `#` dropped, trimmed, at most
/// 50 characters; `user` when nothing is left. (Usernames are `alias#id`, so aliases need not
/// be unique.)
pub fn valid_alias(alias: &str) -> String {
    let kept: String = alias
        .chars()
        .filter(|&c| c != '#' && horde_core::name_problem(&format!("x{c}")).is_none())
        .collect();
    let trimmed: String = kept.trim().chars().take(ALIAS_MAX).collect();
    let trimmed = trimmed.trim().to_owned();
    if trimmed.is_empty() {
        "user".into()
    } else {
        trimmed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_22_url_safe_chars_and_only_hashes_are_kept() {
        let mut users = Users::new([7; 32], []);
        let registered = users.register("alice", Timestamp(0), false).unwrap();
        let (row, key) = registered.value;
        // The write that persists the user comes with it.
        assert!(matches!(&registered.writes[..], [Write::User(written)] if *written == row));
        assert_eq!(key.len(), 22);
        assert!(key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_ne!(row.key_hash.unwrap().to_vec(), key.as_bytes().to_vec());
        assert_eq!(users.authenticate(Some(&key)).unwrap(), row.id);
        assert!(users.authenticate(Some("not-a-key")).is_err());
        assert_eq!(users.authenticate(None).unwrap(), UserId::ANONYMOUS);
        // Another secret gives another hash: keys do not carry across hordes.
        let other = Users::new([8; 32], [row.clone()]);
        assert!(other.authenticate(Some(&key)).is_err());
        assert_eq!(
            users
                .find_by_username(&format!("ALICE#{}", row.id.0))
                .map(|u| u.id),
            Some(row.id)
        );
        assert!(users.find_by_username("alice#999").is_none());
        assert!(users.register("a#b", Timestamp(0), false).is_err());
        assert!(users.register("  ", Timestamp(0), false).is_err());
        assert!(users
            .register("ad\u{202E}nim", Timestamp(0), false)
            .is_err());
        assert!(users
            .register("a\u{200B}lice", Timestamp(0), false)
            .is_err());
    }
}
