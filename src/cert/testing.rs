//! Certificates for unit tests, made with certmesh's own keys (never rcgen's `KeyPair`,
//! which keeps a plain copy of the key).

use crate::key::{Digest, KeyAlg, PrivateKey};

/// A self-signed P-256 certificate with subject CN=`cn` and `cn` as its DNS name.
pub(crate) fn self_signed(cn: &str) -> rcgen::Certificate {
    let key = PrivateKey::generate(KeyAlg::P256).unwrap();
    self_signed_by(&key, cn)
}

/// A self-signed certificate for `key` with subject CN=`cn` and `cn` as its DNS name.
pub(crate) fn self_signed_by(key: &PrivateKey, cn: &str) -> rcgen::Certificate {
    let mut p = rcgen::CertificateParams::new(vec![cn.to_string()]).unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name.push(rcgen::DnType::CommonName, cn);
    p.self_signed(&key.signing_key(Digest::Sha256).unwrap())
        .unwrap()
}
