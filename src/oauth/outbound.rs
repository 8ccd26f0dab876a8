//! Where the service may send its own requests (discovery, token, refresh, client credentials,
//! revocation): never to loopback, private, link-local (cloud metadata), multicast, unspecified,
//! broadcast, CGNAT or otherwise special addresses, unless `outbound_allow` lists the host or a
//! network holding the address.
//!
//! The check is made on the addresses a host name resolves to ([`GuardedResolver`], installed
//! as the shared client's DNS resolver, so the address checked is the address connected to)
//! and on literal IP hosts ([`check_url`], since reqwest does not ask the resolver for those).
//! Either way a refused destination is never connected to.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};
use std::str::FromStr;
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// One network: an address and a prefix length (`10.0.0.0/8`, `::1/128`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl Network {
    const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Network {
        Network {
            addr: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix,
        }
    }

    const fn v6(segments: [u16; 8], prefix: u8) -> Network {
        let [a, b, c, d, e, f, g, h] = segments;
        Network {
            addr: IpAddr::V6(Ipv6Addr::new(a, b, c, d, e, f, g, h)),
            prefix,
        }
    }

    /// Whether `ip` is in this network (IPv4 against IPv4, IPv6 against IPv6).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_eq(u32::from(net).into(), u32::from(ip).into(), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// The first `prefix` of `bits` bits of `a` and `b` are equal.
fn prefix_eq(a: u128, b: u128, bits: u8, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(bits - prefix.min(bits));
    (a >> shift) == (b >> shift)
}

impl FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Network, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("{s:?} is not an IP address or network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?} has an invalid prefix length"))?,
        };
        Ok(Network { addr, prefix })
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// The `outbound_allow` setting: networks and host names the service may reach even though
/// they are not public. Empty by default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboundAllow {
    networks: Vec<Network>,
    /// Lower-case host names without a trailing dot; `*.example.com` allows every subdomain.
    hosts: Vec<String>,
}

impl OutboundAllow {
    /// Whether nothing is listed.
    pub fn is_empty(&self) -> bool {
        self.networks.is_empty() && self.hosts.is_empty()
    }

    /// Whether a host name is listed (then every address it resolves to is allowed).
    pub fn allows_host(&self, host: &str) -> bool {
        if self.hosts.is_empty() {
            return false;
        }
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.hosts.iter().any(|h| match h.strip_prefix("*.") {
            Some(suffix) => host
                .strip_suffix(suffix)
                .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')),
            None => *h == host,
        })
    }

    /// Whether an address may be connected to: it is public, or in a listed network.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        let ip = canonical(ip);
        is_public(ip) || self.networks.iter().any(|n| n.contains(ip))
    }
}

impl FromStr for OutboundAllow {
    type Err = String;

    /// A comma-separated list of networks (`127.0.0.0/8`, `::1`) and host names
    /// (`idp.internal`, `*.corp.example`); blanks are ignored.
    fn from_str(s: &str) -> Result<OutboundAllow, String> {
        let mut out = OutboundAllow::default();
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            if entry.contains('/') || entry.contains(':') || entry.parse::<IpAddr>().is_ok() {
                out.networks.push(entry.parse()?);
                continue;
            }
            let host = entry.trim_end_matches('.').to_ascii_lowercase();
            let bare = host.strip_prefix("*.").unwrap_or(&host);
            let valid = !bare.is_empty()
                && bare.len() <= 253
                && bare.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                });
            // A name of digits and dots only would be parsed as an IPv4 address by URLs.
            if !valid || bare.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
                return Err(format!(
                    "{entry:?} is neither an IP network (like 127.0.0.0/8) nor a host name"
                ));
            }
            out.hosts.push(host);
        }
        Ok(out)
    }
}

impl fmt::Display for OutboundAllow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for n in &self.networks {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{n}")?;
        }
        for h in &self.hosts {
            if !first {
                f.write_str(",")?;
            }
            first = false;
            f.write_str(h)?;
        }
        Ok(())
    }
}

impl<'de> serde::Deserialize<'de> for OutboundAllow {
    /// A comma-separated string or a list of strings.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            One(String),
            Many(Vec<String>),
        }
        let text = match Raw::deserialize(d)? {
            Raw::One(s) => s,
            Raw::Many(v) => v.join(","),
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as the IPv4 address it reaches.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        },
        v4 => v4,
    }
}

/// IPv4 networks that are not the public internet (IANA special-purpose registry).
const SPECIAL_V4: &[Network] = &[
    Network::v4(0, 0, 0, 0, 8),       // "this network", unspecified
    Network::v4(10, 0, 0, 0, 8),      // private
    Network::v4(100, 64, 0, 0, 10),   // shared address space (CGNAT)
    Network::v4(127, 0, 0, 0, 8),     // loopback
    Network::v4(169, 254, 0, 0, 16),  // link-local, cloud metadata (169.254.169.254)
    Network::v4(172, 16, 0, 0, 12),   // private
    Network::v4(192, 0, 0, 0, 24),    // IETF protocol assignments
    Network::v4(192, 0, 2, 0, 24),    // documentation
    Network::v4(192, 88, 99, 0, 24),  // 6to4 relay anycast
    Network::v4(192, 168, 0, 0, 16),  // private
    Network::v4(198, 18, 0, 0, 15),   // benchmarking
    Network::v4(198, 51, 100, 0, 24), // documentation
    Network::v4(203, 0, 113, 0, 24),  // documentation
    Network::v4(224, 0, 0, 0, 4),     // multicast
    Network::v4(240, 0, 0, 0, 4),     // reserved, broadcast (255.255.255.255)
];

/// IPv6 networks that are not the public internet. IPv4-mapped addresses are checked as the
/// IPv4 address they carry (see [`canonical`]); NAT64 and 6to4 addresses by the address they
/// embed.
const SPECIAL_V6: &[Network] = &[
    Network::v6([0, 0, 0, 0, 0, 0, 0, 0], 96), // unspecified, loopback, IPv4-compatible
    Network::v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48), // local-use NAT64
    Network::v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64), // discard-only
    Network::v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23), // IETF protocol assignments (Teredo…)
    Network::v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32), // documentation
    Network::v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20), // documentation
    Network::v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7), // unique local
    Network::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10), // link-local
    Network::v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10), // site-local (deprecated)
    Network::v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), // multicast
];

/// Whether an address is on the public internet (not special in any of the ways above).
pub fn is_public(ip: IpAddr) -> bool {
    match canonical(ip) {
        IpAddr::V4(v4) => !SPECIAL_V4.iter().any(|n| n.contains(IpAddr::V4(v4))),
        IpAddr::V6(v6) => {
            if SPECIAL_V6.iter().any(|n| n.contains(IpAddr::V6(v6))) {
                return false;
            }
            let s = v6.segments();
            // NAT64 (64:ff9b::/96): the IPv4 address in the last 32 bits.
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return is_public(IpAddr::V4(embedded_v4(s[6], s[7])));
            }
            // 6to4 (2002::/16): the IPv4 address in bits 16–48.
            if s[0] == 0x2002 {
                return is_public(IpAddr::V4(embedded_v4(s[1], s[2])));
            }
            true
        }
    }
}

fn embedded_v4(hi: u16, lo: u16) -> Ipv4Addr {
    let [a, b] = hi.to_be_bytes();
    let [c, d] = lo.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

/// A destination `outbound_allow` does not cover. Its Display names no address.
#[derive(Debug, thiserror::Error)]
#[error("the destination is not a public address and not listed in outbound_allow")]
pub struct Refused;

/// Checks a URL whose host is an IP address (reqwest connects to those without resolving).
/// Host names are checked after resolution by [`GuardedResolver`].
pub fn check_url(url: &Url, allow: &OutboundAllow) -> Result<(), Refused> {
    let ip = match url.host() {
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(Host::Domain(d)) => match d.parse::<IpAddr>() {
            Ok(ip) => ip,
            Err(_) => return Ok(()),
        },
        None => return Err(Refused),
    };
    if allow.allows_ip(ip) {
        Ok(())
    } else {
        Err(Refused)
    }
}

/// The shared client's DNS resolver: the system resolver (`getaddrinfo`, on the blocking
/// pool, as reqwest's own), keeping only the addresses `outbound_allow` permits. A host with
/// none left fails with [`Refused`] and is never connected to.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    allow: Arc<OutboundAllow>,
}

impl GuardedResolver {
    pub fn new(allow: OutboundAllow) -> GuardedResolver {
        GuardedResolver {
            allow: Arc::new(allow),
        }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow = self.allow.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let by_name = allow.allows_host(&host);
            let lookup = host.clone();
            let addrs: Vec<SocketAddr> =
                tokio::task::spawn_blocking(move || (lookup.as_str(), 0).to_socket_addrs())
                    .await
                    .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?
                    .map_err(|e| Box::new(e) as Box<dyn std::error::Error + Send + Sync>)?
                    .collect();
            let kept: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| by_name || allow.allows_ip(a.ip()))
                .collect();
            if kept.is_empty() {
                return Err(Box::new(Refused) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(kept.into_iter()) as Addrs)
        })
    }
}

/// Whether an error (or one of its sources) is a [`Refused`].
pub fn is_refused(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.is::<Refused>() {
            return true;
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn special_addresses_are_not_public() {
        for a in [
            "0.0.0.0",
            "0.1.2.3",
            "10.0.0.1",
            "10.255.255.255",
            "100.64.0.1",
            "100.127.255.254",
            "127.0.0.1",
            "127.255.0.9",
            "169.254.169.254",
            "169.254.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.19.255.255",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
            "::",
            "::1",
            "::127.0.0.1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::ffff:0.0.0.0",
            "64:ff9b::a9fe:a9fe",
            "64:ff9b::7f00:1",
            "64:ff9b:1::1",
            "2002:a9fe:a9fe::1",
            "2002:7f00:1::",
            "2001::1",
            "2001:db8::1",
            "100::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "febf::1",
            "fec0::1",
            "ff02::1",
            "ff05::2",
        ] {
            assert!(!is_public(ip(a)), "{a} counts as public");
            assert!(!OutboundAllow::default().allows_ip(ip(a)), "{a}");
        }
    }

    #[test]
    fn public_addresses_are_public() {
        for a in [
            "1.1.1.1",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.0",
            "172.15.255.255",
            "172.32.0.0",
            "192.169.0.1",
            "198.20.0.1",
            "223.255.255.255",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2606:4700:4700::1111",
            "2a00:1450:4001::1",
        ] {
            assert!(is_public(ip(a)), "{a} counts as special");
        }
    }

    #[test]
    fn listed_networks_and_hosts_are_allowed() {
        let allow: OutboundAllow =
            " 127.0.0.0/8, ::1 ,10.1.2.3,fd00::/8, idp.internal., *.corp.example"
                .parse()
                .unwrap();
        assert_eq!(
            allow.to_string(),
            "127.0.0.0/8,::1/128,10.1.2.3/32,fd00::/8,idp.internal,*.corp.example"
        );
        for a in [
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "::ffff:127.0.0.1",
            "10.1.2.3",
            "fd00::5",
        ] {
            assert!(allow.allows_ip(ip(a)), "{a}");
        }
        for a in ["10.1.2.4", "169.254.169.254", "::2", "fe80::1", "fc00::1"] {
            assert!(!allow.allows_ip(ip(a)), "{a}");
        }
        assert!(allow.allows_host("idp.internal"));
        assert!(allow.allows_host("IDP.Internal."));
        assert!(allow.allows_host("a.corp.example"));
        assert!(allow.allows_host("b.a.corp.example"));
        assert!(!allow.allows_host("corp.example"));
        assert!(!allow.allows_host("evilcorp.example"));
        assert!(!allow.allows_host("idp.internal.evil"));
        assert!(!allow.allows_host("localhost"));
        let all: OutboundAllow = "0.0.0.0/0".parse().unwrap();
        assert!(all.allows_ip(ip("10.0.0.1")) && !all.allows_ip(ip("fe80::1")));
    }

    #[test]
    fn invalid_entries_are_refused() {
        for bad in [
            "127.0.0.0/33",
            "::1/129",
            "10.0.0.0/x",
            "300.1.1.1",
            "1.2.3",
            "a..b",
            "-/8",
            "http://x",
            "host name",
            "*.",
        ] {
            assert!(bad.parse::<OutboundAllow>().is_err(), "{bad} was accepted");
        }
        assert!("".parse::<OutboundAllow>().unwrap().is_empty());
    }

    #[test]
    fn literal_hosts_are_checked_in_every_spelling() {
        let none = OutboundAllow::default();
        for u in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://0/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:a9fe:a9fe]/",
            "http://169.254.169.254/latest/meta-data/",
            "https://10.0.0.1:8443/token",
        ] {
            let url = Url::parse(u).unwrap();
            assert!(check_url(&url, &none).is_err(), "{u} passed");
        }
        for u in [
            "http://8.8.8.8/",
            "https://[2606:4700::1]/",
            "http://example.com/",
        ] {
            assert!(check_url(&Url::parse(u).unwrap(), &none).is_ok(), "{u}");
        }
    }

    #[tokio::test]
    async fn the_resolver_keeps_only_allowed_addresses() {
        let none = GuardedResolver::new(OutboundAllow::default());
        let err = match none.resolve("localhost".parse().unwrap()).await {
            Ok(addrs) => panic!("localhost resolved to {:?}", addrs.collect::<Vec<_>>()),
            Err(e) => e,
        };
        assert!(is_refused(err.as_ref()));
        let by_name = GuardedResolver::new("localhost".parse().unwrap());
        let addrs: Vec<SocketAddr> = by_name
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
        let by_net = GuardedResolver::new("127.0.0.0/8".parse().unwrap());
        let addrs: Vec<SocketAddr> = by_net
            .resolve("localhost".parse().unwrap())
            .await
            .unwrap()
            .collect();
        assert!(addrs.iter().all(|a| a.ip() == ip("127.0.0.1")) && !addrs.is_empty());
    }
}
