//! Which FHIR servers the service may send an EHR's access token to.
//!
//! A `fhirServer` is trusted when, compared as a parsed URL (scheme, host,
//! port, and path prefix at a segment boundary), it matches the calling
//! issuer's bound servers, or else the `--fhir-server-allow` list. It never
//! carries userinfo. Loopback, private, link-local and other non-public
//! addresses are refused, for an IP literal and for every address a name
//! resolves to, unless the host is named explicitly in a binding or the
//! allow-list. The same address check runs in the HTTP client's resolver,
//! so what the client connects to is what was checked (no DNS rebinding).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// A FHIR base URL the operator trusts: scheme, host, port and path segments.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "String")]
pub struct ServerPattern {
    scheme: String,
    host: String,
    port: u16,
    segments: Vec<String>,
}

/// Why a text is not a FHIR base URL the service can trust.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BaseUrlError {
    #[error("not a URL ({0})")]
    NotAUrl(url::ParseError),
    #[error("not an http(s) URL")]
    NotHttp,
    #[error("it carries userinfo (user@host)")]
    Userinfo,
    #[error("it has no host")]
    NoHost,
    #[error("a base URL has no query or fragment")]
    QueryOrFragment,
}

/// Authentication on and no FHIR server trusted: start-up refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("authentication is on but no FHIR server is trusted: bind servers to issuers (\"fhirServers\" in the issuers file), list them with --fhir-server-allow, or pass --fhir-server-allow any to let any public server receive the EHRs' access tokens")]
pub struct NothingTrusted;

/// A server pattern that could not be read, with its text.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}': {why}")]
pub struct PatternError {
    pub text: String,
    pub why: BaseUrlError,
}

impl ServerPattern {
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let url = parse_base(text).map_err(|why| PatternError {
            text: text.to_owned(),
            why,
        })?;
        Ok(Self {
            scheme: url.scheme().to_owned(),
            host: host_key(&url),
            port: url.port_or_known_default().unwrap_or(0),
            segments: segments(&url),
        })
    }

    /// Same scheme, host and port, and `url`'s path starts with ours at a
    /// segment boundary (`/fhir` matches `/fhir/R4`, never `/fhirx`).
    fn matches(&self, url: &Url) -> bool {
        let path = segments(url);
        self.scheme == url.scheme()
            && self.host == host_key(url)
            && Some(self.port) == url.port_or_known_default()
            && path.len() >= self.segments.len()
            && path[..self.segments.len()] == self.segments[..]
    }
}

impl TryFrom<String> for ServerPattern {
    type Error = PatternError;
    fn try_from(text: String) -> Result<Self, PatternError> {
        Self::parse(&text)
    }
}

impl fmt::Display for ServerPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}://{}:{}/{}",
            self.scheme,
            self.host,
            self.port,
            self.segments.join("/")
        )
    }
}

/// The global allow-list (`--fhir-server-allow`).
#[derive(Debug, Clone, Default)]
pub struct AllowList {
    /// `any`: every public http(s) server (the operator's explicit choice).
    pub any: bool,
    pub servers: Vec<ServerPattern>,
}

impl AllowList {
    /// `any` or FHIR base URLs; blanks ignored.
    pub fn parse(entries: &[String]) -> Result<Self, PatternError> {
        let mut list = Self::default();
        for entry in entries.iter().map(|e| e.trim()).filter(|e| !e.is_empty()) {
            if entry.eq_ignore_ascii_case("any") {
                list.any = true;
            } else {
                list.servers.push(ServerPattern::parse(entry)?);
            }
        }
        Ok(list)
    }

    pub fn is_empty(&self) -> bool {
        !self.any && self.servers.is_empty()
    }
}

/// Why a fhirServer is not trusted: for the log and the 412's diagnostics
/// (it names only the operator's rules, never the token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Untrusted(pub String);

impl fmt::Display for Untrusted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn untrusted<T>(why: impl Into<String>) -> Result<T, Untrusted> {
    Err(Untrusted(why.into()))
}

/// Whom a call comes from, as the issuers file names it: the issuer, and
/// the tenant when its entry names one (an EHR that serves several
/// hospitals under one `iss` has an entry, and servers, per tenant).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IssuerKey {
    pub iss: String,
    pub tenant: Option<String>,
}

/// The trust policy, built once at start-up.
#[derive(Debug, Clone)]
pub struct ServerTrust {
    allow: AllowList,
    /// issuer (and tenant) -> the FHIR servers it may name.
    bindings: HashMap<IssuerKey, Vec<ServerPattern>>,
    /// Whether a call without a calling issuer (authentication off) may use
    /// the allow-list, or any public server when it is empty.
    authentication: bool,
    explicit: Arc<ExplicitHosts>,
}

/// Hosts the operator named: their names may resolve to private addresses.
#[derive(Debug, Default)]
pub struct ExplicitHosts(HashSet<String>);

impl ExplicitHosts {
    fn contains(&self, host: &str) -> bool {
        self.0
            .contains(&host.trim_end_matches('.').to_ascii_lowercase())
    }
}

impl ServerTrust {
    /// `extra_hosts`: other operator-named URLs (issuers' key sets) whose
    /// hosts the shared HTTP client may reach whatever they resolve to.
    pub fn new(
        allow: AllowList,
        bindings: HashMap<IssuerKey, Vec<ServerPattern>>,
        authentication: bool,
        extra_hosts: &[String],
    ) -> Result<Self, NothingTrusted> {
        if authentication && allow.is_empty() && bindings.values().all(Vec::is_empty) {
            return Err(NothingTrusted);
        }
        let mut explicit: HashSet<String> = allow
            .servers
            .iter()
            .chain(bindings.values().flatten())
            .map(|p| p.host.clone())
            .collect();
        for url in extra_hosts {
            if let Ok(url) = Url::parse(url) {
                explicit.insert(host_key(&url));
            }
        }
        Ok(Self {
            allow,
            bindings,
            authentication,
            explicit: Arc::new(ExplicitHosts(explicit)),
        })
    }

    /// The DNS resolver the FHIR client must use.
    pub fn resolver(&self) -> Arc<CheckedResolver> {
        Arc::new(CheckedResolver {
            explicit: self.explicit.clone(),
        })
    }

    /// Whether `server` may receive the token of a call from `issuer`
    /// (None: authentication is off). Resolves a host name to check every
    /// address; returns the server URL to fetch from, without a trailing `/`.
    pub async fn check(
        &self,
        server: &str,
        issuer: Option<&IssuerKey>,
    ) -> Result<String, Untrusted> {
        let url = match parse_base(server) {
            Ok(url) => url,
            Err(why) => return untrusted(why.to_string()),
        };
        let bound = issuer
            .and_then(|iss| self.bindings.get(iss))
            .filter(|b| !b.is_empty());
        let explicit = match (bound, issuer) {
            (Some(bound), Some(iss)) => match bound.iter().any(|p| p.matches(&url)) {
                true => true,
                false => {
                    return untrusted(format!(
                        "it is not one of the servers bound to issuer {}",
                        escape(&iss.iss, 200)
                    ))
                }
            },
            _ if self.allow.servers.iter().any(|p| p.matches(&url)) => true,
            _ if !self.allow.servers.is_empty() && !self.allow.any => {
                return untrusted("it is not on the allow-list")
            }
            _ if self.authentication && !self.allow.any => {
                return untrusted(
                    "the calling issuer has no bound servers and there is no allow-list",
                )
            }
            _ => false,
        };
        if !explicit {
            // A server nobody named gets tokens and patient data only over
            // TLS; a plain-http one (a test server) must be listed.
            if url.scheme() != "https" {
                return untrusted(
                    "it is not https, and only listed or bound servers may be plain http",
                );
            }
            match url.host() {
                Some(url::Host::Ipv4(ip)) => refuse_private(IpAddr::V4(ip))?,
                Some(url::Host::Ipv6(ip)) => refuse_private(IpAddr::V6(ip))?,
                Some(url::Host::Domain(name)) => {
                    let port = url.port_or_known_default().unwrap_or(0);
                    let addresses = match tokio::net::lookup_host((name, port)).await {
                        Ok(addresses) => addresses.collect::<Vec<_>>(),
                        Err(_) => return untrusted("its host name does not resolve"),
                    };
                    if addresses.is_empty() {
                        return untrusted("its host name does not resolve");
                    }
                    for address in addresses {
                        refuse_private(address.ip())?;
                    }
                }
                None => return untrusted("it has no host"),
            }
        }
        Ok(url.as_str().trim_end_matches('/').to_owned())
    }
}

fn refuse_private(ip: IpAddr) -> Result<(), Untrusted> {
    if is_public(ip) {
        Ok(())
    } else {
        untrusted(format!(
            "it is at a non-public address ({ip}) that is not allow-listed"
        ))
    }
}

/// An absolute http(s) URL with a host, no userinfo, no query or fragment.
fn parse_base(text: &str) -> Result<Url, BaseUrlError> {
    let url = Url::parse(text.trim()).map_err(BaseUrlError::NotAUrl)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(BaseUrlError::NotHttp);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(BaseUrlError::Userinfo);
    }
    if url.host().is_none() {
        return Err(BaseUrlError::NoHost);
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(BaseUrlError::QueryOrFragment);
    }
    Ok(url)
}

/// The host as compared: lower case, no trailing dot, IPv6 in brackets.
fn host_key(url: &Url) -> String {
    match url.host() {
        Some(url::Host::Domain(name)) => name.trim_end_matches('.').to_ascii_lowercase(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => format!("[{ip}]"),
        None => String::new(),
    }
}

fn segments(url: &Url) -> Vec<String> {
    url.path_segments()
        .map(|s| s.filter(|s| !s.is_empty()).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Globally routable: not loopback, private, link-local, shared, reserved,
/// multicast, documentation or unspecified; IPv4 inside IPv6 judged as IPv4.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => is_public_v6(v6),
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240) // reserved
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_public_v4(v4);
    }
    let s = ip.segments();
    // IPv4-compatible (::a.b.c.d) and NAT64 (64:ff9b::/96) carry an IPv4 address.
    if s[..6] == [0, 0, 0, 0, 0, 0] || s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let v4 = Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
        return !ip.is_unspecified() && !ip.is_loopback() && is_public_v4(v4);
    }
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x2001 && s[1] < 0x0200)) // IETF special purpose (Teredo, ORCHID, ...)
}

/// The FHIR client's resolver: a name the operator did not name explicitly
/// must resolve only to public addresses, else the connection is refused.
#[derive(Debug)]
pub struct CheckedResolver {
    explicit: Arc<ExplicitHosts>,
}

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let explicit = self.explicit.contains(&host);
        Box::pin(async move {
            let addresses: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !explicit {
                if let Some(private) = addresses.iter().find(|a| !is_public(a.ip())) {
                    log::warn!(
                        "refusing to connect to {}: it resolves to non-public {}",
                        escape(&host, 200),
                        private.ip()
                    );
                    return Err(format!("{host} resolves to a non-public address").into());
                }
            }
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// A request-derived string made safe for a text log line: control
/// characters escaped, at most `max` characters kept.
pub fn escape(text: &str, max: usize) -> String {
    crate::telemetry::escape_for_log(text, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trust(allow: &[&str]) -> ServerTrust {
        let allow =
            AllowList::parse(&allow.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap();
        ServerTrust::new(allow, HashMap::new(), false, &[]).unwrap()
    }

    async fn refused(trust: &ServerTrust, server: &str) -> bool {
        trust.check(server, None).await.is_err()
    }

    #[tokio::test]
    async fn look_alikes_and_userinfo_are_refused() {
        let t = trust(&["https://ehr.example.org/fhir"]);
        for hostile in [
            "https://ehr.example.org@evil.example/fhir",
            "https://ehr.example.org.evil.example/fhir",
            "https://ehr.example.org/fhirx",
            "https://ehr.example.org:8443/fhir",
            "http://ehr.example.org/fhir",
            "https://user:pw@ehr.example.org/fhir",
            "https://ehr.example.org/fhir?x=1",
        ] {
            assert!(refused(&t, hostile).await, "{hostile}");
        }
        for fine in [
            "https://ehr.example.org/fhir",
            "https://EHR.example.org./fhir/R4/",
            "https://ehr.example.org:443/fhir",
        ] {
            assert_eq!(t.check(fine, None).await.map(|_| ()), Ok(()), "{fine}");
        }
    }

    #[tokio::test]
    async fn plain_http_is_refused_unless_listed() {
        let open = trust(&[]);
        assert!(refused(&open, "http://93.184.216.34/fhir").await);
        assert!(!refused(&open, "https://93.184.216.34/fhir").await);
        let any = trust(&["any"]);
        assert!(refused(&any, "http://93.184.216.34/fhir").await);
        let listed = trust(&["http://93.184.216.34/fhir"]);
        assert!(!refused(&listed, "http://93.184.216.34/fhir/R4").await);
    }

    #[tokio::test]
    async fn non_public_literals_are_refused_unless_listed() {
        let open = trust(&[]);
        for hostile in [
            "http://127.0.0.1/fhir",
            "http://2130706433/fhir",
            "http://0x7f.1/fhir",
            "http://[::1]/fhir",
            "http://[::ffff:127.0.0.1]/fhir",
            "http://[::ffff:a9fe:a9fe]/fhir",
            "http://169.254.169.254/latest",
            "http://10.1.2.3/fhir",
            "http://[fd00::1]/fhir",
            "http://[fe80::1]/fhir",
            "http://0.0.0.0/fhir",
            "http://100.64.0.1/fhir",
        ] {
            assert!(refused(&open, hostile).await, "{hostile}");
        }
        let listed = trust(&["http://10.1.2.3/fhir"]);
        assert!(listed.check("http://10.1.2.3/fhir/R4", None).await.is_ok());
        assert!(refused(&listed, "http://10.1.2.4/fhir").await);
    }

    #[test]
    fn public_addresses() {
        assert!(is_public("93.184.216.34".parse().unwrap()));
        assert!(is_public("2606:2800:220:1::1".parse().unwrap()));
        assert!(!is_public("64:ff9b::7f00:1".parse().unwrap()));
    }

    #[tokio::test]
    async fn issuers_use_only_their_bound_servers() {
        let key = |iss: &str, tenant: Option<&str>| IssuerKey {
            iss: iss.to_owned(),
            tenant: tenant.map(str::to_owned),
        };
        let bindings = HashMap::from([
            (
                key("https://a", None),
                vec![ServerPattern::parse("https://ehr-a.example/fhir").unwrap()],
            ),
            (
                key("https://m", Some("t1")),
                vec![ServerPattern::parse("https://m.example/t1").unwrap()],
            ),
            (
                key("https://m", Some("t2")),
                vec![ServerPattern::parse("https://m.example/t2").unwrap()],
            ),
        ]);
        let t = ServerTrust::new(AllowList::default(), bindings, true, &[]).unwrap();
        let ok = |server: &'static str, k: IssuerKey| {
            let t = t.clone();
            async move { t.check(server, Some(&k)).await.is_ok() }
        };
        assert!(ok("https://ehr-a.example/fhir", key("https://a", None)).await);
        assert!(!ok("https://ehr-a.example/fhir", key("https://b", None)).await);
        assert!(!ok("https://ehr-b.example/fhir", key("https://a", None)).await);
        // One issuer, two tenants: each tenant's token goes to its own servers only.
        assert!(ok("https://m.example/t1", key("https://m", Some("t1"))).await);
        assert!(ok("https://m.example/t2", key("https://m", Some("t2"))).await);
        assert!(!ok("https://m.example/t2", key("https://m", Some("t1"))).await);
        assert!(!ok("https://m.example/t1", key("https://m", Some("t2"))).await);
    }

    #[tokio::test]
    async fn the_client_resolver_refuses_names_of_private_addresses() {
        let resolver = CheckedResolver {
            explicit: Arc::new(ExplicitHosts::default()),
        };
        assert!(resolver
            .resolve("localhost".parse().unwrap())
            .await
            .is_err());
        let listed = CheckedResolver {
            explicit: Arc::new(ExplicitHosts(HashSet::from(["localhost".to_owned()]))),
        };
        assert!(listed.resolve("localhost".parse().unwrap()).await.is_ok());
    }

    #[test]
    fn authentication_without_any_trusted_server_does_not_start() {
        assert!(ServerTrust::new(AllowList::default(), HashMap::new(), true, &[]).is_err());
        let any = AllowList::parse(&["any".to_owned()]).unwrap();
        assert!(ServerTrust::new(any, HashMap::new(), true, &[]).is_ok());
    }
}
