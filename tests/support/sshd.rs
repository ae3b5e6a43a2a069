//! OpenSSH servers on loopback ports, standing for remote hosts: `cluster apply --deploy`
//! and the exported Ansible playbooks reach them through an `ssh_config` with one host
//! alias per member host.
//!
//! ```ignore
//! let sshd = Sshd::start_many(&dir, 3, &["node-a", "node-b", "node-c"]);
//! certmesh().env("CERTMESH_SSH", sshd.ssh_command());
//! ```
//!
//! Every instance shares one host key and one client key (in `dir`); aliases are spread
//! over the instances in turn. Dropping the `Sshd` stops them all.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::nginx::free_port;

pub struct Sshd {
    children: Vec<Child>,
    dir: PathBuf,
    ports: Vec<u16>,
}

impl Sshd {
    /// Starts sshd on 127.0.0.1 and writes `ssh_config` with a host alias per name in
    /// `hosts`, all pointing at it.
    pub fn start(dir: &Path, hosts: &[&str]) -> Sshd {
        Self::start_many(dir, 1, hosts)
    }

    /// Starts `instances` sshd processes, each on its own loopback port; alias `i` of
    /// `hosts` reaches instance `i % instances`.
    pub fn start_many(dir: &Path, instances: usize, hosts: &[&str]) -> Sshd {
        let keygen = |path: &Path| {
            let o = Command::new("ssh-keygen")
                .args(["-q", "-t", "ed25519", "-N", "", "-f"])
                .arg(path)
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        };
        keygen(&dir.join("host_key"));
        keygen(&dir.join("client_key"));
        fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys")).unwrap();
        fs::create_dir_all("/run/sshd").unwrap();
        let host_pub = fs::read_to_string(dir.join("host_key.pub")).unwrap();
        let d = dir.display();
        let mut sshd = Sshd {
            children: Vec::new(),
            dir: dir.to_path_buf(),
            ports: Vec::new(),
        };
        let mut known = String::new();
        for i in 0..instances.max(1) {
            let port = free_port();
            // sftp for Ansible's file transfers; room for a fleet's parallel logins.
            fs::write(
                dir.join(format!("sshd_config.{i}")),
                format!(
                    "Port {port}\nListenAddress 127.0.0.1\nHostKey {d}/host_key\nPidFile {d}/sshd.{i}.pid\nAuthorizedKeysFile {d}/authorized_keys\nStrictModes no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nPermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\nMaxStartups 200\nMaxSessions 100\n"
                ),
            )
            .unwrap();
            known.push_str(&format!("[127.0.0.1]:{port} {host_pub}"));
            let log = dir.join(format!("sshd.{i}.log"));
            let child = Command::new("/usr/sbin/sshd")
                .args(["-D", "-e", "-f"])
                .arg(dir.join(format!("sshd_config.{i}")))
                .stdout(Stdio::null())
                .stderr(fs::File::create(&log).unwrap())
                .spawn()
                .expect("start sshd (scripts/test installs openssh-server)");
            sshd.children.push(child);
            sshd.ports.push(port);
            let start = Instant::now();
            while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "sshd did not start: {}",
                    fs::read_to_string(&log).unwrap_or_default()
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        fs::write(dir.join("known_hosts"), known).unwrap();
        let mut cfg = String::new();
        for (i, h) in hosts.iter().enumerate() {
            let port = sshd.ports[i % sshd.ports.len()];
            cfg.push_str(&format!(
                "Host {h}\n  HostName 127.0.0.1\n  Port {port}\n  User root\n  IdentityFile {d}/client_key\n  IdentitiesOnly yes\n  UserKnownHostsFile {d}/known_hosts\n  HostKeyAlias [127.0.0.1]:{port}\n  StrictHostKeyChecking yes\n"
            ));
        }
        fs::write(dir.join("ssh_config"), cfg).unwrap();
        sshd
    }

    /// The `ssh_config` with the host aliases.
    pub fn ssh_config(&self) -> PathBuf {
        self.dir.join("ssh_config")
    }

    /// `CERTMESH_SSH` for reaching the aliases.
    pub fn ssh_command(&self) -> String {
        format!("ssh -F {}", self.ssh_config().display())
    }

    /// The loopback ports, one per instance.
    pub fn ports(&self) -> &[u16] {
        &self.ports
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
