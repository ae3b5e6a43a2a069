//! Rollback: putting back what a run replaced.
//!
//! Every replacement moves the old `issued/NAME` to `backup/<UTC timestamp>/issued/NAME`
//! (one timestamp directory per run). Rolling back a generation moves each of its entries
//! back to `issued/NAME` and moves the current entry to a fresh backup generation, so a
//! rollback is itself undone by rolling back again.

use std::fs;
use std::path::{Path, PathBuf};

use serde::Serialize;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::store::Store;
use crate::fsio::{self, PRIVATE_DIR};
use crate::inventory::Status;
use crate::{Error, Result};

/// One backup generation (`backup/<stamp>/`).
#[derive(Debug, Clone, Serialize)]
pub struct Generation {
    pub stamp: String,
    pub entries: Vec<GenerationEntry>,
}

/// An issued entry kept in a backup generation.
#[derive(Debug, Clone, Serialize)]
pub struct GenerationEntry {
    pub name: String,
    #[serde(skip)]
    pub dir: PathBuf,
    pub serial: Option<String>,
    pub not_after: Option<String>,
}

/// What a rollback did.
#[derive(Debug, Clone, Serialize)]
pub struct RolledBack {
    /// The generation that was put back.
    pub stamp: String,
    /// Where the replaced current entries went (roll back again to undo).
    pub backup: PathBuf,
    pub restored: Vec<RestoredEntry>,
    #[serde(skip)]
    pub warnings: Vec<String>,
}

/// One entry put back.
#[derive(Debug, Clone, Serialize)]
pub struct RestoredEntry {
    pub name: String,
    /// Serial now in `issued/NAME`.
    pub serial: Option<String>,
    /// Serial that was there before the rollback.
    pub replaced_serial: Option<String>,
}

impl Store {
    /// The backup generations, oldest first.
    pub fn backup_generations(&self) -> Result<Vec<Generation>> {
        let root = self.home().join("backup");
        let mut stamps = Vec::new();
        match fs::read_dir(&root) {
            Ok(rd) => {
                for e in rd {
                    let e = e.map_err(|e| Error::io(&root, e))?;
                    if e.path().is_dir() {
                        if let Some(s) = e.file_name().to_str() {
                            if !s.starts_with('.') {
                                stamps.push(s.to_string());
                            }
                        }
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&root, e)),
        }
        stamps.sort_by_key(|s| stamp_key(s));
        let mut out = Vec::new();
        for stamp in stamps {
            let issued = root.join(&stamp).join("issued");
            let mut names = Vec::new();
            if let Ok(rd) = fs::read_dir(&issued) {
                for e in rd.flatten() {
                    if let Some(n) = e.file_name().to_str() {
                        if e.path().is_dir() && !n.starts_with('.') {
                            names.push(n.to_string());
                        }
                    }
                }
            }
            names.sort();
            // `NAME.2`, `NAME.3` are later generations of NAME replaced in the same run;
            // rolling the run back restores NAME, the state before it.
            let entries = names
                .iter()
                .filter(|n| !is_repeat(n, &names))
                .map(|n| {
                    let dir = issued.join(n);
                    let (serial, not_after) = cert_info(&dir.join("cert.pem"));
                    GenerationEntry {
                        name: n.clone(),
                        dir,
                        serial,
                        not_after,
                    }
                })
                .collect();
            out.push(Generation { stamp, entries });
        }
        Ok(out)
    }

    /// Puts back the generation `stamp` (default: the newest that holds anything). The
    /// caller holds the store's lock.
    pub fn rollback(&self, stamp: Option<&str>) -> Result<RolledBack> {
        let gens = self.backup_generations()?;
        let gen = match stamp {
            Some(s) => gens.into_iter().find(|g| g.stamp == s).ok_or_else(|| {
                Error::Refused(format!(
                    "no backup generation '{s}' under {} (see `certmesh rollback --list`)",
                    self.home().join("backup").display()
                ))
            })?,
            None => gens
                .into_iter()
                .rev()
                .find(|g| !g.entries.is_empty())
                .ok_or_else(|| {
                    Error::Refused(format!(
                        "nothing to roll back: {} holds no replaced certificates",
                        self.home().join("backup").display()
                    ))
                })?,
        };
        if gen.entries.is_empty() {
            return Err(Error::Refused(format!(
                "backup generation '{}' holds no issued certificates",
                gen.stamp
            )));
        }
        let mut inv = self.inventory()?;
        // Check everything before moving anything.
        for e in &gen.entries {
            if !e.dir.join("cert.pem").exists() {
                return Err(Error::bad_file(
                    e.dir.join("cert.pem"),
                    "missing; not rolling back",
                ));
            }
            if let Some(s) = &e.serial {
                if let Some(r) = inv.by_serial(s)? {
                    if r.status == Status::Revoked {
                        return Err(Error::Refused(format!(
                            "{}: the backed-up certificate of {} (serial {s}) is revoked; not putting it back",
                            e.dir.display(),
                            e.name
                        )));
                    }
                }
            }
        }
        let fresh = self.backup_dir();
        let issued = self.home().join("issued");
        fsio::create_dir(&issued, PRIVATE_DIR)?;
        let mut restored = Vec::new();
        let mut warnings = Vec::new();
        for e in &gen.entries {
            let target = issued.join(&e.name);
            let mut replaced_serial = None;
            if target.exists() {
                replaced_serial = cert_info(&target.join("cert.pem")).0;
                let aside = fresh.join("issued").join(&e.name);
                fsio::create_dir(aside.parent().expect("has a parent"), PRIVATE_DIR)?;
                fs::rename(&target, &aside).map_err(|err| Error::io(&target, err))?;
                fsio::sync_dir(aside.parent().expect("has a parent"))?;
            }
            fs::rename(&e.dir, &target).map_err(|err| Error::io(&e.dir, err))?;
            fsio::sync_dir(&issued)?;
            match &e.serial {
                Some(s) => inv.make_current(&e.name, s)?,
                None => warnings.push(format!(
                    "{}: no readable certificate; the inventory was not updated",
                    target.display()
                )),
            }
            restored.push(RestoredEntry {
                name: e.name.clone(),
                serial: e.serial.clone(),
                replaced_serial,
            });
        }
        // An emptied generation disappears, so the next rollback undoes this one.
        let gen_dir = self.home().join("backup").join(&gen.stamp);
        let _ = fs::remove_dir(gen_dir.join("issued"));
        let _ = fs::remove_dir(&gen_dir);
        Ok(RolledBack {
            stamp: gen.stamp,
            backup: fresh,
            restored,
            warnings,
        })
    }
}

/// Sort key of a generation: its timestamp, then the `-N` suffix of later ones in the same
/// second.
fn stamp_key(s: &str) -> (String, u32) {
    match s.rsplit_once('-') {
        Some((base, n)) if n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty() => {
            (base.to_string(), n.parse().unwrap_or(u32::MAX))
        }
        _ => (s.to_string(), 1),
    }
}

fn is_repeat(name: &str, all: &[String]) -> bool {
    match name.rsplit_once('.') {
        Some((base, n)) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => {
            all.iter().any(|o| o == base)
        }
        _ => false,
    }
}

fn cert_info(path: &Path) -> (Option<String>, Option<String>) {
    let Ok(ders) = crate::x509::read_certs(path) else {
        return (None, None);
    };
    let Some(der) = ders.first() else {
        return (None, None);
    };
    match X509Certificate::from_der(der) {
        Ok((_, c)) => (
            Some(crate::x509::serial_hex(c.raw_serial())),
            Some(crate::x509::rfc3339(&c.validity().not_after)),
        ),
        Err(_) => (None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_sort_and_repeats() {
        let mut v = vec![
            "20261123T140000Z-10".to_string(),
            "20261123T140000Z-2".into(),
            "20261123T140000Z".into(),
            "20261122T235959Z".into(),
        ];
        v.sort_by_key(|s| stamp_key(s));
        assert_eq!(
            v,
            [
                "20261122T235959Z",
                "20261123T140000Z",
                "20261123T140000Z-2",
                "20261123T140000Z-10"
            ]
        );
        let names = vec!["a".to_string(), "a.2".into(), "b.2".into()];
        assert!(is_repeat("a.2", &names));
        assert!(!is_repeat("b.2", &names));
        assert!(!is_repeat("a", &names));
    }

    fn store(home: &Path) -> Store {
        let init = crate::ca::CaInit {
            name: "Generations CA".into(),
            key: crate::key::KeyAlg::P256,
            days: 30,
            digest: Default::default(),
            constraints: Default::default(),
            token: None,
        };
        Store::init(home, &init, None).unwrap()
    }

    fn issue(store: &Store, name: &str, replace: bool) {
        let signer = store
            .signer("root", &mut || Err(Error::Secret("unencrypted".into())))
            .unwrap();
        let req = crate::ca::IssueRequest {
            name: name.into(),
            names: crate::cert::SubjectNames::new(&[format!("{name}.example.com")], &[]).unwrap(),
            profile: crate::cert::Profile::Server,
            days: 10,
            key: crate::key::KeyAlg::P256,
            replace,
            data_encipherment: false,
        };
        store.issue(&signer, &req).unwrap();
    }

    /// The generation belongs to the run, not to the second the replacement happened in:
    /// a run that crosses a second boundary is one generation, and two runs within one
    /// second are two.
    #[test]
    fn one_generation_per_run_whatever_the_clock_does() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("pki");
        let first = store(&home);
        for n in ["a", "b", "c"] {
            issue(&first, n, false);
        }
        let run = Store::open(&home).unwrap();
        issue(&run, "a", true);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        issue(&run, "b", true);
        let gens = run.backup_generations().unwrap();
        assert_eq!(gens.len(), 1, "{gens:?}");
        assert_eq!(gens[0].entries.len(), 2, "{gens:?}");

        // The next run, started at once, keeps its own generation.
        let next = Store::open(&home).unwrap();
        issue(&next, "c", true);
        let gens = next.backup_generations().unwrap();
        assert_eq!(gens.len(), 2, "{gens:?}");
        assert_eq!(gens[1].entries.len(), 1, "{gens:?}");
        assert_eq!(gens[1].entries[0].name, "c");

        // A rollback run puts back the newest generation and keeps what it replaced in a
        // generation of its own.
        let undo = Store::open(&home).unwrap();
        let done = undo.rollback(None).unwrap();
        assert_eq!(done.stamp, gens[1].stamp);
        assert_ne!(done.backup, home.join("backup").join(&gens[0].stamp));
        let gens = undo.backup_generations().unwrap();
        assert_eq!(gens.len(), 2, "{gens:?}");
        assert_eq!(gens[1].entries[0].name, "c");
    }
}
