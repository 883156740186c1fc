//! Sign-in with GitHub, Discord and Google against a small OAuth 2 provider on loopback that checks
//! what a real one checks: the client's credentials, the redirect, PKCE, and that a code is
//! used once.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use horde_server::config::OAuthProvider;
use parking_lot::Mutex;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::util::TestServer;

const CLIENT_ID: &str = "test-client";
const CLIENT_SECRET: &str = "s3cret";

/// The provider's state: who "signs in" next, and the codes and tokens it gave.
#[derive(Default)]
pub(crate) struct Provider {
    /// The user the next authorization signs in, as the user endpoint answers it.
    pub(crate) user: Mutex<Value>,
    /// code → (PKCE challenge, user, used).
    codes: Mutex<HashMap<String, (String, Value, bool)>>,
    /// access token → user.
    tokens: Mutex<HashMap<String, Value>>,
    next: Mutex<u64>,
}

async fn authorize(
    State(provider): State<Arc<Provider>>,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let valid = query.get("client_id").map(String::as_str) == Some(CLIENT_ID)
        && query.get("response_type").map(String::as_str) == Some("code")
        && query.get("code_challenge_method").map(String::as_str) == Some("S256");
    let (Some(redirect), Some(state), Some(challenge), true) = (
        query.get("redirect_uri"),
        query.get("state"),
        query.get("code_challenge"),
        valid,
    ) else {
        return (StatusCode::BAD_REQUEST, "bad authorize request").into_response();
    };
    let code = {
        let mut next = provider.next.lock();
        *next += 1;
        format!("code-{next}")
    };
    let user = provider.user.lock().clone();
    provider
        .codes
        .lock()
        .insert(code.clone(), (challenge.clone(), user, false));
    Redirect::to(&format!("{redirect}?code={code}&state={state}")).into_response()
}

async fn token(
    State(provider): State<Arc<Provider>>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let basic =
        base64::engine::general_purpose::STANDARD.encode(format!("{CLIENT_ID}:{CLIENT_SECRET}"));
    let authorized = headers.get("authorization").and_then(|v| v.to_str().ok())
        == Some(&format!("Basic {basic}"));
    let refuse =
        |error: &str| (StatusCode::BAD_REQUEST, Json(json!({ "error": error }))).into_response();
    if !authorized {
        return refuse("invalid_client");
    }
    let (Some(code), Some(verifier)) = (form.get("code"), form.get("code_verifier")) else {
        return refuse("invalid_request");
    };
    let mut codes = provider.codes.lock();
    let Some((challenge, user, used)) = codes.get_mut(code) else {
        return refuse("invalid_grant");
    };
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    if *used || computed != *challenge {
        return refuse("invalid_grant");
    }
    *used = true;
    let access = format!("token-{code}");
    provider.tokens.lock().insert(access.clone(), user.clone());
    Json(json!({ "access_token": access, "token_type": "bearer" })).into_response()
}

async fn user(State(provider): State<Arc<Provider>>, headers: HeaderMap) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    match provider.tokens.lock().get(token) {
        Some(user) => Json(user.clone()).into_response(),
        None => StatusCode::UNAUTHORIZED.into_response(),
    }
}

/// Starts the provider on loopback; returns it and its base URL.
pub(crate) async fn start_provider() -> (Arc<Provider>, String) {
    let provider = Arc::new(Provider::default());
    let app = Router::new()
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .route("/user", get(user))
        .with_state(Arc::clone(&provider));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (provider, url)
}

/// The settings of an application at the provider at `provider_url`.
pub(crate) fn settings(provider_url: &str) -> OAuthProvider {
    OAuthProvider {
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        auth_url: Some(format!("{provider_url}/authorize")),
        token_url: Some(format!("{provider_url}/token")),
        user_url: Some(format!("{provider_url}/user")),
    }
}

/// A horde with GitHub, Discord and Google all played by `provider_url`.
async fn horde_with(provider_url: &str) -> TestServer {
    let settings = settings(provider_url);
    TestServer::start_with(|config| {
        config.oauth.github = Some(settings.clone());
        config.oauth.discord = Some(settings.clone());
        config.oauth.google = Some(settings);
    })
    .await
}

fn site(server: &TestServer) -> String {
    server.base.trim_end_matches("/api/v2").to_owned()
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

/// Signs a fresh browser in through `provider`; returns the final path and page.
async fn sign_in(server: &TestServer, provider: &str) -> (StatusCode, String, String) {
    let response = browser()
        .get(format!("{}/oauth/{provider}/start", site(server)))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let path = response.url().path().to_owned();
    (status, path, response.text().await.unwrap())
}

async fn user_count(server: &TestServer) -> usize {
    server.get("/users", None).await.1.as_array().unwrap().len()
}

#[tokio::test]
async fn the_first_sign_in_creates_the_account_and_later_ones_reach_it() {
    let (provider, url) = start_provider().await;
    let server = horde_with(&url).await;
    let page = reqwest::get(format!("{}/login", site(&server)))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for provider in ["GitHub", "Discord", "Google"] {
        assert!(page.contains(&format!("Sign in with {provider}")), "{page}");
    }

    *provider.user.lock() = json!({ "id": 4242, "login": "octo#cat\u{202E}" });
    let (status, path, page) = sign_in(&server, "github").await;
    assert_eq!(
        (status, path.as_str()),
        (StatusCode::OK, "/account"),
        "{page}"
    );
    // The alias is made valid: no '#', no hidden characters.
    assert!(page.contains("octocat#"), "{page}");
    let users = user_count(&server).await;

    let (_, path, again) = sign_in(&server, "github").await;
    assert_eq!(path, "/account");
    let name = |page: &str| {
        let start = page.find("octocat#").unwrap();
        page[start..].split('<').next().unwrap().to_owned()
    };
    assert_eq!(name(&again), name(&page), "the same account");
    assert_eq!(user_count(&server).await, users, "nothing new");

    // The same id at Discord is another identity, so another account.
    *provider.user.lock() = json!({ "id": "4242", "username": "disco" });
    let (_, path, page) = sign_in(&server, "discord").await;
    assert_eq!(path, "/account");
    assert!(page.contains("disco#"), "{page}");
    assert_eq!(user_count(&server).await, users + 1);

    // Google names its users by OpenID Connect's `sub`, and gives a full name.
    *provider.user.lock() = json!({ "sub": "4242", "name": "Ada Lovelace" });
    let (_, path, page) = sign_in(&server, "google").await;
    assert_eq!(path, "/account");
    assert!(page.contains("Ada Lovelace#"), "{page}");
    assert_eq!(user_count(&server).await, users + 2);
    let (_, _, again) = sign_in(&server, "google").await;
    assert!(again.contains("Ada Lovelace#"), "{again}");
    assert_eq!(user_count(&server).await, users + 2, "the same account");
    // Without `sub`, nothing is created.
    *provider.user.lock() = json!({ "id": "4242", "name": "No Sub" });
    let (status, _, _) = sign_in(&server, "google").await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(user_count(&server).await, users + 2);

    // Identities survive a restart.
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, |config| {
        config.oauth.discord = Some(settings(&url));
    })
    .await;
    let (_, _, page) = sign_in(&server, "discord").await;
    assert!(page.contains("disco#"), "{page}");
    assert_eq!(user_count(&server).await, users + 2);
    server.stop().await;
}

#[tokio::test]
async fn a_wrong_state_a_replayed_code_or_a_provider_error_creates_nothing() {
    let (provider, url) = start_provider().await;
    let server = horde_with(&url).await;
    *provider.user.lock() = json!({ "id": 7, "login": "newbie" });
    let before = user_count(&server).await;
    // One browser: `hop` goes step by step, `finish` follows redirects; one cookie jar.
    let jar: Arc<reqwest::cookie::Jar> = Arc::default();
    let hop = reqwest::Client::builder()
        .cookie_provider(Arc::clone(&jar))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let finish = reqwest::Client::builder()
        .cookie_provider(Arc::clone(&jar))
        .build()
        .unwrap();
    // Follows the flow by hand up to the provider's redirect back: the callback URL.
    let callback_url = || async {
        let start = hop
            .get(format!("{}/oauth/github/start", site(&server)))
            .send()
            .await
            .unwrap();
        assert_eq!(start.status(), StatusCode::SEE_OTHER);
        let to_provider = start.headers()["location"].to_str().unwrap().to_owned();
        let back = hop.get(to_provider).send().await.unwrap();
        back.headers()["location"].to_str().unwrap().to_owned()
    };
    let query = |url: &str, key: &str| {
        url.split(['?', '&'])
            .find_map(|pair| pair.strip_prefix(&format!("{key}=")))
            .unwrap()
            .to_owned()
    };

    // A state the horde never issued.
    let forged = format!(
        "{}/oauth/github/callback?code=code-1&state=forged",
        site(&server)
    );
    let response = browser().get(forged).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("did not start here"));

    // A callback used twice: the second is refused (the state is spent).
    let first = callback_url().await;
    let response = finish.get(&first).send().await.unwrap();
    assert_eq!(response.url().path(), "/account");
    let after_one = user_count(&server).await;
    assert_eq!(after_one, before + 1);
    let response = finish.get(&first).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    // A used code with a fresh state: the provider refuses it; nothing is created.
    *provider.user.lock() = json!({ "id": 8, "login": "intruder" });
    let fresh = callback_url().await;
    let replayed = format!(
        "{}/oauth/github/callback?code={}&state={}",
        site(&server),
        query(&first, "code"),
        query(&fresh, "state")
    );
    let response = finish.get(replayed).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("Nothing was created"));

    // The provider says no.
    let fresh = callback_url().await;
    let denied = format!(
        "{}/oauth/github/callback?error=access_denied&state={}",
        site(&server),
        query(&fresh, "state")
    );
    let response = finish.get(denied).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().await.unwrap().contains("access_denied"));

    assert_eq!(user_count(&server).await, after_one);
    // An unconfigured provider has no sign-in.
    let bare = TestServer::start().await;
    let response = browser()
        .get(format!("{}/oauth/github/start", site(&bare)))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    bare.stop().await;
    server.stop().await;
}

/// A provider whose user endpoint answers an id or a name with a NUL in it (PostgreSQL would
/// refuse the commit and stop the node): the id is refused, the name cleaned, and the node
/// serves on.
#[tokio::test]
async fn a_provider_answering_text_the_store_cannot_hold_stops_nothing() {
    let (provider, url) = start_provider().await;
    let server = horde_with(&url).await;
    let before = user_count(&server).await;
    *provider.user.lock() = json!({ "id": "9\u{0}9", "login": "nul" });
    let (status, path, page) = sign_in(&server, "github").await;
    assert_ne!(path, "/account", "{status} {page}");
    assert!(page.contains("not plain text"), "{page}");
    assert_eq!(user_count(&server).await, before, "nothing created");
    *provider.user.lock() = json!({ "id": 99, "login": "nul\u{0}name" });
    let (_, path, page) = sign_in(&server, "github").await;
    assert_eq!(path, "/account", "{page}");
    assert!(page.contains("nulname#"), "{page}");
    server.register("still-serving").await;
    server.stop().await;
}

/// A sign-in begun in one browser and finished in another (a link an attacker sends, which
/// would sign the victim in as the attacker) is refused; a flood of sign-ins from one address
/// is capped there and ends nobody else's sign-in in progress.
#[tokio::test]
async fn a_sign_in_is_finished_only_by_its_browser_and_floods_evict_nobody() {
    let (provider, url) = start_provider().await;
    let server = TestServer::start_with(|config| {
        config.oauth.github = Some(settings(&url));
        config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    *provider.user.lock() = json!({ "id": 31337, "login": "attacker" });
    let before = user_count(&server).await;
    // Begun by the attacker's browser, which stops before the provider.
    let from = |address: &str, jar: &Arc<reqwest::cookie::Jar>, follow: bool| {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-forwarded-for", address.parse().unwrap());
        reqwest::Client::builder()
            .cookie_provider(Arc::clone(jar))
            .default_headers(headers)
            .redirect(if follow {
                reqwest::redirect::Policy::limited(10)
            } else {
                reqwest::redirect::Policy::none()
            })
            .build()
            .unwrap()
    };
    let start = format!("{}/oauth/github/start", site(&server));
    let attacker_jar = Arc::default();
    let begun = from("10.0.0.66", &attacker_jar, false)
        .get(&start)
        .send()
        .await
        .unwrap();
    assert_eq!(begun.status(), StatusCode::SEE_OTHER);
    let to_provider = begun.headers()["location"].to_str().unwrap().to_owned();
    // The victim's browser follows the link.
    let victim = from("10.0.0.7", &Arc::default(), true);
    let response = victim.get(&to_provider).send().await.unwrap();
    assert_ne!(response.url().path(), "/account");
    let page = response.text().await.unwrap();
    assert!(page.contains("another browser"), "{page}");
    assert_eq!(user_count(&server).await, before, "nothing created");

    // A real sign-in in progress, then a flood from another address.
    let jar = Arc::default();
    let real = from("10.0.0.8", &jar, false)
        .get(&start)
        .send()
        .await
        .unwrap();
    let real_to_provider = real.headers()["location"].to_str().unwrap().to_owned();
    let flooder = from("10.0.0.66", &Arc::default(), false);
    let mut refused = 0;
    for _ in 0..50 {
        let response = flooder.get(&start).send().await.unwrap();
        if response.status() == StatusCode::TOO_MANY_REQUESTS {
            refused += 1;
        }
    }
    assert_eq!(
        refused,
        50 - 10,
        "one address holds at most ten sign-ins in progress"
    );
    *provider.user.lock() = json!({ "id": 8, "login": "real" });
    let finished = from("10.0.0.8", &jar, true)
        .get(&real_to_provider)
        .send()
        .await
        .unwrap();
    assert_eq!(
        finished.url().path(),
        "/account",
        "the real sign-in was evicted"
    );
    server.stop().await;
}
