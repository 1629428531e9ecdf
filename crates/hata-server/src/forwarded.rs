//! Where a request came from: the client's address, and the scheme and host it used. A
//! reverse proxy says these in `X-Forwarded-For`, `-Proto` and `-Host`, and anyone can send
//! those headers, so they are believed only from the peers listed in `--trusted-proxies`.
//! From anyone else, the client is the peer itself, the scheme is this listener's (`https`
//! with `--tls-cert`), and the host is the `Host` header, which must be a well-formed host
//! (and port).
//!
//! What depends on it: the OFREP `eventStreams` URL (a bearer ticket valid for a day or two,
//! so it must not point at a host an attacker named) when `--public-url` is not set, and
//! later the client IP of audit entries and rate limits. Production sets `--public-url`.

use std::net::{IpAddr, SocketAddr};

use axum::http::{header, HeaderMap, Uri};

/// The peers whose forwarding headers are believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<ipnet::IpNet>);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{0:?} is not an IP address or CIDR network (e.g. 10.0.0.0/8, 127.0.0.1, ::1)")]
pub struct BadProxy(String);

impl TrustedProxies {
    /// A comma-separated list of addresses and CIDR networks; empty trusts nobody.
    pub fn parse(list: &str) -> Result<TrustedProxies, BadProxy> {
        list.split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(|item| {
                item.parse::<ipnet::IpNet>()
                    .or_else(|_| item.parse::<IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| BadProxy(item.to_string()))
            })
            .collect::<Result<_, _>>()
            .map(TrustedProxies)
    }

    pub fn trusts(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }
}

/// Where a request came from, as far as it can be believed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The client's address; `None` when the peer is not known (a request not served by
    /// `connections::serve`).
    pub client_ip: Option<IpAddr>,
    /// `http` or `https`.
    pub scheme: &'static str,
    /// A well-formed `host[:port]`; `None` when the request named none or a malformed one.
    pub host: Option<String>,
}

impl Origin {
    /// `uri`: the request's target, whose authority names the host when there is no `Host`
    /// header (HTTP/2 sends `:authority` instead). `own_scheme`: the listener's, `http` or
    /// `https`.
    pub fn of(
        peer: Option<SocketAddr>,
        uri: &Uri,
        headers: &HeaderMap,
        trusted: &TrustedProxies,
        own_scheme: &'static str,
    ) -> Origin {
        let peer_ip = peer.map(|p| p.ip().to_canonical());
        let own_host = || {
            header_str(headers, header::HOST.as_str())
                .or_else(|| uri.authority().map(|a| a.as_str()))
                .filter(|h| valid_host(h))
        };
        if !peer_ip.is_some_and(|ip| trusted.trusts(ip)) {
            return Origin {
                client_ip: peer_ip,
                scheme: own_scheme,
                host: own_host().map(str::to_string),
            };
        }
        let client_ip = client_ip(peer, headers, trusted);
        // A proxy that does not say (or says something else) leaves the listener's own.
        let scheme = match first_value(headers, "x-forwarded-proto") {
            Some(p) if p.eq_ignore_ascii_case("https") => "https",
            Some(p) if p.eq_ignore_ascii_case("http") => "http",
            _ => own_scheme,
        };
        let host = first_value(headers, "x-forwarded-host")
            .filter(|h| valid_host(h))
            .or_else(own_host)
            .map(str::to_string);
        Origin {
            client_ip,
            scheme,
            host,
        }
    }
}

/// The client's address alone (what `Origin::of` names `client_ip`), without the allocations
/// of the host: the access log asks it of every request.
pub fn client_ip(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted: &TrustedProxies,
) -> Option<IpAddr> {
    let peer_ip = peer.map(|p| p.ip().to_canonical());
    if !peer_ip.is_some_and(|ip| trusted.trusts(ip)) {
        return peer_ip;
    }
    // From a trusted proxy: the nearest address in X-Forwarded-For that is not itself a
    // trusted proxy is the client (further left, anyone could have written anything).
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .rev()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.rsplit(','))
        .map(str::trim);
    let mut client_ip = peer_ip;
    for hop in hops {
        match hop.parse::<IpAddr>() {
            Ok(ip) => {
                client_ip = Some(ip.to_canonical());
                if !trusted.trusts(ip) {
                    break;
                }
            }
            Err(_) => break,
        }
    }
    client_ip
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// The first of a comma-separated header's values: the one the client-facing proxy wrote.
fn first_value<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    header_str(headers, name)?.split(',').next().map(str::trim)
}

/// `host[:port]` with a DNS name, an IPv4 address or a bracketed IPv6 address.
pub fn valid_host(value: &str) -> bool {
    let (host, port) = if let Some(rest) = value.strip_prefix('[') {
        let Some((v6, after)) = rest.split_once(']') else {
            return false;
        };
        if v6.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            p => match p.strip_prefix(':') {
                Some(port) => ("", Some(port)),
                None => return false,
            },
        }
    } else {
        match value.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (value, None),
        }
    };
    if let Some(port) = port {
        if port.is_empty() || port.len() > 5 || port.parse::<u16>().is_err() {
            return false;
        }
    }
    if value.starts_with('[') {
        return true;
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    fn peer(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().expect("ip"), 40000))
    }

    #[test]
    fn proxies_parse_as_addresses_and_networks() {
        let t = TrustedProxies::parse("10.0.0.0/8, 127.0.0.1,::1 ,").expect("valid");
        assert!(t.trusts("10.1.2.3".parse().expect("ip")));
        assert!(t.trusts("127.0.0.1".parse().expect("ip")));
        assert!(t.trusts("::ffff:127.0.0.1".parse().expect("ip")));
        assert!(t.trusts("::1".parse().expect("ip")));
        assert!(!t.trusts("192.168.0.1".parse().expect("ip")));
        assert_eq!(
            TrustedProxies::parse("").expect("empty"),
            TrustedProxies::default()
        );
        assert_eq!(
            TrustedProxies::parse("10.0.0.0/8,proxy.local"),
            Err(BadProxy("proxy.local".into()))
        );
    }

    #[test]
    fn forwarding_headers_count_only_from_trusted_peers() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").expect("valid");
        let h = headers(&[
            ("host", "hata.internal:7070"),
            ("x-forwarded-proto", "https"),
            ("x-forwarded-host", "flags.example.com"),
            ("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.0.0.2"),
        ]);
        let untrusted = Origin::of(
            peer("198.51.100.1"),
            &Uri::from_static("/"),
            &h,
            &trusted,
            "http",
        );
        assert_eq!(
            untrusted,
            Origin {
                client_ip: Some("198.51.100.1".parse().expect("ip")),
                scheme: "http",
                host: Some("hata.internal:7070".into()),
            }
        );
        let behind_proxy = Origin::of(
            peer("10.0.0.1"),
            &Uri::from_static("/"),
            &h,
            &trusted,
            "http",
        );
        assert_eq!(
            behind_proxy,
            Origin {
                // The nearest untrusted hop, not the left-most one the client could forge.
                client_ip: Some("203.0.113.7".parse().expect("ip")),
                scheme: "https",
                host: Some("flags.example.com".into()),
            }
        );
        // Nobody trusted by default.
        let none = Origin::of(
            peer("10.0.0.1"),
            &Uri::from_static("/"),
            &h,
            &TrustedProxies::default(),
            "http",
        );
        assert_eq!(none.scheme, "http");
        assert_eq!(none.host.as_deref(), Some("hata.internal:7070"));
    }

    #[test]
    fn the_scheme_is_the_listeners_unless_a_trusted_proxy_says_otherwise() {
        let trusted = TrustedProxies::parse("10.0.0.0/8").expect("valid");
        let plain = headers(&[("host", "flags.example.com")]);
        let says_http = headers(&[("host", "flags.example.com"), ("x-forwarded-proto", "http")]);
        for (peer_ip, h, own, scheme) in [
            // Anyone on a TLS listener: https, whatever they claim.
            ("198.51.100.1", &plain, "https", "https"),
            ("198.51.100.1", &says_http, "https", "https"),
            // A trusted proxy that says nothing: the listener's own.
            ("10.0.0.1", &plain, "https", "https"),
            ("10.0.0.1", &plain, "http", "http"),
            // A trusted proxy that says: what it says.
            ("10.0.0.1", &says_http, "https", "http"),
        ] {
            let origin = Origin::of(peer(peer_ip), &Uri::from_static("/"), h, &trusted, own);
            assert_eq!(origin.scheme, scheme, "{peer_ip} on {own}: {h:?}");
        }
    }

    /// HTTP/2 has no `Host` header: the host is the request's `:authority`.
    #[test]
    fn without_a_host_header_the_authority_names_the_host() {
        let uri = Uri::from_static("https://flags.example.com:8443/ofrep/v1/evaluate/flags");
        let origin = Origin::of(
            peer("1.2.3.4"),
            &uri,
            &HeaderMap::new(),
            &TrustedProxies::default(),
            "https",
        );
        assert_eq!(origin.host.as_deref(), Some("flags.example.com:8443"));
        // A Host header, when there is one, is what HTTP/1.1 names the host with.
        let h = headers(&[("host", "other.example.com")]);
        let origin = Origin::of(
            peer("1.2.3.4"),
            &uri,
            &h,
            &TrustedProxies::default(),
            "https",
        );
        assert_eq!(origin.host.as_deref(), Some("other.example.com"));
    }

    #[test]
    fn hosts_must_be_well_formed() {
        for good in [
            "localhost",
            "flags.example.com",
            "flags.example.com:443",
            "127.0.0.1:7070",
            "[::1]",
            "[::1]:7070",
            "xn--bcher-kva.example",
        ] {
            assert!(valid_host(good), "{good}");
        }
        for bad in [
            "",
            "evil.com/path",
            "evil.com?x",
            "a b",
            "evil.com:",
            "evil.com:99999",
            "user@evil.com",
            "[::1",
            "[nothex]:80",
            "-lead.example",
            "a..b",
            "evil.com#",
        ] {
            assert!(!valid_host(bad), "{bad}");
        }
        let h = headers(&[("host", "evil.com/x?y=")]);
        assert_eq!(
            Origin::of(
                peer("1.2.3.4"),
                &Uri::from_static("/"),
                &h,
                &TrustedProxies::default(),
                "http"
            )
            .host,
            None
        );
    }
}
