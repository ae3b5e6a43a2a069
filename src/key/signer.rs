//! The key rcgen signs certificates with, held by the crypto provider alone.
//!
//! rcgen's own `KeyPair` keeps a copy of the PKCS#8 DER in a plain `Vec` that is freed
//! without being wiped, so after `issue` the CA key would linger in freed memory (and in
//! any core). [`KeySigner`] implements rcgen's `SigningKey` over an aws-lc-rs key pair,
//! whose secret lives in aws-lc memory that is cleansed when freed; the DER certmesh keeps
//! stays in its zeroizing buffer.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair as _};
use rcgen::{PublicKeyData, SignatureAlgorithm, SigningKey};

/// A private key ready to sign with one signature algorithm.
pub struct KeySigner {
    key: Kind,
    /// The public key as rcgen encodes it inside SubjectPublicKeyInfo.
    public: Vec<u8>,
    alg: &'static SignatureAlgorithm,
}

enum Kind {
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    Rsa(aws_lc_rs::rsa::KeyPair, &'static dyn signature::RsaEncoding),
}

impl KeySigner {
    /// Loads unencrypted PKCS#8 DER for signing with `alg`; `None` when the key is not
    /// one the crypto provider can use with it.
    pub(crate) fn from_pkcs8(der: &[u8], alg: &'static SignatureAlgorithm) -> Option<Self> {
        let ecdsa = |a: &'static signature::EcdsaSigningAlgorithm| {
            EcdsaKeyPair::from_pkcs8(a, der).ok().map(Kind::Ecdsa)
        };
        let rsa = |e: &'static dyn signature::RsaEncoding| {
            aws_lc_rs::rsa::KeyPair::from_pkcs8(der)
                .ok()
                .map(|k| Kind::Rsa(k, e))
        };
        let key = if alg == &rcgen::PKCS_ECDSA_P256_SHA256 {
            ecdsa(&signature::ECDSA_P256_SHA256_ASN1_SIGNING)?
        } else if alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
            ecdsa(&signature::ECDSA_P384_SHA384_ASN1_SIGNING)?
        } else if alg == &rcgen::PKCS_ECDSA_P521_SHA512 {
            ecdsa(&signature::ECDSA_P521_SHA512_ASN1_SIGNING)?
        } else if alg == &rcgen::PKCS_ED25519 {
            Kind::Ed25519(Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).ok()?)
        } else if alg == &rcgen::PKCS_RSA_SHA256 {
            rsa(&signature::RSA_PKCS1_SHA256)?
        } else if alg == &rcgen::PKCS_RSA_SHA384 {
            rsa(&signature::RSA_PKCS1_SHA384)?
        } else if alg == &rcgen::PKCS_RSA_SHA512 {
            rsa(&signature::RSA_PKCS1_SHA512)?
        } else {
            return None;
        };
        let public = match &key {
            Kind::Ecdsa(k) => k.public_key().as_ref().to_vec(),
            Kind::Ed25519(k) => k.public_key().as_ref().to_vec(),
            Kind::Rsa(k, _) => k.public_key().as_ref().to_vec(),
        };
        Some(KeySigner { key, public, alg })
    }

    /// Loads a key of any type certmesh signs with (EC P-256/384/521, Ed25519, RSA),
    /// with its default algorithm: what checks that the crypto provider accepts a key.
    pub(crate) fn detect(der: &[u8]) -> Option<Self> {
        [
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &rcgen::PKCS_ECDSA_P384_SHA384,
            &rcgen::PKCS_ECDSA_P521_SHA512,
            &rcgen::PKCS_ED25519,
            &rcgen::PKCS_RSA_SHA256,
        ]
        .into_iter()
        .find_map(|alg| Self::from_pkcs8(der, alg))
    }
}

impl PublicKeyData for KeySigner {
    fn der_bytes(&self) -> &[u8] {
        &self.public
    }

    fn algorithm(&self) -> &'static SignatureAlgorithm {
        self.alg
    }
}

impl SigningKey for KeySigner {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        let rng = SystemRandom::new();
        match &self.key {
            Kind::Ecdsa(k) => k
                .sign(&rng, msg)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| rcgen::Error::RingUnspecified),
            Kind::Ed25519(k) => Ok(k.sign(msg).as_ref().to_vec()),
            Kind::Rsa(k, encoding) => {
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(*encoding, &rng, msg, &mut sig)
                    .map_err(|_| rcgen::Error::RingUnspecified)?;
                Ok(sig)
            }
        }
    }
}
