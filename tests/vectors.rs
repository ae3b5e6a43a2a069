//! pyca's published test files (`cryptography-vectors`, installed in the test venv): every
//! private key and PKCS#12 file in it goes through `inspect`, `key strip`/`key convert`
//! and `export pem`, and what certmesh reads is compared with what Python `cryptography`
//! reads (public-key fingerprints, certificate lists). Files in certmesh's scope (RSA, EC
//! P-256/384/521, Ed25519) that `cryptography` reads must be read identically; every other
//! file must be refused with one line naming it. The files expected to be refused are
//! listed below, so a new vector shows up as a failure to classify.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use support::{certmesh, run, tempdir, Run};

/// Lists every key and PKCS#12 file of the vectors with what `cryptography` reads from it
/// (trying the passwords its own tests use): one JSON object per line.
const LIST: &str = r#"
import os, sys, json, hashlib, warnings
warnings.simplefilter("ignore")
import cryptography_vectors
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.hazmat.primitives.asymmetric import rsa, ec, ed25519

root = os.path.dirname(cryptography_vectors.__file__)
print(json.dumps({"root": root}))
PASSWORDS = [None, b"foobar", b"123456", b"cryptography", b"password", b"baz",
             b"PolarSSLTest", b"a123456", b"hunter42", b"Red Hat Enterprise Linux 7.4"]

def fp(der):
    return ":".join("%02X" % b for b in hashlib.sha256(der).digest())

def spki(pub):
    return fp(pub.public_bytes(ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo))

def scope(k):
    if isinstance(k, rsa.RSAPrivateKey): return "RSA"
    if isinstance(k, ec.EllipticCurvePrivateKey):
        return "EC" if k.curve.name in ("secp256r1", "secp384r1", "secp521r1") else "other"
    if isinstance(k, ed25519.Ed25519PrivateKey): return "Ed25519"
    return "other"

def is_key(rel, data):
    if b"PRIVATE KEY-----" in data: return True
    if rel.startswith("asymmetric") and rel.endswith((".der", ".pkcs8", ".key")) and b"-----" not in data:
        name = os.path.basename(rel).lower()
        return "pub" not in name and "cert" not in name
    return False

for d, _, files in sorted(os.walk(root)):
    for f in sorted(files):
        p = os.path.join(d, f)
        rel = os.path.relpath(p, root)
        if not rel.startswith(("asymmetric", "pkcs12")) or rel.endswith((".py", ".txt")):
            continue
        data = open(p, "rb").read()
        if rel.startswith("pkcs12") and rel.endswith((".p12", ".pfx")):
            r = {"file": rel, "kind": "p12"}
            for pw in PASSWORDS:
                try:
                    x = pkcs12.load_pkcs12(data, pw)
                except Exception:
                    continue
                r["pass"] = None if pw is None else pw.decode()
                certs = ([x.cert] if x.cert else []) + list(x.additional_certs)
                r["certs"] = sorted(fp(c.certificate.public_bytes(ser.Encoding.DER)) for c in certs)
                r["key"] = spki(x.key.public_key()) if x.key else None
                r["scope"] = scope(x.key) if x.key else None
                break
            print(json.dumps(r))
        elif is_key(rel, data):
            r = {"file": rel, "kind": "key"}
            for pw in PASSWORDS:
                try:
                    if b"-----" in data:
                        k = ser.load_pem_private_key(data, pw)
                    else:
                        k = ser.load_der_private_key(data, pw)
                except Exception:
                    continue
                r["pass"] = None if pw is None else pw.decode()
                r["key"] = spki(k.public_key())
                r["scope"] = scope(k)
                break
            print(json.dumps(r))
"#;

/// Prints the SubjectPublicKeyInfo SHA-256 of each key file given.
const SPKI: &str = r#"
import sys, hashlib
from cryptography.hazmat.primitives import serialization as ser
for p in sys.argv[1:]:
    k = ser.load_pem_private_key(open(p, "rb").read(), None)
    der = k.public_key().public_bytes(ser.Encoding.DER, ser.PublicFormat.SubjectPublicKeyInfo)
    print(p, ":".join("%02X" % b for b in hashlib.sha256(der).digest()))
"#;

/// Files certmesh refuses, each with one line naming the file and the reason. Every one
/// must be refused; a refused file not listed here, or a listed one that is read, fails.
const REFUSED: &[&str] = &[
    // Key types outside certmesh's scope: DSA, DH, Ed448, X25519, X448, ML-DSA, ML-KEM,
    // RSASSA-PSS, curves other than P-256/384/521, explicit curve parameters that name
    // no supported curve.
    "asymmetric/DER_Serialization/dsa.1024.der",
    "asymmetric/DER_Serialization/dsa.2048.der",
    "asymmetric/DER_Serialization/dsa.3072.der",
    "asymmetric/DER_Serialization/unenc-dsa-pkcs8.der",
    "asymmetric/DH/dh_key_256.pem",
    "asymmetric/DH/dhkey.der",
    "asymmetric/DH/dhkey.pem",
    "asymmetric/DH/dhkey_rfc5114_2.der",
    "asymmetric/DH/dhkey_rfc5114_2.pem",
    "asymmetric/DH/dhp.der",
    "asymmetric/DH/dhp_rfc5114_2.der",
    "asymmetric/DSA/custom/nilpotent.pem",
    "asymmetric/EC/explicit_parameters_private_key.pem",
    "asymmetric/EC/explicit_parameters_wap_wsg_idm_ecid_wtls11_private_key.pem",
    "asymmetric/EC/secp128r1_private_key.pem",
    "asymmetric/EC/secp256k1-explicit-no-seed.pem",
    "asymmetric/Ed448/ed448-pkcs8-enc.der",
    "asymmetric/Ed448/ed448-pkcs8-enc.pem",
    "asymmetric/Ed448/ed448-pkcs8.der",
    "asymmetric/Ed448/ed448-pkcs8.pem",
    "asymmetric/MLDSA/mldsa44_priv.der",
    "asymmetric/MLDSA/mldsa65_noseed_priv.der",
    "asymmetric/MLKEM/mlkem768.der",
    "asymmetric/MLKEM/mlkem768.pem",
    "asymmetric/PEM_Serialization/dsa_4096.pem",
    "asymmetric/PEM_Serialization/dsa_private_key.pem",
    "asymmetric/PKCS8/ec_oid_not_in_reg_private_2.pkcs8.pem",
    "asymmetric/PKCS8/nodompar_private.pkcs8.pem",
    "asymmetric/PKCS8/private.pem",
    "asymmetric/PKCS8/rsa_pss_2048.pem",
    "asymmetric/PKCS8/rsa_pss_2048_hash.pem",
    "asymmetric/PKCS8/rsa_pss_2048_hash_mask.pem",
    "asymmetric/PKCS8/rsa_pss_2048_hash_mask_diff.pem",
    "asymmetric/PKCS8/rsa_pss_2048_hash_mask_salt.pem",
    "asymmetric/PKCS8/unenc-dsa-pkcs8.pem",
    "asymmetric/PKCS8/withdompar_private.pkcs8.pem",
    "asymmetric/Traditional_OpenSSL_Serialization/dsa-wrong-version.pem",
    "asymmetric/Traditional_OpenSSL_Serialization/dsa.1024.pem",
    "asymmetric/Traditional_OpenSSL_Serialization/dsa.2048.pem",
    "asymmetric/Traditional_OpenSSL_Serialization/dsa.3072.pem",
    "asymmetric/X25519/x25519-pkcs8-enc.der",
    "asymmetric/X25519/x25519-pkcs8-enc.pem",
    "asymmetric/X25519/x25519-pkcs8.der",
    "asymmetric/X25519/x25519-pkcs8.pem",
    "asymmetric/X448/x448-pkcs8-enc.der",
    "asymmetric/X448/x448-pkcs8-enc.pem",
    "asymmetric/X448/x448-pkcs8.der",
    "asymmetric/X448/x448-pkcs8.pem",
    // Other file formats: OpenSSH private keys.
    "asymmetric/OpenSSH/dsa-nopsw.key",
    "asymmetric/OpenSSH/dsa-psw.key",
    "asymmetric/OpenSSH/ecdsa-nopsw.key",
    "asymmetric/OpenSSH/ecdsa-psw.key",
    "asymmetric/OpenSSH/ed25519-aesgcm-psw.key",
    "asymmetric/OpenSSH/ed25519-nopsw.key",
    "asymmetric/OpenSSH/ed25519-psw.key",
    "asymmetric/OpenSSH/rsa-nopsw.key",
    "asymmetric/OpenSSH/rsa-psw.key",
    "asymmetric/OpenSSH/sk-ecdsa-nopsw.key",
    "asymmetric/OpenSSH/sk-ecdsa-psw.key",
    "asymmetric/OpenSSH/sk-ed25519-nopsw.key",
    "asymmetric/OpenSSH/sk-ed25519-psw.key",
    // Encryption schemes certmesh does not decrypt: RC4, PKCS#5 v1.5 (MD5-DES), unknown
    // algorithms, 0 PBKDF2 iterations; and a PBES2 RC2 key whose password is unknown
    // (refused as a wrong passphrase).
    "asymmetric/PKCS8/bad-encryption-oid.pem",
    "asymmetric/PKCS8/enc-ec-sha1-128-rc4.pem",
    "asymmetric/PKCS8/enc-rsa-pkcs8-pbkdf2-0iter.pem",
    "asymmetric/PKCS8/enc-unknown-algorithm.pem",
    "asymmetric/PKCS8/enc-unknown-kdf.pem",
    "asymmetric/PKCS8/enc-unknown-pbkdf2-prf.pem",
    "asymmetric/PKCS8/rsa-pbewithmd5anddescbc.pem",
    "asymmetric/PKCS8/rsa-rc2-cbc-effective-key-length.pem",
    // Damaged on purpose.
    "asymmetric/EC/ec_private_key_non_zero_unused_bits.der",
    "asymmetric/PKCS8/bad-oid-dsa-key.pem",
    "asymmetric/PKCS8/ec-inconsistent-curve.pem",
    "asymmetric/PKCS8/ec-inconsistent-curve2.pem",
    "asymmetric/PKCS8/ec-invalid-private-scalar.pem",
    "asymmetric/PKCS8/ec-invalid-version.pem",
    "asymmetric/PKCS8/invalid-version.der",
    "asymmetric/PKCS8/unknown-oid.der",
    "asymmetric/PKCS8/wrong-pem-delimiter-rsa.pem",
    "asymmetric/Traditional_OpenSSL_Serialization/key1-malformed-dek-info.pem",
    "asymmetric/Traditional_OpenSSL_Serialization/key1-malformed-iv.pem",
    "asymmetric/Traditional_OpenSSL_Serialization/key1-no-dek-info.pem",
    "asymmetric/Traditional_OpenSSL_Serialization/key1-short-iv.pem",
    "asymmetric/Traditional_OpenSSL_Serialization/rsa-wrong-version.pem",
];

/// Files `cryptography` refuses but certmesh reads, with why.
const READ_THOUGH_PYTHON_REFUSES: &[(&str, &str)] = &[
    (
        "asymmetric/EC/ec-missing-curve.pem",
        "a SEC1 key without parameters: the scalar's length names the curve, as OpenSSL 1.x wrote them",
    ),
    (
        "asymmetric/EC/truncated-private-key.der",
        "a scalar without its leading zero bytes, which OpenSSL reads too",
    ),
    (
        "asymmetric/PEM_Serialization/rsa-bad-1025-q-is-2.pem",
        "an RSA key below 2048 bits is read without checking its private values so it can be stripped and inspected; it can never sign",
    ),
];

struct Vector {
    file: String,
    kind: String,
    pass: Option<String>,
    key: Option<String>,
    certs: Option<Vec<String>>,
    read_by_python: bool,
}

fn list() -> (PathBuf, Vec<Vector>) {
    let r = run(Command::new(support::pkilint::venv_python()).args(["-c", LIST]));
    r.assert_success();
    let mut lines = r.stdout.lines();
    let head: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let root = PathBuf::from(head["root"].as_str().unwrap());
    let vectors = lines
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let s = |k: &str| v[k].as_str().map(str::to_string);
            Vector {
                file: s("file").unwrap(),
                kind: s("kind").unwrap(),
                pass: s("pass"),
                key: s("key"),
                certs: v["certs"]
                    .as_array()
                    .map(|a| a.iter().map(|c| c.as_str().unwrap().to_string()).collect()),
                read_by_python: v.get("pass").is_some(),
            }
        })
        .collect();
    (root, vectors)
}

/// certmesh with `VEC_PASS` in its environment.
fn cm(args: &[&str], pass: &str) -> Run {
    run(certmesh().args(args).env("VEC_PASS", pass))
}

/// A refusal: non-zero exit, nothing on stdout, one line on stderr naming the file.
fn refused_with_one_line(r: &Run, path: &Path) -> Result<(), String> {
    let lines: Vec<&str> = r
        .stderr
        .lines()
        .filter(|l| !l.contains(": warning:"))
        .collect();
    if r.success() {
        return Err("read".into());
    }
    if lines.len() != 1
        || !lines[0].contains(path.to_str().unwrap())
        || !r.stdout.is_empty()
        || r.stderr.contains("panicked")
    {
        return Err(format!("refused without one clear line: {r:?}"));
    }
    Ok(())
}

#[test]
fn every_key_and_pkcs12_file_reads_as_cryptography_reads_it_or_is_refused() {
    let (root, vectors) = list();
    assert!(vectors.len() > 100, "found only {} vectors", vectors.len());
    let dir = tempdir();
    let mut failures: Vec<String> = Vec::new();
    let mut refused_seen: BTreeSet<String> = BTreeSet::new();
    let mut python_checks: BTreeMap<PathBuf, (String, String)> = BTreeMap::new();
    let expected_refused: BTreeSet<&str> = REFUSED.iter().copied().collect();
    let read_anyway: BTreeMap<&str, &str> = READ_THOUGH_PYTHON_REFUSES.iter().copied().collect();

    for (n, v) in vectors.iter().enumerate() {
        let path = root.join(&v.file);
        let p = path.to_str().unwrap();
        // The password cryptography opened the file with; for a key it did not open,
        // one that is surely wrong (asked only if the key is encrypted). A PKCS#12 file
        // cryptography opened without a password has a MAC over no password: `empty`.
        let (pass_spec, pass) = match (&v.pass, v.kind.as_str()) {
            (Some(p), _) => ("env:VEC_PASS", p.as_str()),
            (None, "p12") => ("empty", ""),
            (None, _) => ("env:VEC_PASS", "not the password"),
        };
        let first = if v.kind == "key" {
            let out = dir.path().join(format!("key-{n}.pem"));
            let o = out.to_str().unwrap().to_string();
            let r = cm(
                &[
                    "key", "strip", p, "--out", &o, "--format", "pkcs8", "--to", "pem", "--pass",
                    pass_spec,
                ],
                pass,
            );
            if r.success() && v.read_by_python {
                python_checks.insert(out, (v.file.clone(), v.key.clone().unwrap_or_default()));
            }
            r
        } else {
            cm(&["inspect", p, "--json", "--pass", pass_spec], pass)
        };
        if !first.success() {
            match refused_with_one_line(&first, &path) {
                Ok(()) if expected_refused.contains(v.file.as_str()) => {
                    refused_seen.insert(v.file.clone());
                }
                Ok(()) => failures.push(format!(
                    "{}: refused but not classified: {}",
                    v.file,
                    first.stderr.trim()
                )),
                Err(why) => failures.push(format!("{}: {why}", v.file)),
            }
            continue;
        }
        if expected_refused.contains(v.file.as_str()) {
            failures.push(format!(
                "{}: listed as refused, but certmesh read it",
                v.file
            ));
            continue;
        }
        if !v.read_by_python {
            if !read_anyway.contains_key(v.file.as_str()) {
                failures.push(format!(
                    "{}: certmesh reads it, cryptography does not: classify it",
                    v.file
                ));
            }
            continue;
        }
        if v.kind == "key" {
            let insp = cm(&["inspect", p, "--json", "--pass", pass_spec], pass);
            let report: serde_json::Value = match serde_json::from_str(&insp.stdout) {
                Ok(r) => r,
                Err(_) => {
                    failures.push(format!("{}: inspect failed: {insp:?}", v.file));
                    continue;
                }
            };
            let got = report["objects"][0]["public_key_sha256"].as_str();
            if got != v.key.as_deref() {
                failures.push(format!(
                    "{}: inspect shows public key {got:?}, not {:?}",
                    v.file, v.key
                ));
            }
            continue;
        }
        let report: serde_json::Value = serde_json::from_str(&first.stdout).unwrap();
        let got: BTreeSet<String> = report["bags"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["kind"] == "certificate")
            .map(|b| b["sha256"].as_str().unwrap().to_string())
            .collect();
        let want: BTreeSet<String> = v.certs.clone().unwrap().into_iter().collect();
        if got != want {
            failures.push(format!(
                "{}: certificates {got:?} instead of {want:?}",
                v.file
            ));
        }
        let Some(key) = &v.key else {
            continue;
        };
        let out = dir.path().join(format!("p12-{n}"));
        let r = cm(
            &[
                "export",
                "pem",
                p,
                "--out",
                out.to_str().unwrap(),
                "--pass",
                pass_spec,
            ],
            pass,
        );
        if !r.success() {
            failures.push(format!(
                "{}: export pem failed: {}",
                v.file,
                r.stderr.trim()
            ));
            continue;
        }
        // Every certificate of the file is in cert.pem, chain.pem or extra.pem.
        let mut written = BTreeSet::new();
        for f in ["cert.pem", "chain.pem", "extra.pem"] {
            let Ok(text) = std::fs::read(out.join(f)) else {
                continue;
            };
            for b in pem::parse_many(&text).unwrap() {
                written.insert(certmesh::x509::colon_hex(&certmesh::x509::sha256(
                    b.contents(),
                )));
            }
        }
        if written != want {
            failures.push(format!(
                "{}: export pem wrote {written:?} instead of {want:?}",
                v.file
            ));
        }
        python_checks.insert(out.join("key.pem"), (v.file.clone(), key.clone()));
    }
    for f in &expected_refused {
        if !refused_seen.contains(*f) {
            failures.push(format!(
                "{f}: listed as refused, but it was not seen refused"
            ));
        }
    }
    // Python reads every key certmesh wrote and finds the public key cryptography found
    // in the original (for files it read).
    let mut py = Command::new(support::pkilint::venv_python());
    py.args(["-c", SPKI]);
    py.args(python_checks.keys());
    let r = run(&mut py);
    r.assert_success();
    let mut checked = 0;
    for line in r.stdout.lines() {
        let (p, fp) = line.rsplit_once(' ').unwrap();
        let (file, want) = &python_checks[Path::new(p)];
        if !want.is_empty() && fp != want {
            failures.push(format!(
                "{file}: written key has public key {fp}, not {want}"
            ));
        }
        checked += 1;
    }
    assert_eq!(checked, python_checks.len());
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The 1025-bit RSA key is shown with its modulus's bit length.
    let r = cm(
        &[
            "inspect",
            root.join("asymmetric/PEM_Serialization/rsa-bad-1025-q-is-2.pem")
                .to_str()
                .unwrap(),
            "--json",
        ],
        "",
    );
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["objects"][0]["bits"], 1025, "{r:?}");
}

/// Python `cryptography`'s own PKCS#12 files, edited: one encrypted with PBES2 whose
/// PBKDF2 PRF is left out (HMAC-SHA1 by default), and one whose MAC was made over no
/// password. A signer is added; the files keep their protection, and openssl and
/// cryptography read every old entry and the new one.
#[test]
fn cryptography_pkcs12_files_are_edited_keeping_their_form() {
    let (root, _) = list();
    let dir = tempdir();
    let ca_key = dir.path().join("ca.key");
    let ca = dir.path().join("ca.pem");
    run(Command::new("openssl").args([
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-subj",
        "/CN=Vector Edit CA",
        "-days",
        "30",
        "-keyout",
        ca_key.to_str().unwrap(),
        "-out",
        ca.to_str().unwrap(),
    ]))
    .assert_success();
    for (name, pass_spec, pass) in [
        ("cert-key-aes256cbc.p12", "env:VEC_PASS", "cryptography"),
        ("no-password.p12", "empty", ""),
    ] {
        let store = dir.path().join(name);
        std::fs::copy(root.join("pkcs12").join(name), &store).unwrap();
        let s = store.to_str().unwrap();
        let protection = |r: &Run| -> Vec<String> {
            r.stdout
                .lines()
                .filter(|l| l.starts_with("  MAC:") || l.starts_with("  keys:"))
                .map(str::to_string)
                .collect()
        };
        let before = cm(&["inspect", s, "--pass", pass_spec], pass);
        before.assert_success();
        cm(
            &[
                "truststore",
                "import",
                "--store",
                s,
                "--alias",
                "vector-ca",
                "--cert",
                ca.to_str().unwrap(),
                "--storepass",
                pass_spec,
            ],
            pass,
        )
        .assert_success();
        let after = cm(&["inspect", s, "--pass", pass_spec], pass);
        after.assert_success();
        assert_eq!(protection(&after), protection(&before), "{name}");
        if name.contains("aes256") {
            assert!(
                after.stdout.contains(
                    "certificates:  PBES2 (PBKDF2-HMAC-SHA1, AES-256-CBC), 2048 iterations"
                ),
                "{name}: {after:?}"
            );
        }
        let py = run(Command::new(support::pkilint::venv_python()).args([
            "-c",
            "import sys\nfrom cryptography.hazmat.primitives.serialization import pkcs12\n\
             p = pkcs12.load_pkcs12(open(sys.argv[1],'rb').read(), sys.argv[2].encode() or None)\n\
             print('key' if p.key else 'nokey', len(p.additional_certs) + (1 if p.cert else 0))\n\
             print([c.certificate.subject.rfc4514_string() for c in p.additional_certs])",
            s,
            pass,
        ]));
        py.assert_success();
        assert!(py.stdout.starts_with("key 2\n"), "{name}: {py:?}");
        assert!(py.stdout.contains("CN=Vector Edit CA"), "{name}: {py:?}");
        let ossl = run(Command::new("openssl")
            .args(["pkcs12", "-in", s, "-nokeys", "-passin", "env:VEC_PASS"])
            .env("VEC_PASS", pass));
        assert!(ossl.success(), "{name}: {ossl:?}");
        assert_eq!(
            ossl.stdout.matches("BEGIN CERTIFICATE").count(),
            2,
            "{name}"
        );
    }
}
