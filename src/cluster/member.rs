//! A `[[member]]` of `cluster.toml` and its `[member.deploy]`, as the manifest and an
//! Ansible inventory both describe them: the manifest reads members from its own text,
//! and `cluster::ansible_inventory` makes them from an inventory's hosts, so the type
//! sits below both.

use std::net::IpAddr;
use std::path::PathBuf;

use serde::Deserialize;
use toml::Spanned;

/// `[member.deploy]`: where a member's files go.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Deploy {
    pub host: String,
    pub user: Option<String>,
    pub port: Option<u16>,
    /// Remote directory the member's files are written into.
    pub dir: String,
    /// `user[:group]` to own the files on the remote side.
    pub owner: Option<String>,
    /// Command run on the remote side after the files changed (overrides the profile's).
    pub reload: Option<String>,
    /// Write into `dir` even when it, or a directory above it, is writable by other users
    /// (without the sticky bit) or owned by another user.
    #[serde(default)]
    pub allow_shared_dir: bool,
}

/// `[[member]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub name: Spanned<String>,
    #[serde(default)]
    pub dns: Vec<String>,
    #[serde(default)]
    pub ip: Vec<IpAddr>,
    pub profile: Option<Spanned<String>>,
    pub cert_profile: Option<String>,
    pub key: Option<String>,
    pub days: Option<u32>,
    pub renew_before: Option<String>,
    /// Passphrase source for the member's keystores; generated when absent.
    pub password: Option<String>,
    /// A truststore the product ships (WSO2's client-truststore.jks) to merge into.
    pub base_truststore: Option<PathBuf>,
    /// Its password (`env:`/`file:`); default: the member's keystore password.
    pub base_truststore_pass: Option<String>,
    pub deploy: Option<Deploy>,
    /// TLS endpoints (`host:port`) serving the member's certificate; default: its first
    /// DNS name (else IP) on the profile's `probe_port`.
    pub probe: Option<Vec<String>>,
    /// The member's host in an existing Ansible inventory: `cluster export ansible`
    /// delivers to that host instead of defining one from `deploy`.
    pub inventory_host: Option<String>,
}
