//! Deciding what a certificate needs: what the manifest wants of it ([`Wanted`]) against
//! what is issued, with the reason a certificate must be replaced. `plan`, `apply` and
//! `renew --cluster` all decide through here.

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

use serde::Serialize;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::manifest::{Manifest, Member};
use super::profile::{ProductProfile, MEMBER};
use super::render::Material;
use crate::ca::{IssuedEntry, Store};
use crate::cert::{Profile as CertProfile, SubjectNames};
use crate::duration::RenewWindow;
use crate::fsio;
use crate::key::{read_private_key, KeyAlg, PrivateKey};
use crate::{Error, Result};

/// What happened (or would happen) to a member's certificate.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum LeafAction {
    Keep,
    Issue,
    Renew {
        reason: String,
    },
    /// Due, but its rotation policy keeps it as it is until a deliberate command.
    Held {
        reason: String,
    },
}

impl LeafAction {
    /// True when the run issues a certificate for it.
    pub fn issues(&self) -> bool {
        matches!(self, LeafAction::Issue | LeafAction::Renew { .. })
    }
}

/// What a certificate (a member's or a shared identity's) should be: the manifest's
/// strings for it, parsed once.
pub(crate) struct Wanted {
    pub data_encipherment: bool,
    pub names: SubjectNames,
    pub cert_profile: CertProfile,
    pub key: KeyAlg,
    pub days: u32,
    pub window: RenewWindow,
}

impl Wanted {
    /// What member `m` (of `product`) wants; a bad value is an error naming the member's
    /// line in the manifest.
    pub(crate) fn of(manifest: &Manifest, m: &Member, product: &ProductProfile) -> Result<Self> {
        let err = |e: Error| manifest.member_error(m, e.to_string());
        let cert_profile = match m
            .cert_profile
            .as_deref()
            .or(manifest.defaults.cert_profile.as_deref())
        {
            Some(p) => CertProfile::parse(p).map_err(err)?,
            None => product.cert_profile()?,
        };
        let own = product.identity(MEMBER)?;
        let key = KeyAlg::parse(m.key.as_deref().unwrap_or(&manifest.defaults.key)).map_err(err)?;
        own.accepts(key)
            .map_err(|p| manifest.member_error(m, format!("profile '{}': {p}", product.name)))?;
        Ok(Wanted {
            data_encipherment: own.data_encipherment,
            names: SubjectNames::new(&m.dns, &m.ip).map_err(err)?,
            cert_profile,
            key,
            days: m.days.unwrap_or(manifest.defaults.days),
            window: RenewWindow::parse(
                m.renew_before
                    .as_deref()
                    .unwrap_or(&manifest.defaults.renew_before),
            )
            .map_err(err)?,
        })
    }
}

/// What every certificate of a store is checked against, read once per run rather than
/// once per certificate.
pub(crate) struct IssuerView {
    /// The issuing CA's certificate, DER.
    issuing: Vec<u8>,
    /// Where it was read from, for messages.
    issuing_path: std::path::PathBuf,
    /// Serials the inventory marks revoked.
    revoked: BTreeSet<String>,
    /// SHA-256 of every certificate the inventory records as signed by the issuing CA.
    recorded: HashSet<Vec<u8>>,
    /// The issuing CA's subject key identifier.
    key_id: Option<Vec<u8>>,
}

impl IssuerView {
    pub(crate) fn load(store: &Store) -> Result<Self> {
        let id = &store.issuing().id;
        let issuing = store.cert_der(id)?;
        let inventory = store.inventory()?;
        // A CA certificate that does not parse leaves every leaf to the signature check,
        // which reports it.
        let (recorded, key_id) = match X509Certificate::from_der(&issuing) {
            Ok((_, ca)) => (
                inventory
                    .fingerprints_by(&crate::x509::serial_hex(ca.raw_serial()))?
                    .iter()
                    .filter_map(|f| hex::decode(f.replace(':', "")).ok())
                    .collect(),
                crate::cert::describe::subject_key_id(&ca),
            ),
            Err(_) => (HashSet::new(), None),
        };
        Ok(IssuerView {
            issuing,
            issuing_path: store.cert_path(id),
            revoked: inventory
                .revocations()?
                .into_iter()
                .map(|r| r.serial)
                .collect(),
            recorded,
            key_id,
        })
    }

    /// Whether the certificate `der` (parsed: `cert`, naming `authority_key_id` as its
    /// issuer's key) was signed by the issuing CA.
    ///
    /// One the inventory records, byte for byte, as signed by the issuing CA, and that
    /// names the CA's key, was: the store signed it and kept its fingerprint. Any other is
    /// checked by its signature with the project's own verifier (the answer `check` and
    /// `verify` give). The record spares a large cluster a signature check per member,
    /// which was most of the cost of deciding that nothing is due.
    fn signed(
        &self,
        cert: &X509Certificate<'_>,
        der: &[u8],
        authority_key_id: Option<&[u8]>,
    ) -> Result<bool> {
        if self.key_id.is_some()
            && self.key_id.as_deref() == authority_key_id
            && self.recorded.contains(&crate::x509::sha256(der))
        {
            return Ok(true);
        }
        let (_, ca) = X509Certificate::from_der(&self.issuing)
            .map_err(|_| Error::bad_file(&self.issuing_path, "not a valid certificate"))?;
        Ok(crate::x509::verify_signature(
            ca.public_key(),
            &cert.signature_algorithm,
            &cert.signature_value.data,
            cert.tbs_certificate.as_ref(),
        )
        .is_ok())
    }
}

/// What an issued entry's certificate needs against `want`, with what was read to judge
/// it.
pub(crate) struct Current {
    pub action: LeafAction,
    /// The entry's key matches its certificate and is of the wanted type: it can be
    /// certified again.
    pub reusable: bool,
    /// The entry's key, certificate and chain, when all three read: the material its
    /// files are made from if the certificate is kept.
    pub material: Option<Material>,
}

impl Current {
    /// A certificate that does not exist yet.
    pub(crate) fn issue() -> Self {
        Current {
            action: LeafAction::Issue,
            reusable: false,
            material: None,
        }
    }

    /// A certificate kept as it is, unjudged (`--keep-certificates`).
    pub(crate) fn keep() -> Self {
        Current {
            action: LeafAction::Keep,
            reusable: false,
            material: None,
        }
    }
}

/// What the certificate of entry `name` in `store` needs against `want`. Members and
/// shared identities are judged here alike.
pub(crate) fn current_state(
    store: &Store,
    issuer: &IssuerView,
    chains: &Chains,
    name: &str,
    want: &Wanted,
) -> Result<Current> {
    let entry = store.issued(name)?;
    // The certificate is parsed once: read, checked and judged in one go. Whether the
    // entry exists is asked only when it cannot be read.
    let read = crate::x509::read_certs_with(&entry.cert_path(), |der, cert| {
        let key = read_issued_key(&entry).ok();
        (judge(issuer, der, cert, key.as_ref(), want), key)
    });
    let (der, (judged, key)) = match read {
        Ok((mut v, judged)) => (v.swap_remove(0), judged),
        Err(_) if !entry.exists() => return Ok(Current::issue()),
        Err(e) => {
            return Ok(Current {
                action: LeafAction::Renew {
                    reason: format!("current certificate unreadable ({e})"),
                },
                reusable: false,
                material: None,
            })
        }
    };
    let (action, reusable) = judged?;
    let material = match (key, chains.read(&entry.chain_path())) {
        (Some(key), Ok(chain)) => Some(Material {
            key,
            leaf: der,
            chain,
        }),
        _ => None,
    };
    Ok(Current {
        action,
        reusable,
        material,
    })
}

/// The chains read while deciding, by file content: the members of a store share one
/// chain, so it is parsed once rather than once per member.
#[derive(Default)]
pub(crate) struct Chains(std::sync::Mutex<std::collections::HashMap<Vec<u8>, Vec<Vec<u8>>>>);

impl Chains {
    /// The certificates of the chain file at `path`, as [`crate::x509::read_certs`] reads
    /// them.
    fn read(&self, path: &Path) -> Result<Vec<Vec<u8>>> {
        let bytes = fsio::read(path)?;
        let seen = || self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(chain) = seen().get(&bytes) {
            return Ok(chain.clone());
        }
        let chain = crate::x509::parse_certs(path, &bytes)?;
        seen().insert(bytes, chain.clone());
        Ok(chain)
    }
}

/// [`current_state`] of a certificate already read (`der`, parsed: `cert`) with its key,
/// when it has a readable one.
pub(crate) fn judge(
    issuer: &IssuerView,
    der: &[u8],
    cert: &X509Certificate<'_>,
    key: Option<&PrivateKey>,
    want: &Wanted,
) -> Result<(LeafAction, bool)> {
    let report = crate::cert::describe::leaf_facts(cert);
    let key_ok = key.is_some_and(|k| k.matches(cert));
    let reusable = key_ok && report.key == want.key.describe();
    let renew = |reason: String| Ok((LeafAction::Renew { reason }, reusable));
    let mut have: Vec<String> = report
        .san
        .dns
        .iter()
        .chain(report.san.ip.iter())
        .cloned()
        .collect();
    let mut wanted = want.names.all();
    have.sort();
    wanted.sort();
    if have != wanted {
        return renew(format!(
            "names changed ({} -> {})",
            have.join(","),
            wanted.join(",")
        ));
    }
    let want_key = want.key.describe();
    if report.key != want_key {
        return renew(format!("key type changed ({} -> {want_key})", report.key));
    }
    let mut want_ku: Vec<&str> =
        crate::cert::leaf_key_usages(&want_key, want.cert_profile, want.data_encipherment)
            .iter()
            .map(crate::cert::key_usage_name)
            .collect();
    let mut have_ku: Vec<&str> = report.key_usage.iter().map(String::as_str).collect();
    want_ku.sort_unstable();
    have_ku.sort_unstable();
    if have_ku != want_ku {
        return renew(format!(
            "key usage changed ({} -> {})",
            have_ku.join(","),
            want_ku.join(",")
        ));
    }
    if report.extended_key_usage != want.cert_profile.eku_names() {
        return renew(format!(
            "certificate profile changed to {}",
            want.cert_profile.name()
        ));
    }
    if issuer
        .revoked
        .contains(&crate::x509::serial_hex(cert.raw_serial()))
    {
        return renew("revoked".into());
    }
    if !issuer.signed(cert, der, report.authority_key_id.as_deref())? {
        return renew("not signed by the current issuing CA".into());
    }
    if !key_ok {
        return renew("key.pem is missing or does not match the certificate".into());
    }
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let (nb, na) = (
        cert.validity().not_before.timestamp(),
        cert.validity().not_after.timestamp(),
    );
    if want.window.is_due(nb, na, now) {
        return renew(format!("expires in {} days", (na - now).div_euclid(86_400)));
    }
    Ok((LeafAction::Keep, reusable))
}

/// Reads an issued (unencrypted) key.
pub(crate) fn read_key(path: &Path) -> Result<PrivateKey> {
    let data = zeroize::Zeroizing::new(fsio::read(path)?);
    read_private_key(path, &data, &mut not_encrypted)
}

/// Reads an issued entry's (unencrypted) key.
pub(crate) fn read_issued_key(entry: &IssuedEntry) -> Result<PrivateKey> {
    entry.read_key(&mut not_encrypted)
}

/// The passphrase prompt for issued keys: certmesh writes them unencrypted.
fn not_encrypted() -> Result<crate::pass::Secret> {
    Err(Error::Secret("issued keys are not encrypted".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ca::{CaInit, IssueRequest};
    use crate::cert::Profile;

    fn store(home: &Path) -> Store {
        let init = CaInit {
            name: "Same CA".into(),
            key: KeyAlg::P256,
            days: 365,
            digest: Default::default(),
            constraints: Default::default(),
            token: None,
        };
        Store::init(home, &init, None).unwrap()
    }

    /// Issues entry `n` (n.example.com, 90 days) in `store`; returns its certificate.
    fn issue(store: &Store) -> Vec<u8> {
        let signer = store.signer("root", &mut not_encrypted).unwrap();
        let req = IssueRequest {
            name: "n".into(),
            names: SubjectNames::new(&["n.example.com".into()], &[]).unwrap(),
            profile: Profile::Server,
            days: 90,
            key: KeyAlg::P256,
            replace: true,
            data_encipherment: false,
        };
        store.issue(&signer, &req).unwrap();
        crate::x509::read_certs(&store.issued("n").unwrap().cert_path())
            .unwrap()
            .remove(0)
    }

    fn want() -> Wanted {
        Wanted {
            data_encipherment: false,
            names: SubjectNames::new(&["n.example.com".into()], &[]).unwrap(),
            cert_profile: Profile::Server,
            key: KeyAlg::P256,
            days: 90,
            window: RenewWindow::parse("30d").unwrap(),
        }
    }

    fn signed(view: &IssuerView, der: &[u8]) -> bool {
        let (_, cert) = X509Certificate::from_der(der).unwrap();
        let aki = crate::cert::describe::leaf_facts(&cert).authority_key_id;
        view.signed(&cert, der, aki.as_deref()).unwrap()
    }

    #[test]
    fn a_leaf_is_signed_by_its_issuing_ca_with_or_without_its_record() {
        let dir = tempfile::tempdir().unwrap();
        let ours = store(&dir.path().join("ours"));
        let leaf = issue(&ours);
        let mut view = IssuerView::load(&ours).unwrap();
        assert!(view.recorded.contains(&crate::x509::sha256(&leaf)));
        assert!(signed(&view, &leaf), "recorded");
        view.recorded.clear();
        assert!(signed(&view, &leaf), "verified by its signature");
    }

    #[test]
    fn a_leaf_of_another_ca_of_the_same_name_is_not_signed_even_when_recorded() {
        let dir = tempfile::tempdir().unwrap();
        let ours = store(&dir.path().join("ours"));
        let theirs = store(&dir.path().join("theirs"));
        issue(&ours);
        let foreign = issue(&theirs);
        let mut view = IssuerView::load(&ours).unwrap();
        assert!(!signed(&view, &foreign));
        // A record of it (an inventory edited by hand) does not stand for a signature:
        // it names another key, so its signature is checked, and fails.
        view.recorded.insert(crate::x509::sha256(&foreign));
        assert!(!signed(&view, &foreign));
    }

    #[test]
    fn judge_keeps_a_recorded_leaf_and_renews_a_foreign_one() {
        let dir = tempfile::tempdir().unwrap();
        let ours = store(&dir.path().join("ours"));
        let theirs = store(&dir.path().join("theirs"));
        let leaf = issue(&ours);
        let foreign = issue(&theirs);
        let view = IssuerView::load(&ours).unwrap();
        let key = read_issued_key(&ours.issued("n").unwrap()).unwrap();
        let judge = |der: &[u8], key: &PrivateKey| {
            let (_, cert) = X509Certificate::from_der(der).unwrap();
            judge(&view, der, &cert, Some(key), &want()).unwrap()
        };
        let (action, reusable) = judge(&leaf, &key);
        assert_eq!(action, LeafAction::Keep);
        assert!(reusable);
        let their_key = read_issued_key(&theirs.issued("n").unwrap()).unwrap();
        let (action, _) = judge(&foreign, &their_key);
        assert_eq!(
            action,
            LeafAction::Renew {
                reason: "not signed by the current issuing CA".into()
            }
        );
        // The key of another certificate does not pass for this one's.
        let (action, reusable) = judge(&leaf, &their_key);
        assert_eq!(
            action,
            LeafAction::Renew {
                reason: "key.pem is missing or does not match the certificate".into()
            }
        );
        assert!(!reusable);
    }

    #[test]
    fn an_entry_is_issued_when_missing_and_renewed_when_its_certificate_is_unreadable() {
        let dir = tempfile::tempdir().unwrap();
        let ours = store(&dir.path().join("ours"));
        issue(&ours);
        let view = IssuerView::load(&ours).unwrap();
        let chains = Chains::default();
        let state = |name: &str| current_state(&ours, &view, &chains, name, &want()).unwrap();
        let kept = state("n");
        assert_eq!(kept.action, LeafAction::Keep);
        assert!(kept.reusable && kept.material.is_some());
        assert_eq!(state("absent").action, LeafAction::Issue);
        std::fs::remove_file(ours.issued("n").unwrap().cert_path()).unwrap();
        let gone = state("n");
        assert!(
            matches!(&gone.action, LeafAction::Renew { reason } if reason.starts_with("current certificate unreadable")),
            "{:?}",
            gone.action
        );
        assert!(!gone.reusable && gone.material.is_none());
    }
}
