//! Members taken from an Ansible inventory: `[ansible]` in the manifest.
//!
//! Fleets that already run Ansible keep their host list there; certmesh reads the JSON
//! that `ansible-inventory --list` prints (from a file, or by running the command) rather
//! than parsing INI/YAML inventories and their plugins itself. Each host of a named group
//! becomes a member named after its `inventory_hostname`, with the group's profile, and
//! with DNS names and IP addresses taken from the host variables the manifest names.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Deserialize;
use serde_json::Value;
use toml::Spanned;

use super::member::Member;
use crate::{Error, Result};

/// The variable that stands for the host's name in the inventory, as in Ansible.
pub const INVENTORY_HOSTNAME: &str = "inventory_hostname";

/// `[ansible]`: where the inventory comes from and how hosts become members.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnsibleSection {
    /// A file holding `ansible-inventory --list` output, relative to the manifest.
    pub inventory: Option<PathBuf>,
    /// Or the command that prints it, run without a shell in the manifest's directory,
    /// e.g. `["ansible-inventory", "-i", "hosts.ini", "--list"]`.
    pub inventory_command: Option<Vec<String>>,
    /// Host variables holding DNS names (a string or a list of strings).
    #[serde(default = "default_dns")]
    pub dns: Vec<String>,
    /// Host variables holding IP addresses.
    #[serde(default)]
    pub ip: Vec<String>,
    /// Remote directory of each member's files (`{member}` is the member's name), for
    /// members delivered to inventory hosts (`cluster export ansible`).
    pub dir: Option<String>,
    /// `user[:group]` owning the delivered files.
    pub owner: Option<String>,
    /// Groups whose hosts become members.
    #[serde(rename = "group", default)]
    pub groups: Vec<InventoryGroup>,
}

fn default_dns() -> Vec<String> {
    vec![INVENTORY_HOSTNAME.into()]
}

/// `[[ansible.group]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InventoryGroup {
    pub name: Spanned<String>,
    /// Product profile of the group's members (default: `[defaults] profile`).
    pub profile: Option<String>,
}

impl AnsibleSection {
    /// The destination directory of `member` on its host, when `dir` is set.
    pub fn dir_for(&self, member: &str) -> Option<String> {
        self.dir.as_ref().map(|d| d.replace("{member}", member))
    }

    /// Reads the inventory and returns one member per host of the named groups. `base`
    /// is the manifest's directory, `manifest` its path (for messages).
    pub fn members(&self, base: &Path, manifest: &Path) -> Result<Vec<Member>> {
        if self.groups.is_empty() {
            return Ok(Vec::new());
        }
        let (origin, json) = self.read(base, manifest)?;
        let inv: Value = serde_json::from_slice(&json).map_err(|e| {
            Error::bad_file(&origin, format!("not ansible-inventory --list JSON: {e}"))
        })?;
        let hostvars = inv
            .pointer("/_meta/hostvars")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        let mut taken: BTreeMap<String, String> = BTreeMap::new();
        let mut out = Vec::new();
        for g in &self.groups {
            let group = g.name.get_ref();
            if inv.get(group).is_none() {
                return Err(Error::bad_file(
                    &origin,
                    format!(
                        "the inventory has no group '{group}' (named in [ansible] of {})",
                        manifest.display()
                    ),
                ));
            }
            for host in group_hosts(&inv, group) {
                if let Some(other) = taken.insert(host.clone(), group.clone()) {
                    return Err(Error::bad_file(
                        &origin,
                        format!("host '{host}' is in groups '{other}' and '{group}': each host is one member"),
                    ));
                }
                let vars = hostvars.get(&host).cloned().unwrap_or(Value::Null);
                out.push(self.member(&origin, g, &host, &vars)?);
            }
        }
        Ok(out)
    }

    /// The inventory JSON and a name for it in messages.
    fn read(&self, base: &Path, manifest: &Path) -> Result<(PathBuf, Vec<u8>)> {
        match (&self.inventory, &self.inventory_command) {
            (Some(file), None) => {
                let path = if file.is_absolute() {
                    file.clone()
                } else {
                    base.join(file)
                };
                let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
                Ok((path, bytes))
            }
            (None, Some(argv)) if !argv.is_empty() => {
                let origin = PathBuf::from(argv.join(" "));
                let out = Command::new(&argv[0])
                    .args(&argv[1..])
                    .current_dir(if base.as_os_str().is_empty() {
                        Path::new(".")
                    } else {
                        base
                    })
                    .stdin(Stdio::null())
                    .output()
                    .map_err(|e| Error::bad_file(&origin, format!("cannot run: {e}")))?;
                if !out.status.success() {
                    let err = String::from_utf8_lossy(&out.stderr);
                    let last = err.lines().rev().find(|l| !l.trim().is_empty());
                    return Err(Error::bad_file(
                        &origin,
                        format!(
                            "exited with {}{}",
                            out.status.code().unwrap_or(-1),
                            last.map(|l| format!(": {}", l.trim())).unwrap_or_default()
                        ),
                    ));
                }
                Ok((origin, out.stdout))
            }
            _ => Err(Error::bad_file(
                manifest,
                "[ansible] needs exactly one of inventory (a file) and inventory_command",
            )),
        }
    }

    /// The member for `host` of group `g`.
    fn member(
        &self,
        origin: &Path,
        g: &InventoryGroup,
        host: &str,
        vars: &Value,
    ) -> Result<Member> {
        let mut dns: Vec<String> = Vec::new();
        let mut ip: Vec<IpAddr> = Vec::new();
        for var in &self.dns {
            for v in values(origin, host, var, vars)? {
                if v.parse::<IpAddr>().is_ok() {
                    return Err(Error::bad_file(
                        origin,
                        format!("host '{host}': variable '{var}' is the IP address {v}: list it under [ansible] ip, not dns"),
                    ));
                }
                if !dns.contains(&v) {
                    dns.push(v);
                }
            }
        }
        for var in &self.ip {
            for v in values(origin, host, var, vars)? {
                let addr = v.parse::<IpAddr>().map_err(|_| {
                    Error::bad_file(
                        origin,
                        format!("host '{host}': variable '{var}' = '{v}' is not an IP address"),
                    )
                })?;
                if !ip.contains(&addr) {
                    ip.push(addr);
                }
            }
        }
        // Built as TOML and read back, so every member field keeps its declared default.
        let mut t = toml::Table::new();
        t.insert("name".into(), host.into());
        t.insert(
            "dns".into(),
            toml::Value::Array(dns.into_iter().map(Into::into).collect()),
        );
        t.insert(
            "ip".into(),
            toml::Value::Array(ip.iter().map(|a| a.to_string().into()).collect()),
        );
        if let Some(p) = &g.profile {
            t.insert("profile".into(), p.clone().into());
        }
        t.insert("inventory_host".into(), host.into());
        let text = toml::to_string(&t).map_err(|e| Error::bad_file(origin, e.to_string()))?;
        let mut m: Member = toml::from_str(&text)
            .map_err(|e| Error::bad_file(origin, format!("host '{host}': {}", e.message())))?;
        // Messages about the member point at the group that brought it in.
        m.name = Spanned::new(g.name.span(), host.to_string());
        if let Some(p) = m.profile.take() {
            m.profile = Some(Spanned::new(g.name.span(), p.into_inner()));
        }
        Ok(m)
    }
}

/// Hosts of `group` and of its child groups, in inventory order, each once.
fn group_hosts(inv: &Value, group: &str) -> Vec<String> {
    fn walk(inv: &Value, group: &str, seen: &mut Vec<String>, out: &mut Vec<String>) {
        if seen.iter().any(|g| g == group) {
            return;
        }
        seen.push(group.to_string());
        let Some(g) = inv.get(group) else { return };
        for h in g
            .get("hosts")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(h) = h.as_str() {
                if !out.iter().any(|o| o == h) {
                    out.push(h.to_string());
                }
            }
        }
        for c in g
            .get("children")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(c) = c.as_str() {
                walk(inv, c, seen, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(inv, group, &mut Vec::new(), &mut out);
    out
}

/// The strings a host variable holds (`inventory_hostname` is the host's name).
fn values(origin: &Path, host: &str, var: &str, vars: &Value) -> Result<Vec<String>> {
    if var == INVENTORY_HOSTNAME {
        return Ok(vec![host.to_string()]);
    }
    let bad =
        |what: &str| Error::bad_file(origin, format!("host '{host}': variable '{var}' {what}"));
    match vars.get(var) {
        None | Some(Value::Null) => Err(bad("is missing")),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(vec![s.trim().to_string()]),
        Some(Value::Array(a)) if !a.is_empty() => a
            .iter()
            .map(|v| match v {
                Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
                _ => Err(bad("must hold strings")),
            })
            .collect(),
        Some(_) => Err(bad("must be a non-empty string or list of strings")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INV: &str = r#"{
      "_meta": {"hostvars": {
        "web1": {"ansible_host": "10.0.0.1", "certmesh_dns": ["web1.example.com", "www.example.com"]},
        "web2": {"ansible_host": "10.0.0.2", "certmesh_dns": "web2.example.com"},
        "app1": {"ansible_host": "10.0.1.1"}
      }},
      "all": {"children": ["ungrouped", "web", "app"]},
      "web": {"children": ["web_eu"], "hosts": ["web1"]},
      "web_eu": {"hosts": ["web2"]},
      "app": {"hosts": ["app1"]}
    }"#;

    fn section(extra: &str) -> AnsibleSection {
        toml::from_str(&format!(
            "inventory = 'inv.json'\n{extra}\n[[group]]\nname = 'web'\nprofile = 'nginx'\n"
        ))
        .unwrap()
    }

    fn members(s: &AnsibleSection) -> Result<Vec<Member>> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("inv.json"), INV).unwrap();
        s.members(dir.path(), Path::new("cluster.toml"))
    }

    #[test]
    fn hosts_of_a_group_and_its_children_become_members() {
        let s = section("dns = ['inventory_hostname', 'certmesh_dns']\nip = ['ansible_host']");
        let m = members(&s).unwrap();
        let names: Vec<&str> = m.iter().map(|m| m.name.get_ref().as_str()).collect();
        assert_eq!(names, ["web1", "web2"]);
        assert_eq!(m[0].dns, ["web1", "web1.example.com", "www.example.com"]);
        assert_eq!(m[1].ip, ["10.0.0.2".parse::<IpAddr>().unwrap()]);
        assert_eq!(m[0].profile.as_ref().unwrap().get_ref(), "nginx");
    }

    #[test]
    fn errors_name_the_host_and_the_variable() {
        let mut s = section("dns = ['certmesh_dns']");
        s.groups[0].name = Spanned::new(0..0, "app".into());
        let e = members(&s).unwrap_err().to_string();
        assert!(
            e.ends_with("inv.json: host 'app1': variable 'certmesh_dns' is missing"),
            "{e}"
        );
        let s = section("dns = ['ansible_host']");
        let e = members(&s).unwrap_err().to_string();
        assert!(
            e.contains("host 'web1': variable 'ansible_host' is the IP address 10.0.0.1"),
            "{e}"
        );
        let s = section("ip = ['certmesh_dns']");
        let e = members(&s).unwrap_err().to_string();
        assert!(
            e.contains("host 'web1': variable 'certmesh_dns' = 'web1.example.com' is not an IP"),
            "{e}"
        );
        let mut s = section("");
        s.groups[0].name = Spanned::new(0..0, "db".into());
        let e = members(&s).unwrap_err().to_string();
        assert!(e.contains("no group 'db'"), "{e}");
    }
}
