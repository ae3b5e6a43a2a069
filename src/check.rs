//! `certmesh check`: expiry and chain health for monitoring, in the Nagios plugin
//! convention (exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN) and as Prometheus textfile
//! metrics for node_exporter.

use std::path::Path;

use serde::Serialize;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::ca::Store;
use crate::inventory::Kind;
use crate::probe::{Probe, ServedCert, Status};
use crate::{Error, Result};

/// A Nagios status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Ok,
    Warning,
    Critical,
    Unknown,
}

impl Level {
    /// The plugin exit code.
    pub fn code(self) -> i32 {
        match self {
            Level::Ok => 0,
            Level::Warning => 1,
            Level::Critical => 2,
            Level::Unknown => 3,
        }
    }

    /// Severity order for the overall verdict: CRITICAL, then UNKNOWN, then WARNING.
    fn rank(self) -> u8 {
        match self {
            Level::Ok => 0,
            Level::Warning => 1,
            Level::Unknown => 2,
            Level::Critical => 3,
        }
    }

    /// Name as Nagios prints it.
    pub fn name(self) -> &'static str {
        match self {
            Level::Ok => "OK",
            Level::Warning => "WARNING",
            Level::Critical => "CRITICAL",
            Level::Unknown => "UNKNOWN",
        }
    }
}

/// One certificate (or unreadable file) looked at.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// Entry or member name, or the certificate's CN for plain files.
    pub name: String,
    /// Cluster member, when checked through a manifest.
    pub member: String,
    /// File the certificate was read from.
    pub source: String,
    pub subject: String,
    /// Unix seconds; 0 when unreadable.
    pub not_after: i64,
    pub seconds_left: i64,
    pub level: Level,
    /// What is wrong, when something is.
    pub problem: Option<String>,
}

/// The result of a check.
#[derive(Debug, Serialize)]
pub struct Report {
    pub level: Level,
    pub items: Vec<Item>,
    /// TLS endpoints probed (`--tls`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<EndpointItem>,
}

impl Report {
    /// Folds items into a verdict.
    pub fn new(items: Vec<Item>) -> Self {
        Self::with_endpoints(items, Vec::new())
    }

    /// Folds items and probed endpoints into one verdict.
    pub fn with_endpoints(items: Vec<Item>, endpoints: Vec<EndpointItem>) -> Self {
        let level = items
            .iter()
            .map(|i| i.level)
            .chain(endpoints.iter().map(|e| e.level))
            .max_by_key(|l| l.rank())
            .unwrap_or(Level::Ok);
        Report {
            level,
            items,
            endpoints,
        }
    }

    /// The one-line plugin output.
    pub fn summary(&self, within: &str) -> String {
        let mut bad: Vec<String> = self
            .items
            .iter()
            .filter(|i| i.level == self.level && i.level != Level::Ok)
            .map(|i| format!("{}: {}", i.name, i.problem.clone().unwrap_or_default()))
            .collect();
        bad.extend(
            self.endpoints
                .iter()
                .filter(|e| e.level == self.level && e.level != Level::Ok)
                .map(|e| format!("{}: {}", e.endpoint, e.problem.clone().unwrap_or_default())),
        );
        let text = if self.level == Level::Ok {
            let next = self
                .items
                .iter()
                .map(|i| (i.seconds_left, i.name.as_str()))
                .chain(
                    self.endpoints
                        .iter()
                        .filter_map(|e| Some((e.seconds_left?, e.endpoint.as_str()))),
                )
                .min();
            let counted = if self.endpoints.is_empty() {
                format!("{} certificate(s)", self.items.len())
            } else {
                format!(
                    "{} certificate(s) and {} TLS endpoint(s)",
                    self.items.len(),
                    self.endpoints.len()
                )
            };
            match next {
                Some((left, name)) => format!(
                    "{counted}, none expires within {within}; next: {name} in {} days",
                    left.div_euclid(86_400)
                ),
                None => "no certificates found".into(),
            }
        } else {
            bad.join("; ")
        };
        format!("CERTMESH {} - {text}", self.level.name())
    }

    /// Prometheus text exposition, for node_exporter's textfile collector.
    pub fn prometheus(&self, now: i64) -> String {
        let mut out = String::new();
        out.push_str("# HELP certmesh_cert_expiry_seconds Seconds until the certificate expires (negative once expired).\n");
        out.push_str("# TYPE certmesh_cert_expiry_seconds gauge\n");
        for i in self.items.iter().filter(|i| i.not_after != 0) {
            out.push_str(&format!(
                "certmesh_cert_expiry_seconds{} {}\n",
                labels(i),
                i.seconds_left
            ));
        }
        out.push_str("# HELP certmesh_cert_not_after_timestamp_seconds When the certificate expires, as a Unix time.\n");
        out.push_str("# TYPE certmesh_cert_not_after_timestamp_seconds gauge\n");
        for i in self.items.iter().filter(|i| i.not_after != 0) {
            out.push_str(&format!(
                "certmesh_cert_not_after_timestamp_seconds{} {}\n",
                labels(i),
                i.not_after
            ));
        }
        out.push_str("# HELP certmesh_cert_status Check status per certificate (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).\n");
        out.push_str("# TYPE certmesh_cert_status gauge\n");
        for i in &self.items {
            out.push_str(&format!(
                "certmesh_cert_status{} {}\n",
                labels(i),
                i.level.code()
            ));
        }
        if !self.endpoints.is_empty() {
            out.push_str(&endpoint_metrics(&self.endpoints));
        }
        out.push_str("# HELP certmesh_check_status Overall status of the last check (0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN).\n");
        out.push_str("# TYPE certmesh_check_status gauge\n");
        out.push_str(&format!("certmesh_check_status {}\n", self.level.code()));
        out.push_str(
            "# HELP certmesh_check_timestamp_seconds When the last check ran, as a Unix time.\n",
        );
        out.push_str("# TYPE certmesh_check_timestamp_seconds gauge\n");
        out.push_str(&format!("certmesh_check_timestamp_seconds {now}\n"));
        out
    }
}

fn labels(i: &Item) -> String {
    fn esc(v: &str) -> String {
        v.replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n")
    }
    format!(
        "{{name=\"{}\",member=\"{}\",source=\"{}\"}}",
        esc(&i.name),
        esc(&i.member),
        esc(&i.source)
    )
}

/// Judges one certificate: expired or not yet valid is CRITICAL, inside the window is
/// WARNING. `issuer` (DER), when known, must have issued it under `verify`'s rules (see
/// [`crate::verify::issued_by`]), or the chain is broken.
fn judge(
    name: &str,
    member: &str,
    source: &Path,
    der: &[u8],
    issuer: Option<&[u8]>,
    within: i64,
    now: i64,
) -> Item {
    let mut item = Item {
        name: name.to_string(),
        member: member.to_string(),
        source: source.display().to_string(),
        subject: String::new(),
        not_after: 0,
        seconds_left: 0,
        level: Level::Ok,
        problem: None,
    };
    let cert = match X509Certificate::from_der(der) {
        Ok((_, c)) => c,
        Err(_) => {
            item.level = Level::Unknown;
            item.problem = Some("not a valid certificate".into());
            return item;
        }
    };
    item.subject = cert.subject().to_string();
    item.not_after = cert.validity().not_after.timestamp();
    item.seconds_left = item.not_after - now;
    let days = item.seconds_left.div_euclid(86_400);
    if let Some(issuer) = issuer {
        // The same rules as `verify` for this link of the chain (time is judged below).
        if let Err(problem) = crate::verify::issued_by(der, issuer) {
            item.level = Level::Critical;
            item.problem = Some(format!("broken chain: {problem}"));
            return item;
        }
    }
    if item.seconds_left < 0 {
        item.level = Level::Critical;
        item.problem = Some(format!("expired {} days ago", -days));
    } else if cert.validity().not_before.timestamp() > now {
        item.level = Level::Critical;
        item.problem = Some("not valid yet".into());
    } else if item.seconds_left < within {
        item.level = Level::Warning;
        item.problem = Some(format!("expires in {days} days"));
    }
    item
}

fn unreadable(name: &str, source: &Path, e: &Error) -> Item {
    Item {
        name: name.to_string(),
        member: String::new(),
        source: source.display().to_string(),
        subject: String::new(),
        not_after: 0,
        seconds_left: 0,
        level: Level::Unknown,
        problem: Some(e.to_string()),
    }
}

/// Checks the certificates in a file; in a chain file each must be signed by the next.
pub fn check_file(path: &Path, within: i64, now: i64) -> Vec<Item> {
    match crate::x509::read_certs(path) {
        Err(e) => vec![unreadable(&path.display().to_string(), path, &e)],
        Ok(ders) => ders
            .iter()
            .enumerate()
            .map(|(i, der)| {
                let name = X509Certificate::from_der(der)
                    .ok()
                    .and_then(|(_, c)| crate::x509::common_name(&c))
                    .unwrap_or_else(|| path.display().to_string());
                judge(
                    &name,
                    "",
                    path,
                    der,
                    ders.get(i + 1).map(Vec::as_slice),
                    within,
                    now,
                )
            })
            .collect(),
    }
}

/// Checks a store: its CAs and every current leaf it issued into `issued/` (read from
/// disk, so a damaged or replaced file is noticed), each against the issuing CA.
pub fn check_store(store: &Store, within: i64, now: i64) -> Result<Vec<Item>> {
    let mut items = Vec::new();
    for a in store.config().authorities.iter().filter(|a| !a.retired) {
        let path = store.cert_path(&a.id);
        match store.cert_der(&a.id) {
            Ok(der) => {
                let parent = store.cert_der(&a.parent).ok();
                items.push(judge(
                    &a.id,
                    "",
                    &path,
                    &der,
                    parent.as_deref(),
                    within,
                    now,
                ));
            }
            Err(e) => items.push(unreadable(&a.id, &path, &e)),
        }
    }
    for rec in store
        .inventory()?
        .list(None, false)?
        .into_iter()
        .filter(|r| r.kind == Kind::Leaf)
    {
        if rec.paths.is_empty() {
            continue;
        }
        items.push(check_issued(store, &rec.name, "", within, now));
    }
    Ok(items)
}

/// One entry of `issued/`: its certificate against the first certificate of its
/// chain.pem (the CA that issued it).
fn check_issued(store: &Store, name: &str, member: &str, within: i64, now: i64) -> Item {
    match read_issued(store.home(), name) {
        Ok(r) => judge(
            name,
            member,
            &r.cert_path,
            &r.leaf,
            r.issuer.as_deref(),
            within,
            now,
        ),
        Err((path, e)) => {
            let mut i = unreadable(name, &path, &e);
            i.member = member.to_string();
            i
        }
    }
}

/// An issued entry's certificate and its issuer (the first certificate of chain.pem).
struct IssuedCert {
    cert_path: std::path::PathBuf,
    leaf: Vec<u8>,
    issuer: Option<Vec<u8>>,
}

/// Reads the entry `name` of the store at `home`; an error comes with the file it
/// concerns.
fn read_issued(
    home: &Path,
    name: &str,
) -> std::result::Result<IssuedCert, (std::path::PathBuf, Error)> {
    let entry = crate::ca::IssuedEntry::at(home, name)
        .map_err(|e| (home.join(crate::ca::ISSUED_DIR).join(name), e))?;
    let cert_path = entry.cert_path();
    let certs = crate::x509::read_certs(&cert_path).map_err(|e| (cert_path.clone(), e))?;
    let chain = crate::x509::read_certs(&entry.chain_path()).map_err(|e| (cert_path.clone(), e))?;
    Ok(IssuedCert {
        leaf: certs.into_iter().next().unwrap_or_default(),
        issuer: chain.into_iter().next(),
        cert_path,
    })
}

/// Checks every member of a cluster applied to `out`, and the cluster's CAs.
pub fn check_cluster(
    manifest: &crate::cluster::manifest::Manifest,
    out: &Path,
    within: i64,
    now: i64,
) -> Result<Vec<Item>> {
    let stores = crate::cluster::stores::open_stores(manifest, out)?;
    let mut items = Vec::new();
    for store in stores.values().flatten() {
        for a in store.config().authorities.iter().filter(|a| !a.retired) {
            let path = store.cert_path(&a.id);
            match store.cert_der(&a.id) {
                Ok(der) => items.push(judge(
                    &format!("{}:{}", store.home().display(), a.id),
                    "",
                    &path,
                    &der,
                    None,
                    within,
                    now,
                )),
                Err(e) => items.push(unreadable(&a.id, &path, &e)),
            }
        }
    }
    // Identities with a rotation policy: shared ones are checked like members; for a
    // `manual` one (which renew and apply leave alone) a warning names the deliberate
    // command that renews it.
    let records = crate::cluster::identity::read_records(out);
    let manual_hint = |item: &mut Item, identity: &str| {
        if item.level != Level::Ok && item.not_after != 0 {
            let hint = format!(
                "rotation is manual, so renew and apply leave it: renew it deliberately with `{}`",
                crate::cluster::identity::renew_command(&manifest.path, out, identity)
            );
            item.problem = Some(match item.problem.take() {
                Some(p) => format!("{p}; {hint}"),
                None => hint,
            });
        }
    };
    for r in records.iter().filter(|r| r.shared) {
        let mut item = match read_issued(&out.join(&r.store), &r.entry) {
            Ok(c) => judge(
                &r.entry,
                &r.members.join(","),
                &c.cert_path,
                &c.leaf,
                c.issuer.as_deref(),
                within,
                now,
            ),
            Err((path, e)) => unreadable(&r.entry, &path, &e),
        };
        if r.rotation == crate::cluster::profile::Rotation::Manual {
            manual_hint(&mut item, &r.identity);
        }
        items.push(item);
    }
    for m in &manifest.members {
        let name = m.name.get_ref();
        let id = match manifest.trust {
            crate::cluster::manifest::TrustModel::SharedCa => "cluster",
            crate::cluster::manifest::TrustModel::Mesh => name.as_str(),
        };
        match stores.get(id).and_then(Option::as_ref) {
            Some(store) => {
                let mut item = check_issued(store, name, name, within, now);
                let manual = records.iter().any(|r| {
                    !r.shared
                        && r.entry == *name
                        && r.rotation == crate::cluster::profile::Rotation::Manual
                });
                if manual {
                    manual_hint(&mut item, crate::cluster::profile::MEMBER);
                }
                items.push(item)
            }
            None => items.push(Item {
                name: name.clone(),
                member: name.clone(),
                source: out.display().to_string(),
                subject: String::new(),
                not_after: 0,
                seconds_left: 0,
                level: Level::Critical,
                problem: Some("no certificate: the cluster was never applied here".into()),
            }),
        }
    }
    Ok(items)
}

/// A TLS endpoint looked at (`check --tls`).
#[derive(Debug, Serialize)]
pub struct EndpointItem {
    /// `HOST:PORT`.
    pub endpoint: String,
    pub level: Level,
    /// What is wrong, when something is.
    pub problem: Option<String>,
    /// The TLS handshake completed and the served chain verified.
    pub probe_success: bool,
    /// Seconds until the served chain expires, when one was served.
    pub seconds_left: Option<i64>,
    /// Whether the endpoint serves the current certificate certmesh issued for it; absent
    /// when no store checked knows the served certificate or the endpoint's name.
    pub serves_expected: Option<bool>,
    /// The probe itself, as `probe --json` shows it.
    pub probe: Probe,
}

/// Judges probed endpoints. The served leaf is looked up in the stores' inventories: a
/// superseded certificate (the files were renewed, the server not reloaded) is a
/// WARNING; a certificate certmesh did not issue, served under a name it has a current
/// certificate for, is CRITICAL.
pub fn check_endpoints(probes: Vec<Probe>, stores: &[&Store]) -> Result<Vec<EndpointItem>> {
    let mut out = Vec::new();
    for p in probes {
        let mut level = match p.status {
            Status::Ok => Level::Ok,
            Status::Warning => Level::Warning,
            Status::Critical => Level::Critical,
            Status::Unknown => Level::Unknown,
        };
        let mut problem = p.problem.clone();
        let mut serves_expected = None;
        if let Some(served) = p.chain.first().filter(|_| p.leaf_der.is_some()) {
            let (expected, why) = expectation(served, &p.host, stores)?;
            serves_expected = expected;
            if let Some((why, worse)) = why {
                if worse.rank() > level.rank() {
                    level = worse;
                }
                problem = Some(match problem {
                    Some(p) => format!("{why}; {p}"),
                    None => why,
                });
            }
        }
        out.push(EndpointItem {
            endpoint: p.endpoint.clone(),
            level,
            problem,
            probe_success: p.verdict.as_ref().is_some_and(|v| v.ok),
            seconds_left: p.seconds_left,
            serves_expected,
            probe: p,
        });
    }
    Ok(out)
}

type Expectation = (Option<bool>, Option<(String, Level)>);

/// Is `served` the current certificate of its name in one of `stores`, and if not, why.
fn expectation(served: &ServedCert, host: &str, stores: &[&Store]) -> Result<Expectation> {
    for store in stores {
        let inv = store.inventory()?;
        if let Some(rec) = inv
            .by_serial(&served.serial)?
            .filter(|r| r.sha256 == served.sha256)
        {
            return Ok(match inv.current(&rec.name, Kind::Leaf)? {
                Some(cur) if cur.serial == rec.serial => (Some(true), None),
                Some(cur) => (
                    Some(false),
                    Some((
                        format!(
                            "serves the previous certificate of {} (serial {}; current: {}): reload missing",
                            rec.name, rec.serial, cur.serial
                        ),
                        Level::Warning,
                    )),
                ),
                None => (
                    Some(false),
                    Some((
                        format!(
                            "serves certificate {} of {}, which is {}",
                            rec.serial, rec.name, rec.status
                        ),
                        Level::Critical,
                    )),
                ),
            });
        }
    }
    for store in stores {
        let inv = store.inventory()?;
        let named = inv
            .list(None, false)?
            .into_iter()
            .find(|r| r.kind == Kind::Leaf && r.sans.iter().any(|s| s.eq_ignore_ascii_case(host)));
        if let Some(cur) = named {
            return Ok((
                Some(false),
                Some((
                    format!(
                        "serves a certificate certmesh did not issue (serial {}; expected {} of {})",
                        served.serial, cur.serial, cur.name
                    ),
                    Level::Critical,
                )),
            ));
        }
    }
    Ok((None, None))
}

fn endpoint_metrics(endpoints: &[EndpointItem]) -> String {
    let label = |e: &EndpointItem| {
        format!(
            "{{endpoint=\"{}\"}}",
            e.endpoint.replace('\\', "\\\\").replace('"', "\\\"")
        )
    };
    let mut out = String::new();
    out.push_str("# HELP certmesh_tls_cert_expiry_seconds Seconds until the chain a TLS endpoint serves expires (negative once expired).\n");
    out.push_str("# TYPE certmesh_tls_cert_expiry_seconds gauge\n");
    for e in endpoints {
        if let Some(left) = e.seconds_left {
            out.push_str(&format!(
                "certmesh_tls_cert_expiry_seconds{} {left}\n",
                label(e)
            ));
        }
    }
    out.push_str("# HELP certmesh_tls_probe_success 1 when the TLS handshake completed and the served chain verified.\n");
    out.push_str("# TYPE certmesh_tls_probe_success gauge\n");
    for e in endpoints {
        out.push_str(&format!(
            "certmesh_tls_probe_success{} {}\n",
            label(e),
            u8::from(e.probe_success)
        ));
    }
    out.push_str("# HELP certmesh_tls_serves_expected 1 when the endpoint serves the current certificate certmesh issued for it.\n");
    out.push_str("# TYPE certmesh_tls_serves_expected gauge\n");
    for e in endpoints {
        if let Some(ok) = e.serves_expected {
            out.push_str(&format!(
                "certmesh_tls_serves_expected{} {}\n",
                label(e),
                u8::from(ok)
            ));
        }
    }
    out
}
