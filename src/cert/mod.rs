//! Certificate templates and issuance: what goes into a CA, a server, a client or a
//! peer certificate, and the checks made before anything is signed.

pub mod constraints;
pub mod csr;
pub mod describe;
pub mod idna;
#[cfg(test)]
pub(crate) mod testing;

use std::net::IpAddr;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyUsagePurpose, SanType, SerialNumber,
};
use time::{Duration, OffsetDateTime};

use crate::x509::{KeyDesc, KeyType};
use crate::{Error, Result};

/// The longest common name X.509 allows (`ub-common-name`, RFC 5280 appendix A).
pub const MAX_COMMON_NAME: usize = 64;

/// How far not-before is set in the past, so members whose clocks run a little behind
/// accept a certificate issued a moment ago.
pub const BACKDATE: Duration = Duration::minutes(5);

/// What a leaf certificate is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    /// TLS server: serverAuth.
    Server,
    /// TLS client: clientAuth.
    Client,
    /// Cluster members that are both: serverAuth and clientAuth.
    Peer,
}

impl Profile {
    /// Parses a profile name.
    pub fn parse(name: &str) -> Result<Self> {
        match name {
            "server" => Ok(Profile::Server),
            "client" => Ok(Profile::Client),
            "peer" => Ok(Profile::Peer),
            _ => Err(Error::Usage(format!(
                "unknown profile '{name}': expected server, client or peer"
            ))),
        }
    }

    /// The profile's name.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Server => "server",
            Profile::Client => "client",
            Profile::Peer => "peer",
        }
    }

    /// The extendedKeyUsage names this profile puts in certificates, as `inspect`
    /// reports them.
    pub fn eku_names(self) -> &'static [&'static str] {
        match self {
            Profile::Server => &["serverAuth"],
            Profile::Client => &["clientAuth"],
            Profile::Peer => &["serverAuth", "clientAuth"],
        }
    }

    fn extended_key_usages(self) -> Vec<ExtendedKeyUsagePurpose> {
        match self {
            Profile::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            Profile::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
            Profile::Peer => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        }
    }
}

/// The names a leaf certificate is valid for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SubjectNames {
    /// DNS names; the first one is also the subject CN.
    pub dns: Vec<String>,
    /// IP addresses.
    pub ips: Vec<IpAddr>,
}

impl SubjectNames {
    /// Normalises and checks the names: lower-case DNS names, no duplicates, at least one
    /// name, and every DNS name a syntactically valid host name (a leading `*.` allowed).
    pub fn new(dns: &[String], ips: &[IpAddr]) -> Result<Self> {
        let mut out = SubjectNames::default();
        // Sets keep the check linear: a manifest may list very many names.
        let mut seen = std::collections::HashSet::new();
        for d in dns {
            let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
            check_dns_name(&d)?;
            if seen.insert(d.clone()) {
                out.dns.push(d);
            }
        }
        let mut seen = std::collections::HashSet::new();
        for ip in ips {
            if seen.insert(*ip) {
                out.ips.push(*ip);
            }
        }
        if out.dns.is_empty() && out.ips.is_empty() {
            return Err(Error::Usage(
                "a certificate needs at least one --dns or --ip name (subjectAltName is required by modern clients)".into(),
            ));
        }
        Ok(out)
    }

    /// All names as text, DNS first.
    pub fn all(&self) -> Vec<String> {
        self.dns
            .iter()
            .cloned()
            .chain(self.ips.iter().map(|i| i.to_string()))
            .collect()
    }
}

fn check_dns_name(name: &str) -> Result<()> {
    let bad = |why: &str| {
        Err(Error::Usage(format!(
            "invalid DNS name '{}': {why}",
            crate::error::shorten(name)
        )))
    };
    if name.is_empty() || name.len() > 253 {
        return bad("must be 1 to 253 characters");
    }
    if name.parse::<IpAddr>().is_ok() {
        return bad("this is an IP address; give it with --ip");
    }
    let body = name.strip_prefix("*.").unwrap_or(name);
    for label in body.split('.') {
        if label.is_empty() || label.len() > 63 {
            return bad("labels must be 1 to 63 characters");
        }
        if !label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
            return bad("only letters, digits, '-' and a leading '*.' are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return bad("labels may not start or end with '-'");
        }
        if let Err(why) = idna::check_label(label) {
            return bad(&why);
        }
    }
    Ok(())
}

/// The validity period of a certificate about to be issued.
#[derive(Debug, Clone, Copy)]
pub struct Validity {
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
    /// True when the requested period was cut short to end with the issuer's.
    pub clamped: bool,
}

impl Validity {
    /// `days` from now (not-before backdated by [`BACKDATE`]), never past `issuer_not_after`.
    pub fn new(days: u32, issuer_not_after: Option<OffsetDateTime>) -> Result<Self> {
        if days == 0 {
            return Err(Error::Usage("--days must be at least 1".into()));
        }
        let now = OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .expect("zero is a valid nanosecond");
        let not_before = now - BACKDATE;
        let mut not_after = now + Duration::days(days.into());
        let mut clamped = false;
        if let Some(limit) = issuer_not_after {
            if limit <= now {
                return Err(Error::Refused(format!(
                    "the issuing CA expired on {}; renew or roll over the CA first",
                    limit.date()
                )));
            }
            if not_after > limit {
                not_after = limit;
                clamped = true;
            }
        }
        Ok(Validity {
            not_before,
            not_after,
            clamped,
        })
    }
}

/// A random 128-bit serial number (RFC 5280 allows up to 20 octets; the CA/Browser
/// Forum asks for at least 64 random bits). The DER writer adds the leading zero octet
/// that keeps the INTEGER positive.
pub fn random_serial() -> Result<SerialNumber> {
    let mut bytes = [0u8; 16];
    aws_lc_rs::rand::fill(&mut bytes).map_err(|_| Error::Crypto("no randomness".into()))?;
    Ok(SerialNumber::from_slice(&bytes))
}

/// A subject holding `cn`, or an empty subject when `cn` is longer than X.509 allows: a
/// leaf's names are in its subjectAltName (marked critical when the subject is empty),
/// so a long first DNS name is left out of the subject rather than cut or copied.
fn distinguished_name(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    if cn.chars().count() <= MAX_COMMON_NAME {
        dn.push(DnType::CommonName, cn);
    }
    dn
}

/// A CA name made from another (`"<root> Intermediate"`, `"<name> G2"`), the base cut so
/// that the whole stays within [`MAX_COMMON_NAME`].
pub fn derived_ca_name(base: &str, suffix: &str) -> String {
    let room = MAX_COMMON_NAME.saturating_sub(suffix.chars().count());
    let base: String = base.chars().take(room).collect();
    format!("{}{suffix}", base.trim_end())
}

/// Options for a CA certificate.
#[derive(Debug, Clone)]
pub struct CaTemplate {
    pub common_name: String,
    pub validity: Validity,
    /// `None` for a root (no limit), `Some(0)` for an intermediate that signs leaves only.
    pub path_len: Option<u8>,
    pub constraints: constraints::NameConstraintsSpec,
}

impl CaTemplate {
    /// rcgen parameters: CA:TRUE (critical), keyCertSign + cRLSign (critical), subject and
    /// authority key identifiers, optional name constraints (critical).
    pub fn params(&self) -> Result<CertificateParams> {
        let len = self.common_name.chars().count();
        if len == 0 || len > MAX_COMMON_NAME {
            return Err(Error::Usage(format!(
                "CA name '{}' is {len} characters long: a certificate's common name holds 1 to {MAX_COMMON_NAME}",
                self.common_name
            )));
        }
        let mut p = CertificateParams::default();
        p.distinguished_name = distinguished_name(&self.common_name);
        p.not_before = self.validity.not_before;
        p.not_after = self.validity.not_after;
        p.serial_number = Some(random_serial()?);
        p.is_ca = IsCa::Ca(match self.path_len {
            Some(n) => BasicConstraints::Constrained(n),
            None => BasicConstraints::Unconstrained,
        });
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.use_authority_key_identifier_extension = true;
        p.name_constraints = self.constraints.to_rcgen();
        Ok(p)
    }
}

/// The keyUsage bits of a leaf: what its key type can do (RFC 3279 and RFC 4055 for RSA,
/// RFC 8813 for EC, RFC 8410 for Ed25519) and no more than its extended key usages need
/// (RFC 5280 4.2.1.12).
///
/// * digitalSignature always: TLS with (EC)DHE signs the handshake, and clientAuth needs
///   nothing else.
/// * keyEncipherment on RSA server keys only: RSA key exchange (TLS 1.2 without ECDHE)
///   encrypts the premaster secret to the server's key.
/// * `encipherment` (a product encrypts data with the key, as WSO2 Carbon does):
///   dataEncipherment on RSA keys; keyAgreement on EC keys, the only way RFC 8813 lets
///   them encrypt (ECDH); nothing on Ed25519 keys, which can only sign.
pub fn leaf_key_usages(
    key: &KeyDesc,
    profile: Profile,
    encipherment: bool,
) -> Vec<KeyUsagePurpose> {
    let mut usages = vec![KeyUsagePurpose::DigitalSignature];
    match key.kind {
        KeyType::Rsa => {
            if profile != Profile::Client {
                usages.push(KeyUsagePurpose::KeyEncipherment);
            }
            if encipherment {
                usages.push(KeyUsagePurpose::DataEncipherment);
            }
        }
        KeyType::Ec if encipherment => usages.push(KeyUsagePurpose::KeyAgreement),
        _ => {}
    }
    usages
}

/// The names of key usages as `inspect` reports them.
pub fn key_usage_name(u: &KeyUsagePurpose) -> &'static str {
    match u {
        KeyUsagePurpose::DigitalSignature => "digitalSignature",
        KeyUsagePurpose::ContentCommitment => "nonRepudiation",
        KeyUsagePurpose::KeyEncipherment => "keyEncipherment",
        KeyUsagePurpose::DataEncipherment => "dataEncipherment",
        KeyUsagePurpose::KeyAgreement => "keyAgreement",
        KeyUsagePurpose::KeyCertSign => "keyCertSign",
        KeyUsagePurpose::CrlSign => "cRLSign",
        KeyUsagePurpose::EncipherOnly => "encipherOnly",
        KeyUsagePurpose::DecipherOnly => "decipherOnly",
    }
}

/// rcgen parameters for a leaf certificate: CA:FALSE, [`leaf_key_usages`], the profile's
/// extended key usages, subjectAltName always, and key identifiers. The subject holds
/// `common_name` unless it is longer than X.509 allows.
pub fn leaf_params(
    names: &SubjectNames,
    common_name: &str,
    profile: Profile,
    validity: &Validity,
    key: &KeyDesc,
    encipherment: bool,
) -> Result<CertificateParams> {
    let mut p = CertificateParams::default();
    p.distinguished_name = distinguished_name(common_name);
    p.not_before = validity.not_before;
    p.not_after = validity.not_after;
    p.serial_number = Some(random_serial()?);
    // ExplicitNoCa writes basicConstraints CA:FALSE and, with it, the subject key
    // identifier that RFC 5280 recommends for every certificate.
    p.is_ca = IsCa::ExplicitNoCa;
    p.key_usages = leaf_key_usages(key, profile, encipherment);
    p.extended_key_usages = profile.extended_key_usages();
    p.use_authority_key_identifier_extension = true;
    let mut sans = Vec::new();
    for d in &names.dns {
        sans.push(SanType::DnsName(
            d.clone()
                .try_into()
                .map_err(|_| Error::Usage(format!("invalid DNS name '{d}'")))?,
        ));
    }
    for ip in &names.ips {
        sans.push(SanType::IpAddress(*ip));
    }
    p.subject_alt_names = sans;
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_and_deduplicated() {
        let n = SubjectNames::new(
            &["Node1.Example.com".into(), "node1.example.com".into()],
            &[],
        )
        .unwrap();
        assert_eq!(n.dns, vec!["node1.example.com"]);
        assert!(SubjectNames::new(&[], &[]).is_err());
        assert!(SubjectNames::new(&["bad name".into()], &[]).is_err());
        assert!(SubjectNames::new(&["10.0.0.1".into()], &[]).is_err());
        assert!(SubjectNames::new(&["*.example.com".into()], &[]).is_ok());
    }

    #[test]
    fn validity_is_clamped_to_issuer() {
        let limit = OffsetDateTime::now_utc() + Duration::days(10);
        let v = Validity::new(365, Some(limit)).unwrap();
        assert!(v.clamped);
        assert_eq!(v.not_after, limit);
        assert!(v.not_before < OffsetDateTime::now_utc() - Duration::minutes(4));
        let past = OffsetDateTime::now_utc() - Duration::days(1);
        assert!(Validity::new(1, Some(past)).is_err());
    }

    #[test]
    fn serials_are_positive_and_distinct() {
        let a = random_serial().unwrap().to_bytes();
        let b = random_serial().unwrap().to_bytes();
        assert_ne!(a, b);
        assert_eq!(a.len(), 16);
    }
}
