//! Auditing a tree of files: classify each by content (not by name), lint what can be
//! linted, and flag the handling mistakes that leak keys or break deployments: keys
//! readable by everyone, encrypted keys with their passphrase lying beside them, keys
//! without their certificate and certificates without their key.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::Serialize;
use x509_parser::prelude::*;

use super::lint::{lint_cert, Finding, Severity};
use super::{inspect_bytes, Object};
use crate::pass::Secret;
use crate::x509::KeyType;
use crate::{Error, Result};

/// Files larger than this are not PKI material and are skipped unread.
const MAX_FILE: u64 = 4 << 20;

/// One classified file.
#[derive(Debug, Serialize)]
pub struct FileAudit {
    pub file: String,
    /// `certificate`, `private key`, `csr`, `pkcs12`, `java keystore` (JKS or JCEKS).
    pub kind: String,
    /// A short description: subjects, key type, keystore state.
    pub summary: String,
    pub findings: Vec<Finding>,
}

/// Everything found under the audited paths.
#[derive(Debug, Serialize)]
pub struct AuditReport {
    pub files: Vec<FileAudit>,
}

impl AuditReport {
    /// The worst severity found, if any finding at all.
    pub fn worst(&self) -> Option<Severity> {
        self.files
            .iter()
            .flat_map(|f| f.findings.iter().map(|x| x.severity))
            .max()
    }
}

/// What a file holds, as far as the cross-file checks need.
struct Seen {
    audit: FileAudit,
    /// SHA-256 of the public key of a private key (when readable without passphrase).
    key_hash: Option<String>,
    key_encrypted: bool,
    /// SHA-256 of the public key of the file's first certificate, when it is not a CA.
    leaf_hash: Option<String>,
    /// Public keys of every certificate in the file.
    cert_hashes: Vec<String>,
    /// Every certificate of a PEM or DER certificate file (DER), for the chain check.
    certs: Vec<Vec<u8>>,
}

/// Audits files and directories (recursively; symbolic links to directories are not
/// followed). `storepasses` are tried on PKCS#12 files.
pub fn audit(paths: &[PathBuf], storepasses: &[Secret]) -> Result<AuditReport> {
    let mut files = Vec::new();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| Error::io(p, e))?;
        if meta.is_dir() {
            walk(p, &mut files)?;
        } else {
            files.push(p.clone());
        }
    }
    let mut by_dir: BTreeMap<PathBuf, Vec<Seen>> = BTreeMap::new();
    let mut out = Vec::new();
    for f in &files {
        if f.file_name().is_some_and(|n| n == "store.toml") {
            out.extend(ca_store(f));
        }
    }
    for f in files {
        if let Some(seen) = classify(&f, storepasses)? {
            let dir = f.parent().map(Path::to_path_buf).unwrap_or_default();
            by_dir.entry(dir).or_default().push(seen);
        }
    }
    for (dir, mut seen) in by_dir {
        cross_check(&dir, &mut seen);
        out.extend(seen.into_iter().map(|s| s.audit));
    }
    Ok(AuditReport { files: out })
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| Error::io(dir, e))?
        .filter_map(|e| e.ok())
        .collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            walk(&path, out)?;
        } else if ft.is_file() {
            out.push(path);
        }
    }
    Ok(())
}

/// Classifies one file; `None` for files that hold no PKI material.
fn classify(path: &Path, storepasses: &[Secret]) -> Result<Option<Seen>> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    if meta.len() > MAX_FILE || meta.len() == 0 {
        return Ok(None);
    }
    let data = zeroize::Zeroizing::new(crate::fsio::read(path)?);
    let mut seen = Seen {
        audit: FileAudit {
            file: path.display().to_string(),
            kind: String::new(),
            summary: String::new(),
            findings: Vec::new(),
        },
        key_hash: None,
        key_encrypted: false,
        leaf_hash: None,
        cert_hashes: Vec::new(),
        certs: Vec::new(),
    };
    if data.starts_with(&[0xFE, 0xED, 0xFE, 0xED]) || data.starts_with(&[0xCE, 0xCE, 0xCE, 0xCE]) {
        seen.audit.kind = "java keystore".into();
        seen.audit.summary = if data[0] == 0xFE { "JKS" } else { "JCEKS" }.into();
        return Ok(Some(seen));
    }
    if crate::keystore::pkcs12::looks_like_pkcs12(&data) {
        seen.audit.kind = "pkcs12".into();
        let opened = storepasses
            .iter()
            .find_map(|p| crate::keystore::pkcs12::decode(path, &data, p).ok());
        if let Some(decoded) = opened {
            seen.audit.summary = "PKCS#12, opened with a --storepass".into();
            for der in decoded.certificates() {
                if let Ok((_, cert)) = X509Certificate::from_der(&der) {
                    seen.audit.findings.extend(lint_cert(&cert, &der));
                }
            }
        } else {
            seen.audit.summary = "PKCS#12, locked".into();
            seen.audit.findings.push(Finding::new(
                Severity::Info,
                "pkcs12-locked",
                "no --storepass opens this PKCS#12 file; its contents were not checked",
            ));
        }
        return Ok(Some(seen));
    }
    let Ok(report) = inspect_bytes(path, &data, None) else {
        return Ok(None);
    };
    let mut subjects = Vec::new();
    for obj in &report.objects {
        match obj {
            Object::Certificate(c) => {
                seen.audit.kind = "certificate".into();
                subjects.push(c.subject.clone());
            }
            Object::Csr(c) => {
                seen.audit.kind = "csr".into();
                subjects.push(c.subject.clone());
                if c.key.is_weak_rsa() {
                    seen.audit.findings.push(Finding::new(
                        Severity::Error,
                        "weak-rsa-key",
                        format!("RSA key of {} bits (at least 2048 needed)", c.key.bits),
                    ));
                }
                if c.san.dns.is_empty() && c.san.ip.is_empty() {
                    seen.audit.findings.push(Finding::new(
                        Severity::Warning,
                        "csr-without-subject-alt-name",
                        "the request names no subjectAltName (CN only)",
                    ));
                }
            }
            Object::PublicKey(k) => {
                seen.audit.kind = "public key".into();
                seen.audit.summary = format!("{} public key", k.key);
            }
            Object::Key(k) => {
                seen.audit.kind = "private key".into();
                seen.audit.summary = k.to_string();
                seen.key_hash = k.public_key_sha256.clone();
                seen.key_encrypted = k.encrypted;
                if k.key_type == Some(KeyType::Rsa)
                    && k.bits.is_some_and(|b| b < crate::x509::MIN_RSA_BITS)
                {
                    seen.audit.findings.push(Finding::new(
                        Severity::Error,
                        "weak-rsa-key",
                        format!(
                            "RSA key of {} bits (at least 2048 needed)",
                            k.bits.unwrap_or(0)
                        ),
                    ));
                }
                if meta.permissions().mode() & 0o004 != 0 {
                    seen.audit.findings.push(Finding::new(
                        Severity::Error,
                        "world-readable-key",
                        format!(
                            "private key readable by every user (mode {:04o})",
                            meta.permissions().mode() & 0o7777
                        ),
                    ));
                }
            }
        }
    }
    if seen.audit.kind == "certificate" {
        let ders = crate::x509::parse_certs(path, &data)?;
        for (i, der) in ders.iter().enumerate() {
            let Ok((_, cert)) = X509Certificate::from_der(der) else {
                continue;
            };
            let hash = crate::x509::colon_hex(&crate::x509::sha256(cert.public_key().raw));
            if i == 0 && !cert.is_ca() {
                seen.leaf_hash = Some(hash.clone());
            }
            seen.cert_hashes.push(hash);
            seen.audit.findings.extend(lint_cert(&cert, der));
        }
        seen.certs = ders;
        seen.audit.summary = subjects.join(", ");
    } else if seen.audit.kind == "csr" {
        seen.audit.summary = subjects.join(", ");
    }
    Ok(Some(seen))
}

/// A CA store's `store.toml`: where each CA key lives; a key file lying beside a key the
/// store says is in a PKCS#11 token (a copy outside the token defeats it); and a store in
/// a directory others can change (the check certmesh makes before it uses a store,
/// reported here instead of refused). `store.toml` is read as it is, without opening the
/// store, so a store certmesh would refuse is still described.
fn ca_store(config: &Path) -> Option<FileAudit> {
    let home = config.parent()?;
    let text = std::fs::read_to_string(config).ok()?;
    let parsed: crate::ca::StoreConfig = toml::from_str(&text).ok()?;
    let mut places = Vec::new();
    let mut findings: Vec<Finding> = crate::fsio::dir_chain_problems(home)
        .into_iter()
        .map(|p| {
            Finding::new(
                Severity::Error,
                "shared-store-dir",
                format!("{p}: another user could swap this store's CA or plant files in it"),
            )
        })
        .collect();
    for a in &parsed.authorities {
        if crate::ca::check_entry_name(&a.id).is_err() {
            continue;
        }
        let key_file = home.join("ca").join(&a.id).join("key.pem");
        match &a.pkcs11 {
            Some(t) => {
                places.push(format!("{}: key in PKCS#11 token {}", a.id, t.uri));
                if key_file.exists() {
                    findings.push(Finding::new(
                        Severity::Error,
                        "key-file-beside-token",
                        format!(
                            "{} exists although store.toml says the key of '{}' lives in a PKCS#11 token: a key outside the token defeats it",
                            key_file.display(),
                            a.id
                        ),
                    ));
                }
            }
            None if a.encrypted => places.push(format!("{}: key file, encrypted", a.id)),
            None => places.push(format!("{}: key file, unencrypted", a.id)),
        }
    }
    Some(FileAudit {
        file: config.display().to_string(),
        kind: "ca store".into(),
        summary: places.join("; "),
        findings,
    })
}

/// Checks between the files of one directory.
fn cross_check(dir: &Path, seen: &mut [Seen]) {
    let cert_hashes: Vec<String> = seen
        .iter()
        .flat_map(|s| s.cert_hashes.iter().cloned())
        .collect();
    let key_hashes: Vec<String> = seen.iter().filter_map(|s| s.key_hash.clone()).collect();
    let unknown_keys = seen
        .iter()
        .any(|s| s.audit.kind == "private key" && s.key_hash.is_none());
    let pass_files = passphrase_files(dir);
    let dir_certs = DirCerts::new(seen);
    let now = ::time::OffsetDateTime::now_utc().unix_timestamp();
    for s in seen.iter_mut() {
        if let Some(problem) = chain_problem(s, &dir_certs, now) {
            s.audit.findings.push(Finding::new(
                Severity::Error,
                "chain-refused",
                format!("verify refuses it with the directory's CA: {problem}"),
            ));
        }
        if s.key_encrypted {
            if let Some(p) = pass_files.first() {
                s.audit.findings.push(Finding::new(
                    Severity::Warning,
                    "passphrase-next-to-key",
                    format!(
                        "encrypted key with a passphrase file beside it ({}): the encryption protects nothing",
                        p.display()
                    ),
                ));
            }
        }
        if let Some(h) = &s.key_hash {
            if !cert_hashes.contains(h) {
                s.audit.findings.push(Finding::new(
                    Severity::Warning,
                    "key-without-certificate",
                    "no certificate for this key in the same directory",
                ));
            }
        }
        if let Some(h) = &s.leaf_hash {
            if !unknown_keys && !key_hashes.is_empty() && !key_hashes.contains(h) {
                s.audit.findings.push(Finding::new(
                    Severity::Warning,
                    "certificate-without-key",
                    "the directory holds keys, but none for this certificate",
                ));
            }
        }
    }
}

/// The certificates of one directory, as the chain check needs them: read once per
/// directory, not once per certificate in it.
struct DirCerts {
    all: Vec<Vec<u8>>,
    /// Subjects (raw DER) of the CA certificates.
    ca_subjects: std::collections::HashSet<Vec<u8>>,
    /// The self-signed CA certificates: the trust anchors.
    anchors: Vec<Vec<u8>>,
}

impl DirCerts {
    fn new(seen: &[Seen]) -> Self {
        let all: Vec<Vec<u8>> = seen.iter().flat_map(|s| s.certs.iter().cloned()).collect();
        let mut ca_subjects = std::collections::HashSet::new();
        let mut anchors = Vec::new();
        for der in &all {
            let Ok((_, c)) = X509Certificate::from_der(der) else {
                continue;
            };
            if c.is_ca() {
                ca_subjects.insert(c.subject().as_raw().to_vec());
                if c.subject().as_raw() == c.issuer().as_raw() {
                    anchors.push(der.clone());
                }
            }
        }
        DirCerts {
            all,
            ca_subjects,
            anchors,
        }
    }
}

/// Why `verify` refuses the leaf certificate of `s` (at `now`, for any purpose), with the
/// directory's certificates as intermediates and its self-signed CAs as anchors; `None`
/// when it accepts, or when the directory does not hold the leaf's issuer and a root to
/// judge it by (a lone certificate, or one whose CA lives elsewhere).
fn chain_problem(s: &Seen, dir: &DirCerts, now: i64) -> Option<String> {
    s.leaf_hash.as_ref()?;
    let leaf = s.certs.first()?;
    let (_, c) = X509Certificate::from_der(leaf).ok()?;
    if dir.anchors.is_empty() || !dir.ca_subjects.contains(c.issuer().as_raw()) {
        return None;
    }
    let v = crate::verify::verify(
        leaf,
        &dir.all,
        &dir.anchors,
        &crate::verify::Options {
            at: now,
            ..Default::default()
        },
    );
    if v.ok {
        None
    } else {
        v.error
    }
}

/// Files that look like stored passphrases: `*.pass`, `*pass*.txt`, `*password*`.
fn passphrase_files(dir: &Path) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .map(|e| e.path())
        .filter(|p| {
            let name = p
                .file_name()
                .map(|n| n.to_string_lossy().to_ascii_lowercase())
                .unwrap_or_default();
            name.ends_with(".pass")
                || (name.contains("pass") && name.ends_with(".txt"))
                || name.contains("password")
                || name.contains("passphrase")
        })
        .collect();
    v.sort();
    v
}
