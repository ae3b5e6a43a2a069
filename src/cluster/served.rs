//! What members actually serve, compared with the certificate in their files.
//!
//! A renewed file is only half a rotation: until the product reloads, it keeps serving
//! the old certificate from memory, and that one still expires. Each member's endpoints
//! (its `probe` list, else its first DNS name or IP on the profile's `probe_port`) are
//! probed and the served leaf compared with the member's current certificate by
//! fingerprint; one that certmesh issued earlier for the member is "previous" (the
//! reload is missing), anything else is "other".

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::manifest::{Manifest, Member, TrustModel};
use super::profile::ProductProfile;
use crate::ca::Store;
use crate::probe::{probe, Endpoint, Options, ServedCert, Serves, Status};
use crate::Result;

/// One endpoint of a member.
#[derive(Debug, Clone, Serialize)]
pub struct Served {
    pub endpoint: String,
    /// `current`, `previous`, `other` or `nothing`.
    pub serves: Serves,
    /// The probe's own verdict (chain, name, expiry), as `probe` reports it.
    pub status: Status,
    /// Serial of the served leaf, when one was served.
    pub serial: Option<String>,
    /// Serial of the certificate in the member's files.
    pub expected_serial: Option<String>,
    /// What the probe found wrong, when it did.
    pub problem: Option<String>,
}

impl Served {
    /// One line for people.
    pub fn describe(&self) -> String {
        let what = match self.serves {
            Serves::Current => "serves the current certificate".to_string(),
            Serves::Previous => format!(
                "serves the previous certificate (serial {}; the files hold {}): reload missing",
                self.serial.as_deref().unwrap_or("?"),
                self.expected_serial.as_deref().unwrap_or("?")
            ),
            Serves::Other => format!(
                "serves another certificate (serial {}; the files hold {})",
                self.serial.as_deref().unwrap_or("?"),
                self.expected_serial.as_deref().unwrap_or("?")
            ),
            Serves::Nothing => "serves nothing".to_string(),
        };
        match &self.problem {
            Some(p) if self.serves != Serves::Previous => format!("{what}: {p}"),
            _ => what,
        }
    }
}

/// The endpoints a member is probed on.
pub fn endpoints(m: &Member, product: &ProductProfile) -> Vec<Endpoint> {
    if let Some(list) = &m.probe {
        return list
            .iter()
            .filter_map(|e| Endpoint::parse(e).ok())
            .collect();
    }
    let host = m
        .dns
        .first()
        .cloned()
        .or_else(|| m.ip.first().map(|ip| ip.to_string()));
    match (host, product.probe_port) {
        (Some(host), Some(port)) => vec![Endpoint { host, port }],
        _ => Vec::new(),
    }
}

/// How members are probed.
#[derive(Clone)]
pub struct ProbeSettings {
    pub timeout: Duration,
    /// Endpoints probed at once.
    pub parallel: usize,
}

impl Default for ProbeSettings {
    fn default() -> Self {
        ProbeSettings {
            timeout: Duration::from_secs(5),
            parallel: 16,
        }
    }
}

/// What a cluster's members should serve: the trust anchors and each member's store.
pub struct Expected<'a> {
    manifest: &'a Manifest,
    stores: &'a BTreeMap<String, Option<Store>>,
    anchors: Vec<Vec<u8>>,
}

impl<'a> Expected<'a> {
    pub fn new(
        manifest: &'a Manifest,
        stores: &'a BTreeMap<String, Option<Store>>,
    ) -> Result<Self> {
        let mut anchors = Vec::new();
        for s in stores.values().flatten() {
            for id in s.trust_anchors() {
                anchors.push(s.cert_der(&id)?);
            }
        }
        Ok(Expected {
            manifest,
            stores,
            anchors,
        })
    }

    fn store(&self, m: &Member) -> Option<&Store> {
        let id = match self.manifest.trust {
            TrustModel::SharedCa => "cluster",
            TrustModel::Mesh => m.name.get_ref().as_str(),
        };
        self.stores.get(id).and_then(Option::as_ref)
    }

    /// Probes one endpoint of `m` and compares what it serves with the member's files.
    pub fn check(&self, m: &Member, ep: &Endpoint, settings: &ProbeSettings) -> Served {
        let name = m.name.get_ref();
        let store = self.store(m);
        let current = store.and_then(|s| {
            crate::x509::read_certs(&s.issued(name).ok()?.cert_path())
                .ok()
                .and_then(|mut v| (!v.is_empty()).then(|| v.remove(0)))
        });
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        // Endpoints given as addresses still name the member: SNI and the name checked
        // are its first DNS name, as a client behind the load balancer would use.
        let sni = m.dns.first().cloned().filter(|_| ep.ip().is_some());
        let opts = Options {
            sni: sni.clone(),
            host: sni,
            anchors: &self.anchors,
            identity: None,
            timeout: settings.timeout,
            within: 0,
            now,
        };
        let p = probe(ep, &opts);
        let expected_serial = current.as_deref().and_then(serial_of);
        let serves = match &current {
            Some(cur) => Serves::judge(&p, cur, |served| previous(store, name, served)),
            None if p.leaf_der.is_some() => Serves::Other,
            None => Serves::Nothing,
        };
        Served {
            endpoint: ep.to_string(),
            serves,
            status: p.status,
            serial: p.chain.first().map(|c| c.serial.clone()),
            expected_serial,
            problem: p.problem,
        }
    }

    /// Probes every endpoint of `m` until all serve the current certificate, or until
    /// `window` has passed (servers take a moment after a reload). A restarting member
    /// is waited for while it cannot be reached; after a graceful reload, which never
    /// stops the listener, an endpoint that cannot be reached is not waited for.
    /// Returns the last results and how long it took.
    pub fn wait_current(
        &self,
        m: &Member,
        product: &ProductProfile,
        settings: &ProbeSettings,
        window: Duration,
        restart: bool,
    ) -> (Vec<Served>, Duration) {
        let start = Instant::now();
        let eps = endpoints(m, product);
        loop {
            let served: Vec<Served> = eps.iter().map(|e| self.check(m, e, settings)).collect();
            let done = served
                .iter()
                .all(|s| s.serves == Serves::Current || (!restart && s.status == Status::Unknown));
            if done || start.elapsed() >= window {
                return (served, start.elapsed());
            }
            std::thread::sleep(
                Duration::from_millis(250).min(window.saturating_sub(start.elapsed())),
            );
        }
    }
}

/// Was `served` issued earlier for the member `name` (same serial and fingerprint)?
fn previous(store: Option<&Store>, name: &str, served: &ServedCert) -> bool {
    let Some(store) = store else { return false };
    store
        .inventory()
        .and_then(|inv| inv.by_serial(&served.serial))
        .ok()
        .flatten()
        .is_some_and(|r| r.name == name && r.sha256 == served.sha256)
}

fn serial_of(der: &[u8]) -> Option<String> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    X509Certificate::from_der(der)
        .ok()
        .map(|(_, c)| crate::x509::serial_hex(c.raw_serial()))
}
