//! `certmesh verify CERT`

use std::net::IpAddr;
use std::path::PathBuf;

use clap::{Args, ValueEnum};

use certmesh::inspect::verify::{parse_time, verify, Host, Options, Purpose};
use certmesh::{Error, Result};

use super::Context;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  certmesh verify server.pem --chain chain.pem --ca root.pem --host www.example.com
  certmesh verify client.pem --ca root.pem --purpose client --at 2030-01-01T00:00:00Z

Exit status: 0 when the certificate verifies, 1 otherwise (with the first failure).")]
pub struct VerifyArgs {
    /// The certificate to verify (PEM or DER; the first certificate of a PEM file, the
    /// rest are used as intermediates).
    pub cert: PathBuf,
    /// Untrusted intermediate certificates, in any order (PEM bundle).
    #[arg(long, value_name = "FILE")]
    pub chain: Vec<PathBuf>,
    /// Trusted CA certificates (PEM bundle or DER).
    #[arg(long, value_name = "FILE", required_unless_present = "truststore")]
    pub ca: Vec<PathBuf>,
    /// Trust store to use instead of --ca: PEM bundle, DER, or PKCS#12 (every
    /// certificate in it is trusted; its password from --storepass).
    #[arg(long, value_name = "FILE", conflicts_with = "ca")]
    pub truststore: Option<PathBuf>,
    /// Password of a PKCS#12 --truststore (env:VAR, file:PATH, fd:N, stdin, pass:TEXT).
    #[arg(long, value_name = "SPEC", requires = "truststore")]
    pub storepass: Option<String>,
    /// Host name the client connects to (matched against DNS subjectAltNames).
    #[arg(long, value_name = "NAME", conflicts_with = "ip")]
    pub host: Option<String>,
    /// IP address the client connects to (matched against IP subjectAltNames).
    #[arg(long, value_name = "ADDR")]
    pub ip: Option<IpAddr>,
    /// What the certificate is used for (checked against extendedKeyUsage).
    #[arg(long, value_enum)]
    pub purpose: Option<PurposeArg>,
    /// Judge validity at this time: RFC 3339 or Unix seconds (default: now).
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Print JSON ({ok, error, path}).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PurposeArg {
    Server,
    Client,
}

pub fn run(ctx: &Context, a: VerifyArgs) -> Result<i32> {
    let at = match &a.at {
        Some(t) => parse_time(t).ok_or_else(|| {
            Error::Usage(format!(
                "invalid --at '{t}': expected RFC 3339 (2030-01-01T00:00:00Z) or Unix seconds"
            ))
        })?,
        None => ::time::OffsetDateTime::now_utc().unix_timestamp(),
    };
    let mut leaf_file = certmesh::x509::read_certs(&a.cert)?;
    let leaf = leaf_file.remove(0);
    let mut untrusted = leaf_file;
    for f in &a.chain {
        untrusted.extend(certmesh::x509::read_certs(f)?);
    }
    let mut anchors = Vec::new();
    for f in &a.ca {
        anchors.extend(certmesh::x509::read_certs(f)?);
    }
    if let Some(ts) = &a.truststore {
        anchors.extend(truststore(ts, a.storepass.as_deref())?);
    }
    let opts = Options {
        at,
        host: match (&a.host, a.ip) {
            (Some(h), _) => Some(Host::Dns(h.clone())),
            (None, Some(ip)) => Some(Host::Ip(ip)),
            (None, None) => None,
        },
        purpose: a.purpose.map(|p| match p {
            PurposeArg::Server => Purpose::Server,
            PurposeArg::Client => Purpose::Client,
        }),
    };
    let v = verify(&leaf, &untrusted, &anchors, &opts);
    if a.json {
        super::print_json(&v);
        return Ok(if v.ok { 0 } else { 1 });
    }
    match &v.error {
        None => {
            ctx.say(format!(
                "{}: OK ({})",
                a.cert.display(),
                v.path.join(" <- ")
            ));
            Ok(0)
        }
        Some(e) => Err(Error::bad_file(&a.cert, e.clone())),
    }
}

/// The certificates of a trust store: PKCS#12 (opened with `storepass`), else PEM or DER.
pub(super) fn truststore(path: &std::path::Path, storepass: Option<&str>) -> Result<Vec<Vec<u8>>> {
    let data = certmesh::fsio::read(path)?;
    if data.starts_with(&[0xFE, 0xED, 0xFE, 0xED]) || data.starts_with(&[0xCE, 0xCE, 0xCE, 0xCE]) {
        return Err(Error::bad_file(
            path,
            "Java keystores (JKS/JCEKS) are not read here yet; give a PKCS#12 or PEM trust store",
        ));
    }
    if !certmesh::keystore::pkcs12::looks_like_pkcs12(&data) {
        return certmesh::x509::parse_certs(path, &data);
    }
    let pass = super::secret::obtain(storepass, "truststore password", "--storepass", false)?;
    let certs = certmesh::keystore::pkcs12::decode(path, &data, &pass)?.certificates();
    if certs.is_empty() {
        return Err(Error::bad_file(path, "holds no certificate"));
    }
    Ok(certs)
}
