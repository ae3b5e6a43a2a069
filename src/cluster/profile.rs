//! Product profiles: which files a product needs, in which format and mode.
//!
//! The profiles shipped in `profiles/` are compiled into the binary so certmesh works
//! wherever it is copied; `--profiles DIR` adds more and overrides shipped ones by name.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::cert::Profile as CertProfile;
use crate::key::KeyAlg;
use crate::{Error, Result};

/// What goes into one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Content {
    /// The private key, PEM (`format = "pkcs8"` (default) or `"traditional"`).
    Key,
    /// Leaf then its key in traditional form (PKCS#1/SEC1), as Apache's
    /// `SSLProxyMachineCertificateFile` requires.
    CertKey,
    /// The member's certificate alone.
    Cert,
    /// The CA certificates above the leaf, issuing CA first, root last.
    Chain,
    /// Leaf then intermediates (no root): what TLS servers send.
    Fullchain,
    /// Leaf, intermediates, then the key in one file (HAProxy `crt`).
    FullchainKey,
    /// The root of the member's own chain.
    Root,
    /// Every signer the member trusts, PEM, one after another in a stable order.
    TrustBundle,
    /// The member's CA's CRL (nginx `ssl_crl`, Apache `SSLCARevocationFile`, HAProxy
    /// `crl-file`); written once the CA has a CRL (`certmesh revoke` or `crl`).
    Crl,
    /// The other members' signers only (mesh), PEM: what Axway SecureTransport imports.
    PeerSigners,
    /// PKCS#12 keystore: the key and its chain (root included) under `alias`.
    Pkcs12Keystore,
    /// PKCS#12 truststore: every signer as a Java trusted-certificate entry.
    Pkcs12Truststore,
    /// IBM GSKit stash (v1) of the member's keystore password, for IHS `SSLStashfile`.
    IhsStash,
    /// JKS keystore: the key (protected with the store password) and its chain.
    JksKeystore,
    /// JKS truststore: the member's `base_truststore` (every entry kept as it was) plus
    /// every signer the member trusts.
    JksTruststore,
    /// A Liberty server.xml snippet: keyStore/trustStore/ssl elements, `{xor}` passwords.
    LibertyServerXml,
    /// A WSO2 deployment.toml snippet naming the keystore and truststore; with identities,
    /// `[keystore.primary]`, `[keystore.internal]` and `[keystore.tls]` each name the
    /// keystore file of the identity of that name (`tls`: the member's own).
    Wso2DeploymentToml,
    /// The two `plugin-cfg.xml` properties (`keyring`, `stashfile`) naming the profile's
    /// plug-in keyring (the pkcs12-truststore with `signers = "members"`) and its stash.
    IbmPluginCfg,
    /// A notes file with `Cluster.Crypto.Alias=<alias>`: the alias of the profile's first
    /// keystore of a shared identity, to set on every SecureTransport server.
    SecuretransportClusterAlias,
}

impl Content {
    /// True for contents that hold a private key or a password.
    pub fn is_secret(self) -> bool {
        matches!(
            self,
            Content::Key
                | Content::FullchainKey
                | Content::CertKey
                | Content::Pkcs12Keystore
                | Content::Pkcs12Truststore
                | Content::IhsStash
                | Content::JksKeystore
                | Content::JksTruststore
                | Content::LibertyServerXml
                | Content::Wso2DeploymentToml
        )
    }
}

/// One file of a profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// Path inside the member's directory.
    pub path: String,
    pub content: Content,
    /// Octal mode; keys default to 0600, everything else to 0644.
    pub mode: Option<String>,
    /// For keys: `pkcs8` or `traditional` (PKCS#1 / SEC1).
    pub format: Option<String>,
    /// Keystore alias; `{member}` stands for the member's name, `{member_lower}` for it in
    /// lower case. Default: `{member}`.
    pub alias: Option<String>,
    /// PKCS#12 encryption: `modern` (default) or `legacy` (3DES/SHA-1 for old Java and IBM).
    pub compat: Option<String>,
    /// The identity whose key and certificate the file holds: one of the profile's
    /// `[[identity]]` names, or `member` (the default), the member's own.
    pub identity: Option<String>,
    /// For truststores: `all` (default: every signer the member trusts) or `members`
    /// (only the signers of the other members, which a proxy routes to).
    pub signers: Option<String>,
}

impl FileSpec {
    /// The key encoding for files that hold a key.
    pub fn key_format(&self) -> Result<crate::key::KeyFormat> {
        match self.format.as_deref() {
            None | Some("pkcs8") => Ok(crate::key::KeyFormat::Pkcs8),
            Some("traditional") => Ok(crate::key::KeyFormat::Traditional),
            Some(other) => Err(Error::Usage(format!(
                "{}: unknown key format '{other}' (pkcs8 or traditional)",
                self.path
            ))),
        }
    }

    /// The alias for `member`.
    pub fn alias_for(&self, member: &str) -> String {
        self.alias
            .as_deref()
            .unwrap_or("{member}")
            .replace("{member_lower}", &member.to_lowercase())
            .replace("{member}", member)
    }

    /// The identity the file belongs to.
    pub fn identity(&self) -> &str {
        self.identity.as_deref().unwrap_or(MEMBER)
    }

    /// True when a truststore holds only the other members' signers.
    pub fn members_only(&self) -> bool {
        self.signers.as_deref() == Some("members")
    }

    /// The PKCS#12 encryption mode.
    pub fn compat(&self) -> Result<crate::keystore::pkcs12::Compat> {
        crate::keystore::pkcs12::Compat::parse(self.compat.as_deref().unwrap_or("modern"))
    }

    /// The file's mode.
    pub fn mode(&self) -> Result<u32> {
        match &self.mode {
            Some(m) => u32::from_str_radix(m.trim_start_matches("0o"), 8)
                .ok()
                .filter(|m| *m <= 0o777)
                .ok_or_else(|| Error::Usage(format!("{}: invalid mode '{m}'", self.path))),
            None if self.content.is_secret() => Ok(crate::fsio::PRIVATE),
            None => Ok(crate::fsio::PUBLIC),
        }
    }
}

/// The name of the member's own identity (its TLS certificate).
pub const MEMBER: &str = "member";

/// How an identity's key may change when its certificate is renewed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rotation {
    /// A new key with every certificate (the default for TLS identities).
    NewKey,
    /// A new certificate for the same key: what was signed or encrypted with it stays
    /// readable.
    ReuseKey,
    /// Never replaced by `renew` or `apply`; only `--renew-identity` / `--rekey-identity`
    /// change it, because data encrypted with the key is lost when it changes.
    Manual,
}

impl Rotation {
    /// The policy's name as profiles and manifests write it.
    pub fn name(self) -> &'static str {
        match self {
            Rotation::NewKey => "new-key",
            Rotation::ReuseKey => "reuse-key",
            Rotation::Manual => "manual",
        }
    }
}

/// `[[identity]]`: a key and certificate of the product besides (or instead of) the
/// member's own TLS identity, and the rules for it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentitySpec {
    pub name: String,
    /// One key and certificate for the whole cluster (or a `[[shared]]` group of it),
    /// written into every member's files.
    #[serde(default)]
    pub shared: bool,
    /// Default: `new-key`.
    pub rotation: Option<Rotation>,
    /// Key types the product can use for this identity, the first being the default;
    /// empty: any.
    #[serde(default)]
    pub keys: Vec<String>,
    /// The certificate also carries keyUsage dataEncipherment (the product encrypts with
    /// the key).
    #[serde(default)]
    pub data_encipherment: bool,
    /// Certificate profile (server, client, peer); default: the product's.
    pub cert_profile: Option<String>,
}

/// An identity with every default filled in.
#[derive(Debug, Clone)]
pub struct Identity {
    pub name: String,
    pub shared: bool,
    pub rotation: Rotation,
    /// Accepted key types; empty: any.
    pub keys: Vec<KeyAlg>,
    pub data_encipherment: bool,
    pub cert_profile: CertProfile,
}

impl Identity {
    /// Refuses a key type the product cannot use for this identity.
    pub fn accepts(&self, key: KeyAlg) -> std::result::Result<(), String> {
        if self.keys.is_empty() || self.keys.contains(&key) {
            return Ok(());
        }
        Err(format!(
            "identity '{}' needs one of {} (the product uses the key for it), not {}",
            self.name,
            self.keys
                .iter()
                .map(|k| k.name())
                .collect::<Vec<_>>()
                .join(", "),
            key.name()
        ))
    }
}

/// A product profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductProfile {
    pub name: String,
    pub description: String,
    /// Certificate profile members of this product get (server, client, peer).
    pub cert_profile: Option<String>,
    /// Command that makes the product load new files.
    pub reload: Option<String>,
    /// The port the product serves TLS on, for probing members that list no `probe`.
    pub probe_port: Option<u16>,
    /// The reload restarts the service (it stops serving meanwhile), so members are
    /// reloaded one at a time; a graceful reload keeps serving and may run in parallel.
    #[serde(default)]
    pub reload_restarts: bool,
    /// Members' certificates also carry keyUsage dataEncipherment.
    #[serde(default)]
    pub data_encipherment: bool,
    #[serde(rename = "identity", default)]
    pub identities: Vec<IdentitySpec>,
    #[serde(rename = "file")]
    pub files: Vec<FileSpec>,
}

impl ProductProfile {
    /// The certificate profile for this product's members (peer when unset: cluster
    /// members usually both serve and call each other).
    pub fn cert_profile(&self) -> Result<CertProfile> {
        CertProfile::parse(self.cert_profile.as_deref().unwrap_or("peer"))
    }

    /// The identity `name` (`member`: the member's own, declared or not).
    pub fn identity(&self, name: &str) -> Result<Identity> {
        let spec = self.identities.iter().find(|i| i.name == name);
        if spec.is_none() && name != MEMBER {
            return Err(Error::Usage(format!(
                "profile '{}' has no identity '{name}'",
                self.name
            )));
        }
        let keys = spec
            .map(|s| s.keys.iter().map(|k| KeyAlg::parse(k)).collect())
            .transpose()?
            .unwrap_or_default();
        let cert_profile = match spec.and_then(|s| s.cert_profile.as_deref()) {
            Some(p) => CertProfile::parse(p)?,
            None => self.cert_profile()?,
        };
        Ok(Identity {
            name: name.to_string(),
            shared: spec.is_some_and(|s| s.shared),
            rotation: spec.and_then(|s| s.rotation).unwrap_or(Rotation::NewKey),
            keys,
            data_encipherment: spec.map_or(self.data_encipherment, |s| s.data_encipherment),
            cert_profile,
        })
    }

    /// The names of the identities shared by a group of members.
    pub fn shared_identities(&self) -> impl Iterator<Item = &str> {
        self.identities
            .iter()
            .filter(|i| i.shared)
            .map(|i| i.name.as_str())
    }

    /// Parses and checks a profile file's text; `origin` names it in errors.
    pub fn parse(origin: &Path, text: &str) -> Result<Self> {
        let p: ProductProfile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start].matches('\n').count() + 1)
                .unwrap_or(0);
            Error::bad_file(
                format!("{}:{line}", origin.display()),
                e.message().split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })?;
        let mut names: Vec<&str> = Vec::new();
        for i in &p.identities {
            let ok = !i.name.is_empty()
                && i.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'));
            if !ok || names.contains(&i.name.as_str()) || (i.name == MEMBER && i.shared) {
                return Err(Error::bad_file(
                    origin,
                    format!(
                        "identity '{}': names are letters, digits, '-' and '_', each once; '{MEMBER}' is the member's own and not shared",
                        i.name
                    ),
                ));
            }
            names.push(&i.name);
            p.identity(&i.name)
                .map_err(|e| Error::bad_file(origin, format!("identity '{}': {e}", i.name)))?;
        }
        let mut seen = Vec::new();
        for f in &p.files {
            if f.identity() != MEMBER && !names.contains(&f.identity()) {
                return Err(Error::bad_file(
                    origin,
                    format!(
                        "file '{}' names identity '{}', which the profile does not declare",
                        f.path,
                        f.identity()
                    ),
                ));
            }
            if !matches!(f.signers.as_deref(), None | Some("all") | Some("members")) {
                return Err(Error::bad_file(
                    origin,
                    format!("file '{}': signers must be 'all' or 'members'", f.path),
                ));
            }
            f.mode()?;
            f.key_format()?;
            f.compat()?;
            let bad = f.path.is_empty()
                || f.path.len() > 1024
                || f.path.starts_with('/')
                || f.path
                    .split('/')
                    .any(|c| c == ".." || c == "." || c.is_empty() || c.len() > 255);
            if bad {
                return Err(Error::bad_file(
                    origin,
                    format!(
                        "file path '{}' must stay inside the member's directory",
                        f.path
                    ),
                ));
            }
            // Names certmesh keeps beside a member's files (its generated keystore password,
            // its state and temporary files) cannot be a product's file too.
            let first = f.path.split('/').next().unwrap_or_default();
            if first == super::secrets::PASSWORD_FILE || first.starts_with(".certmesh") {
                return Err(Error::bad_file(
                    origin,
                    format!(
                        "file path '{}' collides with a name certmesh keeps in the member's directory",
                        f.path
                    ),
                ));
            }
            let nested = seen.iter().any(|p: &String| {
                f.path.starts_with(&format!("{p}/")) || p.starts_with(&format!("{}/", f.path))
            });
            if nested {
                return Err(Error::bad_file(
                    origin,
                    format!("file path '{}' is both a file and a directory", f.path),
                ));
            }
            if seen.contains(&f.path) {
                return Err(Error::bad_file(
                    origin,
                    format!("file '{}' is listed twice", f.path),
                ));
            }
            seen.push(f.path.clone());
        }
        p.cert_profile()?;
        Ok(p)
    }
}

/// The profiles shipped with certmesh.
const SHIPPED: &[(&str, &str)] = &[
    ("nginx.toml", include_str!("../../profiles/nginx.toml")),
    ("haproxy.toml", include_str!("../../profiles/haproxy.toml")),
    (
        "apache-httpd.toml",
        include_str!("../../profiles/apache-httpd.toml"),
    ),
    (
        "ibm-http-server.toml",
        include_str!("../../profiles/ibm-http-server.toml"),
    ),
    ("liberty.toml", include_str!("../../profiles/liberty.toml")),
    (
        "securetransport.toml",
        include_str!("../../profiles/securetransport.toml"),
    ),
    (
        "java-generic.toml",
        include_str!("../../profiles/java-generic.toml"),
    ),
    ("tomcat.toml", include_str!("../../profiles/tomcat.toml")),
    (
        "wso2-carbon.toml",
        include_str!("../../profiles/wso2-carbon.toml"),
    ),
    (
        "wso2-carbon-p12.toml",
        include_str!("../../profiles/wso2-carbon-p12.toml"),
    ),
];

/// Where the Debian package installs the shipped profiles, for operators to read, copy
/// and add to.
pub const PACKAGED_DIR: &str = "/usr/share/certmesh/profiles";

/// The extra directory read when `--profiles` is not given: `./profiles` when it exists
/// (a checkout, or an operator's own set next to the manifests), else [`PACKAGED_DIR`]
/// when the package is installed, else none.
pub fn default_dirs() -> Vec<PathBuf> {
    [Path::new("profiles"), Path::new(PACKAGED_DIR)]
        .into_iter()
        .find(|d| d.is_dir())
        .map(Path::to_path_buf)
        .into_iter()
        .collect()
}

/// Every available profile by name.
pub struct Profiles {
    by_name: BTreeMap<String, ProductProfile>,
}

impl Profiles {
    /// The shipped profiles, then those in `extra` directories (later ones win).
    pub fn load(extra: &[&Path]) -> Result<Self> {
        let mut by_name = BTreeMap::new();
        for (file, text) in SHIPPED {
            let p = ProductProfile::parse(Path::new(&format!("profiles/{file}")), text)?;
            by_name.insert(p.name.clone(), p);
        }
        for dir in extra {
            let entries = std::fs::read_dir(dir).map_err(|e| Error::io(dir, e))?;
            let mut paths: Vec<_> = entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            paths.sort();
            for path in paths {
                let text = std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?;
                let p = ProductProfile::parse(&path, &text)?;
                by_name.insert(p.name.clone(), p);
            }
        }
        Ok(Profiles { by_name })
    }

    /// A profile by name.
    pub fn get(&self, name: &str) -> Option<&ProductProfile> {
        self.by_name.get(name)
    }

    /// Names of every profile, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.by_name.keys().map(String::as_str).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_profiles_parse() {
        let p = Profiles::load(&[]).unwrap();
        assert!(p.names().contains(&"nginx"));
        let n = p.get("nginx").unwrap();
        assert_eq!(
            n.files
                .iter()
                .find(|f| f.content == Content::Key)
                .unwrap()
                .mode()
                .unwrap(),
            0o600
        );
    }

    #[test]
    fn identities_are_declared_and_checked() {
        let p = Profiles::load(&[]).unwrap();
        let w = p.get("wso2-carbon").unwrap();
        let primary = w.identity("primary").unwrap();
        assert!(primary.shared && primary.rotation == Rotation::ReuseKey);
        assert!(primary.accepts(KeyAlg::P256).is_err());
        assert!(primary.accepts(KeyAlg::Rsa2048).is_ok());
        assert_eq!(w.identity("internal").unwrap().rotation, Rotation::Manual);
        let own = w.identity(MEMBER).unwrap();
        assert!(!own.shared && own.rotation == Rotation::NewKey && !own.data_encipherment);
        let t = "name='x'\ndescription='d'\n[[file]]\npath='a.p12'\ncontent='pkcs12-keystore'\nidentity='nope'\n";
        let e = ProductProfile::parse(Path::new("x.toml"), t)
            .unwrap_err()
            .to_string();
        assert!(e.contains("identity 'nope'"), "{e}");
        let t = "name='x'\ndescription='d'\n[[identity]]\nname='member'\nshared=true\n[[file]]\npath='a.pem'\ncontent='cert'\n";
        assert!(ProductProfile::parse(Path::new("x.toml"), t).is_err());
        let t = "name='x'\ndescription='d'\n[[identity]]\nname='k'\nkeys=['rsa1024']\n[[file]]\npath='a.pem'\ncontent='cert'\n";
        assert!(ProductProfile::parse(Path::new("x.toml"), t).is_err());
    }

    #[test]
    fn paths_must_stay_inside() {
        let t = "name='x'\ndescription='d'\n[[file]]\npath='../etc/passwd'\ncontent='cert'\n";
        assert!(ProductProfile::parse(Path::new("x.toml"), t).is_err());
        let t = "name='x'\ndescription='d'\n[[file]]\npath='a.pem'\ncontent='cert'\ncolour=1\n";
        let e = ProductProfile::parse(Path::new("x.toml"), t)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("x.toml:6:"), "{e}");
    }
}
