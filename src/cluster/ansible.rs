//! `cluster export ansible`: an Ansible project that delivers an applied cluster.
//!
//! certmesh stays the CA and the source of truth for what each member holds; Ansible moves
//! the files and reloads, with the inventory, privilege escalation, forks, check mode and
//! handlers operators of large fleets already use. The export is an inventory (one host
//! per destination, each with the list of its members' files), a playbook and the
//! `certmesh` role shipped in `ansible/` (compiled in, so an installed binary exports it).
//! Files are referenced in the output directory rather than copied, so keys are not
//! duplicated and a playbook run after `renew --cluster` delivers the renewed files
//! without a new export.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{json, Value};

use super::apply::{open_stores, resolve_profiles};
use super::manifest::{Manifest, Member, TrustModel};
use super::profile::{Content, Profiles};
use crate::fsio::{self, Overwrite};
use crate::{Error, Result};

/// The role, as shipped in `ansible/roles/certmesh/`.
const ROLE: &[(&str, &str)] = &[
    (
        "defaults/main.yml",
        include_str!("../../ansible/roles/certmesh/defaults/main.yml"),
    ),
    (
        "tasks/main.yml",
        include_str!("../../ansible/roles/certmesh/tasks/main.yml"),
    ),
    (
        "handlers/main.yml",
        include_str!("../../ansible/roles/certmesh/handlers/main.yml"),
    ),
    (
        "meta/main.yml",
        include_str!("../../ansible/roles/certmesh/meta/main.yml"),
    ),
];

/// One host of the export.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ExportHost {
    /// The host's name in the inventory.
    pub host: String,
    /// True when the host is defined by the export (from `[member.deploy]`); false when
    /// it belongs to an existing inventory the playbook is run with.
    pub defined: bool,
    pub members: Vec<String>,
}

/// What `export` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ExportReport {
    pub cluster: String,
    /// The export directory.
    pub dir: String,
    /// The inventory group the playbook runs on.
    pub group: String,
    pub hosts: Vec<ExportHost>,
    /// Members with nowhere to go (no `deploy`, no `inventory_host`), by name.
    pub not_delivered: Vec<String>,
}

/// Export settings.
pub struct ExportOptions<'a> {
    /// Where the project is written.
    pub to: &'a Path,
    /// The certmesh binary the playbook runs on the controller for probes.
    pub certmesh_bin: Option<&'a Path>,
}

/// Writes the Ansible project for `manifest` applied into `out`.
pub fn export(
    manifest: &Manifest,
    profiles: &Profiles,
    out: &Path,
    opts: &ExportOptions<'_>,
) -> Result<ExportReport> {
    let products = resolve_profiles(manifest, profiles)?;
    let out = std::fs::canonicalize(out).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => {
            Error::bad_file(out, "no such directory: run `certmesh cluster apply` first")
        }
        _ => Error::io(out, e),
    })?;
    let stores = open_stores(manifest, &out)?;
    let group = group_name(&manifest.name);

    // Host name -> (connection vars, members' entries, files).
    let mut hosts: BTreeMap<String, HostEntry> = BTreeMap::new();
    let mut not_delivered = Vec::new();
    let names = host_names(manifest);
    for m in &manifest.members {
        let name = m.name.get_ref();
        let Some(target) = target_of(manifest, m, &names) else {
            not_delivered.push(name.clone());
            continue;
        };
        let product = products[name.as_str()];
        let member_dir = out.join(name);
        let store = match manifest.trust {
            TrustModel::SharedCa => stores["cluster"].as_ref(),
            TrustModel::Mesh => stores[name.as_str()].as_ref(),
        };
        let issued = match store {
            Some(s) => Some(s.issued(name)?),
            None => None,
        };
        let Some(issued) = issued.filter(|e| e.exists() && member_dir.is_dir()) else {
            return Err(manifest.member_error(
                m,
                format!(
                    "member '{name}' has no files in {}: run `certmesh cluster apply` first",
                    out.display()
                ),
            ));
        };
        let entry = hosts
            .entry(target.host.clone())
            .or_insert_with(|| HostEntry {
                vars: target.vars.clone(),
                members: Vec::new(),
                files: Vec::new(),
            });
        if entry.vars != target.vars {
            return Err(manifest.member_error(
                m,
                format!(
                    "member '{name}' reaches host '{}' with another port or user than a member before it",
                    target.host
                ),
            ));
        }
        let (owner, group) = match &target.owner {
            Some(o) => match o.split_once(':') {
                Some((u, g)) => (Some(u.to_string()), Some(g.to_string())),
                None => (Some(o.clone()), None),
            },
            None => (None, None),
        };
        for f in &product.files {
            let mut file = json!({
                "member": name,
                "src": member_dir.join(&f.path).display().to_string(),
                "dest": format!("{}/{}", target.dir.trim_end_matches('/'), f.path),
                "mode": format!("{:04o}", f.mode()?),
                "secret": f.content.is_secret(),
                // Written once the CA has a CRL: skipped until then.
                "optional": f.content == Content::Crl,
            });
            if let Some(o) = &owner {
                file["owner"] = o.clone().into();
            }
            if let Some(g) = &group {
                file["group"] = g.clone().into();
            }
            entry.files.push(file);
        }
        let reload = target
            .reload
            .clone()
            .or_else(|| product.reload.clone())
            .unwrap_or_default();
        let probe_name = m
            .dns
            .first()
            .cloned()
            .or_else(|| m.ip.first().map(|a| a.to_string()))
            .unwrap_or_default();
        let probe: Vec<String> = super::served::endpoints(m, product)
            .iter()
            .map(ToString::to_string)
            .collect();
        entry.members.push(json!({
            "name": name,
            "profile": product.name,
            "reload": reload,
            // The endpoints `cluster apply --deploy` probes (the member's `probe` list, else
            // its first name on the profile's probe_port); certmesh_probe[name] overrides.
            "probe": format!(
                "{{{{ certmesh_probe['{name}'] | default({}) }}}}",
                serde_json::to_string(&probe).expect("strings serialize")
            ),
            "probe_name": probe_name,
            "ca": issued.chain_path().display().to_string(),
        }));
    }

    let mut report_hosts = Vec::new();
    let mut inv_hosts = serde_json::Map::new();
    for (host, e) in hosts {
        report_hosts.push(ExportHost {
            host: host.clone(),
            defined: !e.vars.is_empty(),
            members: e
                .members
                .iter()
                .filter_map(|m| m["name"].as_str().map(String::from))
                .collect(),
        });
        let mut vars = e.vars;
        vars.insert("certmesh_members".into(), Value::Array(e.members));
        vars.insert("certmesh_files".into(), Value::Array(e.files));
        inv_hosts.insert(host, Value::Object(vars));
    }
    let mut group_vars = serde_json::Map::new();
    group_vars.insert("certmesh_cluster".into(), manifest.name.clone().into());
    if let Some(bin) = opts.certmesh_bin {
        group_vars.insert("certmesh_bin".into(), bin.display().to_string().into());
    }
    let mut children = serde_json::Map::new();
    children.insert(
        group.clone(),
        json!({"hosts": inv_hosts, "vars": group_vars}),
    );
    let inventory = json!({"all": {"children": children}});

    write_project(manifest, opts.to, &group, &inventory)?;
    Ok(ExportReport {
        cluster: manifest.name.clone(),
        dir: opts.to.display().to_string(),
        group,
        hosts: report_hosts,
        not_delivered,
    })
}

struct HostEntry {
    /// Connection variables (empty for hosts of an existing inventory).
    vars: serde_json::Map<String, Value>,
    members: Vec<Value>,
    files: Vec<Value>,
}

/// Where a member's files go.
struct Target {
    host: String,
    vars: serde_json::Map<String, Value>,
    dir: String,
    owner: Option<String>,
    reload: Option<String>,
}

/// The member's destination: an existing inventory host (`inventory_host`), or the host
/// its `deploy` section names; `None` when it has neither.
fn target_of(
    manifest: &Manifest,
    m: &Member,
    names: &BTreeMap<(String, Option<u16>, Option<String>), String>,
) -> Option<Target> {
    let name = m.name.get_ref();
    let section = manifest.ansible.as_ref();
    let d = m.deploy.as_ref();
    let dir = d
        .map(|d| d.dir.clone())
        .or_else(|| section.and_then(|a| a.dir_for(name)))?;
    let owner = d
        .and_then(|d| d.owner.clone())
        .or_else(|| section.and_then(|a| a.owner.clone()));
    let reload = d.and_then(|d| d.reload.clone());
    if let Some(h) = &m.inventory_host {
        return Some(Target {
            host: h.clone(),
            vars: serde_json::Map::new(),
            dir,
            owner,
            reload,
        });
    }
    let d = d?;
    let mut vars = serde_json::Map::new();
    vars.insert("ansible_host".into(), d.host.clone().into());
    if let Some(p) = d.port {
        vars.insert("ansible_port".into(), p.into());
    }
    if let Some(u) = &d.user {
        vars.insert("ansible_user".into(), u.clone().into());
    }
    Some(Target {
        host: names[&(d.host.clone(), d.port, d.user.clone())].clone(),
        vars,
        dir,
        owner,
        reload,
    })
}

/// Inventory names for the hosts `deploy` sections reach: the host itself, or with the
/// port and user appended where one host is reached in more than one way.
fn host_names(manifest: &Manifest) -> BTreeMap<(String, Option<u16>, Option<String>), String> {
    let keys: Vec<(String, Option<u16>, Option<String>)> = manifest
        .members
        .iter()
        .filter_map(|m| m.deploy.as_ref())
        .map(|d| (d.host.clone(), d.port, d.user.clone()))
        .collect();
    let mut out = BTreeMap::new();
    for k in &keys {
        let shared = keys.iter().any(|o| o.0 == k.0 && o != k);
        let mut name = k.0.clone();
        if shared {
            if let Some(p) = k.1 {
                name.push_str(&format!("_{p}"));
            }
            if let Some(u) = &k.2 {
                name.push_str(&format!("_{u}"));
            }
        }
        out.insert(k.clone(), name);
    }
    out
}

/// The inventory group of a cluster: `certmesh_` and its name in letters, digits and `_`.
pub fn group_name(cluster: &str) -> String {
    let mut g = String::from("certmesh_");
    g.extend(cluster.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_lowercase()
        } else {
            '_'
        }
    }));
    g
}

fn write_project(manifest: &Manifest, to: &Path, group: &str, inventory: &Value) -> Result<()> {
    let header = format!(
        "# Cluster {} ({}), written by `certmesh cluster export ansible`: regenerate it rather\n# than editing it.\n",
        manifest.name,
        manifest.path.display()
    );
    let q = |s: &str| serde_json::to_string(s).expect("a string serializes");
    let mut files: Vec<(PathBuf, String)> = vec![
        (
            "inventory.yml".into(),
            // JSON is YAML: the structure stays exact whatever the names hold.
            format!(
                "{header}{}\n",
                serde_json::to_string_pretty(inventory).expect("inventory serializes")
            ),
        ),
        (
            "site.yml".into(),
            format!(
                "---\n{header}- name: {}\n  hosts: {}\n  gather_facts: false\n  roles:\n    - certmesh\n",
                q(&format!("certmesh cluster {}", manifest.name)),
                q(group)
            ),
        ),
        (
            "ansible.cfg".into(),
            "[defaults]\ninventory = inventory.yml\nroles_path = roles\n\n[ssh_connection]\npipelining = True\n".into(),
        ),
    ];
    for (rel, text) in ROLE {
        files.push((Path::new("roles/certmesh").join(rel), text.to_string()));
    }
    for (rel, text) in files {
        let path = to.join(&rel);
        fsio::create_dir(fsio::parent_dir(&path), 0o755)?;
        fsio::write_file(&path, text.as_bytes(), fsio::PUBLIC, Overwrite::Replace)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_names_are_identifiers() {
        assert_eq!(group_name("Web-Tier 1"), "certmesh_web_tier_1");
    }
}
