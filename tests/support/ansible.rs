//! Running the exported Ansible project with ansible-core from the test venv (installed
//! by scripts/test) against the loopback sshd hosts of [`super::sshd::Sshd`].

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use super::pkilint::venv_bin;
use super::sshd::Sshd;
use super::{run, Run};

/// `ansible-playbook site.yml ARGS...` run in the export directory `project` (so its
/// ansible.cfg applies), reaching the hosts through `sshd`'s ssh_config.
pub fn playbook(project: &Path, sshd: &Sshd, args: &[&str]) -> Run {
    let mut cmd = Command::new(venv_bin("ansible-playbook"));
    cmd.current_dir(project)
        .arg("site.yml")
        .args(args)
        .env(
            "ANSIBLE_SSH_ARGS",
            format!(
                "-F {} -o ControlMaster=auto -o ControlPersist=5s",
                sshd.ssh_config().display()
            ),
        )
        .env("ANSIBLE_PYTHON_INTERPRETER", "/usr/bin/python3")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_RETRY_FILES_ENABLED", "0")
        .env_remove("ANSIBLE_CONFIG");
    run(&mut cmd)
}

/// The `changed=` count of each host in the PLAY RECAP; panics without a recap.
#[track_caller]
pub fn recap_changed(r: &Run) -> BTreeMap<String, u32> {
    let at = r
        .stdout
        .find("PLAY RECAP")
        .unwrap_or_else(|| panic!("no PLAY RECAP: {r:?}"));
    let mut out = BTreeMap::new();
    for line in r.stdout[at..].lines().skip(1) {
        let Some((host, counts)) = line.split_once(" : ") else {
            continue;
        };
        let changed = counts
            .split_whitespace()
            .find_map(|c| c.strip_prefix("changed="))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("recap line without changed=: {line}"));
        out.insert(host.trim().to_string(), changed);
    }
    assert!(!out.is_empty(), "empty PLAY RECAP: {r:?}");
    out
}
