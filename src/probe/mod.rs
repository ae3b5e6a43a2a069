//! What a server actually serves: connect with TLS, record the chain, judge it with
//! certmesh's own `verify`.
//!
//! A renewed file on disk proves nothing until the server has reloaded it; the probe
//! closes that loop. It reports facts (chain, protocol, cipher suite, the verdict) and a
//! [`Status`] in the Nagios sense: a TCP connection that cannot be made is UNKNOWN (the
//! check could not look), anything wrong once connected is CRITICAL.

mod tls;

use std::fmt;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use x509_parser::prelude::{FromDer, X509Certificate};

pub use tls::Identity;

use crate::key::PassPrompt;
use crate::verify::{verify, Host, Options as VerifyOptions, Purpose, Verdict};
use crate::x509::{colon_hex, sha256};
use crate::{Error, Result};

impl Identity {
    /// A client certificate from a directory as `issue` writes it: `cert.pem` (leaf, and
    /// any certificates after it), `chain.pem` when present, `key.pem`. The key must
    /// belong to the certificate, or the server's refusal would be blamed on it.
    pub fn from_dir(dir: &Path, pass: PassPrompt<'_>) -> Result<Identity> {
        let cert_path = dir.join("cert.pem");
        let mut chain = crate::x509::read_certs(&cert_path)?;
        let chain_path = dir.join("chain.pem");
        if chain.len() == 1 && chain_path.exists() {
            chain.extend(crate::x509::read_certs(&chain_path)?);
        }
        let key_path = dir.join("key.pem");
        let key = crate::key::load_private_key_file(&key_path, pass)?.key;
        let m = crate::key::match_certificate(&key, &chain[0])?;
        if !m.matches {
            return Err(Error::bad_file(&key_path, m.reason));
        }
        Ok(Identity {
            chain,
            pkcs8: zeroize::Zeroizing::new(key.pkcs8_der().to_vec()),
        })
    }
}

/// `HOST:PORT`, `[IPv6]:PORT`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

impl Endpoint {
    /// Parses `HOST:PORT` (IPv6 in brackets).
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |why: &str| Error::Usage(format!("invalid endpoint '{text}': {why}"));
        let (host, port) = if let Some(rest) = text.strip_prefix('[') {
            let (h, p) = rest
                .split_once(']')
                .ok_or_else(|| bad("missing ']' after the IPv6 address"))?;
            h.parse::<std::net::Ipv6Addr>()
                .map_err(|_| bad("not an IPv6 address in brackets"))?;
            (
                h,
                p.strip_prefix(':')
                    .ok_or_else(|| bad("expected HOST:PORT"))?,
            )
        } else {
            text.rsplit_once(':')
                .filter(|(h, _)| !h.contains(':'))
                .ok_or_else(|| bad("expected HOST:PORT ([ADDR]:PORT for IPv6)"))?
        };
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?;
        let ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
        if !ok {
            return Err(bad("invalid host name"));
        }
        Ok(Endpoint {
            host: host.to_string(),
            port,
        })
    }

    /// The host as an IP address, when it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// The Nagios view of one probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Status {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl Status {
    /// The plugin exit code.
    pub fn code(self) -> i32 {
        match self {
            Status::Ok => 0,
            Status::Warning => 1,
            Status::Critical => 2,
            Status::Unknown => 3,
        }
    }
}

/// How to probe.
#[derive(Clone)]
pub struct Options<'a> {
    /// Server name sent in SNI; default: the endpoint's host when it is a DNS name.
    pub sni: Option<String>,
    /// Name the certificate must carry; default: the SNI name, else the endpoint's host.
    pub host: Option<String>,
    /// Trust anchors (DER).
    pub anchors: &'a [Vec<u8>],
    /// Client certificate for mutual TLS.
    pub identity: Option<&'a Identity>,
    /// For connecting, and again for the handshake.
    pub timeout: Duration,
    /// WARNING when the served chain expires within this many seconds.
    pub within: i64,
    /// Unix seconds the chain is judged at.
    pub now: i64,
}

/// One certificate the server sent.
#[derive(Debug, Clone, Serialize)]
pub struct ServedCert {
    pub subject: String,
    pub issuer: String,
    /// Lower-case hex, as `inspect` and the inventory show it.
    pub serial: String,
    pub not_after: String,
    pub days_left: i64,
    /// e.g. `EC P-256`, `RSA 3072`.
    pub key: String,
    /// SHA-256 of the DER, colon-separated upper-case hex.
    pub sha256: String,
}

/// The outcome of one probe, as `probe --json` prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    pub endpoint: String,
    /// The address connected to, when the TCP connection was made.
    pub address: Option<String>,
    pub status: Status,
    /// What is wrong, one line, when something is.
    pub problem: Option<String>,
    /// `TLSv1.3`, `TLSv1.2`.
    pub protocol: Option<String>,
    pub cipher_suite: Option<String>,
    /// The name sent in SNI.
    pub sni: Option<String>,
    /// The name the certificate was checked against.
    pub host: String,
    /// Leaf first, as served.
    pub chain: Vec<ServedCert>,
    /// The served chain judged by `verify` (path to a trust anchor, validity, usage,
    /// host name); absent when no chain was served.
    pub verdict: Option<Verdict>,
    /// Seconds until the first certificate of the served chain expires.
    pub seconds_left: Option<i64>,
    pub client_certificate: ClientCert,
    /// The leaf as DER, for callers that compare it with what should be served.
    #[serde(skip)]
    pub leaf_der: Option<Vec<u8>>,
}

/// Mutual TLS, as it went.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ClientCert {
    /// The server asked for a client certificate.
    pub requested: bool,
    /// One was sent.
    pub sent: bool,
}

/// Connects to `ep`, records what it serves and judges it.
pub fn probe(ep: &Endpoint, opts: &Options<'_>) -> Probe {
    let sni = opts
        .sni
        .clone()
        .or_else(|| opts.host.clone().filter(|h| h.parse::<IpAddr>().is_err()))
        .or_else(|| ep.ip().is_none().then(|| ep.host.clone()));
    let host = opts
        .host
        .clone()
        .or_else(|| sni.clone())
        .unwrap_or_else(|| ep.host.clone());
    let mut p = Probe {
        endpoint: ep.to_string(),
        address: None,
        status: Status::Ok,
        problem: None,
        protocol: None,
        cipher_suite: None,
        sni: sni.clone(),
        host: host.clone(),
        chain: Vec::new(),
        verdict: None,
        seconds_left: None,
        client_certificate: ClientCert::default(),
        leaf_der: None,
    };
    let hs = match tls::handshake(
        &ep.host,
        ep.port,
        sni.as_deref(),
        opts.identity,
        opts.timeout,
    ) {
        Ok(hs) => hs,
        Err(tls::Failure::Connect(why)) => {
            p.status = Status::Unknown;
            p.problem = Some(why);
            return p;
        }
        Err(tls::Failure::Tls(why)) => {
            p.status = Status::Critical;
            p.problem = Some(why);
            return p;
        }
    };
    p.address = Some(hs.address);
    p.protocol = Some(hs.protocol);
    p.cipher_suite = Some(hs.cipher_suite);
    p.client_certificate = ClientCert {
        requested: hs.client_cert_requested,
        sent: hs.client_cert_sent,
    };
    p.chain = hs.chain.iter().map(|d| describe(d, opts.now)).collect();
    let Some((leaf, rest)) = hs.chain.split_first() else {
        p.status = Status::Critical;
        p.problem = Some("the server sent no certificate".into());
        return p;
    };
    p.leaf_der = Some(leaf.clone());
    let name = match host.parse::<IpAddr>() {
        Ok(ip) => Host::Ip(ip),
        Err(_) => Host::Dns(host.clone()),
    };
    let verdict = verify(
        leaf,
        rest,
        opts.anchors,
        &VerifyOptions {
            at: opts.now,
            host: Some(name),
            purpose: Some(Purpose::Server),
            crls: Vec::new(),
        },
    );
    p.seconds_left = hs
        .chain
        .iter()
        .filter_map(|d| not_after(d))
        .min()
        .map(|t| t - opts.now);
    if let Some(why) = hs.refused {
        p.status = Status::Critical;
        p.problem = Some(why);
    } else if let Some(e) = &verdict.error {
        p.status = Status::Critical;
        p.problem = Some(e.clone());
    } else if let Some(left) = p.seconds_left.filter(|l| *l < opts.within) {
        p.status = Status::Warning;
        p.problem = Some(format!(
            "the served chain expires in {} days",
            left.div_euclid(86_400)
        ));
    }
    p.verdict = Some(verdict);
    p
}

/// Probes every endpoint, at most `parallel` at once; results in the order given.
pub fn probe_all(eps: &[Endpoint], opts: &Options<'_>, parallel: usize) -> Vec<Probe> {
    bounded_map(eps, parallel, |ep| probe(ep, opts))
}

/// `f` over `items` on at most `parallel` threads; results in the order of `items`.
/// Probes spend their time waiting on the network, so threads, not CPU cores, bound them.
pub fn bounded_map<T: Sync, R: Send>(
    items: &[T],
    parallel: usize,
    f: impl Fn(&T) -> R + Sync,
) -> Vec<R> {
    let next = AtomicUsize::new(0);
    let slots: Vec<std::sync::Mutex<Option<R>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..parallel.clamp(1, items.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(item) = items.get(i) else { break };
                let r = f(item);
                *slots[i].lock().expect("not poisoned") = Some(r);
            });
        }
    });
    slots
        .into_iter()
        .map(|m| {
            m.into_inner()
                .expect("not poisoned")
                .expect("every item done")
        })
        .collect()
}

fn not_after(der: &[u8]) -> Option<i64> {
    X509Certificate::from_der(der)
        .ok()
        .map(|(_, c)| c.validity().not_after.timestamp())
}

fn describe(der: &[u8], now: i64) -> ServedCert {
    let sha = colon_hex(&sha256(der));
    match X509Certificate::from_der(der) {
        Ok((_, c)) => {
            let na = c.validity().not_after.timestamp();
            ServedCert {
                subject: c.subject().to_string(),
                issuer: c.issuer().to_string(),
                serial: crate::x509::serial_hex(c.raw_serial()),
                not_after: crate::x509::rfc3339(&c.validity().not_after),
                days_left: (na - now).div_euclid(86_400),
                key: crate::x509::describe_spki(c.public_key()).to_string(),
                sha256: sha,
            }
        }
        Err(e) => ServedCert {
            subject: format!("(not a valid certificate: {})", crate::x509::short_err(&e)),
            issuer: String::new(),
            serial: String::new(),
            not_after: String::new(),
            days_left: 0,
            key: String::new(),
            sha256: sha,
        },
    }
}

/// What an endpoint serves compared with the certificate in a member's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Serves {
    /// The certificate in the files (same serial and fingerprint).
    Current,
    /// An older certificate issued for the same name: the reload is missing.
    Previous,
    /// Something certmesh did not issue for this name.
    Other,
    /// Nothing: no TLS session (see the probe's problem).
    Nothing,
}

impl Serves {
    /// Compares the probe's leaf with `current` (DER); `previous` says whether a served
    /// certificate that is not current was issued earlier for the same name.
    pub fn judge(p: &Probe, current: &[u8], previous: impl Fn(&ServedCert) -> bool) -> Serves {
        let (Some(leaf), Some(served)) = (&p.leaf_der, p.chain.first()) else {
            return Serves::Nothing;
        };
        if leaf.as_slice() == current {
            Serves::Current
        } else if previous(served) {
            Serves::Previous
        } else {
            Serves::Other
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        let e = Endpoint::parse("web.example.com:443").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("web.example.com", 443));
        let e = Endpoint::parse("[::1]:8443").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 8443));
        assert_eq!(e.to_string(), "[::1]:8443");
        for bad in [
            "web",
            "web:0",
            "web:70000",
            "::1:443",
            ":443",
            "a b:1",
            "[zz]:1",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
}
