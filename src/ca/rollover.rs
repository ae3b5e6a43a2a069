//! CA rollover without an outage, in three phases:
//!
//! 1. a new root (and a cross-certificate from the old root) is created; both roots are
//!    trust anchors, so every truststore learns the new one while leaves still chain to
//!    the old;
//! 2. the new generation issues (a new intermediate under the new root when the store
//!    had one), so leaves move over as they are renewed;
//! 3. once no valid leaf chains to the old generation, it is retired and truststores
//!    drop it.
//!
//! At every point each member trusts the root every other member's leaf chains to.

use serde::Serialize;
use x509_parser::prelude::FromDer;

use super::store::{AuthorityEntry, CaInit, NewCaKey, Rollover, Signer, Store};
use crate::cert::constraints::NameConstraintsSpec;
use crate::cert::{CaTemplate, Validity};
use crate::fsio::{Overwrite, PUBLIC};
use crate::inventory::Kind;
use crate::key::{Digest, KeyAlg};
use crate::pass::Secret;
use crate::x509::to_pem;
use crate::{Error, Result};

/// Where a rollover stands, for `ca rollover` and `cluster status`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RolloverStatus {
    /// 0 when none is in progress.
    pub phase: u8,
    pub old_root: Option<String>,
    pub new_root: Option<String>,
    /// Valid leaves still chaining to the old generation.
    pub old_leaves: usize,
}

/// What moves a rollover on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Advance {
    /// A deliberate `ca rollover --complete`: the next phase, whatever it is; refused
    /// when no rollover is in progress. `force` retires the old generation although
    /// leaves still chain to it.
    Complete { force: bool },
    /// A cluster run that has put every trust anchor in every truststore and renewed
    /// what was due: phase 1 moves on (the new root is trusted everywhere now), phase 2
    /// once no valid leaf chains to the old generation.
    Converged,
}

/// A move from one phase to the next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloverStep {
    /// Phase 1 to 2: the new generation issues.
    Switch,
    /// Phase 2 to 3: the old generation is retired (with `force`, although leaves still
    /// chain to it).
    Finish { force: bool },
}

/// The rollover machine: the step `trigger` takes a rollover standing at `status` to, or
/// `None` when it stays. Starting one (phase 0 to 1) is not a step: it needs a name and
/// a key for the new root, which `ca rollover` asks for.
pub fn next_step(status: &RolloverStatus, trigger: Advance) -> Result<Option<RolloverStep>> {
    Ok(match (status.phase, trigger) {
        (0, Advance::Complete { .. }) => {
            return Err(Error::Refused(
                "no CA rollover in progress; run `certmesh ca rollover` to start one".into(),
            ))
        }
        (0, Advance::Converged) => None,
        (1, _) => Some(RolloverStep::Switch),
        (_, Advance::Complete { force }) => Some(RolloverStep::Finish { force }),
        (_, Advance::Converged) if status.old_leaves == 0 => {
            Some(RolloverStep::Finish { force: false })
        }
        (_, Advance::Converged) => None,
    })
}

impl Store {
    /// The rollover in progress, with how many leaves still chain to the old root.
    pub fn rollover_status(&self) -> Result<RolloverStatus> {
        let Some(r) = self.config().rollover.clone() else {
            return Ok(RolloverStatus {
                phase: 0,
                old_root: None,
                new_root: None,
                old_leaves: 0,
            });
        };
        let old_leaves = self.leaves_under(&r.old_root)?;
        Ok(RolloverStatus {
            phase: r.phase,
            old_root: Some(r.old_root),
            new_root: Some(r.new_root),
            old_leaves,
        })
    }

    /// Moves the rollover in progress on by the step [`next_step`] gives for `trigger`, and
    /// returns the step taken (`None`: it stays where it is). `signer` loads a CA of the
    /// store by id (the switch needs the new root's); `key_pass` gives the passphrase (or PIN)
    /// new CA keys get, asked only when a step makes one.
    pub fn advance_rollover(
        &mut self,
        trigger: Advance,
        signer: &mut dyn FnMut(&Store, &str) -> Result<Signer>,
        key: Option<KeyAlg>,
        key_pass: &mut dyn FnMut() -> Result<Option<Secret>>,
    ) -> Result<Option<RolloverStep>> {
        let status = self.rollover_status()?;
        let step = next_step(&status, trigger)?;
        match step {
            None => {}
            Some(RolloverStep::Switch) => {
                let new_root = status.new_root.unwrap_or_default();
                let signer = signer(self, &new_root)?;
                let pass = key_pass()?;
                self.rollover_switch(&signer, key, pass.as_ref())?;
            }
            Some(RolloverStep::Finish { force }) => self.rollover_finish(force)?,
        }
        Ok(step)
    }

    /// Ids of an authority and every authority below it.
    fn generation(&self, root: &str) -> Vec<String> {
        let mut ids = vec![root.to_string()];
        let mut grew = true;
        while grew {
            grew = false;
            for a in &self.config().authorities {
                if !ids.contains(&a.id) && ids.contains(&a.parent) {
                    ids.push(a.id.clone());
                    grew = true;
                }
            }
        }
        ids
    }

    fn leaves_under(&self, root: &str) -> Result<usize> {
        let mut serials = Vec::new();
        for id in self.generation(root) {
            let der = self.cert_der(&id)?;
            if let Ok((_, c)) = <x509_parser::prelude::X509Certificate as x509_parser::prelude::FromDer<_>>::from_der(&der) {
                serials.push(crate::x509::serial_hex(c.raw_serial()));
            }
        }
        Ok(self
            .inventory()?
            .list(None, false)?
            .iter()
            .filter(|r| r.kind == Kind::Leaf && serials.contains(&r.issuer_serial))
            .count())
    }

    /// The root the issuing CA chains to.
    pub fn current_root(&self) -> String {
        let mut id = self.config().issuing.clone();
        for _ in 0..8 {
            match self.authority(&id) {
                Some(a) if a.parent != a.id => id = a.parent.clone(),
                _ => break,
            }
        }
        id
    }

    /// Phase 1: a new root, self-signed, and a cross-certificate for it from the old root
    /// (`ca/<new>/cross.pem`, for clients that only trust the old one). Both roots are
    /// trust anchors from now on; the old generation keeps issuing.
    pub fn rollover_begin(
        &mut self,
        name: &str,
        key: KeyAlg,
        days: u32,
        old_root: &Signer,
        key_pass: Option<&Secret>,
    ) -> Result<String> {
        if self.config().rollover.is_some() {
            return Err(Error::Refused("a CA rollover is already in progress; run `certmesh ca rollover --complete` to move on".into()));
        }
        let old_id = self.current_root();
        if old_root.id != old_id {
            return Err(Error::Crypto(
                "rollover needs the current root's key".into(),
            ));
        }
        let new_id = (2..)
            .map(|n| format!("root-{n}"))
            .find(|id| self.authority(id).is_none())
            .expect("an unused id exists");
        // A root kept in a token is succeeded by a root in the same token.
        let token = match &self.authority(&old_id).and_then(|a| a.pkcs11.clone()) {
            Some(t) => Some(t.sibling(&new_id)?),
            None => None,
        };
        let new_key = NewCaKey::make(key, Digest::Sha256, token.as_ref(), key_pass)?;
        let template = CaTemplate {
            common_name: name.to_string(),
            validity: Validity::new(days, None)?,
            path_len: None,
            constraints: NameConstraintsSpec::from_cert(
                &x509_parser::prelude::FromDer::from_der(&old_root.cert_der)
                    .map(|(_, c)| c)
                    .map_err(|_| Error::Crypto("old root does not parse".into()))?,
            ),
        };
        let signing = new_key.signing_key(Digest::Sha256)?;
        let params = template.params()?;
        let cert = params.self_signed(&signing)?;
        // The cross-certificate: the same subject and key, signed by the old root, valid
        // no longer than the old root.
        let mut cross_params = params.clone();
        cross_params.serial_number = Some(crate::cert::random_serial()?);
        if cross_params.not_after > old_root.not_after {
            cross_params.not_after = old_root.not_after;
        }
        let cross = cross_params.signed_by(&signing, &old_root.issuer)?;
        let entry = AuthorityEntry {
            id: new_id.clone(),
            parent: new_id.clone(),
            encrypted: key_pass.is_some() && token.is_none(),
            digest: Digest::Sha256,
            retired: false,
            pkcs11: token,
        };
        self.write_authority(&entry, &new_key, cert.der(), key_pass)?;
        crate::fsio::write_file(
            &self.authority_dir(&new_id).join("cross.pem"),
            to_pem("CERTIFICATE", cross.der()).as_bytes(),
            PUBLIC,
            Overwrite::Replace,
        )?;
        self.record_ca(&entry, cert.der(), cert.der())?;
        let mut config = self.config().clone();
        config.authorities.push(entry);
        config.rollover = Some(Rollover {
            phase: 1,
            old_root: old_id,
            new_root: new_id.clone(),
        });
        self.set_config(config)?;
        Ok(new_id)
    }

    /// Phase 2: the new generation issues. When the old root issued through an
    /// intermediate, a new intermediate is made under the new root, with a `key` of that
    /// type or, when `None`, of the new root's type.
    pub fn rollover_switch(
        &mut self,
        new_root: &Signer,
        key: Option<KeyAlg>,
        key_pass: Option<&Secret>,
    ) -> Result<()> {
        let r = match self.config().rollover.clone() {
            Some(r) if r.phase == 1 => r,
            _ => return Err(Error::Refused("no CA rollover in phase 1".into())),
        };
        if new_root.id != r.new_root {
            return Err(Error::Crypto("the switch needs the new root's key".into()));
        }
        if self.config().issuing != r.old_root {
            let (_, root_cert) =
                x509_parser::prelude::X509Certificate::from_der(&new_root.cert_der)
                    .map_err(|_| Error::Crypto("new root does not parse".into()))?;
            let name = crate::cert::derived_ca_name(
                &crate::x509::common_name(&root_cert).unwrap_or_default(),
                " Intermediate",
            );
            // Unless told otherwise, the new generation keeps one key type throughout.
            let root_key = crate::x509::describe_spki(root_cert.public_key());
            let key = match key {
                Some(k) => k,
                None => KeyAlg::of_shape(&root_key).ok_or_else(|| {
                    Error::Refused(format!(
                        "cannot generate a {root_key} key like the new root's; give --key"
                    ))
                })?,
            };
            self.add_intermediate(
                &CaInit {
                    name,
                    key,
                    days: 1825,
                    digest: Digest::Sha256,
                    constraints: NameConstraintsSpec::default(),
                    token: match self.authority(&r.new_root).and_then(|a| a.pkcs11.clone()) {
                        Some(t) => Some(t.sibling("intermediate")?),
                        None => None,
                    },
                },
                new_root,
                key_pass,
            )?;
        } else {
            let mut config = self.config().clone();
            config.issuing = r.new_root.clone();
            self.set_config(config)?;
        }
        let mut config = self.config().clone();
        config.rollover = Some(Rollover { phase: 2, ..r });
        self.set_config(config)
    }

    /// Phase 3: retire the old generation, refused while valid leaves still chain to it
    /// (unless `force`).
    pub fn rollover_finish(&mut self, force: bool) -> Result<()> {
        let r = match self.config().rollover.clone() {
            Some(r) if r.phase == 2 => r,
            _ => return Err(Error::Refused("no CA rollover in phase 2".into())),
        };
        let left = self.leaves_under(&r.old_root)?;
        if left > 0 && !force {
            return Err(Error::Refused(format!(
                "{left} valid certificate(s) still chain to the old CA; renew them first (cluster apply / renew), or pass --force"
            )));
        }
        let retire = self.generation(&r.old_root);
        let mut config = self.config().clone();
        for a in &mut config.authorities {
            if retire.contains(&a.id) {
                a.retired = true;
            }
        }
        config.rollover = None;
        self.set_config(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(phase: u8, old_leaves: usize) -> RolloverStatus {
        RolloverStatus {
            phase,
            old_root: (phase > 0).then(|| "root".into()),
            new_root: (phase > 0).then(|| "root-2".into()),
            old_leaves,
        }
    }

    #[test]
    fn complete_moves_to_the_next_phase_and_needs_a_rollover() {
        let complete = Advance::Complete { force: false };
        assert!(matches!(
            next_step(&at(0, 0), complete),
            Err(Error::Refused(m)) if m.contains("no CA rollover in progress")
        ));
        assert_eq!(
            next_step(&at(1, 5), complete).unwrap(),
            Some(RolloverStep::Switch)
        );
        // Phase 2 moves on whatever is left: rollover_finish refuses without force.
        assert_eq!(
            next_step(&at(2, 5), complete).unwrap(),
            Some(RolloverStep::Finish { force: false })
        );
        assert_eq!(
            next_step(&at(2, 5), Advance::Complete { force: true }).unwrap(),
            Some(RolloverStep::Finish { force: true })
        );
    }

    #[test]
    fn a_converged_cluster_run_retires_the_old_root_only_once_no_leaf_needs_it() {
        assert_eq!(next_step(&at(0, 0), Advance::Converged).unwrap(), None);
        assert_eq!(
            next_step(&at(1, 3), Advance::Converged).unwrap(),
            Some(RolloverStep::Switch)
        );
        assert_eq!(next_step(&at(2, 1), Advance::Converged).unwrap(), None);
        assert_eq!(
            next_step(&at(2, 0), Advance::Converged).unwrap(),
            Some(RolloverStep::Finish { force: false })
        );
    }
}
