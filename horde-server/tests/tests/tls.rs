//! TLS to PostgreSQL, against a cluster `.ci/run` starts with a certificate its own CA signed
//! (for `localhost` only) and a database, `horde_tls`, that takes TLS connections only: every
//! `sslmode` connects or is refused as libpq's would, and a node serves over `verify-full`.
//!
//! Runs when `HORDE_TEST_POSTGRES_URL` and `HORDE_TEST_POSTGRES_TLS` (the directory with
//! `ca.pem` and `other-ca.pem`) are set; under CI it must.

use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::crash::{register, Binary};
use crate::util::test_postgres_url;

/// The server URL's port, and the directory with the CAs.
fn setting() -> Option<(u16, PathBuf)> {
    let tls = std::env::var("HORDE_TEST_POSTGRES_TLS").ok();
    let (Some(url), Some(tls)) = (test_postgres_url(), tls) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run this test: .ci/run sets HORDE_TEST_POSTGRES_URL and \
             HORDE_TEST_POSTGRES_TLS after starting PostgreSQL with TLS"
        );
        eprintln!("HORDE_TEST_POSTGRES_TLS is not set: TLS to PostgreSQL not tested");
        return None;
    };
    let port = url
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split('/').next())
        .and_then(|port| port.parse().ok())
        .unwrap();
    // A fresh database for this run (the server's rules let TLS connections only into it).
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    admin
        .simple_query("DROP DATABASE IF EXISTS horde_tls WITH (FORCE)")
        .unwrap();
    admin.simple_query("CREATE DATABASE horde_tls").unwrap();
    Some((port, PathBuf::from(tls)))
}

/// `horde-server create-admin NAME --db URL`: opens the store once and exits.
fn create_admin(url: &str, name: &str) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_horde-server"))
        .args(["create-admin", name, "--db", url])
        .env_remove("HORDE_CONFIG")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sslmode_connects_or_is_refused_as_it_should() {
    // The postgres crate blocks on a runtime of its own: off this one.
    let Some((port, tls)) = std::thread::spawn(setting).join().unwrap() else {
        return;
    };
    let ca = tls.join("ca.pem");
    let other = tls.join("other-ca.pem");
    let url =
        |host: &str, query: String| format!("postgres://horde@{host}:{port}/horde_tls?{query}");
    let root = |mode: &str, ca: &PathBuf| format!("sslmode={mode}&sslrootcert={}", ca.display());
    for (i, (host, query, works, why)) in [
        (
            "localhost",
            root("verify-full", &ca),
            true,
            "the CA signed it for localhost",
        ),
        (
            "127.0.0.1",
            root("verify-ca", &ca),
            true,
            "verify-ca ignores the name",
        ),
        (
            "127.0.0.1",
            "sslmode=require".to_owned(),
            true,
            "require checks nothing",
        ),
        (
            "127.0.0.1",
            root("verify-full", &ca),
            false,
            "the certificate is not for 127.0.0.1",
        ),
        (
            "localhost",
            root("verify-full", &other),
            false,
            "another CA",
        ),
        ("localhost", root("verify-ca", &other), false, "another CA"),
        (
            "127.0.0.1",
            "sslmode=disable".to_owned(),
            false,
            "the database takes TLS only",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let (ok, text) = create_admin(&url(host, query.clone()), &format!("admin{i}"));
        assert_eq!(ok, works, "{host} {query} ({why}): {text}");
    }
    // A bad setting is named.
    let (ok, text) = create_admin(&url("localhost", "sslmode=verify-full".into()), "x");
    assert!(!ok && text.contains("sslrootcert"), "{text}");

    // A node on verify-full serves.
    let listen = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_horde-server"))
        .args(["--listen", &listen.to_string(), "--db"])
        .arg(url("localhost", root("verify-full", &ca)))
        .env_remove("HORDE_CONFIG")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let server = Binary {
        child,
        base: format!("http://{listen}/api/v2"),
    };
    server.wait_active().await;
    let client = reqwest::Client::new();
    let key = register(&client, &server.base, "over-tls").await;
    assert_eq!(key.len(), 22, "{key}");
}
