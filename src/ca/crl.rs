//! Revocation: marking issued certificates revoked in the inventory, and the CAs'
//! certificate revocation lists: the issuing CA's in `<home>/crl.pem`, and one for each CA
//! above it in `<home>/ca/<id>/crl.pem`. A server that checks revocation for the whole
//! chain (nginx `ssl_crl`, Apache `SSLCARevocationCheck chain`, `openssl verify
//! -crl_check_all`) refuses every client whose chain lacks a CRL from any CA, so servers
//! are handed all of them in one file ([`Store::crl_bundle`]).

use std::path::{Path, PathBuf};

use rcgen::{
    CertificateRevocationListParams, KeyIdMethod, RevocationReason, RevokedCertParams, SerialNumber,
};
use serde::Serialize;
use time::{Duration, OffsetDateTime};
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::store::{Signer, Store};
use crate::fsio::{self, Overwrite, PUBLIC};
use crate::inventory::{Kind, Record};
use crate::{Error, Result};

const CRL_FILE: &str = "crl.pem";

/// Why a certificate is revoked (RFC 5280 reason codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Unspecified,
    KeyCompromise,
    CaCompromise,
    AffiliationChanged,
    Superseded,
    CessationOfOperation,
}

const REASONS: [Reason; 6] = [
    Reason::Unspecified,
    Reason::KeyCompromise,
    Reason::CaCompromise,
    Reason::AffiliationChanged,
    Reason::Superseded,
    Reason::CessationOfOperation,
];

impl Reason {
    /// Parses an RFC 5280 reason name (`keyCompromise`, ...; case does not matter).
    pub fn parse(s: &str) -> Result<Self> {
        REASONS
            .iter()
            .copied()
            .find(|r| r.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                Error::Usage(format!(
                    "unknown revocation reason '{s}': use one of {}",
                    REASONS.map(|r| r.name()).join(", ")
                ))
            })
    }

    /// The RFC 5280 name, as openssl prints it in `crl -text` (in camel case).
    pub fn name(self) -> &'static str {
        match self {
            Reason::Unspecified => "unspecified",
            Reason::KeyCompromise => "keyCompromise",
            Reason::CaCompromise => "cACompromise",
            Reason::AffiliationChanged => "affiliationChanged",
            Reason::Superseded => "superseded",
            Reason::CessationOfOperation => "cessationOfOperation",
        }
    }

    fn code(self) -> RevocationReason {
        match self {
            Reason::Unspecified => RevocationReason::Unspecified,
            Reason::KeyCompromise => RevocationReason::KeyCompromise,
            Reason::CaCompromise => RevocationReason::CaCompromise,
            Reason::AffiliationChanged => RevocationReason::AffiliationChanged,
            Reason::Superseded => RevocationReason::Superseded,
            Reason::CessationOfOperation => RevocationReason::CessationOfOperation,
        }
    }
}

/// The outcome of `revoke`.
#[derive(Debug, Clone, Serialize)]
pub struct Revoked {
    pub name: String,
    pub serial: String,
    pub reason: String,
    /// It was revoked before; nothing changed.
    pub already: bool,
    /// It was signed by another CA than the current issuing one, so the CRL written now
    /// does not list it.
    pub other_issuer: bool,
}

/// A CRL written by `crl` (or after `revoke`).
#[derive(Debug, Clone, Serialize)]
pub struct CrlWritten {
    /// The authority that signed it (`intermediate`, `root`, ...).
    pub authority: String,
    pub path: PathBuf,
    pub number: u64,
    pub this_update: String,
    pub next_update: String,
    /// Serials listed.
    pub revoked: Vec<String>,
}

impl Store {
    /// Where the issuing CA's CRL is kept.
    pub fn crl_path(&self) -> PathBuf {
        self.home().join(CRL_FILE)
    }

    /// Where an authority's CRL is kept: `<home>/crl.pem` for the issuing CA (the file
    /// servers set up by hand point at), `<home>/ca/<id>/crl.pem` for the others.
    pub fn crl_path_of(&self, id: &str) -> PathBuf {
        if id == self.issuing().id {
            self.crl_path()
        } else {
            self.authority_dir(id).join(CRL_FILE)
        }
    }

    /// Every CRL of the issuing CA's chain that exists, issuing CA's first, as one PEM
    /// file: what a server checking the whole chain needs. `None` until the issuing CA has
    /// a CRL (nothing revoked, no `crl` run).
    pub fn crl_bundle(&self) -> Result<Option<Vec<u8>>> {
        if !self.crl_path().exists() {
            return Ok(None);
        }
        let mut out = Vec::new();
        for id in self.crl_chain_ids()? {
            let path = self.crl_path_of(&id);
            if path.exists() {
                let pem = fsio::read(&path)?;
                out.extend_from_slice(&pem);
                if !pem.ends_with(b"\n") {
                    out.push(b'\n');
                }
            }
        }
        Ok(Some(out))
    }

    /// The leaf certificate that `what` names: the current certificate of an issued name,
    /// or a serial (hex, colons allowed).
    pub fn find_certificate(&self, what: &str) -> Result<Record> {
        let inv = self.inventory()?;
        let found = match inv.current(what, Kind::Leaf)? {
            Some(r) => Some(r),
            None => {
                // A name whose certificates are all revoked or superseded: the newest.
                let mut named: Vec<Record> = inv
                    .by_name(what)?
                    .into_iter()
                    .filter(|r| r.kind == Kind::Leaf)
                    .collect();
                match named.pop() {
                    Some(r) => Some(r),
                    None => match normalize_serial(what) {
                        Some(s) => inv.by_serial(&s)?,
                        None => None,
                    },
                }
            }
        };
        let rec = found.ok_or_else(|| {
            Error::Refused(format!(
                "no certificate named '{what}' and none with that serial in the inventory ({})",
                self.home().join("inventory.sqlite").display()
            ))
        })?;
        if rec.kind != Kind::Leaf {
            return Err(Error::Refused(format!(
                "{what} is the {} CA certificate; certmesh revokes issued certificates only (replace a CA with `certmesh ca rollover`)",
                rec.kind
            )));
        }
        Ok(rec)
    }

    /// Marks `rec` revoked in the inventory (a no-op when it already is). The caller holds
    /// the lock and writes a new CRL afterwards.
    pub fn revoke(&self, rec: &Record, reason: Reason, signer: &Signer) -> Result<Revoked> {
        // Refuse before recording anything when the CRL could not be signed afterwards.
        check_crl_signer(signer)
            .map_err(|e| Error::Refused(format!("{e}; nothing was revoked")))?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let changed = self.inventory()?.revoke(&rec.serial, now, reason.name())?;
        Ok(Revoked {
            name: rec.name.clone(),
            serial: rec.serial.clone(),
            reason: reason.name().to_string(),
            already: !changed,
            other_issuer: rec.issuer_serial != issuer_serial(signer)?,
        })
    }

    /// Signs a CRL listing every revoked certificate the `signer` CA signed, valid for
    /// `days`, with its next CRL number, and writes it atomically to
    /// [`Store::crl_path_of`] the signer.
    pub fn write_crl(&self, signer: &Signer, days: u32) -> Result<CrlWritten> {
        if days == 0 {
            return Err(Error::Usage("--days must be at least 1".into()));
        }
        let (_, ca) = X509Certificate::from_der(signer.cert_der())
            .map_err(|e| Error::Crypto(format!("CA certificate does not parse: {e}")))?;
        let issuer = crate::x509::serial_hex(ca.raw_serial());
        let ski = ca
            .iter_extensions()
            .find_map(|e| match e.parsed_extension() {
                ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
                _ => None,
            });
        let mut inv = self.inventory()?;
        let revoked = inv.revoked_by(&issuer)?;
        let now = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .expect("0 ns is valid");
        // Like certificates' not-before, a little in the past for members whose clocks lag,
        // but never before a revocation it lists: a CRL cannot report what happened after
        // it was issued (linters flag it, and some relying parties ignore such entries).
        let latest = revoked
            .iter()
            .map(|r| r.revoked_at)
            .max()
            .unwrap_or(i64::MIN);
        let this_update = (now - crate::cert::BACKDATE)
            .max(OffsetDateTime::from_unix_timestamp(latest).unwrap_or(OffsetDateTime::UNIX_EPOCH))
            .min(now);
        let next_update = now + Duration::days(i64::from(days));
        let mut entries = Vec::new();
        for r in &revoked {
            let at = OffsetDateTime::from_unix_timestamp(r.revoked_at)
                .map_err(|_| Error::Crypto(format!("bad revocation time for {}", r.serial)))?;
            entries.push(RevokedCertParams {
                serial_number: SerialNumber::from_slice(&serial_bytes(&r.serial)?),
                // A revocation recorded "in the future" (the clock was set back since):
                // dated at thisUpdate.
                revocation_time: at.min(this_update),
                reason_code: Reason::parse(&r.reason).ok().map(Reason::code),
                invalidity_date: None,
            });
        }
        let number = inv.next_crl_number(&issuer)?;
        let params = CertificateRevocationListParams {
            this_update,
            next_update,
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: None,
            revoked_certs: entries,
            key_identifier_method: match ski {
                Some(k) => KeyIdMethod::PreSpecified(k),
                None => KeyIdMethod::Sha256,
            },
        };
        check_crl_signer(signer)?;
        let crl = params.signed_by(signer.issuer())?;
        let pem = crl.pem()?;
        let path = self.crl_path_of(&signer.id);
        fsio::write_file(&path, pem.as_bytes(), PUBLIC, Overwrite::Replace)?;
        Ok(CrlWritten {
            authority: signer.id.clone(),
            path,
            number,
            this_update: crate::x509::rfc3339_time(this_update),
            next_update: crate::x509::rfc3339_time(next_update),
            revoked: revoked.into_iter().map(|r| r.serial).collect(),
        })
    }

    /// The CRLs of the issuing CA's chain to (re)write now, issuing CA's first, each with
    /// the lifetime in days it should get: every one in the last third of its lifetime (or
    /// past its nextUpdate), and, once the issuing CA has a CRL, those of the CAs above it
    /// that have none yet (with the issuing CA's lifetime). Stores without a CRL have
    /// nothing due.
    pub fn crls_due(&self) -> Result<Vec<(String, u32)>> {
        self.crls_due_at(OffsetDateTime::now_utc().unix_timestamp())
    }

    /// The CAs whose CRLs servers need, issuing CA first: the issuing CA and every CA above
    /// it whose keyUsage allows signing CRLs (an imported root without cRLSign cannot
    /// have one; full-chain checking cannot work with such a root, chain-less can).
    pub fn crl_chain_ids(&self) -> Result<Vec<String>> {
        let issuing = self.issuing().id.clone();
        let mut ids = Vec::new();
        for id in self.chain_ids()? {
            let der = self.cert_der(&id)?;
            let (_, cert) = X509Certificate::from_der(&der)
                .map_err(|_| Error::bad_file(self.cert_path(&id), "not a valid certificate"))?;
            let signs_crls = match cert.key_usage() {
                Ok(Some(ku)) => ku.value.crl_sign(),
                _ => true,
            };
            if id == issuing || signs_crls {
                ids.push(id);
            }
        }
        Ok(ids)
    }

    /// Writes every CRL [`Store::crls_due`] lists, each signed by the CA that `signer`
    /// loads by id; returns what was written, issuing CA's first.
    pub fn refresh_crls(
        &self,
        signer: &mut dyn FnMut(&str) -> Result<Signer>,
    ) -> Result<Vec<CrlWritten>> {
        let mut written = Vec::new();
        for (id, days) in self.crls_due()? {
            written.push(self.write_crl(&signer(&id)?, days)?);
        }
        Ok(written)
    }

    /// [`Store::crls_due`] at `now` (Unix seconds).
    pub fn crls_due_at(&self, now: i64) -> Result<Vec<(String, u32)>> {
        let issuing = self.crl_path();
        if !issuing.exists() {
            return Ok(Vec::new());
        }
        let (lifetime, _) = crl_refresh_due_at(&issuing, now)?;
        let mut due = Vec::new();
        for id in self.crl_chain_ids()? {
            let path = self.crl_path_of(&id);
            if !path.exists() {
                due.push((id, lifetime));
            } else if let (days, true) = crl_refresh_due_at(&path, now)? {
                due.push((id, days));
            }
        }
        Ok(due)
    }
}

/// The lifetime in days of the CRL at `path` (as the next one should get), and whether
/// it is within the last third of its lifetime or past its nextUpdate at `now`.
fn crl_refresh_due_at(path: &Path, now: i64) -> Result<(u32, bool)> {
    let data = fsio::read(path)?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&data)
        .map_err(|_| Error::bad_file(path, "not a PEM CRL"))?;
    let (_, crl) = x509_parser::revocation_list::CertificateRevocationList::from_der(&pem.contents)
        .map_err(|_| Error::bad_file(path, "not a valid CRL"))?;
    let this = crl.last_update().timestamp();
    let Some(next) = crl.next_update().map(|t| t.timestamp()) else {
        return Ok((7, true));
    };
    let lifetime = (next - this).max(1);
    // Up to 5 minutes before thisUpdate are not part of the requested days; rounding
    // to whole days absorbs them.
    let days = ((lifetime + 43_200) / 86_400).max(1);
    Ok((
        u32::try_from(days).unwrap_or(u32::MAX),
        now >= next - lifetime / 3,
    ))
}

fn check_crl_signer(signer: &Signer) -> Result<()> {
    let usages = signer.issuer().key_usages();
    if usages.is_empty() || usages.contains(&rcgen::KeyUsagePurpose::CrlSign) {
        Ok(())
    } else {
        Err(Error::Refused(format!(
            "the keyUsage of CA '{}' does not allow signing CRLs (no cRLSign)",
            signer.id
        )))
    }
}

fn issuer_serial(signer: &Signer) -> Result<String> {
    let (_, ca) = X509Certificate::from_der(signer.cert_der())
        .map_err(|e| Error::Crypto(format!("CA certificate does not parse: {e}")))?;
    Ok(crate::x509::serial_hex(ca.raw_serial()))
}

/// `AB:CD:01`, `0xabcd01` or `abcd01` as the inventory's form (lower-case hex of the
/// serial's bytes without leading zero bytes, as [`crate::x509::serial_hex`] writes it);
/// `None` when it is not hex.
fn normalize_serial(s: &str) -> Option<String> {
    let s = s.trim();
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    let hex: String = s.chars().filter(|c| *c != ':').collect();
    if hex.is_empty() || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let bytes = serial_bytes(&hex.to_ascii_lowercase()).ok()?;
    Some(crate::x509::serial_hex(&bytes))
}

fn serial_bytes(serial: &str) -> Result<Vec<u8>> {
    let padded = if serial.len() % 2 == 1 {
        format!("0{serial}")
    } else {
        serial.to_string()
    };
    hex::decode(&padded).map_err(|_| Error::Crypto(format!("bad serial in inventory: {serial}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_and_reasons() {
        assert_eq!(normalize_serial("00:AB:cd").as_deref(), Some("abcd"));
        assert_eq!(normalize_serial("0x0f").as_deref(), Some("0f"));
        assert_eq!(normalize_serial("f").as_deref(), Some("0f"));
        assert_eq!(normalize_serial("0A:1B").as_deref(), Some("0a1b"));
        assert_eq!(normalize_serial("000A1B").as_deref(), Some("0a1b"));
        assert_eq!(
            normalize_serial("0A1B"),
            Some(crate::x509::serial_hex(&[0x0a, 0x1b]))
        );
        assert_eq!(normalize_serial("node1"), None);
        assert_eq!(serial_bytes("f01").unwrap(), vec![0x0f, 0x01]);
        assert_eq!(
            Reason::parse("KEYCOMPROMISE").unwrap(),
            Reason::KeyCompromise
        );
        assert_eq!(
            Reason::parse("cACompromise").unwrap().name(),
            "cACompromise"
        );
        assert!(matches!(
            Reason::parse("nope").unwrap_err(),
            Error::Usage(_)
        ));
    }

    /// A 30-day P-256 root store named `name`, unencrypted, under `dir`.
    fn p256_store(dir: &std::path::Path, name: &str) -> Store {
        let init = crate::ca::CaInit {
            name: name.into(),
            key: crate::key::KeyAlg::P256,
            days: 30,
            digest: Default::default(),
            constraints: Default::default(),
            token: None,
        };
        Store::init(&dir.join("pki"), &init, None).unwrap()
    }

    #[test]
    fn refresh_is_due_in_the_last_third() {
        let dir = tempfile::tempdir().unwrap();
        let store = p256_store(dir.path(), "Refresh CA");
        assert!(
            store.crls_due().unwrap().is_empty(),
            "no CRL, nothing to do"
        );
        let signer = store
            .signer("root", &mut || Err(Error::Secret("unencrypted".into())))
            .unwrap();
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let first = store.write_crl(&signer, 3).unwrap();
        assert_eq!(first.number, 1);
        assert!(first.revoked.is_empty());
        assert!(store.crls_due_at(now).unwrap().is_empty());
        assert!(store.crls_due_at(now + 86_400).unwrap().is_empty());
        let root = vec![("root".to_string(), 3)];
        assert_eq!(store.crls_due_at(now + 2 * 86_400 + 60).unwrap(), root);
        assert_eq!(store.crls_due_at(now + 10 * 86_400).unwrap(), root);
        assert_eq!(store.write_crl(&signer, 3).unwrap().number, 2);
    }

    #[test]
    fn this_update_is_not_before_a_listed_revocation() {
        let dir = tempfile::tempdir().unwrap();
        let store = p256_store(dir.path(), "Revoking CA");
        let signer = store
            .signer("root", &mut || Err(Error::Secret("unencrypted".into())))
            .unwrap();
        let req = crate::ca::IssueRequest {
            name: "n".into(),
            names: crate::cert::SubjectNames::new(&["n.example.com".into()], &[]).unwrap(),
            profile: crate::cert::Profile::Server,
            days: 10,
            key: crate::key::KeyAlg::P256,
            replace: false,
            data_encipherment: false,
        };
        store.issue(&signer, &req).unwrap();
        let rec = store.find_certificate("n").unwrap();
        store.revoke(&rec, Reason::KeyCompromise, &signer).unwrap();
        store.write_crl(&signer, 7).unwrap();
        let pem = std::fs::read(store.crl_path()).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
        let (_, crl) =
            x509_parser::revocation_list::CertificateRevocationList::from_der(&pem.contents)
                .unwrap();
        let revoked: Vec<_> = crl.iter_revoked_certificates().collect();
        assert_eq!(revoked.len(), 1);
        assert!(
            revoked[0].revocation_date.timestamp() <= crl.last_update().timestamp(),
            "revoked at {} but thisUpdate {}",
            revoked[0].revocation_date,
            crl.last_update()
        );
    }
}
