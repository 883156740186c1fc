//! The authorization matrix: every state-changing endpoint, called as nobody (no key), as
//! Anonymous, with a wrong key, as another user, and as an administrator. Each answer's status
//! and rc is checked against the table, and where the call was refused, nothing changed.
//!
//! The endpoints are read from the router's source, so a new state-changing endpoint that is
//! missing from the table fails the test.

use reqwest::Method;
use serde_json::{json, Value};

use crate::util::{declared_routes, TestServer};

/// Who calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum As {
    Nobody,
    Anonymous,
    WrongKey,
    Other,
    Admin,
}

const CALLERS: [As; 5] = [
    As::Nobody,
    As::Anonymous,
    As::WrongKey,
    As::Other,
    As::Admin,
];

/// The expected answer: a status and, for refusals, the rc.
type Expect = (u16, &'static str);

/// One row: an endpoint, and what each caller gets (in `CALLERS` order).
struct Row {
    method: Method,
    path: &'static str,
    expect: [Expect; 5],
}

const OK: Expect = (200, "");

fn table() -> Vec<Row> {
    let anon_forbidden: Expect = (403, "AnonForbidden");
    let bad_key: Expect = (401, "InvalidAPIKey");
    vec![
        Row {
            // Registration needs no key; one sent is ignored (rate limits apply per address).
            method: Method::POST,
            path: "/api/v2/register",
            expect: [(201, ""), (201, ""), (201, ""), (201, ""), (201, "")],
        },
        Row {
            // The web form's registration.
            method: Method::POST,
            path: "/register",
            expect: [(201, ""), (201, ""), (201, ""), (201, ""), (201, "")],
        },
        Row {
            // Signing in takes a registered user's key from the form: 303 to the account.
            method: Method::POST,
            path: "/login",
            expect: [(401, ""), (401, ""), (401, ""), (303, ""), (303, "")],
        },
        // The signed-in forms: without a session, whatever key is sent, to the sign-in page
        // (or home, for signing out) and nothing changes.
        Row {
            method: Method::POST,
            path: "/logout",
            expect: [(303, ""); 5],
        },
        Row {
            method: Method::POST,
            path: "/logout/everywhere",
            expect: [(303, ""); 5],
        },
        Row {
            method: Method::POST,
            path: "/account/key",
            expect: [(303, ""); 5],
        },
        Row {
            method: Method::POST,
            path: "/account/maintenance",
            expect: [(303, ""); 5],
        },
        Row {
            method: Method::POST,
            path: "/transfer",
            expect: [(303, ""); 5],
        },
        Row {
            method: Method::POST,
            path: "/transfer/send",
            expect: [(303, ""); 5],
        },
        Row {
            method: Method::PUT,
            path: "/api/v2/users/{id}",
            expect: [
                anon_forbidden,
                anon_forbidden,
                bad_key,
                (403, "NotAdmin"),
                OK,
            ],
        },
        Row {
            method: Method::POST,
            path: "/api/v2/kudos/transfer",
            expect: [
                (400, "KudosTransferFromAnon"),
                (400, "KudosTransferFromAnon"),
                bad_key,
                (400, "KudosTransferNotEnough"),
                OK,
            ],
        },
        Row {
            method: Method::POST,
            path: "/api/v2/kudos/award",
            expect: [
                anon_forbidden,
                anon_forbidden,
                bad_key,
                (403, "NotModerator"),
                OK,
            ],
        },
        Row {
            // Switching nothing (the body asks for what is): only who may is under test.
            method: Method::PUT,
            path: "/api/v2/status/modes",
            expect: [
                anon_forbidden,
                anon_forbidden,
                bad_key,
                (403, "NotAdmin"),
                OK,
            ],
        },
        Row {
            method: Method::POST,
            path: "/api/v2/generate/text/async",
            expect: [(202, ""), (202, ""), bad_key, (202, ""), (202, "")],
        },
        Row {
            // The request id is the capability (as in AI Horde): whoever holds it may cancel.
            method: Method::DELETE,
            path: "/api/v2/generate/text/status/{id}",
            expect: [OK, OK, OK, OK, OK],
        },
        Row {
            method: Method::POST,
            path: "/api/v2/generate/text/pop",
            expect: [
                (403, "AnonForbiddenWorker"),
                (403, "AnonForbiddenWorker"),
                bad_key,
                (403, "WrongCredentials"),
                (403, "WrongCredentials"),
            ],
        },
        Row {
            method: Method::POST,
            path: "/api/v2/generate/text/submit",
            expect: [
                anon_forbidden,
                anon_forbidden,
                bad_key,
                (403, "WrongCredentials"),
                (403, "WrongCredentials"),
            ],
        },
        Row {
            method: Method::POST,
            path: "/api/v2/generate/text/progress",
            expect: [
                anon_forbidden,
                anon_forbidden,
                bad_key,
                (403, "WrongCredentials"),
                (403, "WrongCredentials"),
            ],
        },
        Row {
            method: Method::PUT,
            path: "/api/v2/workers/{id}",
            expect: [
                anon_forbidden,
                anon_forbidden,
                bad_key,
                (403, "WrongCredentials"),
                OK,
            ],
        },
        Row {
            method: Method::POST,
            path: "/api/v2/admin/model_reference/reload",
            expect: [
                anon_forbidden,
                anon_forbidden,
                bad_key,
                (403, "NotAdmin"),
                OK,
            ],
        },
        Row {
            // Only trusted users create teams (the administrator is trusted).
            method: Method::POST,
            path: "/api/v2/teams",
            expect: [
                anon_forbidden,
                anon_forbidden,
                bad_key,
                (403, "UntrustedTeamCreation"),
                OK,
            ],
        },
        Row {
            // The victim's team (made at the start).
            method: Method::PATCH,
            path: "/api/v2/teams/{id}",
            expect: [
                anon_forbidden,
                anon_forbidden,
                bad_key,
                (403, "WrongCredentials"),
                OK,
            ],
        },
        Row {
            method: Method::DELETE,
            path: "/api/v2/teams/{id}",
            expect: [
                anon_forbidden,
                anon_forbidden,
                bad_key,
                (403, "WrongCredentials"),
                OK,
            ],
        },
        Row {
            // Last: the administrator's call deletes the victim's worker, which rows above use.
            method: Method::DELETE,
            path: "/api/v2/workers/{id}",
            expect: [
                anon_forbidden,
                anon_forbidden,
                bad_key,
                (403, "WrongCredentials"),
                OK,
            ],
        },
    ]
}

/// What could change: users, workers, and the victim's request (without the fields that
/// move with the clock).
async fn snapshot(server: &TestServer, admin: &str, request: &str) -> Value {
    let mut users = server.get("/users?page=1", None).await.1;
    for user in users.as_array_mut().into_iter().flatten() {
        user["account_age"] = Value::Null;
    }
    let workers = server.get("/workers", Some(admin)).await.1;
    let status = server
        .get(&format!("/generate/text/status/{request}"), None)
        .await
        .1;
    let teams = server.get("/teams", None).await.1;
    json!({ "users": users, "workers": workers, "status": status, "teams": teams })
}

#[tokio::test]
async fn every_state_changing_endpoint_refuses_the_wrong_caller_and_changes_nothing() {
    let table = table();
    let changing = declared_routes()
        .into_iter()
        .filter(|(method, _)| *method != Method::GET);
    for (method, path) in changing {
        assert!(
            table
                .iter()
                .any(|row| row.method == method && row.path == path),
            "{method} {path} is not in the authorization table"
        );
    }

    let server = TestServer::start_with(|config| {
        config.registrations_per_minute = 1000;
    })
    .await;
    let (_, admin) = server.admin("admin").await;
    let (victim_id, victim) = server.register("victim").await;
    let (_, other) = server.register("other").await;
    server
        .call(
            Method::PUT,
            "/users/1",
            Some(&admin),
            Some(json!({ "kudos": 100 })),
        )
        .await;
    // The victim's worker, its job and a request of theirs.
    let pop_body = json!({ "name": "victims-worker", "models": ["m"] });
    let (_, queued) = server
        .post(
            "/generate/text/async",
            Some(&victim),
            json!({ "prompt": "p", "models": ["m"] }),
        )
        .await;
    let (_, job) = server
        .post("/generate/text/pop", Some(&victim), pop_body.clone())
        .await;
    let job_id = job["id"].as_str().unwrap().to_owned();
    let (_, kept) = server
        .post(
            "/generate/text/async",
            Some(&victim),
            json!({ "prompt": "kept" }),
        )
        .await;
    let request = kept["id"].as_str().unwrap().to_owned();
    let _ = queued;
    let (_, me) = server.get("/find_user", Some(&victim)).await;
    let worker_id = me["worker_ids"][0].as_str().unwrap().to_owned();
    // The victim's team: the victim is made trusted to create it.
    server
        .call(
            Method::PUT,
            &format!("/users/{victim_id}"),
            Some(&admin),
            Some(json!({ "trusted": true })),
        )
        .await;
    let (_, team) = server
        .post("/teams", Some(&victim), json!({ "name": "victims" }))
        .await;
    let team_id = team["id"].as_str().unwrap().to_owned();

    // Web forms answer with redirects: see them, do not follow them.
    let web = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for row in &table {
        for (caller, (status, rc)) in CALLERS.iter().zip(row.expect) {
            let key = match caller {
                As::Nobody => None,
                As::Anonymous => Some("0000000000".to_owned()),
                As::WrongKey => Some("AAAAAAAAAAAAAAAAAAAAAA".to_owned()),
                As::Other => Some(other.clone()),
                As::Admin => Some(admin.clone()),
            };
            let refused = !(200..300).contains(&status);
            // An allowed cancel ends the request the snapshot watches: use a fresh one.
            let target_request = if row.method == Method::DELETE {
                let (_, fresh) = server
                    .post(
                        "/generate/text/async",
                        Some(&victim),
                        json!({ "prompt": "cancel me" }),
                    )
                    .await;
                fresh["id"].as_str().unwrap().to_owned()
            } else {
                request.clone()
            };
            let id = match row.path {
                p if p.contains("/teams/") => team_id.clone(),
                p if p.contains("/users/") => victim_id.to_string(),
                p if p.contains("/workers/") => worker_id.clone(),
                _ => target_request.clone(),
            };
            let path = row.path.replace("{id}", &id).replacen("/api/v2", "", 1);
            let body = match row.path {
                "/api/v2/register" => Some(json!({ "username": format!("new-{caller:?}") })),
                "/api/v2/users/{id}" => Some(json!({ "kudos": 1 })),
                "/api/v2/kudos/transfer" | "/api/v2/kudos/award" => {
                    Some(json!({ "username": format!("victim#{victim_id}"), "amount": 1 }))
                }
                "/api/v2/status/modes" => Some(json!({ "invite_only": false })),
                "/api/v2/teams" => Some(json!({ "name": format!("team of {caller:?}") })),
                "/api/v2/teams/{id}" => Some(json!({ "info": format!("set by {caller:?}") })),
                "/api/v2/generate/text/async" => Some(json!({ "prompt": "p" })),
                "/api/v2/generate/text/pop" => Some(pop_body.clone()),
                "/api/v2/generate/text/submit" => Some(json!({ "id": job_id, "generation": "x" })),
                "/api/v2/generate/text/progress" => Some(json!({ "id": job_id, "text": "x" })),
                "/api/v2/workers/{id}" => Some(json!({ "info": format!("set by {caller:?}") })),
                _ => None,
            };
            let before = snapshot(&server, &admin, &request).await;
            let (got_status, answer) = if !row.path.starts_with("/api/") {
                // A web form: an API key in a header signs nobody in; only a session does.
                let fields = match row.path {
                    "/register" => vec![("username", format!("web-{caller:?}"))],
                    "/login" => vec![("apikey", key.clone().unwrap_or_default())],
                    _ => vec![
                        ("csrf", "forged".to_owned()),
                        ("username", format!("victim#{victim_id}")),
                        ("amount", "1".to_owned()),
                        ("form_id", "f".to_owned()),
                        ("worker", worker_id.clone()),
                        ("maintenance", "on".to_owned()),
                    ],
                };
                let mut form = web
                    .post(format!(
                        "{}{}",
                        server.base.trim_end_matches("/api/v2"),
                        row.path
                    ))
                    .form(&fields);
                if let Some(key) = &key {
                    form = form.header("apikey", key);
                }
                let response = form.send().await.unwrap();
                (response.status(), Value::Null)
            } else {
                server
                    .call(row.method.clone(), &path, key.as_deref(), body)
                    .await
            };
            assert_eq!(
                got_status.as_u16(),
                status,
                "{} {} as {caller:?}: {answer}",
                row.method,
                row.path
            );
            if refused {
                if !rc.is_empty() {
                    assert_eq!(
                        answer["rc"], rc,
                        "{} {} as {caller:?}",
                        row.method, row.path
                    );
                }
                let after = snapshot(&server, &admin, &request).await;
                assert_eq!(
                    before, after,
                    "{} {} as {caller:?} changed state",
                    row.method, row.path
                );
            }
        }
    }
    server.stop().await;
}
