//! Does a private key belong to a certificate? The question behind most "SSL handshake
//! failed" tickets after a manual key or certificate swap.
//!
//! The comparison is on the public key itself (algorithm, curve and key bits), not on
//! file names or subjects, so it answers correctly whatever tool made either file.

use x509_parser::prelude::*;

use super::PrivateKey;
use crate::x509::{common_name, describe_spki};
use crate::Result;

/// The answer, with a one-line reason either way.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CertMatch {
    pub matches: bool,
    pub reason: String,
}

/// Compares `key` with the certificate in `cert_der`. Fails only when the certificate
/// cannot be parsed.
pub fn match_certificate(key: &PrivateKey, cert_der: &[u8]) -> Result<CertMatch> {
    let (_, cert) = X509Certificate::from_der(cert_der).map_err(|e| {
        crate::Error::Crypto(format!(
            "not a valid X.509 certificate ({})",
            crate::x509::short_err(&e)
        ))
    })?;
    let (_, key_spki) = SubjectPublicKeyInfo::from_der(key.public_key_der())
        .map_err(|e| crate::Error::Crypto(format!("cannot parse the key's public half ({e})")))?;
    let cert_spki = cert.public_key();
    let name = common_name(&cert)
        .map(|cn| format!("certificate CN={cn}"))
        .unwrap_or_else(|| "certificate".to_string());
    let key_desc = key.describe();
    let cert_desc = describe_spki(cert_spki);
    let same = same_public_key(&key_spki, cert_spki);
    let reason = if same {
        format!("the key ({key_desc}) matches the {name}")
    } else if *key_desc != cert_desc {
        format!(
            "the key is {key_desc} but the {name} has {} {cert_desc} public key",
            article(cert_desc.kind.name())
        )
    } else {
        format!("the {name} holds a different {cert_desc} public key than this key")
    };
    Ok(CertMatch {
        matches: same,
        reason,
    })
}

impl PrivateKey {
    /// Whether this key is the private half of the public key in `cert`: the one
    /// comparison every command makes before it pairs a key with a certificate.
    pub fn matches(&self, cert: &X509Certificate<'_>) -> bool {
        SubjectPublicKeyInfo::from_der(self.public_key_der())
            .is_ok_and(|(_, spki)| same_public_key(&spki, cert.public_key()))
    }

    /// As [`Self::matches`], for a DER certificate; fails only when it does not parse.
    pub fn matches_cert_der(&self, cert_der: &[u8]) -> Result<bool> {
        let (_, cert) = X509Certificate::from_der(cert_der)
            .map_err(|e| crate::Error::Crypto(format!("cannot parse certificate: {e}")))?;
        Ok(self.matches(&cert))
    }
}

/// Algorithm, curve and key bits equal.
fn same_public_key(a: &SubjectPublicKeyInfo<'_>, b: &SubjectPublicKeyInfo<'_>) -> bool {
    a.algorithm.algorithm == b.algorithm.algorithm
        && curve(a) == curve(b)
        && a.subject_public_key.data == b.subject_public_key.data
}

/// The named curve of an EC public key; `None` for other types (RSA's NULL parameter is
/// sometimes omitted, so it must not count). Compared as an OID, not as text: a large
/// cluster compares a key per member.
fn curve<'a>(spki: &'a SubjectPublicKeyInfo<'_>) -> Option<x509_parser::der_parser::oid::Oid<'a>> {
    spki.algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
}

fn article(kind: &str) -> &'static str {
    if kind.starts_with(['A', 'E', 'I', 'O', 'U', 'R']) {
        "an"
    } else {
        "a"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{Digest, KeyAlg};

    fn cert_of(key: &PrivateKey) -> Vec<u8> {
        let p = rcgen::CertificateParams::new(vec!["k.example.com".to_string()]).unwrap();
        p.self_signed(&key.signing_key(Digest::Sha256).unwrap())
            .unwrap()
            .der()
            .to_vec()
    }

    #[test]
    fn a_key_matches_its_certificate_only() {
        let p256 = PrivateKey::generate(KeyAlg::P256).unwrap();
        let other = PrivateKey::generate(KeyAlg::P256).unwrap();
        let p384 = PrivateKey::generate(KeyAlg::P384).unwrap();
        let ed = PrivateKey::generate(KeyAlg::Ed25519).unwrap();
        let cert = cert_of(&p256);
        assert!(p256.matches_cert_der(&cert).unwrap());
        for k in [&other, &p384, &ed] {
            assert!(!k.matches_cert_der(&cert).unwrap(), "{:?}", k.describe());
        }
        assert!(p384.matches_cert_der(&cert_of(&p384)).unwrap());
        assert!(
            ed.matches_cert_der(&cert_of(&ed)).unwrap(),
            "no curve parameter"
        );
    }

    #[test]
    fn the_curve_is_read_as_an_oid_and_only_for_ec_keys() {
        let der = |k: &PrivateKey| k.public_key_der().to_vec();
        let (p256, p384, ed) = (
            der(&PrivateKey::generate(KeyAlg::P256).unwrap()),
            der(&PrivateKey::generate(KeyAlg::P384).unwrap()),
            der(&PrivateKey::generate(KeyAlg::Ed25519).unwrap()),
        );
        let id = |d: &[u8]| {
            let (_, spki) = SubjectPublicKeyInfo::from_der(d).unwrap();
            curve(&spki).map(|o| o.to_id_string())
        };
        assert_eq!(id(&p256).as_deref(), Some("1.2.840.10045.3.1.7"));
        assert_eq!(id(&p384).as_deref(), Some("1.3.132.0.34"));
        assert_eq!(id(&ed), None);
    }
}
