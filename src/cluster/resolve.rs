//! The first phase of a run: the manifest resolved against the product profiles, every
//! string in it parsed (key algorithms, digests, name constraints, certificate profiles,
//! renew windows) and every file it names read, before anything is created. A bad value
//! is an error naming the manifest line of the member, `[[shared]]` entry or `[ca]`
//! table it is in.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::decide::Wanted;
use super::identity::{resolve_shared, SharedGroup};
use super::manifest::{Manifest, Member};
use super::options::Options;
use super::profile::{ProductProfile, Profiles, Rotation, MEMBER};
use super::stores::PKI_DIR;
use crate::cert::constraints::NameConstraintsSpec;
use crate::fsio;
use crate::key::{Digest, KeyAlg};
use crate::pass::{PassSource, Secret};
use crate::{Error, Result};

/// The `[ca]` table, parsed: what a new CA store of the cluster is made with.
pub(crate) struct CaPlan {
    pub key: KeyAlg,
    pub digest: Digest,
    pub constraints: NameConstraintsSpec,
}

impl CaPlan {
    fn of(manifest: &Manifest) -> Result<Self> {
        let ca = &manifest.ca;
        let err = |e: Error| manifest.ca_error(e.to_string());
        Ok(CaPlan {
            key: KeyAlg::parse(&ca.key).map_err(err)?,
            digest: Digest::parse(&ca.digest).map_err(err)?,
            constraints: NameConstraintsSpec::permit(&ca.permit_dns, &ca.permit_ip).map_err(err)?,
        })
    }
}

/// A member's base truststore (the one its product ships, merged into): where it is,
/// and its bytes, read once.
pub(crate) type BaseTruststore = Option<(PathBuf, Vec<u8>)>;

/// Everything a run works from, parsed and checked.
pub(crate) struct Resolved<'a> {
    pub manifest: &'a Manifest,
    /// Each member's product profile, by member name.
    pub products: BTreeMap<&'a str, &'a ProductProfile>,
    /// What each member's certificate should be, in manifest order.
    pub wants: Vec<Wanted>,
    /// Each member's base truststore, in manifest order.
    pub base_truststores: Vec<BaseTruststore>,
    /// The groups of members sharing an identity.
    pub groups: Vec<SharedGroup>,
    pub ca: CaPlan,
}

impl Resolved<'_> {
    /// Member `m`'s product profile.
    pub fn product(&self, m: &Member) -> &ProductProfile {
        self.products[m.name.get_ref().as_str()]
    }

    /// The rotation policy of identity `id` for member `m`.
    pub fn rotation_of(&self, m: &Member, id: &str) -> Rotation {
        let name = m.name.get_ref();
        if id == MEMBER {
            return self
                .product(m)
                .identity(MEMBER)
                .map(|i| i.rotation)
                .unwrap_or(Rotation::NewKey);
        }
        self.groups
            .iter()
            .find(|g| g.identity == id && g.members.contains(name))
            .map_or(Rotation::NewKey, |g| g.rotation)
    }
}

/// Each member's product profile, by member name; an unknown profile is an error naming
/// the member's line.
pub fn resolve_profiles<'a>(
    manifest: &'a Manifest,
    profiles: &'a Profiles,
) -> Result<BTreeMap<&'a str, &'a ProductProfile>> {
    let mut out = BTreeMap::new();
    for m in &manifest.members {
        let name = manifest.profile_of(m);
        let p = profiles.get(name).ok_or_else(|| {
            manifest.member_error(
                m,
                format!(
                    "unknown profile '{name}' (available: {})",
                    profiles.names().join(", ")
                ),
            )
        })?;
        out.insert(m.name.get_ref().as_str(), p);
    }
    Ok(out)
}

/// Resolves `manifest` for a run with `opts`: everything the manifest asks for is
/// checked here, before anything is created.
pub(crate) fn resolve<'a>(
    manifest: &'a Manifest,
    profiles: &'a Profiles,
    opts: &Options<'_>,
) -> Result<Resolved<'a>> {
    let products = resolve_profiles(manifest, profiles)?;
    for m in &manifest.members {
        if m.name.get_ref() == PKI_DIR {
            return Err(manifest.member_error(
                m,
                format!("the member name '{PKI_DIR}' is reserved for the CA store"),
            ));
        }
    }
    let mut wants = Vec::with_capacity(manifest.members.len());
    for m in &manifest.members {
        wants.push(Wanted::of(
            manifest,
            m,
            products[m.name.get_ref().as_str()],
        )?);
    }
    for x in &manifest.extra_trust {
        crate::x509::read_certs(&manifest.resolve(&x.cert))?;
    }
    let mut base_truststores = Vec::with_capacity(manifest.members.len());
    for m in &manifest.members {
        base_truststores.push(match &m.base_truststore {
            Some(p) => {
                let path = manifest.resolve(p);
                let bytes = fsio::read(&path)?;
                Some((path, bytes))
            }
            None => None,
        });
    }
    let ca = CaPlan::of(manifest)?;
    let groups = resolve_shared(manifest, &products)?;
    check_identity_options(&groups, opts)?;
    Ok(Resolved {
        manifest,
        products,
        wants,
        base_truststores,
        groups,
        ca,
    })
}

/// `--renew-identity`, `--rekey-identity` and `--adopt-key` name identities (and members)
/// the cluster has.
fn check_identity_options(groups: &[SharedGroup], opts: &Options<'_>) -> Result<()> {
    for id in opts.renew_identities.iter().chain(opts.rekey_identities) {
        if id != MEMBER && !groups.iter().any(|g| &g.identity == id) {
            let mut known: Vec<&str> = groups.iter().map(|g| g.identity.as_str()).collect();
            known.dedup();
            known.push(MEMBER);
            return Err(Error::Usage(format!(
                "no identity '{id}' in this cluster (its identities: {})",
                known.join(", ")
            )));
        }
    }
    for (id, member) in opts.adopt_keys {
        let g = groups.iter().find(|g| &g.identity == id).ok_or_else(|| {
            Error::Usage(format!(
                "--adopt-key {id}={member}: no shared identity '{id}' in this cluster"
            ))
        })?;
        if !g.members.contains(member) {
            return Err(Error::Usage(format!(
                "--adopt-key {id}={member}: '{member}' does not share identity '{id}' ({})",
                g.members.join(", ")
            )));
        }
    }
    Ok(())
}

/// The CA keys' passphrase (or token PIN) from `[ca] key_pass`, read once.
pub(crate) fn ca_passphrase(manifest: &Manifest) -> Result<Option<Secret>> {
    let Some(spec) = &manifest.ca.key_pass else {
        return Ok(None);
    };
    let pass = spec.parse::<PassSource>()?.read()?;
    crate::pass::check_key_passphrase(&pass).map_err(|_| {
        Error::bad_file(
            &manifest.path,
            "[ca] key_pass: the passphrase is empty; a CA key needs a real one",
        )
    })?;
    Ok(Some(pass))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::options::Silent;
    use std::path::Path;

    fn manifest(text: &str) -> Manifest {
        Manifest::parse(Path::new("cluster.toml"), text).unwrap()
    }

    fn opts() -> Options<'static> {
        Options {
            dry_run: true,
            deploy: false,
            parallel: 1,
            wait: false,
            keep_certificates: false,
            renew_identities: &[],
            rekey_identities: &[],
            adopt_keys: &[],
            progress: &Silent,
            roll: Default::default(),
        }
    }

    const TWO: &str =
        "name = \"t\"\n[defaults]\nprofile = \"nginx\"\nkey = \"rsa3072\"\ndays = 90\n\
        [[member]]\nname = \"a\"\ndns = [\"a.test\"]\n\
        [[member]]\nname = \"b\"\nip = [\"10.0.0.2\"]\nkey = \"p384\"\nrenew_before = \"1/3\"\n";

    #[test]
    fn every_string_is_parsed_once_into_types() {
        let profiles = Profiles::load(&[]).unwrap();
        let m = manifest(TWO);
        let r = resolve(&m, &profiles, &opts()).unwrap();
        assert_eq!(r.wants.len(), 2);
        assert_eq!(r.wants[0].key, KeyAlg::Rsa3072);
        assert_eq!(r.wants[1].key, KeyAlg::P384);
        assert_eq!(r.wants[0].days, 90);
        assert_eq!(r.wants[1].names.all(), ["10.0.0.2"]);
        assert_eq!(r.ca.key, KeyAlg::P256);
        assert_eq!(r.ca.digest, Digest::Sha256);
        assert_eq!(r.product(&m.members[0]).name, "nginx");
        assert_eq!(r.rotation_of(&m.members[0], MEMBER), Rotation::NewKey);
        assert!(r.base_truststores.iter().all(Option::is_none));
    }

    #[test]
    fn a_bad_value_names_its_line() {
        let profiles = Profiles::load(&[]).unwrap();
        let bad_member = TWO.replace("key = \"p384\"", "key = \"dsa\"");
        let e = resolve(&manifest(&bad_member), &profiles, &opts())
            .err()
            .unwrap()
            .to_string();
        // Member b's name stands on line 10.
        assert!(e.contains("cluster.toml:10"), "{e}");
        let bad_ca = format!("{TWO}[ca]\ndigest = \"sha999\"\n");
        let e = resolve(&manifest(&bad_ca), &profiles, &opts())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("cluster.toml:14"), "{e}");
        assert!(e.contains("sha999"), "{e}");
        let reserved = TWO.replace("name = \"a\"", "name = \"pki\"");
        let e = resolve(&manifest(&reserved), &profiles, &opts())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("cluster.toml:7") && e.contains("reserved"),
            "{e}"
        );
    }

    #[test]
    fn identity_options_must_name_what_the_cluster_has() {
        let profiles = Profiles::load(&[]).unwrap();
        let m = manifest(TWO);
        let rekey = ["primary".to_string()];
        let mut o = opts();
        o.rekey_identities = &rekey;
        let e = resolve(&m, &profiles, &o).err().unwrap();
        assert!(
            matches!(&e, Error::Usage(s) if s.contains("no identity 'primary'")),
            "{e}"
        );
        let member = [MEMBER.to_string()];
        o.rekey_identities = &member;
        assert!(resolve(&m, &profiles, &o).is_ok());
    }
}
