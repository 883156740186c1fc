//! Sign-in with GitHub or Discord: the OAuth 2 authorization-code flow with PKCE and `state`
//! (the `oauth2` crate).
//!
//! `/oauth/{provider}/start` remembers a random `state` with its PKCE verifier and sends the
//! browser to the provider; `/oauth/{provider}/callback` takes that `state` back (once, within
//! ten minutes), exchanges the code, asks the provider's user endpoint who this is, and signs in
//! the account linked to that provider identity — creating it on the first sign-in, with an
//! alias made from the provider's name. A wrong or replayed `state`, a refused code or a
//! provider error shows a page and creates nothing.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthUrl, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointNotSet, EndpointSet,
    PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse, TokenUrl,
};
use serde::Deserialize;
use serde_json::Value;

use super::account::start_session;
use super::{redirect, PageError};
use crate::auth::valid_alias;
use crate::config::{Config, OAuthProvider};
use crate::driver::Driver;
use crate::error::ApiError;
use crate::extract::ClientIp;
use crate::ops;
use crate::sessions::{PendingLogin, PENDING_TTL_MS};

/// A provider people may sign in with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provider {
    GitHub,
    Discord,
    Google,
}

type Client = BasicClient<EndpointSet, EndpointNotSet, EndpointNotSet, EndpointNotSet, EndpointSet>;

impl Provider {
    /// All of them, in the order the pages show them.
    pub(crate) const ALL: [Provider; 3] = [Provider::GitHub, Provider::Discord, Provider::Google];

    fn from_path(name: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Its name in URLs and in the database.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Provider::GitHub => "github",
            Provider::Discord => "discord",
            Provider::Google => "google",
        }
    }

    /// Its name for people.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Provider::GitHub => "GitHub",
            Provider::Discord => "Discord",
            Provider::Google => "Google",
        }
    }

    /// Its settings, if this horde has them.
    pub(crate) fn settings(self, config: &Config) -> Option<&OAuthProvider> {
        match self {
            Provider::GitHub => config.oauth.github.as_ref(),
            Provider::Discord => config.oauth.discord.as_ref(),
            Provider::Google => config.oauth.google.as_ref(),
        }
    }

    fn default_urls(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Provider::GitHub => (
                "https://github.com/login/oauth/authorize",
                "https://github.com/login/oauth/access_token",
                "https://api.github.com/user",
            ),
            Provider::Discord => (
                "https://discord.com/oauth2/authorize",
                "https://discord.com/api/oauth2/token",
                "https://discord.com/api/users/@me",
            ),
            Provider::Google => (
                "https://accounts.google.com/o/oauth2/v2/auth",
                "https://oauth2.googleapis.com/token",
                "https://openidconnect.googleapis.com/v1/userinfo",
            ),
        }
    }

    fn scope(self) -> &'static str {
        match self {
            Provider::GitHub => "read:user",
            Provider::Discord => "identify",
            // The name only: no e-mail address is asked for.
            Provider::Google => "openid profile",
        }
    }

    /// The field of the user endpoint's answer that holds the name.
    fn name_field(self) -> &'static str {
        match self {
            Provider::GitHub => "login",
            Provider::Discord => "username",
            Provider::Google => "name",
        }
    }

    /// The field of the user endpoint's answer that holds the user's stable id (OpenID
    /// Connect's `sub` at Google).
    fn id_field(self) -> &'static str {
        match self {
            Provider::GitHub | Provider::Discord => "id",
            Provider::Google => "sub",
        }
    }
}

/// The "Sign in with …" links for the configured providers.
pub(crate) fn sign_in_links(config: &Config) -> String {
    let links: Vec<String> = Provider::ALL
        .into_iter()
        .filter(|p| p.settings(config).is_some())
        .map(|p| {
            format!(
                "<p><a class=\"button\" href=\"/oauth/{}/start\">Sign in with {}</a></p>",
                p.name(),
                p.label()
            )
        })
        .collect();
    links.concat()
}

/// The site's base URL: the configured public URL, else this request's host.
fn base_url(config: &Config, headers: &HeaderMap) -> String {
    if let Some(url) = &config.public_url {
        return url.clone();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1:7001");
    format!("http://{host}")
}

/// The OAuth client of `provider`, calling back to `base`.
fn client(provider: Provider, settings: &OAuthProvider, base: &str) -> Result<Client, String> {
    let (auth, token, _) = provider.default_urls();
    let auth = settings.auth_url.as_deref().unwrap_or(auth);
    let token = settings.token_url.as_deref().unwrap_or(token);
    let callback = format!("{base}/oauth/{}/callback", provider.name());
    Ok(BasicClient::new(ClientId::new(settings.client_id.clone()))
        .set_client_secret(ClientSecret::new(settings.client_secret.clone()))
        .set_auth_uri(AuthUrl::new(auth.to_owned()).map_err(|e| e.to_string())?)
        .set_token_uri(TokenUrl::new(token.to_owned()).map_err(|e| e.to_string())?)
        .set_redirect_uri(RedirectUrl::new(callback).map_err(|e| e.to_string())?))
}

/// The provider a path names, if this horde has it.
fn configured<'a>(config: &'a Config, name: &str) -> Option<(Provider, &'a OAuthProvider)> {
    let provider = Provider::from_path(name)?;
    Some((provider, provider.settings(config)?))
}

/// The page for a provider this horde does not have.
fn no_such_sign_in() -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        None,
        "This horde has no such sign-in.",
    )
}

/// The cookie that ties a sign-in to the browser that began it.
const BROWSER_COOKIE: &str = "horde_oauth";

/// The `Set-Cookie` value of [`BROWSER_COOKIE`] (`None`: remove it). Sent back on the
/// provider's redirect, a top-level navigation, so `SameSite=Lax` lets it through.
fn browser_cookie(config: &Config, token: Option<&str>) -> HeaderValue {
    let max_age = PENDING_TTL_MS / 1000;
    super::cookie_header(
        config,
        BROWSER_COOKIE,
        "/oauth",
        token.map(|t| (t, max_age)),
    )
}

pub(super) async fn start(
    State(state): State<Driver>,
    Path(name): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let (provider, settings) = configured(state.config(), &name).ok_or_else(no_such_sign_in)?;
    let client = match client(provider, settings, &base_url(state.config(), &headers)) {
        Ok(client) => client,
        Err(e) => {
            tracing::error!(provider = provider.name(), error = %e, "bad OAuth settings");
            return Err(PageError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                "This sign-in is misconfigured on the horde.",
            ));
        }
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf) = client
        .authorize_url(CsrfToken::new_random)
        .add_scope(Scope::new(provider.scope().to_owned()))
        .set_pkce_challenge(challenge)
        .url();
    let browser = crate::auth::new_token().map_err(ApiError::from)?;
    ops::oauth::remember(
        &state,
        csrf.secret().clone(),
        provider.name(),
        verifier.secret().clone(),
        &browser,
        ip,
    )
    .await?;
    let mut response = redirect(url.as_str(), None);
    response.headers_mut().append(
        header::SET_COOKIE,
        browser_cookie(state.config(), Some(&browser)),
    );
    Ok(response)
}

/// The [`BROWSER_COOKIE`] this request carries.
fn browser_token(headers: &HeaderMap) -> Option<String> {
    super::cookie(headers, BROWSER_COOKIE)
}

#[derive(Debug, Deserialize)]
pub(super) struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
    error_description: Option<String>,
}

pub(super) async fn callback(
    State(state): State<Driver>,
    Path(name): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    query: Result<Query<Callback>, QueryRejection>,
) -> Result<Response, PageError> {
    let (provider, settings) = configured(state.config(), &name).ok_or_else(no_such_sign_in)?;
    let Ok(Query(callback)) = query else {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            None,
            "This sign-in link is incomplete.",
        ));
    };
    let label = provider.label();
    let token = callback.state.unwrap_or_default();
    let browser = browser_token(&headers);
    let pending = ops::oauth::take(&state, &token, browser.as_deref())
        .await
        .ok()
        .flatten()
        .filter(|(login, _)| login.provider == provider.name());
    if let Some((_, false)) = pending {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            None,
            format!(
                "This {label} sign-in was started in another browser (or its cookie was \
                 refused). Nothing was created; start the sign-in again in this browser."
            ),
        ));
    }
    let Some((pending, _)) = pending else {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            None,
            format!(
                "This {label} sign-in did not start here, was already used, or took longer \
                 than ten minutes. Nothing was created; please sign in again."
            ),
        ));
    };
    if let Some(error) = callback.error {
        let detail = callback.error_description.unwrap_or_default();
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            None,
            format!(
                "{label} did not sign you in ({error}{}{detail}). Nothing was created.",
                if detail.is_empty() { "" } else { ": " }
            ),
        ));
    }
    let Some(code) = callback.code else {
        return Err(PageError::new(
            StatusCode::BAD_REQUEST,
            None,
            "This sign-in link has no code.",
        ));
    };
    let identity = match identify(
        provider,
        settings,
        &base_url(state.config(), &headers),
        code,
        pending,
    )
    .await
    {
        Ok(identity) => identity,
        Err(message) => {
            tracing::warn!(provider = provider.name(), %message, "OAuth sign-in failed");
            return Err(PageError::new(
                StatusCode::BAD_GATEWAY,
                None,
                format!("{label} did not confirm who you are: {message}. Nothing was created."),
            ));
        }
    };
    let user = ops::oauth::account_for(
        &state,
        provider.name(),
        &identity.subject,
        &valid_alias(&identity.name),
        ip,
    )
    .await?;
    let cookie = start_session(&state, user).await?;
    let mut response = redirect("/account", Some(cookie));
    response
        .headers_mut()
        .append(header::SET_COOKIE, browser_cookie(state.config(), None));
    Ok(response)
}

/// Who the provider says this is.
#[derive(Debug)]
struct Identity {
    subject: String,
    name: String,
}

/// Exchanges `code` (with the PKCE verifier) and asks the user endpoint.
async fn identify(
    provider: Provider,
    settings: &OAuthProvider,
    base: &str,
    code: String,
    pending: PendingLogin,
) -> Result<Identity, String> {
    let client = client(provider, settings, base)?;
    // No redirects: following them from a token endpoint invites SSRF.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(15))
        .build()
        .map_err(|e| e.to_string())?;
    let token = client
        .exchange_code(AuthorizationCode::new(code))
        .set_pkce_verifier(PkceCodeVerifier::new(pending.verifier))
        .request_async(&http)
        .await
        .map_err(|e| format!("the code was refused ({e})"))?;
    let (_, _, user_url) = provider.default_urls();
    let user_url = settings.user_url.as_deref().unwrap_or(user_url);
    let answer: Value = http
        .get(user_url)
        .bearer_auth(token.access_token().secret())
        .header(
            header::USER_AGENT,
            concat!("horde-server/", env!("CARGO_PKG_VERSION")),
        )
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| format!("its user endpoint failed ({e})"))?
        .json()
        .await
        .map_err(|e| format!("its user endpoint answered something else ({e})"))?;
    let subject = match &answer[provider.id_field()] {
        Value::String(id) if !id.is_empty() => id.clone(),
        Value::Number(id) => id.to_string(),
        _ => return Err("its user endpoint gave no id".into()),
    };
    // The provider is outside too: its id becomes a key in the store (which cannot hold a
    // NUL) and must stay the same text after a restart.
    if subject.len() > 256 || subject.contains(char::is_control) {
        return Err("its user endpoint gave an id that is not plain text".into());
    }
    let name = answer[provider.name_field()]
        .as_str()
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    Ok(Identity { subject, name })
}
