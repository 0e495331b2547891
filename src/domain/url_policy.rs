//! Which URLs waconnect may upload to or fetch from. Connect hands out pre-signed URLs
//! and we PUT customer files to them and fetch agent files from them; a URL outside the
//! allowlist (a compromised or misconfigured response, a redirect target) is refused.

use url::Url;

/// One allowed origin: `scheme://host[:port]`, where host may start with `*.` (any
/// subdomain) and port may be `*` (any). Without a port only the scheme's default port
/// matches.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Origin {
    scheme: String,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Exact(String),
    /// `*.example.com`: any host ending in `.example.com`.
    Subdomain(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortPattern {
    Default,
    Any,
    Exact(u16),
}

/// A parsed allowlist, e.g. `https://*.amazonaws.com,http://127.0.0.1:*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlAllowlist {
    origins: Vec<Origin>,
}

/// The production default: AWS pre-signed URLs are https on amazonaws.com hosts.
pub const DEFAULT_URL_ALLOWLIST: &str = "https://*.amazonaws.com";

impl UrlAllowlist {
    /// Parses a comma-separated list of origins.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut origins = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let (scheme, rest) = item
                .split_once("://")
                .ok_or_else(|| format!("`{item}`: expected scheme://host[:port]"))?;
            let scheme = scheme.to_ascii_lowercase();
            if scheme != "https" && scheme != "http" {
                return Err(format!("`{item}`: only http and https are allowed"));
            }
            if rest.contains(['/', '@', '?', '#']) {
                return Err(format!(
                    "`{item}`: give an origin only (no path, user or query)"
                ));
            }
            let (host, port) = match rest.rsplit_once(':') {
                Some((h, "*")) => (h, PortPattern::Any),
                Some((h, p)) => (
                    h,
                    PortPattern::Exact(p.parse().map_err(|_| format!("`{item}`: bad port"))?),
                ),
                None => (rest, PortPattern::Default),
            };
            let host = host.to_ascii_lowercase();
            let host = match host.strip_prefix("*.") {
                Some(suffix) if !suffix.is_empty() && !suffix.contains('*') => {
                    HostPattern::Subdomain(suffix.to_string())
                }
                _ if host.is_empty() || host.contains('*') => {
                    return Err(format!("`{item}`: bad host pattern"))
                }
                _ => HostPattern::Exact(host),
            };
            origins.push(Origin { scheme, host, port });
        }
        if origins.is_empty() {
            return Err("the URL allowlist is empty".into());
        }
        Ok(Self { origins })
    }

    /// Whether `url` may be fetched or uploaded to.
    pub fn permits(&self, url: &str) -> bool {
        let Ok(url) = Url::parse(url) else {
            return false;
        };
        if !url.username().is_empty() || url.password().is_some() {
            return false;
        }
        let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
            return false;
        };
        let port = url.port();
        self.origins.iter().any(|o| {
            o.scheme == url.scheme()
                && match &o.host {
                    HostPattern::Exact(h) => *h == host,
                    HostPattern::Subdomain(suffix) => host
                        .strip_suffix(suffix.as_str())
                        .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
                }
                && match o.port {
                    PortPattern::Any => true,
                    PortPattern::Default => port.is_none(),
                    PortPattern::Exact(p) => url.port_or_known_default() == Some(p),
                }
        })
    }
}

impl Default for UrlAllowlist {
    fn default() -> Self {
        Self::parse(DEFAULT_URL_ALLOWLIST).unwrap_or(Self {
            origins: Vec::new(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_allows_only_https_amazonaws() {
        let a = UrlAllowlist::default();
        assert!(a.permits("https://bucket.s3.us-east-1.amazonaws.com/x?X-Amz-Signature=1"));
        assert!(!a.permits("http://bucket.s3.us-east-1.amazonaws.com/x"));
        assert!(!a.permits("https://amazonaws.com.evil.example/x"));
        assert!(!a.permits("https://evilamazonaws.com/x"));
        assert!(!a.permits("https://user:pw@bucket.s3.amazonaws.com/x"));
        assert!(!a.permits("https://bucket.s3.amazonaws.com:8443/x"));
        assert!(!a.permits("file:///etc/passwd"));
        assert!(!a.permits("not a url"));
    }

    #[test]
    fn loopback_with_any_port_for_tests() {
        let a = UrlAllowlist::parse("http://127.0.0.1:*, https://*.amazonaws.com").unwrap();
        assert!(a.permits("http://127.0.0.1:38211/sim/upload/a"));
        assert!(!a.permits("http://127.0.0.2:38211/sim/upload/a"));
        assert!(!a.permits("http://localhost:38211/"));
    }

    #[test]
    fn bad_specs_are_refused() {
        for spec in [
            "",
            "ftp://x",
            "https://*",
            "https://a.com/path",
            "https://a.com:port",
        ] {
            assert!(UrlAllowlist::parse(spec).is_err(), "{spec}");
        }
    }
}
