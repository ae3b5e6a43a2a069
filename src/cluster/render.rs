//! Rendering a member's files from its key, certificates and trusted signers.
//!
//! Most files are deterministic (PEM): their bytes are computed and compared with what is
//! on disk. Keystores are not (every encoding draws a fresh salt), so for those the
//! *inputs* are fingerprinted instead and the file is re-encoded only when they change;
//! the fingerprint of what was written is kept in the member's `.certmesh-state.json`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use super::profile::{Content, FileSpec, ProductProfile, MEMBER};
use super::secrets::liberty_xor;
use super::trust::TrustedSigner;
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
    /// The material of the shared identities the member holds, by identity name.
    pub identities: BTreeMap<String, &'a Material>,
    /// Every signer the member trusts.
    pub trust: &'a [TrustedSigner],
    /// The other members' signers (`signers = "members"`).
    pub routed: &'a [TrustedSigner],
    /// The member's own signer (its root), to tell peers' signers from its own.
    pub own_root: &'a [u8],
    /// The member's keystore password (generated or from the manifest).
    pub password: &'a Secret,
    /// A truststore the product ships, to merge into: its path, bytes and password.
    pub base_truststore: Option<(String, Vec<u8>, Secret)>,
    /// The member's CA's current CRL (PEM), once it has one.
    pub crl: Option<Vec<u8>>,
    /// The directory the member's files are deployed to, when it has one.
    pub remote_dir: Option<&'a str>,
}

/// What is recorded per randomized file.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileState {
    /// Fingerprint of the inputs the file was made from.
    pub inputs: String,
    /// SHA-256 of the bytes written.
    pub sha256: String,
    /// The identity whose key the file holds, for identities other than the member's own
    /// (a migration to another identity is then noticed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
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

/// Entry timestamps: the leaf's not-before, so a re-encoding of unchanged content does
/// not move them.
fn timestamp(m: &Material) -> i64 {
    use x509_parser::prelude::FromDer;
    x509_parser::prelude::X509Certificate::from_der(&m.leaf)
        .map(|(_, c)| c.validity().not_before.timestamp() * 1000)
        .unwrap_or(0)
}

fn full_chain(m: &Material) -> Vec<Vec<u8>> {
    let mut v = vec![m.leaf.clone()];
    v.extend(m.chain.iter().cloned());
    v
}

fn fullchain_pem(m: &Material) -> String {
    let mut ders: Vec<&[u8]> = vec![&m.leaf];
    ders.extend(m.chain[..m.chain.len() - 1].iter().map(Vec::as_slice));
    pem(&ders)
}

impl Inputs<'_> {
    /// True when the key and certificate of the file's identity exist (a plan may come
    /// before a shared identity is issued).
    pub fn has_material(&self, f: &FileSpec) -> bool {
        f.identity() == MEMBER || self.identities.contains_key(f.identity())
    }

    /// The key and certificates of the file's identity.
    fn material_for(&self, f: &FileSpec) -> Result<&Material> {
        if f.identity() == MEMBER {
            return Ok(self.material);
        }
        self.identities.get(f.identity()).copied().ok_or_else(|| {
            Error::Usage(format!(
                "{}: identity '{}' has not been issued",
                f.path,
                f.identity()
            ))
        })
    }

    fn signers(&self, f: &FileSpec) -> &[TrustedSigner] {
        if f.members_only() {
            self.routed
        } else {
            self.trust
        }
    }

    fn trusted_aliases(&self, f: &FileSpec) -> Vec<(String, Vec<u8>)> {
        let prefix = f
            .alias
            .as_deref()
            .map(|a| a.replace("{member}", self.member));
        let mut aliases = crate::keystore::alias::Aliases::new();
        self.signers(f)
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
                (aliases.allocate(&base), der.clone())
            })
            .collect()
    }

    /// The file a profile entry names, planned.
    pub fn plan(&self, f: &FileSpec) -> Result<Planned> {
        let m = self.material_for(f)?;
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
            Content::Fullchain => fullchain_pem(m).into(),
            Content::FullchainKey => {
                format!("{}{}", fullchain_pem(m), key_pem(&m.key, f)?.as_str()).into()
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
            Content::IbmPluginCfg => self.plugin_cfg()?.into(),
            Content::SecuretransportClusterAlias => self.cluster_alias()?.into(),
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
                let m = self.material_for(f)?;
                add("key", &sha256(m.key.pkcs8_der()));
                for c in full_chain(m) {
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
                let m = self.material_for(f)?;
                let certs = full_chain(m);
                let alias = f.alias_for(self.member);
                let entry = KeyEntry {
                    alias: &alias,
                    key: &m.key,
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
                let m = self.material_for(f)?;
                let mut ks = KeyStore::new(Flavor::Jks);
                ks.set_private_key(
                    &f.alias_for(self.member),
                    m.key.pkcs8_der(),
                    full_chain(m),
                    self.password,
                    timestamp(m),
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
                        ks.set_trusted(&alias, der, timestamp(self.material));
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

    fn keystore_of(&self, identity: &str) -> Option<&FileSpec> {
        self.product.files.iter().find(|f| {
            matches!(f.content, Content::Pkcs12Keystore | Content::JksKeystore)
                && f.identity() == identity
        })
    }

    fn wso2_toml(&self) -> Result<String> {
        let ts = self
            .file_of(Content::Pkcs12Truststore)
            .or(self.file_of(Content::JksTruststore));
        let own = self.keystore_of(MEMBER);
        let Some(ts) = ts.filter(|_| own.is_some() || self.keystore_of("primary").is_some()) else {
            return Err(Error::Usage(format!(
                "profile '{}': wso2-deployment-toml needs a keystore and a truststore file",
                self.product.name
            )));
        };
        let pw = self
            .password
            .expose()
            .replace('\\', "\\\\")
            .replace('"', "\\\"");
        let kind = |f: &FileSpec| {
            if f.content == Content::JksKeystore || f.content == Content::JksTruststore {
                "JKS"
            } else {
                "PKCS12"
            }
        };
        let base = |f: &FileSpec| f.path.rsplit('/').next().unwrap_or(&f.path).to_string();
        let section = |name: &str, f: &FileSpec| {
            format!(
                "[keystore.{name}]\nfile_name = \"{}\"\ntype = \"{}\"\npassword = \"{pw}\"\nalias = \"{}\"\nkey_password = \"{pw}\"\n\n",
                base(f),
                kind(f),
                f.alias_for(self.member)
            )
        };
        let mut out = format!(
            "# Written by certmesh for {}: merge into repository/conf/deployment.toml.\n",
            self.member
        );
        // Without identities the member's keystore serves every purpose, as the product's
        // shipped wso2carbon.jks does. With them: the primary keystore (shared, signs
        // tokens) and the internal one (shared, encrypts secrets) are the identities of
        // those names, and [keystore.tls] is the member's own.
        let own_or = |id: &str| self.keystore_of(id).or(own);
        for (name, id) in [("primary", "primary"), ("internal", "internal")] {
            if let Some(f) = own_or(id) {
                out.push_str(&section(name, f));
            }
        }
        if let Some(f) = own.filter(|_| !self.product.identities.is_empty()) {
            out.push_str(&section("tls", f));
        }
        out.push_str(&format!(
            "[truststore]\nfile_name = \"{}\"\ntype = \"{}\"\npassword = \"{pw}\"\n",
            base(ts),
            kind(ts)
        ));
        Ok(out)
    }

    /// Where a file is on the member's host: under its deploy directory, when known.
    fn installed_path(&self, f: &FileSpec) -> String {
        match self.remote_dir {
            Some(d) => format!("{}/{}", d.trim_end_matches('/'), f.path),
            None => f.path.clone(),
        }
    }

    fn plugin_cfg(&self) -> Result<String> {
        let keyring = self
            .product
            .files
            .iter()
            .find(|f| f.content == Content::Pkcs12Truststore && f.members_only());
        let stem = |p: &str| p.rsplit_once('.').map_or(p, |(a, _)| a).to_string();
        let stash = keyring.and_then(|k| {
            self.product
                .files
                .iter()
                .find(|f| f.content == Content::IhsStash && stem(&f.path) == stem(&k.path))
        });
        let (Some(keyring), Some(stash)) = (keyring, stash) else {
            return Err(Error::Usage(format!(
                "profile '{}': ibm-plugin-cfg needs a pkcs12-truststore with signers = \"members\" and an ihs-stash of the same name",
                self.product.name
            )));
        };
        Ok(format!(
            "<!-- Written by certmesh for {member}: the WebSphere plug-in's own keyring, holding the\n     signers of the servers it routes to. Set these properties in each\n     <Transport Protocol=\"https\"> of plugin-cfg.xml{hint}. -->\n<Property Name=\"keyring\" Value=\"{k}\"/>\n<Property Name=\"stashfile\" Value=\"{s}\"/>\n",
            member = self.member,
            hint = if self.remote_dir.is_some() {
                ""
            } else {
                ", with the absolute path the files are installed at"
            },
            k = self.installed_path(keyring),
            s = self.installed_path(stash),
        ))
    }

    fn cluster_alias(&self) -> Result<String> {
        let ks = self.product.files.iter().find(|f| {
            matches!(f.content, Content::Pkcs12Keystore | Content::JksKeystore)
                && f.identity() != MEMBER
        });
        let Some(ks) = ks else {
            return Err(Error::Usage(format!(
                "profile '{}': securetransport-cluster-alias needs a keystore of a shared identity",
                self.product.name
            )));
        };
        Ok(format!(
            "# Written by certmesh for {member}. Every server of the cluster holds the same\n# certificate and key in {path} under this alias; set it on each one\n# (Server Configuration), then restart:\nCluster.Crypto.Alias={alias}\n",
            member = self.member,
            path = ks.path,
            alias = ks.alias_for(self.member),
        ))
    }
}
