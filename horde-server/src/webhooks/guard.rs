//! The SSRF guard: webhooks go to public addresses only, unless the operator allows private
//! ones. Checked when a request names a webhook (its host resolved then) and again at every
//! connection (a resolver that drops private addresses), so a name that later resolves to an
//! inside address reaches nothing.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// How long resolving a webhook's host may take.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(3);

/// Returns true if and only if `ip` is an address of the public internet: not loopback,
/// private (RFC 1918, IPv6 unique local), link-local, shared (CGNAT), unspecified, multicast,
/// broadcast, documentation or benchmarking (nor an IPv4 address mapped into IPv6 that is one).
///
/// ```
/// use horde_server::webhooks::guard::is_public;
/// assert!(is_public("93.184.215.14".parse().unwrap()));
/// for inside in ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
///                "100.64.0.1", "0.0.0.0", "::1", "fe80::1", "fd00::1", "::ffff:10.0.0.1"] {
///     assert!(!is_public(inside.parse().unwrap()), "{inside}");
/// }
/// ```
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (b == 18 || b == 19))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8)
        }
    }
}

/// Why a webhook URL is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// Not an `http` or `https` URL with a host.
    #[error("the webhook must be an http or https URL with a host")]
    NotHttp,
    /// Longer than allowed.
    #[error("the webhook URL must be at most {0} characters")]
    TooLong(usize),
    /// The host does not resolve.
    #[error("the webhook's host does not resolve")]
    Unresolved,
    /// The host is (or resolves to) an address inside a network.
    #[error("the webhook's host is a loopback, private or link-local address, which this horde does not post to")]
    Private,
}

/// The longest webhook URL accepted.
pub const URL_MAX: usize = 1024;

/// Checks `url`'s form (`http` or `https` with a host, at most [`URL_MAX`] characters) and,
/// when its host is an address, that the address is public (unless `allow_private`). What a
/// delivery checks before each attempt: names are left to [`PublicOnly`], which the client
/// resolves them with.
pub fn check_form(url: &str, allow_private: bool) -> Result<reqwest::Url, TargetError> {
    if url.chars().count() > URL_MAX {
        return Err(TargetError::TooLong(URL_MAX));
    }
    let parsed = reqwest::Url::parse(url).map_err(|_| TargetError::NotHttp)?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(TargetError::NotHttp);
    }
    if let Some(ip) = literal_address(&parsed) {
        if !allow_private && !is_public(ip) {
            return Err(TargetError::Private);
        }
    }
    Ok(parsed)
}

/// The address `url`'s host is written as, if it is one (`[::1]` included).
fn literal_address(url: &reqwest::Url) -> Option<IpAddr> {
    url.host_str()?
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse()
        .ok()
}

/// Checks `url` as a webhook target when a request names it: [`check_form`], and that its
/// host resolves — unless `allow_private`, to public addresses only. Returns the parsed URL.
pub async fn check_target(url: &str, allow_private: bool) -> Result<reqwest::Url, TargetError> {
    let parsed = check_form(url, allow_private)?;
    let host = parsed.host_str().ok_or(TargetError::NotHttp)?;
    if literal_address(&parsed).is_some() {
        return Ok(parsed);
    }
    let port = parsed.port_or_known_default().unwrap_or(80);
    let lookup = tokio::net::lookup_host((host, port));
    let addresses: Vec<IpAddr> = tokio::time::timeout(RESOLVE_TIMEOUT, lookup)
        .await
        .map_err(|_| TargetError::Unresolved)?
        .map_err(|_| TargetError::Unresolved)?
        .map(|a| a.ip())
        .collect();
    if addresses.is_empty() {
        return Err(TargetError::Unresolved);
    }
    if !allow_private && !addresses.iter().all(|ip| is_public(*ip)) {
        return Err(TargetError::Private);
    }
    Ok(parsed)
}

/// A resolver for the delivery client that answers only public addresses: a host that
/// resolves to none cannot be connected to (addresses written in the URL never reach a
/// resolver: [`check_form`] checks them before each delivery).
#[derive(Debug, Clone, Copy)]
pub struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let found =
                tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((name.as_str(), 0)))
                    .await
                    .map_err(|_| -> Box<dyn std::error::Error + Send + Sync> {
                        "resolving timed out".into()
                    })??;
            let public: Vec<SocketAddr> = found.filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err("the host resolves to no public address".into());
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_name_that_resolves_inside_reaches_nothing_at_delivery() {
        // What a delivery's client asks: `localhost` is loopback, so no address comes back.
        let name: Name = "localhost".parse().unwrap();
        assert!(PublicOnly.resolve(name).await.is_err());
        // Addresses written in the URL are checked without a resolver.
        assert_eq!(
            check_form("http://127.0.0.1:9/hook", false),
            Err(TargetError::Private)
        );
        assert!(check_form("http://127.0.0.1:9/hook", true).is_ok());
        assert!(
            check_form("http://localhost:9/hook", false).is_ok(),
            "left to PublicOnly"
        );
        assert_eq!(
            check_form("ftp://example.org/", false),
            Err(TargetError::NotHttp)
        );
    }
}
