//! Integration tests of horde-server through real HTTP on loopback.
//!
//! `api`: the endpoints, served in-process by `serve` on port 0 with a file database (or a
//! PostgreSQL database, with `HORDE_TEST_STORE=postgres`: the suite runs on either store).
//! `authz`: the authorization matrix of every state-changing endpoint.
//! `connections`: read timeouts, the connection cap, bounded graceful shutdown.
//! `crash`: the real binary, killed with SIGKILL under load and restarted.
//! `failover`: two nodes of the binary on PostgreSQL; the standby takes over.
//! `hostile`: what an attacker sends (NUL in text, trickled bodies, connection floods).
//! `operators`: the configuration file, `create-admin`, trusted proxies.
//! `tls`: TLS to PostgreSQL, each `sslmode` (when `.ci/run` provides a TLS cluster).
//! `sdk`: the Python `horde-sdk` against the real binary (when `.ci/run` provides it).
//! `webhooks`: deliveries to a loopback receiver that verifies signatures, through outages.

// Test helpers panic on failure by design.
#![allow(clippy::unwrap_used)]

#[path = "tests/api/mod.rs"]
mod api;
#[path = "tests/authz.rs"]
mod authz;
#[path = "tests/browser.rs"]
mod browser;
#[path = "tests/connections.rs"]
mod connections;
#[path = "tests/crash.rs"]
mod crash;
#[path = "tests/failover.rs"]
mod failover;
#[path = "tests/fuzz_seeds.rs"]
mod fuzz_seeds;
#[path = "tests/hostile.rs"]
mod hostile;
#[path = "tests/layers.rs"]
mod layers;
#[path = "tests/oauth.rs"]
mod oauth;
#[path = "tests/openapi.rs"]
mod openapi;
#[path = "tests/operators.rs"]
mod operators;
#[path = "tests/sdk.rs"]
mod sdk;
#[path = "tests/tls.rs"]
mod tls;
#[path = "tests/util.rs"]
mod util;
#[path = "tests/web.rs"]
mod web;
#[path = "tests/webhooks.rs"]
mod webhooks;
