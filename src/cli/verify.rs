//! `certmesh verify CERT`

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use certmesh::verify::{parse_crls, parse_time, verify, Host, Options, Purpose};
use certmesh::{Error, Result};

use super::Context;

#[derive(Debug, Args)]
#[command(after_help = "Examples:
  certmesh verify server.pem --chain chain.pem --ca root.pem --host www.example.com
  certmesh verify client.pem --ca root.pem --purpose client --at 2030-01-01T00:00:00Z
  certmesh verify server.pem --truststore client-truststore.jks --storepass env:PASS --crl ca.crl

Exit status: 0 when the certificate verifies, 1 otherwise (with the first failure).")]
pub struct VerifyArgs {
    /// The certificate to verify (PEM or DER; the first certificate of a PEM file, the
    /// rest are used as intermediates).
    pub cert: PathBuf,
    /// Untrusted intermediate certificates, in any order (PEM bundle; may be empty).
    #[arg(long, value_name = "FILE")]
    pub chain: Vec<PathBuf>,
    /// Trusted CA certificates (PEM bundle or DER).
    #[arg(long, value_name = "FILE", required_unless_present = "truststore")]
    pub ca: Vec<PathBuf>,
    /// Trust store to use instead of --ca: PEM bundle, DER, PKCS#12, JKS or JCEKS (every
    /// certificate in it is trusted; its password from --storepass).
    #[arg(long, value_name = "FILE", conflicts_with = "ca")]
    pub truststore: Option<PathBuf>,
    /// Password of a PKCS#12, JKS or JCEKS --truststore (env:VAR, file:PATH, fd:N,
    /// stdin, pass:TEXT).
    #[arg(long, value_name = "SPEC", requires = "truststore")]
    pub storepass: Option<String>,
    /// Host name the client connects to (matched against DNS subjectAltNames).
    #[arg(long, value_name = "NAME", conflicts_with = "ip")]
    pub host: Option<String>,
    /// IP address the client connects to (matched against IP subjectAltNames).
    #[arg(long, value_name = "ADDR")]
    pub ip: Option<IpAddr>,
    /// What the certificate is used for (checked against extendedKeyUsage); default
    /// `server` with --host or --ip, else `any` (no extendedKeyUsage check).
    #[arg(long, value_enum)]
    pub purpose: Option<PurposeArg>,
    /// A CRL (PEM or DER) to check the path's certificates against; repeatable. Default:
    /// the crl.pem of the CA store that --home names or that holds a --ca file.
    #[arg(long, value_name = "FILE")]
    pub crl: Vec<PathBuf>,
    /// Judge validity at this time: RFC 3339 or Unix seconds (default: now).
    #[arg(long, value_name = "TIME")]
    pub at: Option<String>,
    /// Print JSON ({ok, error, path, purpose, warnings, revocation_checked}).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PurposeArg {
    Server,
    Client,
    Any,
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
        let data = certmesh::fsio::read(f)?;
        // An empty chain file means "no intermediates", as with a directly issued leaf.
        if !data.iter().all(u8::is_ascii_whitespace) {
            untrusted.extend(certmesh::x509::parse_certs(f, &data)?);
        }
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
            PurposeArg::Any => Purpose::Any,
        }),
        crls: crls(ctx, &a)?,
    };
    let v = verify(&leaf, &untrusted, &anchors, &opts);
    if a.json {
        super::print_json(&v);
        return Ok(if v.ok { 0 } else { 1 });
    }
    for w in &v.warnings {
        super::warn(format!("{}: {w}", a.cert.display()));
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

/// The CRLs to check against: every --crl file, else the crl.pem of the CA store that
/// --home names or that holds a --ca file (a store's CRL is the one its clients load).
fn crls(ctx: &Context, a: &VerifyArgs) -> Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for f in &a.crl {
        out.extend(parse_crls(f, &certmesh::fsio::read(f)?)?);
    }
    if !a.crl.is_empty() {
        return Ok(out);
    }
    let mut homes = vec![ctx.home.clone()];
    for f in &a.ca {
        homes.extend(f.ancestors().skip(1).take(3).map(Path::to_path_buf));
    }
    let mut seen = Vec::new();
    for home in homes {
        let crl = home.join("crl.pem");
        if !home.join("store.toml").is_file() || !crl.is_file() {
            continue;
        }
        let key = crl.canonicalize().unwrap_or_else(|_| crl.clone());
        if seen.contains(&key) {
            continue;
        }
        seen.push(key);
        out.extend(parse_crls(&crl, &certmesh::fsio::read(&crl)?)?);
    }
    Ok(out)
}

/// The certificates of a trust store: PKCS#12, JKS or JCEKS (opened with `storepass`),
/// else PEM or DER.
pub(super) fn truststore(path: &Path, storepass: Option<&str>) -> Result<Vec<Vec<u8>>> {
    let data = certmesh::fsio::read(path)?;
    certmesh::keystore::edit::trust_anchors(path, &data, &mut || {
        super::secret::obtain_store_password(storepass, "truststore password", "--storepass", false)
    })
}
