//! The web pages over HTTP with a browser's cookie jar: signing in with an API key, the
//! account page and a new key, transfers with their confirmation and refusals, CSRF, signing
//! out, sessions across a restart, and the public tables.

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::util::TestServer;

/// A browser: a cookie jar, following redirects.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap()
}

/// The site's root URL.
fn site(server: &TestServer) -> String {
    server.base.trim_end_matches("/api/v2").to_owned()
}

/// The value of the first hidden input named `name` on `page`.
fn hidden(page: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in {page}"))
        + marker.len();
    page[start..].split('"').next().unwrap().to_owned()
}

/// Signs `browser` in with `key`; returns the account page.
async fn sign_in(server: &TestServer, browser: &reqwest::Client, key: &str) -> String {
    let response = browser
        .post(format!("{}/login", site(server)))
        .form(&[("apikey", key)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.url().path().ends_with("/account"));
    response.text().await.unwrap()
}

async fn get_page(browser: &reqwest::Client, url: String) -> (StatusCode, String, String) {
    let response = browser.get(url).send().await.unwrap();
    let status = response.status();
    let path = response.url().path().to_owned();
    (status, path, response.text().await.unwrap())
}

async fn post_form(
    browser: &reqwest::Client,
    url: String,
    fields: &[(&str, &str)],
) -> (StatusCode, String) {
    let response = browser.post(url).form(fields).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn kudos(server: &TestServer, key: &str) -> f64 {
    server.get("/find_user", Some(key)).await.1["kudos"]
        .as_f64()
        .unwrap()
}

#[tokio::test]
async fn signing_in_with_a_key_the_account_and_a_new_key() {
    let server = TestServer::start().await;
    let (_, key) = server.register("alice").await;
    let browser = browser();
    // Signed out, the account page sends you to sign in.
    let (_, path, _) = get_page(&browser, format!("{}/account", site(&server))).await;
    assert_eq!(path, "/login");
    let (status, page) = post_form(
        &browser,
        format!("{}/login", site(&server)),
        &[("apikey", "AAAAAAAAAAAAAAAAAAAAAA")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("not known here"));

    // The cookie: HttpOnly, SameSite=Lax, not Secure over http.
    let raw = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/login", site(&server)))
        .form(&[("apikey", key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), StatusCode::SEE_OTHER);
    let cookie = raw.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("horde_session="), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(flag), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "{cookie}");

    let account = sign_in(&server, &browser, &key).await;
    assert!(account.contains("alice#"), "{account}");
    assert!(account.contains("id=\"balance\""));
    let csrf = hidden(&account, "csrf");

    // A new key with a forged token is refused and changes nothing.
    let (status, _) = post_form(
        &browser,
        format!("{}/account/key", site(&server)),
        &[("csrf", "forged")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(server.get("/find_user", Some(&key)).await.0, StatusCode::OK);
    // With the session's token: shown once; the old key stops working at once.
    let (status, page) = post_form(
        &browser,
        format!("{}/account/key", site(&server)),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let start =
        page.find("id=\"api-key\" class=\"key\">").unwrap() + "id=\"api-key\" class=\"key\">".len();
    let new_key = page[start..].split('<').next().unwrap().to_owned();
    assert_eq!(new_key.len(), 22);
    assert_eq!(
        server.get("/find_user", Some(&key)).await.0,
        StatusCode::NOT_FOUND,
        "the old key belongs to nobody now"
    );
    assert_eq!(
        server.get("/find_user", Some(&new_key)).await.0,
        StatusCode::OK
    );

    // The session and the new key survive a restart.
    let dir = server.stop().await;
    let server = TestServer::start_in(dir, |_| {}).await;
    let (status, path, page) = get_page(&browser, format!("{}/account", site(&server))).await;
    assert_eq!((status, path.as_str()), (StatusCode::OK, "/account"));
    assert!(page.contains("alice#"));
    assert_eq!(
        server.get("/find_user", Some(&new_key)).await.0,
        StatusCode::OK
    );

    // Signing out ends it: the cookie no longer opens the account.
    let csrf = hidden(&page, "csrf");
    let (status, _) = post_form(
        &browser,
        format!("{}/logout", site(&server)),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, path, _) = get_page(&browser, format!("{}/account", site(&server))).await;
    assert_eq!(path, "/login");
    server.stop().await;
}

#[tokio::test]
async fn a_transfer_is_confirmed_then_paid_once_and_bad_forms_move_nothing() {
    let server = TestServer::start().await;
    let (admin, admin_key) = server.admin("admin").await;
    let (bob, bob_key) = server.register("bob").await;
    let (status, _) = server
        .call(
            Method::PUT,
            &format!("/users/{admin}"),
            Some(&admin_key),
            Some(json!({ "kudos": 100 })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let browser = browser();
    sign_in(&server, &browser, &admin_key).await;
    let (_, _, form) = get_page(&browser, format!("{}/transfer", site(&server))).await;
    let csrf = hidden(&form, "csrf");
    let bob_name = format!("bob#{bob}");

    // Refusals, each shown in the page; nothing moves.
    let bob_csrf = {
        let other = self::browser();
        let page = sign_in(&server, &other, &bob_key).await;
        hidden(&page, "csrf")
    };
    for (fields, status, message) in [
        (
            vec![("username", bob_name.as_str()), ("amount", "-3")],
            400,
            "negative",
        ),
        (
            vec![("username", bob_name.as_str()), ("amount", "lots")],
            400,
            "must be a number",
        ),
        (
            vec![("username", "nobody#99"), ("amount", "5")],
            404,
            "There is no user nobody#99",
        ),
        (
            vec![("username", "admin#1"), ("amount", "5")],
            400,
            "to yourself",
        ),
    ] {
        let mut fields = fields;
        fields.push(("csrf", &csrf));
        let (got, page) = post_form(&browser, format!("{}/transfer", site(&server)), &fields).await;
        assert_eq!(got.as_u16(), status, "{page}");
        assert!(page.contains(message), "{message}: {page}");
        assert!(page.contains("class=\"error\""));
    }
    // A token from another session (bob's) is refused.
    let (got, _) = post_form(
        &browser,
        format!("{}/transfer", site(&server)),
        &[
            ("username", &bob_name),
            ("amount", "5"),
            ("csrf", &bob_csrf),
        ],
    )
    .await;
    assert_eq!(got, StatusCode::FORBIDDEN);
    let (got, _) = post_form(
        &browser,
        format!("{}/transfer/send", site(&server)),
        &[
            ("username", &bob_name),
            ("amount", "5"),
            ("csrf", &bob_csrf),
            ("form_id", "x"),
        ],
    )
    .await;
    assert_eq!(got, StatusCode::FORBIDDEN);
    assert_eq!(kudos(&server, &bob_key).await, 0.0);

    // The confirmation shows both names and the amount.
    let (got, confirm) = post_form(
        &browser,
        format!("{}/transfer", site(&server)),
        &[("username", &bob_name), ("amount", "12.5"), ("csrf", &csrf)],
    )
    .await;
    assert_eq!(got, StatusCode::OK);
    assert!(confirm.contains("admin#1") && confirm.contains(&bob_name) && confirm.contains("12.5"));
    assert_eq!(
        kudos(&server, &bob_key).await,
        0.0,
        "nothing moves before confirming"
    );
    let fields = [
        ("csrf", hidden(&confirm, "csrf")),
        ("username", hidden(&confirm, "username")),
        ("amount", hidden(&confirm, "amount")),
        ("form_id", hidden(&confirm, "form_id")),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for _ in 0..2 {
        // Sent twice (a double click, a reload): paid once.
        let (got, page) = post_form(
            &browser,
            format!("{}/transfer/send", site(&server)),
            &fields,
        )
        .await;
        assert_eq!(got, StatusCode::OK, "{page}");
        assert!(page.contains("Sent 12.5 kudos"), "{page}");
    }
    assert_eq!(kudos(&server, &bob_key).await, 12.5);
    assert_eq!(kudos(&server, &admin_key).await, 87.5);
    // The account page lists the movements, newest first, from the sender's side.
    let (_, _, account) = get_page(&browser, format!("{}/account", site(&server))).await;
    let table = &account[account.find("id=\"movements\"").expect("no movements")..];
    let transfer = table.find("transfer").unwrap();
    let grant = table.find("admin").unwrap();
    assert!(transfer < grant, "newest first: {table}");
    assert!(table.contains(&bob_name) && table.contains("−12.5") && table.contains("+100"));
    server.stop().await;
}

#[tokio::test]
async fn public_pages_list_workers_models_and_users_escaped() {
    let server = TestServer::start().await;
    let (_, key) = server.register("<b>mallory</b>").await;
    let (status, _) = server
        .post(
            "/generate/text/pop",
            Some(&key),
            json!({ "name": "<script>alert(1)</script>", "models": ["<i>model</i>"] }),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let browser = browser();
    for (path, raw, escaped) in [
        (
            "/workers",
            "<script>alert(1)</script>",
            "&lt;script&gt;alert(1)&lt;/script&gt;",
        ),
        ("/models", "<i>model</i>", "&lt;i&gt;model&lt;/i&gt;"),
        ("/users", "<b>mallory</b>", "&lt;b&gt;mallory&lt;/b&gt;"),
        ("/", "<i>model</i>", "&lt;i&gt;model&lt;/i&gt;"),
    ] {
        let (status, _, page) = get_page(&browser, format!("{}{path}", site(&server))).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(page.contains(escaped), "{path}: {page}");
        assert!(!page.contains(raw), "{path} holds unescaped user text");
        assert!(page.contains("name=\"viewport\""), "{path}: phone-ready");
    }
    server.stop().await;
}

#[tokio::test]
async fn the_account_shows_what_generations_earned_and_cost() {
    let server = TestServer::start().await;
    let (_, client_key) = server.register("client").await;
    let (_, worker_key) = server.register("worker").await;
    let (_, queued) = server
        .post(
            "/generate/text/async",
            Some(&client_key),
            json!({ "prompt": "Hi" }),
        )
        .await;
    assert!(queued["id"].is_string(), "{queued}");
    let (_, job) = server
        .post(
            "/generate/text/pop",
            Some(&worker_key),
            json!({ "name": "w", "models": ["koboldcpp/Llama-3-8B-Instruct"] }),
        )
        .await;
    let (_, reward) = server
        .post(
            "/generate/text/submit",
            Some(&worker_key),
            json!({ "id": job["id"], "generation": "Hello there" }),
        )
        .await;
    let reward = reward["reward"].as_f64().unwrap();
    assert!(reward > 0.0);
    let cell = |page: &str, id: &str| {
        let marker = format!("id=\"{id}\">");
        let start = page.find(&marker).unwrap() + marker.len();
        page[start..]
            .split('<')
            .next()
            .unwrap()
            .parse::<f64>()
            .unwrap()
    };
    let worker_page = sign_in(&server, &browser(), &worker_key).await;
    assert_eq!(cell(&worker_page, "earned"), reward);
    assert_eq!(cell(&worker_page, "spent"), 0.0);
    let client_page = sign_in(&server, &browser(), &client_key).await;
    assert_eq!(cell(&client_page, "spent"), reward);
    assert!(
        client_page.contains("generation"),
        "listed among the movements"
    );
    // Neither side of a generation learns who the other is (the owner's workers are private).
    let movements = |page: &str| page.split("id=\"movements\"").nth(1).unwrap().to_owned();
    let client_rows = movements(&client_page);
    assert!(!client_rows.contains("worker#"), "{client_rows}");
    assert!(
        client_rows.contains("a worker&#x27;s owner") || client_rows.contains("a worker's owner"),
        "{client_rows}"
    );
    let worker_rows = movements(&worker_page);
    assert!(!worker_rows.contains("client#"), "{worker_rows}");
    assert!(worker_rows.contains("a requester"), "{worker_rows}");
    // Nor do the user pages list whose workers are whose, except to the owner.
    let (_, details) = server.get("/users/2", Some(&client_key)).await;
    assert_eq!(details["worker_ids"], json!([]), "{details}");
    assert_eq!(details["worker_count"], 1, "{details}");
    let (_, users) = server.get("/users", None).await;
    assert!(users
        .as_array()
        .unwrap()
        .iter()
        .all(|u| u["worker_ids"] == json!([])));
    let (_, own) = server.get("/users/2", Some(&worker_key)).await;
    assert_eq!(own["worker_ids"].as_array().unwrap().len(), 1, "{own}");
    server.stop().await;
}

/// A new key signs out every other browser (one that had the old key could otherwise rotate
/// again and read the new one); "sign out everywhere" ends them all; one user holds at most
/// twenty sessions, the oldest ending first.
#[tokio::test]
async fn a_new_key_ends_other_sessions_and_sessions_are_bounded() {
    let server = TestServer::start().await;
    let (_, key) = server.register("alice").await;
    let (mine, thief) = (browser(), browser());
    let page = sign_in(&server, &mine, &key).await;
    sign_in(&server, &thief, &key).await;
    let (status, page) = post_form(
        &mine,
        format!("{}/account/key", site(&server)),
        &[("csrf", &hidden(&page, "csrf"))],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("signed out"), "{page}");
    let (_, path, _) = get_page(&thief, format!("{}/account", site(&server))).await;
    assert_eq!(path, "/login", "the other browser is still signed in");
    let (_, path, page) = get_page(&mine, format!("{}/account", site(&server))).await;
    assert_eq!(path, "/account", "this browser stays signed in");
    let new_key = page
        .split("<code id=\"api-key\" class=\"key\">")
        .nth(1)
        .map(|rest| rest.split('<').next().unwrap().to_owned());
    assert!(new_key.is_none(), "the key is shown only once");

    // Twenty-five sign-ins with one key: the first five are signed out.
    let (_, key) = server.register("bob").await;
    let mut browsers = Vec::new();
    for _ in 0..25 {
        let b = browser();
        sign_in(&server, &b, &key).await;
        browsers.push(b);
    }
    for (i, b) in browsers.iter().enumerate() {
        let (_, path, _) = get_page(b, format!("{}/account", site(&server))).await;
        let expected = if i < 5 { "/login" } else { "/account" };
        assert_eq!(path, expected, "session {i}");
    }
    // Sign out everywhere, from the last one.
    let (_, _, page) = get_page(&browsers[24], format!("{}/account", site(&server))).await;
    let csrf = page
        .split("action=\"/logout/everywhere\">")
        .nth(1)
        .map(|form| hidden(form, "csrf"))
        .unwrap();
    let (status, _) = post_form(
        &browsers[24],
        format!("{}/logout/everywhere", site(&server)),
        &[("csrf", &csrf)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for b in &browsers {
        let (_, path, _) = get_page(b, format!("{}/account", site(&server))).await;
        assert_eq!(path, "/login");
    }
    server.stop().await;
}

/// Another site's form posting a key to `/login` (to sign the visitor into an account the
/// attacker watches) is refused; the horde's own form signs in.
#[tokio::test]
async fn sign_in_from_another_site_is_refused() {
    let server = TestServer::start().await;
    let (_, key) = server.register("watched").await;
    let login = format!("{}/login", site(&server));
    let host = server.addr.to_string();
    for (name, value) in [
        ("origin", "https://evil.example".to_owned()),
        ("origin", "null".to_owned()),
        ("sec-fetch-site", "cross-site".to_owned()),
    ] {
        let b = browser();
        let response = b
            .post(&login)
            .header(name, value.as_str())
            .form(&[("apikey", key.as_str())])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{name}: {value}");
        let (_, path, _) = get_page(&b, format!("{}/account", site(&server))).await;
        assert_eq!(path, "/login", "{name}: {value} signed in");
    }
    let b = browser();
    let response = b
        .post(&login)
        .header("origin", format!("http://{host}"))
        .header("sec-fetch-site", "same-origin")
        .form(&[("apikey", key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.url().path(), "/account");
    server.stop().await;
}

/// Pages tell browsers not to sniff, not to be framed, and to run no script but the copy
/// button's (whose hash the policy names: the same text as on the page).
#[tokio::test]
async fn pages_carry_headers_against_sniffing_framing_and_injected_scripts() {
    let server = TestServer::start().await;
    let response = reqwest::get(format!("{}/", site(&server))).await.unwrap();
    let headers = response.headers();
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["x-frame-options"], "DENY");
    let policy = headers["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(policy.contains("default-src 'none'"), "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    let (_, answer) = server.get("/status/heartbeat", None).await;
    assert_eq!(answer["message"], "OK");
    let api = reqwest::get(format!("{}/status/heartbeat", server.base))
        .await
        .unwrap();
    assert_eq!(api.headers()["x-content-type-options"], "nosniff");
    assert!(api.headers().get("content-security-policy").is_none());
    // The one handler on the pages hashes to what the policy allows.
    let page = server
        .client
        .post(format!("{}/register", site(&server)))
        .form(&[("username", "hash-check")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let handler = page
        .split("onclick=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no copy button on {page}"));
    use base64::Engine;
    use sha2::Digest;
    let hash = base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(handler));
    assert!(policy.contains(&format!("'sha256-{hash}'")), "{policy}");
    server.stop().await;
}

/// What a visitor finds: an HTML page for a URL nothing serves (JSON for API clients and
/// under `/api`), an icon, the API's page as a page of the site (its navigation, code shown as
/// code, no link a visitor cannot follow), a home page with this horde's own address in its
/// examples and what kudos are, the workers with their owners where public and a page each,
/// the balance on the transfer form, and a new user signed in at registration.
#[tokio::test]
async fn pages_for_people_who_visit() {
    let server = TestServer::start().await;
    let site = site(&server);
    let browser = browser();
    let html = |path: &str| {
        browser
            .get(format!("{site}{path}"))
            .header("accept", "text/html,application/xhtml+xml")
            .send()
    };

    let missing = html("/no/such/page").await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert!(missing.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let text = missing.text().await.unwrap();
    assert!(
        text.contains("Page not found") && text.contains("<nav>"),
        "{text}"
    );
    let api_client = reqwest::get(format!("{site}/no/such/page")).await.unwrap();
    assert_eq!(api_client.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        api_client.json::<serde_json::Value>().await.unwrap()["rc"],
        "NotFound"
    );
    let under_api = html("/api/v2/nothing").await.unwrap();
    assert_eq!(
        under_api.json::<serde_json::Value>().await.unwrap()["rc"],
        "NotFound"
    );
    let icon = browser
        .get(format!("{site}/favicon.ico"))
        .send()
        .await
        .unwrap();
    assert_eq!(icon.status(), StatusCode::OK, "followed to the SVG");
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");

    let api = html("/api").await.unwrap().text().await.unwrap();
    assert!(api.contains("<nav>"), "a page of the site");
    assert!(api.contains("<code>apikey</code>"), "code shown as code");
    assert!(!api.contains('`') && !api.contains("docs/api.md"));

    let home = html("/").await.unwrap().text().await.unwrap();
    assert!(
        home.contains(&format!("OpenAI(base_url=\"{site}/v1\"")),
        "{home}"
    );
    assert!(home.contains("--horde-url {site}".replace("{site}", &site).as_str()));
    assert!(home.contains("<h2>Kudos</h2>") && home.contains("<details>"));
    let public = TestServer::start_with(|config| {
        config.public_url = Some("https://horde.example.org".into());
    })
    .await;
    let named = reqwest::get(format!("{}/", site_of(&public)))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(named.contains("horde-cli --url https://horde.example.org login"));
    public.stop().await;

    // Workers: the owner where public, a page each.
    let (alice_id, alice) = server.register("alice").await;
    let (_, bob) = server.register("bob").await;
    for (key, name) in [(&alice, "alice-gpu"), (&bob, "bob-gpu")] {
        let (status, _) = server
            .post(
                "/generate/text/pop",
                Some(key),
                json!({
                    "name": name,
                    "models": ["koboldcpp/Llama-3-8B-Instruct"],
                    "bridge_agent": "KoboldAI Bridge:10:https://bridge.example.org/<x>",
                }),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, _) = server
        .call(
            Method::PUT,
            &format!("/users/{alice_id}"),
            Some(&alice),
            Some(json!({ "public_workers": true })),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let list = html("/workers").await.unwrap().text().await.unwrap();
    assert!(list.contains(&format!("alice#{alice_id}")), "{list}");
    assert!(!list.contains("bob#"), "bob's workers are not public");
    let (_, worker) = server.get("/workers/name/alice-gpu", None).await;
    let id = worker["id"].as_str().unwrap();
    assert!(list.contains(&format!("href=\"/workers/{id}\"")));
    let one = html(&format!("/workers/{id}")).await.unwrap();
    assert_eq!(one.status(), StatusCode::OK);
    let one = one.text().await.unwrap();
    assert!(
        one.contains("<h1>alice-gpu</h1>") && one.contains("tokens per second"),
        "{one}"
    );
    assert!(one.contains("Uptime"), "{one}");
    // The software as name and version, linked to its (escaped) address.
    assert!(
        one.contains(r#"<a href="https://bridge.example.org/&lt;x&gt;" rel="nofollow noopener">KoboldAI Bridge 10</a>"#),
        "{one}"
    );
    let unknown = html("/workers/00000000-0000-0000-0000-000000000000")
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        html("/workers/nonsense").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );

    // Registering signs in; the transfer form shows what you hold.
    let newcomer = self::browser();
    let registered = newcomer
        .post(format!("{site}/register"))
        .form(&[("username", "carol")])
        .send()
        .await
        .unwrap();
    assert_eq!(registered.status(), StatusCode::CREATED);
    let page = registered.text().await.unwrap();
    assert!(page.contains("You are signed in"), "{page}");
    let (status, path, form) = get_page(&newcomer, format!("{site}/transfer")).await;
    assert_eq!((status, path.as_str()), (StatusCode::OK, "/transfer"));
    assert!(
        form.contains("<strong id=\"form-balance\">0</strong>"),
        "{form}"
    );
    server.stop().await;
}

/// The site's root URL of another server.
fn site_of(server: &TestServer) -> String {
    server.base.trim_end_matches("/api/v2").to_owned()
}
