//! Changing an existing keystore in place, whatever its format: the store is recognised by
//! content (JKS, JCEKS or PKCS#12), loaded into a JKS-shaped view on which every decision
//! is made (no-op, replace, duplicates: see `trust`), and encoded back in the format and
//! protection it came in. A PKCS#12 file is changed bag by bag, so everything not asked for
//! (keys, signers without Java's trusted attribute, secret and unknown bags, the
//! protection) stays as it was; JKS/JCEKS entries not touched are kept byte for byte.
//!
//! Also the listing of a JKS/JCEKS store (`truststore list`, `keystore list`) as a value.

use std::path::Path;

use serde::Serialize;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::detect::{detect, StoreFormat};
use super::jks::{normalize_alias, Entry, EntryBody, Flavor, Integrity, KeyStore, StoredCert};
use super::pkcs12;
use super::trust::{import_certs, ImportOptions, Outcome};
use crate::pass::Secret;
use crate::x509::{colon_hex, rfc3339, sha256};
use crate::{Error, Result};

/// The store type asked for (`--type`): a check on what is found, or the format of a new
/// store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    /// Whatever the content is.
    Auto,
    Jks,
    Jceks,
    Pkcs12,
}

impl StoreType {
    /// Parses `auto`, `jks`, `jceks`, `pkcs12` or `p12` (any case).
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "auto" => Ok(StoreType::Auto),
            "jks" => Ok(StoreType::Jks),
            "jceks" => Ok(StoreType::Jceks),
            "pkcs12" | "p12" => Ok(StoreType::Pkcs12),
            _ => Err(Error::Usage(format!(
                "unknown keystore type '{s}': expected auto, jks, jceks or pkcs12"
            ))),
        }
    }
}

/// A store's format as editing handles it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JKS or JCEKS, through certmesh's own codec (entries kept byte for byte).
    Java(Flavor),
    /// PKCS#12, rewritten through the PKCS#12 codec in the mode it was found in.
    Pkcs12,
}

impl Format {
    /// Whether opening a store of this format needs a password: not a PKCS#12 file without
    /// one (JDK 18+ `cacerts`: no MAC, nothing encrypted), which is written back without.
    pub fn needs_password(self, data: &[u8]) -> bool {
        self != Format::Pkcs12 || pkcs12::needs_password(data)
    }
}

/// The format of the store in `data`, checked against `want`.
pub fn format_of(path: &Path, data: &[u8], want: StoreType) -> Result<Format> {
    let found = detect(data);
    let flavor = match found {
        StoreFormat::Jks => Flavor::Jks,
        StoreFormat::Jceks => Flavor::Jceks,
        StoreFormat::Pkcs12 => {
            return match want {
                StoreType::Auto | StoreType::Pkcs12 => Ok(Format::Pkcs12),
                _ => Err(Error::bad_file(
                    path,
                    "is a PKCS#12 keystore, not the --type given",
                )),
            }
        }
        StoreFormat::Unknown => {
            return Err(Error::bad_file(
                path,
                if data.is_empty() {
                    "empty file, not a keystore".to_string()
                } else {
                    "not a keystore certmesh recognises (JKS, JCEKS or PKCS#12)".to_string()
                },
            ))
        }
    };
    let agrees = match want {
        StoreType::Auto => true,
        StoreType::Jks => flavor == Flavor::Jks,
        StoreType::Jceks => flavor == Flavor::Jceks,
        StoreType::Pkcs12 => false,
    };
    if !agrees {
        return Err(Error::bad_file(
            path,
            format!("is a {} keystore, not the --type given", found.name()),
        ));
    }
    Ok(Format::Java(flavor))
}

/// A store loaded for editing.
pub enum Editable {
    Java(KeyStore),
    Pkcs12 {
        /// The JKS-shaped view the decisions are made on.
        view: KeyStore,
        pfx: pkcs12::pfx::Pfx,
    },
}

impl Editable {
    /// A new, empty JKS or JCEKS store.
    pub fn new_java(flavor: Flavor) -> Self {
        Editable::Java(KeyStore::new(flavor))
    }

    /// Loads a store for editing, with warnings about what it holds (one line each) that
    /// the operator should know before it is changed.
    pub fn load(
        path: &Path,
        data: &[u8],
        format: Format,
        pass: &Secret,
    ) -> Result<(Self, Vec<String>)> {
        match format {
            Format::Java(_) => {
                let ks = KeyStore::parse(path, data, Some(pass))?.0;
                let warnings = duplicate_alias_warning(path, &ks).into_iter().collect();
                Ok((Editable::Java(ks), warnings))
            }
            Format::Pkcs12 => {
                let decoded = pkcs12::decode(path, data, pass)?;
                let warnings = untrusted_warning(path, &decoded).into_iter().collect();
                let mut view = KeyStore::new(Flavor::Jks);
                for (alias, leaf) in decoded.key_entries() {
                    view.entries.push(Entry {
                        alias,
                        timestamp: 0,
                        body: EntryBody::PrivateKey {
                            protected_key: Vec::new(),
                            chain: leaf.map(StoredCert::x509).into_iter().collect(),
                        },
                    });
                }
                for (alias, der) in decoded.trusted_certs() {
                    view.entries.push(Entry {
                        alias,
                        timestamp: 0,
                        body: EntryBody::TrustedCert(StoredCert::x509(der)),
                    });
                }
                let pfx = decoded.into_pfx();
                Ok((Editable::Pkcs12 { view, pfx }, warnings))
            }
        }
    }

    /// The view the decisions are made on.
    pub fn view(&mut self) -> &mut KeyStore {
        match self {
            Editable::Java(ks) => ks,
            Editable::Pkcs12 { view, .. } => view,
        }
    }

    /// `JKS`, `JCEKS` or `PKCS#12`.
    pub fn format_name(&self) -> &'static str {
        match self {
            Editable::Java(ks) => ks.flavor.name(),
            Editable::Pkcs12 { .. } => "PKCS#12",
        }
    }

    /// Adds `certs` as trusted entries under `alias`, `alias-2`, ... (see
    /// [`import_certs`]), in the view and in the file's own structure.
    pub fn import(
        &mut self,
        store_path: &Path,
        alias: &str,
        certs: &[Vec<u8>],
        opts: ImportOptions,
        timestamp: i64,
    ) -> Result<Vec<(String, Outcome)>> {
        let outcomes = import_certs(self.view(), store_path, alias, certs, opts, timestamp)?;
        if let Editable::Pkcs12 { pfx, .. } = self {
            for ((alias, outcome), der) in outcomes.iter().zip(certs) {
                if matches!(outcome, Outcome::Replaced) {
                    remove_trusted(pfx, alias);
                }
                if outcome.changed() {
                    pfx.add_trusted(alias, der)?;
                }
            }
        }
        Ok(outcomes)
    }

    /// Removes the entry under `alias` (ignoring case, as Java does) and returns it; None
    /// when there is none.
    pub fn remove(&mut self, alias: &str) -> Option<Entry> {
        let gone = self.view().remove(alias)?;
        match self {
            Editable::Java(ks) => {
                // keytool keeps only the later of two entries under one alias, so after its
                // delete the alias is gone: the earlier copies go too.
                while ks.remove(alias).is_some() {}
            }
            Editable::Pkcs12 { pfx, .. } => match &gone.body {
                EntryBody::PrivateKey { .. } => {
                    pfx.remove_key_entry(&gone.alias);
                }
                _ => {
                    remove_trusted(pfx, &gone.alias);
                }
            },
        }
        Some(gone)
    }

    /// Encodes the edited store in the format and protection it came in.
    pub fn encode(&self, pass: &Secret) -> Result<Vec<u8>> {
        match self {
            Editable::Java(ks) => ks.to_bytes(pass),
            Editable::Pkcs12 { pfx, .. } => pfx.to_checked_bytes(pass),
        }
    }
}

/// Removes the trusted-certificate bags named `alias` (ignoring case, as Java does).
fn remove_trusted(pfx: &mut pkcs12::pfx::Pfx, alias: &str) -> usize {
    let want = normalize_alias(alias);
    pfx.remove_where(|b| {
        b.trusted
            && b.certificate()
                .is_some_and(|der| normalize_alias(&pkcs12::bag_alias(b, der)) == want)
    })
}

/// A warning when a PKCS#12 file holds certificates Java will not load as trusted entries
/// (no trusted attribute, no key): they are kept, but Java ignores them.
pub fn untrusted_warning(path: &Path, decoded: &pkcs12::Decoded) -> Option<String> {
    let untrusted = decoded.untrusted_certs();
    if untrusted.is_empty() {
        return None;
    }
    let subjects: Vec<String> = untrusted.iter().map(|d| cert_facts(d).subject).collect();
    Some(format!(
        "{}: {} certificate(s) without Java's trusted attribute, which Java does not load as trusted entries (kept as they are): {}",
        path.display(),
        untrusted.len(),
        subjects.join("; ")
    ))
}

/// A warning when a JKS/JCEKS file has two entries under one alias (keytool keeps the
/// later one).
pub fn duplicate_alias_warning(path: &Path, ks: &KeyStore) -> Option<String> {
    let dups = ks.duplicate_aliases();
    (!dups.is_empty()).then(|| {
        format!(
            "{}: alias(es) '{}' appear more than once; keytool uses the later entry, certmesh keeps the file's entries as they are",
            path.display(),
            dups.join("', '")
        )
    })
}

/// keytool refuses to make stores with passwords under 6 characters (Java itself does not
/// mind), so a store made with one may surprise the operator later.
pub fn short_storepass_warning(pass: &Secret) -> Option<&'static str> {
    (pass.expose().chars().count() < 6).then_some(
        "keytool refuses store passwords shorter than 6 characters; Java itself accepts them",
    )
}

/// Subject, expiry and SHA-256 fingerprint of a stored certificate.
#[derive(Debug, Clone)]
pub struct CertFacts {
    pub subject: String,
    /// RFC 3339; empty when the certificate does not parse.
    pub not_after: String,
    pub sha256: String,
}

/// The facts of a stored certificate; one that does not parse is named as such, so a
/// listing still shows every entry.
pub fn cert_facts(der: &[u8]) -> CertFacts {
    let sha = colon_hex(&sha256(der));
    match X509Certificate::from_der(der) {
        Ok((_, c)) => CertFacts {
            subject: c.subject().to_string(),
            not_after: rfc3339(&c.validity().not_after),
            sha256: sha,
        },
        Err(_) => CertFacts {
            subject: "(unparseable certificate)".into(),
            not_after: String::new(),
            sha256: sha,
        },
    }
}

/// A JKS/JCEKS store's entries, as `truststore list --json` prints them.
#[derive(Debug, Serialize)]
pub struct Listing {
    pub file: String,
    pub format: StoreFormat,
    /// `verified` (password given and the MAC matched) or `not-checked`.
    pub integrity: &'static str,
    pub entries: Vec<ListedEntry>,
    #[serde(skip)]
    pub flavor: Flavor,
    /// One line each: what the operator should know about the file.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// One entry of a [`Listing`].
#[derive(Debug, Serialize)]
pub struct ListedEntry {
    pub alias: String,
    /// `PrivateKeyEntry`, `trustedCertEntry`, `SecretKeyEntry`, or `unreadable` for a
    /// sealed object Java cannot load.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain_length: Option<usize>,
}

/// Lists a JKS/JCEKS store. Without a password the entries are read but the file's
/// integrity is not checked (as keytool does), and a warning says so. Of two entries under
/// one alias only the later is listed: keytool loads entries into a map, so that one is
/// what Java sees.
pub fn list_java(path: &Path, data: &[u8], pass: Option<&Secret>) -> Result<Listing> {
    let (ks, integrity) = KeyStore::parse(path, data, pass)?;
    let mut warnings = Vec::new();
    if integrity == Integrity::NotChecked {
        warnings.push(format!(
            "{}: integrity not checked (no --storepass given); the entries below may have been altered",
            path.display()
        ));
    }
    warnings.extend(duplicate_alias_warning(path, &ks));
    let visible = |i: usize, e: &Entry| {
        ks.entries[i + 1..]
            .iter()
            .all(|later| normalize_alias(&later.alias) != normalize_alias(&e.alias))
    };
    let unreadable = |e: &Entry| match &e.body {
        EntryBody::SecretKey { sealed } => super::jceks::unreadable_sealed_class(sealed),
        _ => None,
    };
    for e in &ks.entries {
        if let Some(class) = unreadable(e) {
            warnings.push(format!(
                "{}: entry '{}' is a sealed object of class {class}, not a secret key Java can read (keytool cannot load it either); kept as it is",
                path.display(),
                e.alias
            ));
        }
    }
    let entries = ks
        .entries
        .iter()
        .enumerate()
        .filter(|(i, e)| visible(*i, e))
        .map(|(_, e)| {
            let facts = e.body.first_cert().map(|c| cert_facts(&c.der));
            let created = time::OffsetDateTime::from_unix_timestamp(e.timestamp.div_euclid(1000))
                .map(crate::x509::rfc3339_time)
                .unwrap_or_default();
            ListedEntry {
                alias: e.alias.clone(),
                kind: if unreadable(e).is_some() {
                    "unreadable"
                } else {
                    e.body.type_name()
                },
                created,
                subject: facts.as_ref().map(|f| f.subject.clone()),
                not_after: facts.as_ref().map(|f| f.not_after.clone()),
                sha256: facts.as_ref().map(|f| f.sha256.clone()),
                chain_length: match &e.body {
                    EntryBody::PrivateKey { chain, .. } => Some(chain.len()),
                    _ => None,
                },
            }
        })
        .collect();
    Ok(Listing {
        file: path.display().to_string(),
        format: match ks.flavor {
            Flavor::Jks => StoreFormat::Jks,
            Flavor::Jceks => StoreFormat::Jceks,
        },
        integrity: match integrity {
            Integrity::Verified => "verified",
            Integrity::NotChecked => "not-checked",
        },
        entries,
        flavor: ks.flavor,
        warnings,
    })
}

/// The certificates of a file used as trust anchors: every certificate of a PKCS#12 file,
/// the trusted entries of a JKS/JCEKS store, else the certificates of a PEM or DER file.
/// `pass` is asked only for a keystore; a keystore without a certificate is an error.
pub fn trust_anchors(
    path: &Path,
    data: &[u8],
    pass: crate::key::PassPrompt<'_>,
) -> Result<Vec<Vec<u8>>> {
    let format = detect(data);
    let certs = match format {
        StoreFormat::Unknown => return crate::x509::parse_certs(path, data),
        StoreFormat::Pkcs12 => pkcs12::decode(path, data, &pass()?)?.certificates(),
        StoreFormat::Jks | StoreFormat::Jceks => {
            let (ks, _) = KeyStore::parse(path, data, Some(&pass()?))?;
            ks.entries
                .into_iter()
                .filter_map(|e| match e.body {
                    EntryBody::TrustedCert(c) => Some(c.der),
                    _ => None,
                })
                .collect()
        }
    };
    if certs.is_empty() {
        return Err(Error::bad_file(
            path,
            format!("{} store holds no trusted certificate", format.name()),
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(cn: &str) -> Vec<u8> {
        crate::cert::testing::self_signed(cn).der().to_vec()
    }

    fn pass() -> Secret {
        Secret::new("changeit".into())
    }

    #[test]
    fn store_type_and_format_checks() {
        assert_eq!(StoreType::parse("P12").unwrap(), StoreType::Pkcs12);
        assert!(matches!(StoreType::parse("pem"), Err(Error::Usage(_))));
        let p = Path::new("t.jks");
        let jks = KeyStore::new(Flavor::Jks).to_bytes(&pass()).unwrap();
        assert_eq!(
            format_of(p, &jks, StoreType::Auto).unwrap(),
            Format::Java(Flavor::Jks)
        );
        let e = format_of(p, &jks, StoreType::Jceks)
            .unwrap_err()
            .to_string();
        assert!(e.contains("is a JKS keystore, not the --type given"), "{e}");
        assert!(format_of(p, &jks, StoreType::Pkcs12).is_err());
        let e = format_of(p, b"", StoreType::Auto).unwrap_err().to_string();
        assert!(e.contains("empty file"), "{e}");
        let e = format_of(p, b"hello", StoreType::Auto)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a keystore certmesh recognises"), "{e}");
        assert!(Format::Java(Flavor::Jks).needs_password(&jks));
    }

    #[test]
    fn pkcs12_import_and_remove_keep_the_format() {
        let p = Path::new("t.p12");
        let (a, b) = (cert("a.example"), cert("b.example"));
        let file = pkcs12::trust_store(
            &[("first".into(), a.clone())],
            pkcs12::Compat::Modern,
            &pass(),
        )
        .unwrap()
        .into_bytes();
        let format = format_of(p, &file, StoreType::Auto).unwrap();
        assert_eq!(format, Format::Pkcs12);
        let (mut ed, warnings) = Editable::load(p, &file, format, &pass()).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        assert_eq!(ed.format_name(), "PKCS#12");
        let o = ed
            .import(
                p,
                "Second",
                std::slice::from_ref(&b),
                ImportOptions::default(),
                1,
            )
            .unwrap();
        assert_eq!(o, vec![("second".into(), Outcome::Added)]);
        let bytes = ed.encode(&pass()).unwrap();
        let trusted = pkcs12::decode(p, &bytes, &pass()).unwrap().trusted_certs();
        assert_eq!(trusted.len(), 2);
        assert!(trusted.iter().any(|(al, d)| al == "second" && *d == b));

        let (mut ed, _) = Editable::load(p, &bytes, format, &pass()).unwrap();
        assert!(ed.remove("FIRST").is_some());
        assert!(ed.remove("nothing").is_none());
        let bytes = ed.encode(&pass()).unwrap();
        let trusted = pkcs12::decode(p, &bytes, &pass()).unwrap().trusted_certs();
        assert_eq!(trusted, vec![("second".to_string(), b)]);
    }

    #[test]
    fn java_remove_drops_every_copy_and_listing_shows_the_later() {
        let p = Path::new("t.jks");
        let (a, b) = (cert("a.example"), cert("b.example"));
        let mut ks = KeyStore::new(Flavor::Jks);
        ks.set_trusted("ca", a.clone(), 1000);
        ks.set_trusted("other", a.clone(), 2000);
        // A second entry under the same alias, as some tools write.
        let mut dup = ks.entries[0].clone();
        dup.alias = "CA".into();
        dup.body = EntryBody::TrustedCert(StoredCert::x509(b.clone()));
        ks.entries.push(dup);
        let data = ks.to_bytes(&pass()).unwrap();

        let listing = list_java(p, &data, None).unwrap();
        assert_eq!(listing.integrity, "not-checked");
        assert_eq!(listing.warnings.len(), 2, "{:?}", listing.warnings);
        assert!(listing.warnings[1].contains("appear more than once"));
        let aliases: Vec<&str> = listing.entries.iter().map(|e| e.alias.as_str()).collect();
        assert_eq!(aliases, ["other", "CA"]);
        assert_eq!(
            listing.entries[1].sha256.as_deref(),
            Some(&*colon_hex(&sha256(&b)))
        );
        assert_eq!(
            list_java(p, &data, Some(&pass())).unwrap().integrity,
            "verified"
        );

        let (mut ed, warnings) =
            Editable::load(p, &data, Format::Java(Flavor::Jks), &pass()).unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(ed.remove("ca").is_some());
        let Editable::Java(ks) = &ed else { panic!() };
        assert_eq!(ks.entries.len(), 1);
        assert!(ed.encode(&pass()).is_ok());
    }

    #[test]
    fn trust_anchors_of_each_kind_of_file() {
        let p = Path::new("t");
        let (a, b) = (cert("a.example"), cert("b.example"));
        let mut ks = KeyStore::new(Flavor::Jks);
        ks.set_trusted("a", a.clone(), 1);
        let jks = ks.to_bytes(&pass()).unwrap();
        assert_eq!(
            trust_anchors(p, &jks, &mut || Ok(pass())).unwrap(),
            std::slice::from_ref(&a)
        );
        let p12 = pkcs12::trust_store(&[("b".into(), b.clone())], pkcs12::Compat::Modern, &pass())
            .unwrap()
            .into_bytes();
        assert_eq!(
            trust_anchors(p, &p12, &mut || Ok(pass())).unwrap(),
            std::slice::from_ref(&b)
        );
        // PEM: no password asked.
        let pem = crate::x509::to_pem("CERTIFICATE", &a);
        let got = trust_anchors(p, pem.as_bytes(), &mut || unreachable!()).unwrap();
        assert_eq!(got, [a]);
        let empty = KeyStore::new(Flavor::Jks).to_bytes(&pass()).unwrap();
        let e = trust_anchors(p, &empty, &mut || Ok(pass()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("JKS store holds no trusted certificate"), "{e}");
    }

    #[test]
    fn facts_and_short_passwords() {
        let f = cert_facts(b"junk");
        assert_eq!(f.subject, "(unparseable certificate)");
        assert!(f.not_after.is_empty());
        let f = cert_facts(&cert("a.example"));
        assert_eq!(f.subject, "CN=a.example");
        assert!(f.not_after.ends_with('Z'), "{}", f.not_after);
        assert!(short_storepass_warning(&Secret::new("12345".into())).is_some());
        assert!(short_storepass_warning(&Secret::new("123456".into())).is_none());
    }
}
