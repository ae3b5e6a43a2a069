//! `certmesh verify`: a table of good and broken chains, built at test time with
//! certmesh, openssl and rcgen, where certmesh's verdict must equal `openssl verify`'s
//! case by case.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::openssl::{openssl, verify as openssl_verify};
use support::{certmesh, cm, run, tempdir, Run};

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

/// A certificate made with openssl: a fresh key, a CSR, then `x509 -req` signed by
/// `issuer` (cert, key) or by its own key, with the extensions given (one per line).
struct Made {
    cert: PathBuf,
    key: PathBuf,
}

fn ossl(dir: &Path, name: &str, key: &str, issuer: Option<&Made>, exts: &str) -> Made {
    let key_path = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let cert = dir.join(format!("{name}.pem"));
    let ext = dir.join(format!("{name}.ext"));
    fs::write(&ext, format!("[v3]\n{exts}\n")).unwrap();
    let newkey: Vec<&str> = match key {
        "rsa" => vec!["-newkey", "rsa:2048"],
        "ed25519" => vec!["-newkey", "ed25519"],
        _ => vec!["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    };
    let mut args = vec!["req", "-new", "-nodes"];
    args.extend(newkey);
    let subj = format!("/CN={name}");
    args.extend(["-keyout", s(&key_path), "-out", s(&csr), "-subj", &subj]);
    openssl(&args).assert_success();
    let mut args = vec![
        "x509",
        "-req",
        "-in",
        s(&csr),
        "-days",
        "30",
        "-extfile",
        s(&ext),
        "-extensions",
        "v3",
        "-out",
        s(&cert),
    ];
    match issuer {
        Some(i) => args.extend(["-CA", s(&i.cert), "-CAkey", s(&i.key), "-CAcreateserial"]),
        None => args.extend(["-signkey", s(&key_path)]),
    }
    openssl(&args).assert_success();
    Made {
        cert,
        key: key_path,
    }
}

/// An X.509 version 1 self-signed certificate (no extensions), as `x509 -req -signkey`
/// without an extension file makes it.
fn ossl_v1(dir: &Path, name: &str) -> Made {
    let key = dir.join(format!("{name}.key"));
    let csr = dir.join(format!("{name}.csr"));
    let cert = dir.join(format!("{name}.pem"));
    let subj = format!("/CN={name}");
    openssl(&[
        "req",
        "-new",
        "-nodes",
        "-newkey",
        "rsa:2048",
        "-keyout",
        s(&key),
        "-out",
        s(&csr),
        "-subj",
        &subj,
    ])
    .assert_success();
    openssl(&[
        "x509",
        "-req",
        "-in",
        s(&csr),
        "-signkey",
        s(&key),
        "-days",
        "30",
        "-out",
        s(&cert),
    ])
    .assert_success();
    Made { cert, key }
}

const CA: &str = "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash";

fn leaf_ext(san: &str) -> String {
    format!("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName={san}")
}

/// An rcgen root and a leaf valid only in `years`.
fn rcgen_pair(dir: &Path, name: &str, from: i32, to: i32) -> (PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, format!("{name} CA"));
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        rcgen::KeyUsagePurpose::KeyCertSign,
        rcgen::KeyUsagePurpose::CrlSign,
    ];
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let mut p = rcgen::CertificateParams::new(vec![format!("{name}.example.com")]).unwrap();
    p.not_before = rcgen::date_time_ymd(from, 1, 1);
    p.not_after = rcgen::date_time_ymd(to, 1, 1);
    let leaf = p.signed_by(&key, &issuer).unwrap();
    let ca_path = dir.join(format!("{name}-ca.pem"));
    let leaf_path = dir.join(format!("{name}.pem"));
    fs::write(&ca_path, ca_cert.pem()).unwrap();
    fs::write(&leaf_path, leaf.pem()).unwrap();
    (ca_path, leaf_path)
}

struct Case {
    name: &'static str,
    leaf: PathBuf,
    chain: Option<PathBuf>,
    ca: PathBuf,
    host: Option<&'static str>,
    ip: Option<&'static str>,
    purpose: Option<&'static str>,
    at: Option<i64>,
    expect_ok: bool,
    /// Compare with `openssl verify -x509_strict` (RFC 5280 profile rules on every
    /// certificate, roots included) instead of its default flags.
    strict: bool,
}

impl Case {
    fn new(name: &'static str, leaf: PathBuf, chain: Option<PathBuf>, ca: PathBuf) -> Self {
        Case {
            name,
            leaf,
            chain,
            ca,
            host: None,
            ip: None,
            purpose: None,
            at: None,
            expect_ok: true,
            strict: false,
        }
    }
    fn host(mut self, h: &'static str) -> Self {
        self.host = Some(h);
        self
    }
    fn ip(mut self, i: &'static str) -> Self {
        self.ip = Some(i);
        self
    }
    fn purpose(mut self, p: &'static str) -> Self {
        self.purpose = Some(p);
        self
    }
    fn at(mut self, t: i64) -> Self {
        self.at = Some(t);
        self
    }
    fn bad(mut self) -> Self {
        self.expect_ok = false;
        self
    }
    fn strict(mut self) -> Self {
        self.strict = true;
        self
    }

    fn certmesh(&self) -> Run {
        let mut cmd = certmesh();
        cmd.arg("verify").arg(&self.leaf).arg("--ca").arg(&self.ca);
        if let Some(c) = &self.chain {
            cmd.arg("--chain").arg(c);
        }
        if let Some(h) = self.host {
            cmd.args(["--host", h]);
        }
        if let Some(i) = self.ip {
            cmd.args(["--ip", i]);
        }
        if let Some(p) = self.purpose {
            cmd.args(["--purpose", p]);
        }
        if let Some(t) = self.at {
            cmd.args(["--at", &t.to_string()]);
        }
        run(&mut cmd)
    }

    fn openssl(&self) -> Run {
        let mut extra: Vec<String> = Vec::new();
        if self.strict {
            extra.push("-x509_strict".into());
        }
        if let Some(h) = self.host {
            extra.extend(["-verify_hostname".into(), h.into()]);
        }
        if let Some(i) = self.ip {
            extra.extend(["-verify_ip".into(), i.into()]);
        }
        if let Some(p) = self.purpose {
            let p = if p == "server" {
                "sslserver"
            } else {
                "sslclient"
            };
            extra.extend(["-purpose".into(), p.into()]);
        }
        if let Some(t) = self.at {
            extra.extend(["-attime".into(), t.to_string()]);
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        openssl_verify(&self.ca, self.chain.as_deref(), &self.leaf, &extra)
    }
}

#[test]
fn verdicts_agree_with_openssl_verify() {
    let dir = tempdir();
    let d = dir.path();

    // certmesh stores: a root only; root + intermediate (RSA); Ed25519; another root.
    let flat = d.join("flat");
    cm(&flat, &["ca", "init", "--name", "Flat CA"]).assert_success();
    cm(
        &flat,
        &[
            "issue",
            "web",
            "--dns",
            "web.example.com",
            "--ip",
            "10.0.0.5",
        ],
    )
    .assert_success();
    cm(
        &flat,
        &[
            "issue",
            "cli",
            "--dns",
            "cli.example.com",
            "--profile",
            "client",
        ],
    )
    .assert_success();
    let deep = d.join("deep");
    cm(
        &deep,
        &["ca", "init", "--name", "Deep CA", "--key", "rsa3072"],
    )
    .assert_success();
    cm(&deep, &["ca", "intermediate", "--key", "rsa3072"]).assert_success();
    cm(
        &deep,
        &[
            "issue",
            "node",
            "--dns",
            "node.example.com",
            "--key",
            "rsa2048",
        ],
    )
    .assert_success();
    let edw = d.join("edw");
    cm(&edw, &["ca", "init", "--name", "Ed CA", "--key", "ed25519"]).assert_success();
    cm(&edw, &["ca", "intermediate", "--key", "ed25519"]).assert_success();
    cm(
        &edw,
        &["issue", "ed", "--dns", "ed.example.com", "--key", "ed25519"],
    )
    .assert_success();
    let other = d.join("other");
    cm(&other, &["ca", "init", "--name", "Other CA"]).assert_success();

    let issued = |home: &Path, name: &str, file: &str| home.join("issued").join(name).join(file);
    let root = |home: &Path| home.join("ca/root/cert.pem");

    // openssl-made chains.
    let o = d.join("o");
    fs::create_dir(&o).unwrap();
    let oroot = ossl(&o, "oroot", "ec", None, CA);
    let oint = ossl(&o, "oint", "ec", Some(&oroot), CA);
    let oleaf = ossl(
        &o,
        "oleaf",
        "ec",
        Some(&oint),
        &leaf_ext("DNS:o.example.com,IP:192.0.2.7"),
    );
    let rsa_root = ossl(&o, "rsaroot", "rsa", None, CA);
    let rsa_leaf = ossl(
        &o,
        "rsaleaf",
        "rsa",
        Some(&rsa_root),
        &leaf_ext("DNS:rsa.example.com"),
    );
    let not_ca = ossl(
        &o,
        "notca",
        "ec",
        Some(&oroot),
        "basicConstraints=CA:FALSE\nkeyUsage=critical,keyCertSign",
    );
    let under_not_ca = ossl(
        &o,
        "undernotca",
        "ec",
        Some(&not_ca),
        &leaf_ext("DNS:x.example.com"),
    );
    let pl0 = ossl(
        &o,
        "pl0root",
        "ec",
        None,
        "basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign",
    );
    let pl0_int = ossl(&o, "pl0int", "ec", Some(&pl0), CA);
    let pl0_leaf = ossl(
        &o,
        "pl0leaf",
        "ec",
        Some(&pl0_int),
        &leaf_ext("DNS:p.example.com"),
    );
    let pl0_direct = ossl(
        &o,
        "pl0direct",
        "ec",
        Some(&pl0),
        &leaf_ext("DNS:p.example.com"),
    );
    let nc_root = ossl(
        &o,
        "ncroot",
        "ec",
        None,
        &format!("{CA}\nnameConstraints=critical,permitted;DNS:example.com,permitted;IP:10.0.0.0/255.0.0.0"),
    );
    let nc_in = ossl(
        &o,
        "ncin",
        "ec",
        Some(&nc_root),
        &leaf_ext("DNS:in.example.com,IP:10.1.2.3"),
    );
    let nc_out = ossl(
        &o,
        "ncout",
        "ec",
        Some(&nc_root),
        &leaf_ext("DNS:evil.example.org"),
    );
    let nc_ip_out = ossl(
        &o,
        "ncipout",
        "ec",
        Some(&nc_root),
        &leaf_ext("DNS:in.example.com,IP:192.168.1.1"),
    );
    let self_leaf = ossl(
        &o,
        "selfleaf",
        "ec",
        None,
        &leaf_ext("DNS:self.example.com"),
    );
    let ku_root = ossl(
        &o,
        "kuroot",
        "ec",
        None,
        "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature,cRLSign",
    );
    let ku_leaf = ossl(
        &o,
        "kuleaf",
        "ec",
        Some(&ku_root),
        &leaf_ext("DNS:ku.example.com"),
    );
    let wild = ossl(
        &o,
        "wild",
        "ec",
        Some(&oroot),
        &leaf_ext("DNS:*.example.com"),
    );
    let eku_int = ossl(
        &o,
        "ekuint",
        "ec",
        Some(&oroot),
        &format!("{CA}\nextendedKeyUsage=clientAuth"),
    );
    let eku_leaf = ossl(
        &o,
        "ekuleaf",
        "ec",
        Some(&eku_int),
        &leaf_ext("DNS:e.example.com"),
    );
    let ed_root = ossl(&o, "edroot", "ed25519", None, CA);
    let ed_leaf = ossl(
        &o,
        "edleaf",
        "ed25519",
        Some(&ed_root),
        &leaf_ext("DNS:edo.example.com"),
    );
    // Intermediates for "any order": root first, then the intermediate.
    let reversed = o.join("reversed.pem");
    fs::write(
        &reversed,
        format!(
            "{}{}",
            fs::read_to_string(&oroot.cert).unwrap(),
            fs::read_to_string(&oint.cert).unwrap()
        ),
    )
    .unwrap();
    let crit = ossl(
        &o,
        "crit",
        "ec",
        Some(&oroot),
        &format!(
            "{}\n1.3.6.1.4.1.55555.1=critical,ASN1:NULL",
            leaf_ext("DNS:crit.example.com")
        ),
    );
    let v1_root = ossl_v1(&o, "v1root");
    let v1_leaf = ossl(
        &o,
        "v1leaf",
        "ec",
        Some(&v1_root),
        &leaf_ext("DNS:v1.example.com"),
    );
    let ex_root = ossl(
        &o,
        "exroot",
        "ec",
        None,
        &format!("{CA}\nnameConstraints=critical,excluded;DNS:bad.example.com"),
    );
    let ex_leaf = ossl(
        &o,
        "exleaf",
        "ec",
        Some(&ex_root),
        &leaf_ext("DNS:x.bad.example.com"),
    );
    // A root with the same name as `oroot` but another key.
    let o2 = d.join("o2");
    fs::create_dir(&o2).unwrap();
    let impostor = ossl(&o2, "oroot", "ec", None, CA);
    let (old_ca, old_leaf) = rcgen_pair(d, "old", 2019, 2021);
    let (new_ca, new_leaf) = rcgen_pair(d, "future", 2090, 2091);

    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;

    let cases = vec![
        Case::new(
            "certmesh EC root, leaf, host",
            issued(&flat, "web", "cert.pem"),
            None,
            root(&flat),
        )
        .host("web.example.com")
        .purpose("server"),
        Case::new(
            "certmesh leaf, right IP",
            issued(&flat, "web", "cert.pem"),
            None,
            root(&flat),
        )
        .ip("10.0.0.5"),
        Case::new(
            "certmesh leaf, wrong IP",
            issued(&flat, "web", "cert.pem"),
            None,
            root(&flat),
        )
        .ip("10.0.0.6")
        .bad(),
        Case::new(
            "certmesh leaf, wrong host",
            issued(&flat, "web", "cert.pem"),
            None,
            root(&flat),
        )
        .host("www.x.com")
        .bad(),
        Case::new(
            "certmesh RSA root, intermediate, leaf",
            issued(&deep, "node", "cert.pem"),
            Some(issued(&deep, "node", "chain.pem")),
            root(&deep),
        )
        .host("node.example.com")
        .purpose("server"),
        Case::new(
            "certmesh fullchain as leaf and chain file",
            issued(&deep, "node", "fullchain.pem"),
            Some(issued(&deep, "node", "fullchain.pem")),
            root(&deep),
        ),
        Case::new(
            "certmesh Ed25519 with intermediate",
            issued(&edw, "ed", "cert.pem"),
            Some(issued(&edw, "ed", "chain.pem")),
            root(&edw),
        )
        .host("ed.example.com"),
        Case::new(
            "missing intermediate",
            issued(&deep, "node", "cert.pem"),
            None,
            root(&deep),
        )
        .bad(),
        Case::new(
            "wrong root",
            issued(&flat, "web", "cert.pem"),
            None,
            root(&other),
        )
        .bad(),
        Case::new(
            "client cert used as server",
            issued(&flat, "cli", "cert.pem"),
            None,
            root(&flat),
        )
        .purpose("server")
        .bad(),
        Case::new(
            "client cert used as client",
            issued(&flat, "cli", "cert.pem"),
            None,
            root(&flat),
        )
        .purpose("client"),
        Case::new(
            "good chain judged after expiry",
            issued(&flat, "web", "cert.pem"),
            None,
            root(&flat),
        )
        .at(now + 400 * 86400)
        .bad(),
        Case::new(
            "good chain judged before issue",
            issued(&flat, "web", "cert.pem"),
            None,
            root(&flat),
        )
        .at(now - 86400)
        .bad(),
        Case::new("expired leaf (rcgen)", old_leaf, None, old_ca).bad(),
        Case::new("not yet valid leaf (rcgen)", new_leaf, None, new_ca).bad(),
        Case::new(
            "openssl EC root, intermediate, leaf",
            oleaf.cert.clone(),
            Some(oint.cert.clone()),
            oroot.cert.clone(),
        )
        .host("o.example.com")
        .purpose("server"),
        Case::new(
            "intermediates in any order",
            oleaf.cert.clone(),
            Some(reversed),
            oroot.cert.clone(),
        )
        .ip("192.0.2.7"),
        Case::new(
            "openssl RSA, no intermediate",
            rsa_leaf.cert.clone(),
            None,
            rsa_root.cert.clone(),
        )
        .host("rsa.example.com"),
        Case::new(
            "openssl Ed25519",
            ed_leaf.cert.clone(),
            None,
            ed_root.cert.clone(),
        )
        .host("edo.example.com"),
        Case::new(
            "intermediate with CA:FALSE",
            under_not_ca.cert.clone(),
            Some(not_ca.cert.clone()),
            oroot.cert.clone(),
        )
        .bad(),
        Case::new(
            "pathlen:0 root, intermediate, leaf",
            pl0_leaf.cert.clone(),
            Some(pl0_int.cert.clone()),
            pl0.cert.clone(),
        )
        .bad(),
        Case::new(
            "pathlen:0 root signs leaf directly",
            pl0_direct.cert.clone(),
            None,
            pl0.cert.clone(),
        ),
        Case::new(
            "inside name constraints",
            nc_in.cert.clone(),
            None,
            nc_root.cert.clone(),
        ),
        Case::new(
            "DNS outside name constraints",
            nc_out.cert.clone(),
            None,
            nc_root.cert.clone(),
        )
        .bad(),
        Case::new(
            "IP outside name constraints",
            nc_ip_out.cert.clone(),
            None,
            nc_root.cert.clone(),
        )
        .bad(),
        Case::new(
            "self-signed leaf, other anchor",
            self_leaf.cert.clone(),
            None,
            oroot.cert.clone(),
        )
        .bad(),
        Case::new(
            "CA keyUsage without keyCertSign",
            ku_leaf.cert.clone(),
            None,
            ku_root.cert.clone(),
        )
        .bad(),
        Case::new(
            "wildcard, one label",
            wild.cert.clone(),
            None,
            oroot.cert.clone(),
        )
        .host("www.example.com"),
        Case::new(
            "wildcard, two labels",
            wild.cert.clone(),
            None,
            oroot.cert.clone(),
        )
        .host("a.b.example.com")
        .bad(),
        Case::new(
            "wildcard, bare domain",
            wild.cert.clone(),
            None,
            oroot.cert.clone(),
        )
        .host("example.com")
        .bad(),
        Case::new(
            "intermediate EKU clientAuth only, as server",
            eku_leaf.cert.clone(),
            Some(eku_int.cert.clone()),
            oroot.cert.clone(),
        )
        .purpose("server")
        .bad(),
        Case::new(
            "self-signed leaf trusted directly",
            self_leaf.cert.clone(),
            None,
            self_leaf.cert.clone(),
        )
        .host("self.example.com")
        .purpose("server"),
        // RFC 5280 4.2.1.9: a CA certificate must carry basicConstraints with cA TRUE,
        // and a v1 certificate has none; `openssl verify -x509_strict` refuses it too.
        Case::new(
            "X.509 v1 root",
            v1_leaf.cert.clone(),
            None,
            v1_root.cert.clone(),
        )
        .host("v1.example.com")
        .strict()
        .bad(),
        Case::new(
            "excluded subtree",
            ex_leaf.cert.clone(),
            None,
            ex_root.cert.clone(),
        )
        .bad(),
        Case::new(
            "anchor with the issuer's name but another key",
            oleaf.cert.clone(),
            Some(oint.cert.clone()),
            impostor.cert.clone(),
        )
        .bad(),
        Case::new(
            "unknown critical extension",
            crit.cert.clone(),
            None,
            oroot.cert.clone(),
        )
        .bad(),
        Case::new(
            "intermediate EKU clientAuth only, no purpose",
            eku_leaf.cert.clone(),
            Some(eku_int.cert.clone()),
            oroot.cert.clone(),
        ),
    ];

    let mut table = String::new();
    let mut disagreements = 0;
    for c in &cases {
        let ours = c.certmesh();
        let theirs = c.openssl();
        let line = format!(
            "{:<48} expected {:<4} certmesh {:<4} openssl {:<4}{}",
            c.name,
            verdict(c.expect_ok),
            verdict(ours.success()),
            verdict(theirs.success()),
            if ours.success() {
                String::new()
            } else {
                format!("  [{}]", ours.stderr.trim())
            }
        );
        table.push_str(&line);
        table.push('\n');
        if ours.success() != theirs.success() || ours.success() != c.expect_ok {
            disagreements += 1;
            table.push_str(&format!(
                "   ^ MISMATCH\n   certmesh: {ours:?}\n   openssl: {theirs:?}\n"
            ));
        }
        // Failures are one line naming the file; successes say OK.
        if ours.success() {
            assert!(ours.stdout.contains(": OK ("), "{}: {ours:?}", c.name);
        } else {
            assert_eq!(ours.status, 1, "{}: {ours:?}", c.name);
            assert_eq!(
                ours.stderr.trim().lines().count(),
                1,
                "{}: {ours:?}",
                c.name
            );
        }
    }
    eprintln!("{table}");
    assert!(cases.len() >= 20);
    assert_eq!(disagreements, 0, "verdicts differ:\n{table}");
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "OK"
    } else {
        "FAIL"
    }
}

#[test]
fn messages_and_json() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "Msg CA"]).assert_success();
    cm(&home, &["issue", "a", "--dns", "a.example.com"]).assert_success();
    let leaf = home.join("issued/a/cert.pem");
    let ca = home.join("ca/root/cert.pem");

    let r = run(certmesh()
        .arg("verify")
        .arg(&leaf)
        .arg("--ca")
        .arg(&ca)
        .args(["--host", "www.x.com"]));
    assert_eq!(r.status, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("hostname mismatch: www.x.com is not in DNS:a.example.com"),
        "{r:?}"
    );

    let r = run(certmesh()
        .arg("verify")
        .arg(&leaf)
        .arg("--ca")
        .arg(&ca)
        .args(["--at", "2100-01-01T00:00:00Z"]));
    assert!(
        r.stderr.contains("certificate has expired (not after "),
        "{r:?}"
    );

    let r = run(certmesh()
        .arg("verify")
        .arg(&leaf)
        .arg("--ca")
        .arg(&ca)
        .arg("--json"));
    assert_eq!(r.status, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ok"], true);
    assert!(v["error"].is_null());
    assert_eq!(v["path"][0], "CN=a.example.com");
    assert_eq!(v["path"][1], "CN=Msg CA");

    let other = dir.path().join("other");
    cm(&other, &["ca", "init", "--name", "Other"]).assert_success();
    let r = run(certmesh()
        .arg("verify")
        .arg(&leaf)
        .arg("--ca")
        .arg(other.join("ca/root/cert.pem"))
        .arg("--json"));
    assert_eq!(r.status, 1, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["ok"], false);
    assert!(
        v["error"]
            .as_str()
            .unwrap()
            .starts_with("unable to find the issuer of CN=a.example.com"),
        "{v}"
    );

    // A bad --at is a usage error.
    let r = run(certmesh()
        .arg("verify")
        .arg(&leaf)
        .arg("--ca")
        .arg(&ca)
        .args(["--at", "soon"]));
    assert_eq!(r.status, 2, "{r:?}");
}

#[test]
fn pkcs12_truststores() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "Trust CA"]).assert_success();
    cm(&home, &["issue", "t", "--dns", "t.example.com"]).assert_success();
    let leaf = home.join("issued/t/cert.pem");
    let ca = home.join("ca/root/cert.pem");
    let mut stores = Vec::new();

    let ours = dir.path().join("trust.p12");
    run(certmesh()
        .args(["export", "p12", "--trust"])
        .arg(&ca)
        .arg("--out")
        .arg(&ours)
        .args(["--pass", "env:TS_PASS"])
        .env("TS_PASS", "changeit"))
    .assert_success();
    stores.push(ours);
    if Command::new("keytool").arg("-help").output().is_ok() {
        let kt = dir.path().join("keytool.p12");
        run(Command::new("keytool")
            .args([
                "-importcert",
                "-noprompt",
                "-alias",
                "root",
                "-storetype",
                "PKCS12",
            ])
            .arg("-file")
            .arg(&ca)
            .arg("-keystore")
            .arg(&kt)
            .args(["-storepass", "changeit"]))
        .assert_success();
        stores.push(kt);
    }
    for ts in &stores {
        let r = run(certmesh()
            .arg("verify")
            .arg(&leaf)
            .arg("--truststore")
            .arg(ts)
            .args(["--storepass", "env:TS_PASS", "--host", "t.example.com"])
            .env("TS_PASS", "changeit"));
        assert_eq!(r.status, 0, "{}: {r:?}", ts.display());
        let r = run(certmesh()
            .arg("verify")
            .arg(&leaf)
            .arg("--truststore")
            .arg(ts)
            .args(["--storepass", "env:TS_PASS"])
            .env("TS_PASS", "wrong"));
        assert_eq!(r.status, 1, "{r:?}");
        assert_eq!(r.stderr.trim().lines().count(), 1, "{r:?}");
    }
    // A PEM truststore needs no password.
    let r = run(certmesh()
        .arg("verify")
        .arg(&leaf)
        .arg("--truststore")
        .arg(&ca));
    assert_eq!(r.status, 0, "{r:?}");

    // A store with an empty password, as `openssl pkcs12 -passout pass:` writes it, is
    // opened with the explicit `--storepass empty`; a source that is merely empty is
    // refused with that spelling.
    let empty = dir.path().join("empty.p12");
    run(Command::new("openssl")
        .args(["pkcs12", "-export", "-nokeys", "-in"])
        .arg(&ca)
        .arg("-out")
        .arg(&empty)
        .args(["-passout", "pass:"]))
    .assert_success();
    let with = |spec: &str| {
        run(certmesh()
            .arg("verify")
            .arg(&leaf)
            .arg("--truststore")
            .arg(&empty)
            .args(["--storepass", spec, "--host", "t.example.com"])
            .env("TS_PASS", ""))
    };
    let r = with("empty");
    assert_eq!(r.status, 0, "{r:?}");
    let r = with("env:TS_PASS");
    assert_eq!(r.status, 1, "{r:?}");
    assert!(r.stderr.contains("--storepass empty"), "{r:?}");
}

/// `--truststore` reads keytool's JKS and JCEKS stores, opened with `--storepass`; a
/// wrong password is one line and exit 1.
#[test]
fn java_keystore_truststores() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "Jks CA"]).assert_success();
    cm(&home, &["issue", "j", "--dns", "j.example.com"]).assert_success();
    let leaf = home.join("issued/j/cert.pem");
    let ca = home.join("ca/root/cert.pem");
    for kind in ["JKS", "JCEKS"] {
        let store = dir.path().join(format!("trust.{}", kind.to_lowercase()));
        run(Command::new("keytool")
            .args([
                "-importcert",
                "-noprompt",
                "-alias",
                "root",
                "-storetype",
                kind,
            ])
            .arg("-file")
            .arg(&ca)
            .arg("-keystore")
            .arg(&store)
            .args(["-storepass", "changeit"]))
        .assert_success();
        let r = run(certmesh()
            .arg("verify")
            .arg(&leaf)
            .arg("--truststore")
            .arg(&store)
            .args(["--storepass", "env:TS_PASS", "--host", "j.example.com"])
            .env("TS_PASS", "changeit"));
        assert_eq!(r.status, 0, "{kind}: {r:?}");
        assert!(
            r.stdout.contains(": OK (CN=j.example.com <- CN=Jks CA)"),
            "{r:?}"
        );
        let r = run(certmesh()
            .arg("verify")
            .arg(&leaf)
            .arg("--truststore")
            .arg(&store)
            .args(["--storepass", "env:TS_PASS"])
            .env("TS_PASS", "wrong"));
        assert_eq!(r.status, 1, "{kind}: {r:?}");
        assert_eq!(r.stderr.trim().lines().count(), 1, "{r:?}");
        assert!(r.stderr.contains(store.to_str().unwrap()), "{r:?}");
    }
}

/// Inside a CA store, `verify` checks against the store's own crl.pem without being
/// told; `--crl` replaces it. A revoked certificate gives the reason and time.
#[test]
fn store_crl_is_used_by_default() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "Crl CA"]).assert_success();
    cm(&home, &["issue", "gone", "--dns", "gone.example.com"]).assert_success();
    cm(&home, &["issue", "kept", "--dns", "kept.example.com"]).assert_success();
    let ca = home.join("ca/root/cert.pem");
    let gone = home.join("issued/gone/cert.pem");
    let kept = home.join("issued/kept/cert.pem");
    let before = dir.path().join("before.pem");
    cm(&home, &["crl", "--out", before.to_str().unwrap()]).assert_success();
    cm(&home, &["revoke", "gone", "--reason", "keyCompromise"]).assert_success();

    let r = cm(
        &home,
        &[
            "verify",
            gone.to_str().unwrap(),
            "--ca",
            ca.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(r.status, 1, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let e = v["error"].as_str().unwrap();
    assert!(
        e.starts_with("CN=gone.example.com: has been revoked (at "),
        "{e}"
    );
    assert!(e.contains("reason keyCompromise"), "{e}");
    // Found through the --ca file's store too, without --home.
    let r = run(certmesh().arg("verify").arg(&gone).arg("--ca").arg(&ca));
    assert_eq!(r.status, 1, "{r:?}");
    assert!(r.stderr.contains("has been revoked"), "{r:?}");

    let r = cm(
        &home,
        &[
            "verify",
            kept.to_str().unwrap(),
            "--ca",
            ca.to_str().unwrap(),
            "--json",
        ],
    );
    assert_eq!(r.status, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["revocation_checked"][0], "CN=kept.example.com", "{v}");

    // An explicit --crl (the one from before the revocation) replaces the store's.
    let r = cm(
        &home,
        &[
            "verify",
            gone.to_str().unwrap(),
            "--ca",
            ca.to_str().unwrap(),
            "--crl",
            before.to_str().unwrap(),
        ],
    );
    assert_eq!(r.status, 0, "{r:?}");
    // openssl agrees on both CRLs.
    let r = openssl_verify(
        &ca,
        None,
        &gone,
        &[
            "-crl_check",
            "-CRLfile",
            home.join("crl.pem").to_str().unwrap(),
        ],
    );
    assert!(!r.success(), "{r:?}");
    let r = openssl_verify(
        &ca,
        None,
        &gone,
        &["-crl_check", "-CRLfile", before.to_str().unwrap()],
    );
    assert!(r.success(), "{r:?}");
}

/// Input problems are one line naming the file: a file that is no CRL; an empty --chain
/// file is no problem at all (no intermediates).
#[test]
fn crl_and_chain_files() {
    let dir = tempdir();
    let home = dir.path().join("pki");
    cm(&home, &["ca", "init", "--name", "Files CA"]).assert_success();
    cm(&home, &["issue", "f", "--dns", "f.example.com"]).assert_success();
    let leaf = home.join("issued/f/cert.pem");
    let ca = home.join("ca/root/cert.pem");
    let empty = dir.path().join("empty.pem");
    fs::write(&empty, "").unwrap();
    let r = run(certmesh()
        .arg("verify")
        .arg(&leaf)
        .arg("--ca")
        .arg(&ca)
        .arg("--chain")
        .arg(&empty));
    assert_eq!(r.status, 0, "{r:?}");
    let r = run(certmesh()
        .arg("verify")
        .arg(&leaf)
        .arg("--ca")
        .arg(&ca)
        .arg("--crl")
        .arg(&ca));
    assert_eq!(r.status, 1, "{r:?}");
    assert_eq!(r.stderr.trim().lines().count(), 1, "{r:?}");
    assert!(r.stderr.contains("contains no CRL"), "{r:?}");
    assert!(r.stderr.contains(ca.to_str().unwrap()), "{r:?}");
}
