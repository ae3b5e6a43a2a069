//! `cluster.toml`: the one description of a cluster that everything else is derived from.
//!
//! Parsing is strict: an unknown key, a duplicate member or a bad address is an error
//! naming the manifest and the line, because a typo in a file that drives certificate
//! distribution must not be silently ignored.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

pub use super::member::{Deploy, Member};
use crate::{Error, Result};

/// How members come to trust each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TrustModel {
    /// One cluster CA signs every member; every truststore holds that CA.
    #[default]
    SharedCa,
    /// Every member has its own signer CA; every truststore holds every member's signer.
    Mesh,
}

/// `[ca]`: settings of the cluster CA (shared-ca) or of every member's signer (mesh).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CaSettings {
    /// Common name; for mesh signers the member name is appended.
    pub name: Option<String>,
    pub key: String,
    pub days: u32,
    pub digest: String,
    /// Also create an intermediate that signs the leaves.
    pub intermediate: bool,
    pub permit_dns: Vec<String>,
    pub permit_ip: Vec<String>,
    /// Passphrase source for encrypting the CA key at rest (`env:`, `file:`); with
    /// `pkcs11`, the token's PIN.
    pub key_pass: Option<String>,
    /// Keep the CA keys in this PKCS#11 token (RFC 7512 URI naming the token and the
    /// root key's label); mesh signers and intermediates get the label plus their id.
    pub pkcs11: Option<String>,
    /// The PKCS#11 module (default: the URI's module-path).
    pub pkcs11_module: Option<String>,
}

impl Default for CaSettings {
    fn default() -> Self {
        CaSettings {
            name: None,
            key: "p256".into(),
            days: 3650,
            digest: "sha256".into(),
            intermediate: false,
            permit_dns: Vec::new(),
            permit_ip: Vec::new(),
            key_pass: None,
            pkcs11: None,
            pkcs11_module: None,
        }
    }
}

/// `[defaults]`: what every member gets unless it says otherwise.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Defaults {
    pub key: String,
    pub days: u32,
    /// Renew when less than this remains: a duration (`30d`) or a fraction of the
    /// lifetime (`1/3`).
    pub renew_before: String,
    /// Product profile.
    pub profile: Option<String>,
    /// Certificate profile: server, client or peer.
    pub cert_profile: Option<String>,
}

impl Default for Defaults {
    fn default() -> Self {
        Defaults {
            key: "p256".into(),
            days: 365,
            renew_before: "30d".into(),
            profile: None,
            cert_profile: None,
        }
    }
}

/// `[[extra_trust]]`: a signer from outside the cluster that members must trust.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraTrust {
    pub name: String,
    /// PEM or DER certificate file, relative to the manifest.
    pub cert: PathBuf,
    /// Members that trust it; all of them when empty.
    #[serde(default)]
    pub members: Vec<String>,
}

/// `[[shared]]`: the names, key and lifetime of an identity shared by a group of members
/// (a profile's `[[identity]]` with `shared = true`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Shared {
    /// The profile's identity name (`primary`, `internal`, `cluster`, ...).
    pub identity: Spanned<String>,
    /// A name for this group, when an identity has more than one group.
    pub group: Option<String>,
    /// The members that share it; default: every member whose profile has the identity
    /// and that no other group of it names.
    #[serde(default)]
    pub members: Vec<String>,
    /// Names in the certificate (e.g. the cluster's public host name); default: every
    /// name of the group's members.
    #[serde(default)]
    pub dns: Vec<String>,
    #[serde(default)]
    pub ip: Vec<IpAddr>,
    /// Key type; default: the first the profile accepts for the identity.
    pub key: Option<Spanned<String>>,
    pub days: Option<u32>,
    pub renew_before: Option<String>,
    /// Overrides the profile's rotation policy.
    pub rotation: Option<Spanned<super::profile::Rotation>>,
}

/// A parsed and checked manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    #[serde(default)]
    pub trust: TrustModel,
    #[serde(default)]
    pub ca: CaSettings,
    #[serde(default)]
    pub defaults: Defaults,
    #[serde(default)]
    pub extra_trust: Vec<ExtraTrust>,
    #[serde(rename = "member", default)]
    pub members: Vec<Member>,
    #[serde(default)]
    pub shared: Vec<Shared>,
    /// `[ansible]`: members taken from an Ansible inventory, and where they are delivered.
    pub ansible: Option<super::ansible_inventory::AnsibleSection>,
    /// Directory of the manifest; relative paths in it are resolved against this.
    #[serde(skip)]
    pub base_dir: PathBuf,
    #[serde(skip)]
    pub path: PathBuf,
    #[serde(skip)]
    text: String,
}

impl Manifest {
    /// Reads and checks a manifest file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::parse(path, &text)
    }

    /// Parses and checks manifest text; `path` is used in messages and to resolve
    /// relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Self> {
        let mut m: Manifest = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| line_of(text, s.start)).unwrap_or(0);
            at_line(path, line, e.message())
        })?;
        m.path = path.to_path_buf();
        m.base_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        m.text = text.to_string();
        if let Some(a) = &m.ansible {
            let from_inventory = a.members(&m.base_dir, path)?;
            m.members.extend(from_inventory);
        }
        m.check()?;
        Ok(m)
    }

    /// The line a member's name stands on, for messages about that member.
    pub fn member_line(&self, m: &Member) -> usize {
        line_of(&self.text, m.name.span().start)
    }

    /// An error about a member, naming the manifest line.
    pub fn member_error(&self, m: &Member, problem: impl Into<String>) -> Error {
        at_line(&self.path, self.member_line(m), &problem.into())
    }

    /// An error about a `[[shared]]` entry, naming the line of `at` (a span in it).
    pub fn shared_error(&self, at: std::ops::Range<usize>, problem: impl Into<String>) -> Error {
        at_line(&self.path, line_of(&self.text, at.start), &problem.into())
    }

    /// An error about the `[ca]` table, naming its line (line 1 when the manifest has
    /// none and a default is at fault).
    pub fn ca_error(&self, problem: impl Into<String>) -> Error {
        let line = self
            .text
            .lines()
            .position(|l| l.trim() == "[ca]")
            .map_or(1, |i| i + 1);
        at_line(&self.path, line, &problem.into())
    }

    fn check(&self) -> Result<()> {
        if self.name.trim().is_empty() {
            return Err(at_line(&self.path, 1, "the cluster needs a name"));
        }
        if self.members.is_empty() {
            return Err(at_line(&self.path, 1, "no [[member]] entries"));
        }
        // Sets keep these checks linear in the number of members.
        let mut seen = std::collections::HashSet::new();
        let mut names = std::collections::HashSet::new();
        for m in &self.members {
            let name = m.name.get_ref();
            crate::ca::check_entry_name(name).map_err(|e| self.member_error(m, e.to_string()))?;
            if name.starts_with(SHARED_PREFIX) {
                return Err(self.member_error(
                    m,
                    format!("member names starting with '{SHARED_PREFIX}' are reserved for shared identities"),
                ));
            }
            names.insert(name.as_str());
            if !seen.insert(name.to_ascii_lowercase()) {
                return Err(self.member_error(m, format!("duplicate member '{name}'")));
            }
            if let Some(d) = &m.deploy {
                check_deploy(d).map_err(|e| self.member_error(m, e))?;
            }
            if m.dns.is_empty() && m.ip.is_empty() {
                return Err(self.member_error(
                    m,
                    format!("member '{name}' needs at least one dns or ip name"),
                ));
            }
            crate::cert::SubjectNames::new(&m.dns, &m.ip)
                .map_err(|e| self.member_error(m, e.to_string()))?;
            for e in m.probe.iter().flatten() {
                crate::probe::Endpoint::parse(e)
                    .map_err(|e| self.member_error(m, e.to_string()))?;
            }
            if m.profile.is_none() && self.defaults.profile.is_none() {
                return Err(self.member_error(
                    m,
                    format!("member '{name}' has no profile and [defaults] names none"),
                ));
            }
        }
        for sh in &self.shared {
            let err = |p: String| self.shared_error(sh.identity.span(), p);
            for n in &sh.members {
                if !seen.iter().any(|s| s == n) {
                    return Err(err(format!("[[shared]] names unknown member '{n}'")));
                }
            }
            if let Some(g) = &sh.group {
                crate::ca::check_entry_name(g).map_err(|e| err(e.to_string()))?;
            }
            if !sh.dns.is_empty() || !sh.ip.is_empty() {
                crate::cert::SubjectNames::new(&sh.dns, &sh.ip).map_err(|e| err(e.to_string()))?;
            }
        }
        for x in &self.extra_trust {
            for n in &x.members {
                if !names.contains(n.as_str()) {
                    return Err(at_line(
                        &self.path,
                        1,
                        &format!("extra_trust '{}' names unknown member '{n}'", x.name),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The member's product profile name.
    pub fn profile_of<'a>(&'a self, m: &'a Member) -> &'a str {
        m.profile
            .as_ref()
            .map(|p| p.get_ref().as_str())
            .or(self.defaults.profile.as_deref())
            .expect("checked on load")
    }

    /// Resolves a path from the manifest against its directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base_dir.join(p)
        }
    }
}

/// Store entries of shared identities are named `_shared.<identity>[.<group>]`; no member
/// may be named so.
pub const SHARED_PREFIX: &str = crate::ca::SHARED_ENTRY_PREFIX;
/// `owner` becomes an operand of the remote `chown`: a user and an optional group, each a
/// plain name or number, so it can never be read as an option or a shell word.
fn check_deploy(d: &Deploy) -> std::result::Result<(), String> {
    if let Some(owner) = &d.owner {
        let part_ok = |p: &str| {
            !p.is_empty()
                && !p.starts_with('-')
                && p.len() <= 64
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        };
        let ok = match owner.split_once(':') {
            Some((u, g)) => part_ok(u) && part_ok(g),
            None => part_ok(owner),
        };
        if !ok {
            return Err(format!(
                "invalid deploy owner '{}': use USER or USER:GROUP (letters, digits, '.', '-', '_')",
                crate::error::shorten(owner)
            ));
        }
    }
    if d.dir.is_empty() || d.dir.contains('\0') {
        return Err("deploy dir must be a directory path".into());
    }
    Ok(())
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn at_line(path: &Path, line: usize, problem: &str) -> Error {
    let problem = problem.split_whitespace().collect::<Vec<_>>().join(" ");
    Error::BadFile {
        path: PathBuf::from(format!("{}:{line}", path.display())),
        problem,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &str = r#"
name = "demo"
trust = "mesh"
[defaults]
profile = "nginx"
[[member]]
name = "a"
dns = ["a.example.com"]
[[member]]
name = "b"
ip = ["10.0.0.2"]
"#;

    #[test]
    fn parses_and_defaults() {
        let m = Manifest::parse(Path::new("c.toml"), OK).unwrap();
        assert_eq!(m.trust, TrustModel::Mesh);
        assert_eq!(m.members.len(), 2);
        assert_eq!(m.profile_of(&m.members[1]), "nginx");
        assert_eq!(m.defaults.days, 365);
    }

    #[test]
    fn probe_endpoints_are_checked_on_load() {
        let good = OK.replace(
            "ip = [\"10.0.0.2\"]",
            "ip = [\"10.0.0.2\"]\nprobe = [\"10.0.0.2:8443\"]",
        );
        let m = Manifest::parse(Path::new("c.toml"), &good).unwrap();
        assert_eq!(
            m.members[1].probe.as_deref(),
            Some(&["10.0.0.2:8443".to_string()][..])
        );
        let bad = OK.replace(
            "ip = [\"10.0.0.2\"]",
            "ip = [\"10.0.0.2\"]\nprobe = [\"10.0.0.2\"]",
        );
        let e = Manifest::parse(Path::new("c.toml"), &bad)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("c.toml:10:") && e.contains("invalid endpoint '10.0.0.2'"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_the_line() {
        let bad = OK.replace(
            "dns = [\"a.example.com\"]",
            "dns = [\"a.example.com\"]\ncolour = \"red\"",
        );
        let e = Manifest::parse(Path::new("c.toml"), &bad)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.toml:9:") && e.contains("colour"), "{e}");
        let dup = OK.replace("name = \"b\"", "name = \"a\"");
        let e = Manifest::parse(Path::new("c.toml"), &dup)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("c.toml:10:") && e.contains("duplicate"),
            "{e}"
        );
        let shared = format!("{OK}[[shared]]\nidentity = \"primary\"\nmembers = [\"zz\"]\n");
        let e = Manifest::parse(Path::new("c.toml"), &shared)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("c.toml:13:") && e.contains("unknown member 'zz'"),
            "{e}"
        );
        let reserved = OK.replace("name = \"b\"", "name = \"_shared.primary\"");
        let e = Manifest::parse(Path::new("c.toml"), &reserved)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.toml:10:") && e.contains("reserved"), "{e}");
        let ip = OK.replace("10.0.0.2", "10.0.0.300");
        let e = Manifest::parse(Path::new("c.toml"), &ip)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("c.toml:11:"), "{e}");
    }
}
