//! Rendering a member's files from its key, certificates and trusted signers.
//!
//! Most files are deterministic (PEM): their bytes are computed and compared with what is
//! on disk. Keystores are not (every encoding draws a fresh salt), so for those the
//! *inputs* are fingerprinted instead and the file is re-encoded only when they change;
//! the fingerprint of what was written is kept in the member's `.certmesh-state.json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::apply::TrustedSigner;
use super::profile::{Content, FileSpec, ProductProfile};
use super::secrets::liberty_xor;
use crate::key::{Encoding, KeyOutput, PrivateKey, Protection};
use crate::keystore::jks::{Flavor, KeyStore};
use crate::keystore::pkcs12::{self, KeyEntry};
use crate::pass::Secret;
use crate::x509::{sha256, to_pem};
use crate::{Error, Result};

/// A member's issued key and certificates.
pub struct Material {
    pub key: PrivateKey,
    pub leaf: Vec<u8>,
    /// CA certificates above the leaf, issuing first, root last.
    pub chain: Vec<Vec<u8>>,
}

/// Everything a member's files are made from.
pub struct Inputs<'a> {
    pub member: &'a str,
    pub product: &'a ProductProfile,
    pub material: &'a Material,
    /// Every signer the member trusts.
    pub trust: &'a [TrustedSigner],
    /// The member's own signer (its root), to tell peers' signers from its own.
    pub own_root: &'a [u8],
    /// The member's keystore password (generated or from the manifest).
    pub password: &'a Secret,
    /// A truststore the product ships, to merge into: its path, bytes and password.
    pub base_truststore: Option<(String, Vec<u8>, Secret)>,
    /// The member's CA's current CRL (PEM), once it has one.
    pub crl: Option<Vec<u8>>,
}

/// What is recorded per randomized file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileState {
    /// Fingerprint of the inputs the file was made from.
    pub inputs: String,
    /// SHA-256 of the bytes written.
    pub sha256: String,
}

/// The member's `.certmesh-state.json`.
pub type State = BTreeMap<String, FileState>;

/// File name of the per-member state.
pub const STATE_FILE: &str = ".certmesh-state.json";

/// A file's planned content: exact bytes, or (for keystores) an inputs fingerprint.
pub enum Planned {
    Exact(Zeroizing<Vec<u8>>),
    Randomized {
        inputs: String,
    },
    /// Nothing to write (yet): a CRL before the CA has one.
    Absent,
}

fn pem(ders: &[&[u8]]) -> String {
    ders.iter().map(|d| to_pem("CERTIFICATE", d)).collect()
}

fn key_pem(key: &PrivateKey, f: &FileSpec) -> Result<Zeroizing<String>> {
    let bytes = key.encode(&KeyOutput {
        encoding: Encoding::Pem,
        format: f.key_format()?,
        protection: Protection::None,
    })?;
    Ok(Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned()))
}

impl Inputs<'_> {
    /// Entry timestamps: the leaf's not-before, so a re-encoding of unchanged content
    /// does not move them.
    fn timestamp(&self) -> i64 {
        use x509_parser::prelude::FromDer;
        x509_parser::prelude::X509Certificate::from_der(&self.material.leaf)
            .map(|(_, c)| c.validity().not_before.timestamp() * 1000)
            .unwrap_or(0)
    }

    fn full_chain(&self) -> Vec<Vec<u8>> {
        let mut v = vec![self.material.leaf.clone()];
        v.extend(self.material.chain.iter().cloned());
        v
    }

    fn fullchain_pem(&self) -> String {
        let m = self.material;
        let mut ders: Vec<&[u8]> = vec![&m.leaf];
        ders.extend(m.chain[..m.chain.len() - 1].iter().map(Vec::as_slice));
        pem(&ders)
    }

    fn trusted_aliases(&self, f: &FileSpec) -> Vec<(String, Vec<u8>)> {
        let prefix = f
            .alias
            .as_deref()
            .map(|a| a.replace("{member}", self.member));
        let mut seen = std::collections::BTreeSet::new();
        self.trust
            .iter()
            .enumerate()
            .map(|(i, (subject, der))| {
                let base = match &prefix {
                    Some(p) => format!("{p}-{}", i + 1),
                    None => subject
                        .trim_start_matches("CN=")
                        .split(',')
                        .next()
                        .unwrap_or("ca")
                        .trim()
                        .to_lowercase(),
                };
                let mut alias = base.clone();
                let mut n = 2;
                while !seen.insert(alias.clone()) {
                    alias = format!("{base}-{n}");
                    n += 1;
                }
                (alias, der.clone())
            })
            .collect()
    }

    /// The file a profile entry names, planned.
    pub fn plan(&self, f: &FileSpec) -> Result<Planned> {
        let m = self.material;
        let text: Zeroizing<String> = match f.content {
            Content::Crl => {
                return Ok(match &self.crl {
                    Some(c) => Planned::Exact(Zeroizing::new(c.clone())),
                    None => Planned::Absent,
                })
            }
            Content::Key => key_pem(&m.key, f)?,
            Content::CertKey => {
                format!("{}{}", pem(&[&m.leaf]), key_pem(&m.key, f)?.as_str()).into()
            }
            Content::Cert => pem(&[&m.leaf]).into(),
            Content::Chain => pem(&m.chain.iter().map(Vec::as_slice).collect::<Vec<_>>()).into(),
            Content::Fullchain => self.fullchain_pem().into(),
            Content::FullchainKey => {
                format!("{}{}", self.fullchain_pem(), key_pem(&m.key, f)?.as_str()).into()
            }
            Content::Root => pem(&[m.chain.last().expect("chain ends with the root")]).into(),
            Content::TrustBundle => pem(&self
                .trust
                .iter()
                .map(|(_, d)| d.as_slice())
                .collect::<Vec<_>>())
            .into(),
            Content::PeerSigners => pem(&self
                .trust
                .iter()
                .filter(|(_, d)| d.as_slice() != self.own_root)
                .map(|(_, d)| d.as_slice())
                .collect::<Vec<_>>())
            .into(),
            Content::LibertyServerXml => self.liberty_xml()?.into(),
            Content::Wso2DeploymentToml => self.wso2_toml()?.into(),
            Content::Pkcs12Keystore
            | Content::Pkcs12Truststore
            | Content::IhsStash
            | Content::JksKeystore
            | Content::JksTruststore => {
                return Ok(Planned::Randomized {
                    inputs: self.fingerprint(f)?,
                })
            }
        };
        Ok(Planned::Exact(Zeroizing::new(text.as_bytes().to_vec())))
    }

    /// Fingerprint of everything a randomized file is made from.
    fn fingerprint(&self, f: &FileSpec) -> Result<String> {
        let mut h: Vec<u8> = Vec::new();
        let mut add = |label: &str, bytes: &[u8]| {
            h.extend_from_slice(label.as_bytes());
            h.extend_from_slice(&(bytes.len() as u64).to_be_bytes());
            h.extend_from_slice(bytes);
        };
        add("content", format!("{:?}", f.content).as_bytes());
        add("alias", f.alias_for(self.member).as_bytes());
        add("compat", f.compat()?.name().as_bytes());
        add("password", &sha256(self.password.as_bytes()));
        match f.content {
            Content::Pkcs12Keystore | Content::JksKeystore => {
                add("key", &sha256(self.material.key.pkcs8_der()));
                for c in self.full_chain() {
                    add("cert", &c);
                }
            }
            Content::Pkcs12Truststore | Content::JksTruststore => {
                for (alias, der) in self.trusted_aliases(f) {
                    add("alias", alias.as_bytes());
                    add("cert", &der);
                }
                if f.content == Content::JksTruststore {
                    if let Some((path, bytes, _)) = &self.base_truststore {
                        add("base", path.as_bytes());
                        add("base", &sha256(bytes));
                    }
                }
            }
            _ => {}
        }
        Ok(hex::encode(sha256(&h)))
    }

    /// Encodes a randomized file.
    pub fn render(&self, f: &FileSpec) -> Result<Zeroizing<Vec<u8>>> {
        match f.content {
            Content::Pkcs12Keystore => {
                let certs = self.full_chain();
                let alias = f.alias_for(self.member);
                let entry = KeyEntry {
                    alias: &alias,
                    key: &self.material.key,
                    certs: &certs,
                };
                pkcs12::key_store(&entry, f.compat()?, self.password)
                    .map(|p12| Zeroizing::new(p12.into_bytes()))
            }
            Content::Pkcs12Truststore => {
                pkcs12::trust_store(&self.trusted_aliases(f), f.compat()?, self.password)
                    .map(|p12| Zeroizing::new(p12.into_bytes()))
            }
            Content::IhsStash => pkcs12::stash::encode(self.password),
            Content::JksKeystore => {
                let mut ks = KeyStore::new(Flavor::Jks);
                ks.set_private_key(
                    &f.alias_for(self.member),
                    self.material.key.pkcs8_der(),
                    self.full_chain(),
                    self.password,
                    self.timestamp(),
                )?;
                ks.to_bytes(self.password).map(Zeroizing::new)
            }
            Content::JksTruststore => {
                let mut ks = match &self.base_truststore {
                    Some((path, bytes, pass)) => {
                        KeyStore::parse(std::path::Path::new(path), bytes, Some(pass))?.0
                    }
                    None => KeyStore::new(Flavor::Jks),
                };
                let aliases = self.trusted_aliases(f);
                for (alias, der) in aliases {
                    // A signer the product already trusts under some alias stays as it is.
                    if ks.aliases_with_cert(&der).is_empty() {
                        ks.set_trusted(&alias, der, self.timestamp());
                    }
                }
                ks.to_bytes(self.password).map(Zeroizing::new)
            }
            _ => match self.plan(f)? {
                Planned::Exact(b) => Ok(b),
                Planned::Randomized { .. } | Planned::Absent => {
                    Err(Error::Crypto("unreachable render".into()))
                }
            },
        }
    }

    fn file_of(&self, content: Content) -> Option<&FileSpec> {
        self.product.files.iter().find(|f| f.content == content)
    }

    fn liberty_xml(&self) -> Result<String> {
        let (ks, ts) = match (self.file_of(Content::Pkcs12Keystore), self.file_of(Content::Pkcs12Truststore)) {
            (Some(k), Some(t)) => (k, t),
            _ => return Err(Error::Usage(format!("profile '{}': liberty-server-xml needs a pkcs12-keystore and a pkcs12-truststore file", self.product.name))),
        };
        let pw = liberty_xor(self.password);
        Ok(format!(
            "<server>\n    <!-- Written by certmesh for {member}. Liberty resolves relative locations\n         against ${{server.output.dir}}/resources/security. -->\n    <keyStore id=\"defaultKeyStore\" location=\"{ks}\" type=\"PKCS12\" password=\"{pw}\"/>\n    <keyStore id=\"defaultTrustStore\" location=\"{ts}\" type=\"PKCS12\" password=\"{pw}\"/>\n    <ssl id=\"defaultSSLConfig\" keyStoreRef=\"defaultKeyStore\" trustStoreRef=\"defaultTrustStore\"\n         serverKeyAlias=\"{alias}\" clientAuthenticationSupported=\"true\"/>\n</server>\n",
            member = self.member,
            ks = ks.path,
            ts = ts.path,
            alias = ks.alias_for(self.member),
        ))
    }

    fn wso2_toml(&self) -> Result<String> {
        let ks = self
            .file_of(Content::Pkcs12Keystore)
            .or(self.file_of(Content::JksKeystore));
        let ts = self
            .file_of(Content::Pkcs12Truststore)
            .or(self.file_of(Content::JksTruststore));
        let kind = if ks.is_some_and(|k| k.content == Content::JksKeystore) {
            "JKS"
        } else {
            "PKCS12"
        };
        let (ks, ts) = match (ks, ts) {
            (Some(k), Some(t)) => (k, t),
            _ => {
                return Err(Error::Usage(format!(
                    "profile '{}': wso2-deployment-toml needs a keystore and a truststore file",
                    self.product.name
                )))
            }
        };
        let pw = self
            .password
            .expose()
            .replace('\\', "\\\\")
            .replace('"', "\\\"");
        Ok(format!(
            "# Written by certmesh for {member}: merge into repository/conf/deployment.toml.\n[keystore.primary]\nfile_name = \"{ks}\"\ntype = \"{kind}\"\npassword = \"{pw}\"\nalias = \"{alias}\"\nkey_password = \"{pw}\"\n\n[keystore.internal]\nfile_name = \"{ks}\"\ntype = \"{kind}\"\npassword = \"{pw}\"\nalias = \"{alias}\"\nkey_password = \"{pw}\"\n\n[truststore]\nfile_name = \"{ts}\"\ntype = \"{kind}\"\npassword = \"{pw}\"\n",
            member = self.member,
            ks = ks.path.rsplit('/').next().unwrap_or(&ks.path),
            ts = ts.path.rsplit('/').next().unwrap_or(&ts.path),
            alias = ks.alias_for(self.member),
            kind = kind,
        ))
    }
}
