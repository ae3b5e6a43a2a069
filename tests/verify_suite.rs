//! `certmesh verify` against a table of chains built at test time by
//! `tests/support/verify_cases.py` (well-formed and malformed, every class of rule: path
//! building, roles, name constraints, extensions, keys, purpose, revocation, messages).
//! Each case has an expected verdict and reason; `openssl verify -x509_strict` and Java's
//! PKIX validator judge the same chains, and certmesh must never accept a chain either
//! of them refuses, except for the refusals listed in `OPENSSL_NOT_A_RULE` (things
//! certmesh reports as warnings, or a revocation status that no CRL given answers).

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::openssl::verify as openssl_verify;
use support::pkilint::venv_python;
use support::pkix::{validate, Chain};
use support::{certmesh, run, tempdir};

/// openssl -x509_strict refusals that are not a rule `verify` enforces: missing key
/// identifiers and a CA without keyUsage (warnings in certmesh, RFC 5280 SHOULD/MUST on
/// the issuing CA, not on the relying party), and "unable to get certificate CRL" (no CRL
/// given for some certificate: certmesh, like webpki's default, accepts an unknown status).
const OPENSSL_NOT_A_RULE: [&str; 4] = [
    "error 85 ", // Missing Authority Key Identifier
    "error 86 ", // Missing Subject Key Identifier
    "error 92 ", // CA cert does not include key usage extension
    "error 3 ",  // unable to get certificate CRL
];

/// Every class of rule the suite must cover.
const CLASSES: [&str; 9] = [
    "good",
    "path",
    "roles",
    "name-constraints",
    "extensions",
    "keys",
    "purpose",
    "revocation",
    "messages",
];

struct Case {
    name: String,
    class: String,
    leaf: PathBuf,
    chain: Option<PathBuf>,
    ca: PathBuf,
    crls: Vec<PathBuf>,
    host: Option<String>,
    ip: Option<String>,
    purpose: Option<String>,
    expect_ok: bool,
    reason: String,
    warn: String,
    openssl: bool,
    java: bool,
}

fn load(out: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(out.join("cases.json")).unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let s = |c: &Value, k: &str| c[k].as_str().map(str::to_string);
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| Case {
            name: s(c, "name").unwrap(),
            class: s(c, "class").unwrap(),
            leaf: out.join(s(c, "leaf").unwrap()),
            chain: s(c, "chain").map(|p| out.join(p)),
            ca: out.join(s(c, "ca").unwrap()),
            crls: c["crls"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| out.join(p.as_str().unwrap()))
                .collect(),
            host: s(c, "host"),
            ip: s(c, "ip"),
            purpose: s(c, "purpose"),
            expect_ok: c["expect"] == "ok",
            reason: s(c, "reason").unwrap_or_default(),
            warn: s(c, "warn").unwrap_or_default(),
            openssl: c["openssl"].as_bool().unwrap(),
            java: c["java"].as_bool().unwrap(),
        })
        .collect()
}

impl Case {
    /// The purpose `verify` must say it checked.
    fn purpose_checked(&self) -> &str {
        match (&self.purpose, self.host.is_some() || self.ip.is_some()) {
            (Some(p), _) => p,
            (None, true) => "server",
            (None, false) => "any",
        }
    }

    fn command(&self, json: bool) -> Command {
        let mut cmd = certmesh();
        cmd.arg("verify").arg(&self.leaf).arg("--ca").arg(&self.ca);
        if json {
            cmd.arg("--json");
        }
        if let Some(c) = &self.chain {
            cmd.arg("--chain").arg(c);
        }
        for c in &self.crls {
            cmd.arg("--crl").arg(c);
        }
        if let Some(h) = &self.host {
            cmd.args(["--host", h]);
        }
        if let Some(i) = &self.ip {
            cmd.args(["--ip", i]);
        }
        if let Some(p) = &self.purpose {
            cmd.args(["--purpose", p]);
        }
        cmd
    }

    fn certmesh(&self) -> Value {
        let r = run(&mut self.command(true));
        assert!(r.status == 0 || r.status == 1, "{}: {r:?}", self.name);
        assert!(r.stderr.is_empty(), "{}: {r:?}", self.name);
        let v: Value =
            serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{}: {e}: {r:?}", self.name));
        assert_eq!(v["ok"] == true, r.status == 0, "{}: {r:?}", self.name);
        v
    }

    /// When `verify` refused the chain because one of its certificates breaks a rule of
    /// the certificate in its own role (extensions, keys, a leaf's usages), `lint` must
    /// report an error on that certificate: both use one set of rules. `None` when the
    /// refusal depends on the path (a missing issuer, expiry, a path length, a certificate in
    /// another role than its own) rather than on the certificate.
    fn lint_agrees(&self, error: &str) -> Option<Result<(), String>> {
        let own_role = ["roles", "extensions", "keys"].contains(&self.class.as_str())
            && !error.contains("is not a CA")
            && !error.contains("(basicConstraints cA TRUE)")
            && !error.contains("path length constraint exceeded");
        if !own_role {
            return None;
        }
        let files: Vec<&Path> = [
            Some(self.leaf.as_path()),
            self.chain.as_deref(),
            Some(&self.ca),
        ]
        .into_iter()
        .flatten()
        .filter(|f| std::fs::metadata(f).is_ok_and(|m| m.len() > 0))
        .collect();
        let r = run(certmesh().arg("lint").arg("--json").args(&files));
        let mut certs = Vec::new();
        for line in r.stdout.lines().filter(|l| !l.trim().is_empty()) {
            let v: Value = serde_json::from_str(line).ok()?;
            certs.extend(v["certificates"].as_array().cloned().unwrap_or_default());
        }
        let named = certs.iter().find(|c| {
            c["subject"]
                .as_str()
                .is_some_and(|s| !s.is_empty() && error.starts_with(&format!("{s}: ")))
        })?;
        let errors: Vec<&str> = named["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["severity"] == "error")
            .map(|f| f["code"].as_str().unwrap())
            .collect();
        Some(if errors.is_empty() {
            Err(format!(
                "verify refuses ({error}) but lint finds no error: {named}"
            ))
        } else {
            Ok(())
        })
    }

    /// openssl's refusal (its first error line), or `None` when it accepts.
    fn openssl(&self) -> Option<String> {
        let mut extra: Vec<String> = vec!["-x509_strict".into()];
        // The leaf file's other certificates are intermediates too.
        let mut untrusted = self
            .chain
            .clone()
            .filter(|c| std::fs::metadata(c).is_ok_and(|m| m.len() > 0));
        if std::fs::read_to_string(&self.leaf)
            .unwrap()
            .matches("BEGIN CERTIFICATE")
            .count()
            > 1
        {
            untrusted = Some(self.leaf.clone());
        }
        if !self.crls.is_empty() {
            extra.push("-crl_check_all".into());
            for c in &self.crls {
                extra.push("-CRLfile".into());
                extra.push(c.to_str().unwrap().into());
            }
        }
        if let Some(h) = &self.host {
            extra.extend(["-verify_hostname".into(), h.clone()]);
        }
        if let Some(i) = &self.ip {
            extra.extend(["-verify_ip".into(), i.clone()]);
        }
        let purpose = self
            .purpose
            .clone()
            .or_else(|| (self.host.is_some() || self.ip.is_some()).then(|| "server".to_string()));
        match purpose.as_deref() {
            Some("server") => extra.extend(["-purpose".into(), "sslserver".into()]),
            Some("client") => extra.extend(["-purpose".into(), "sslclient".into()]),
            _ => {}
        }
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let r = openssl_verify(&self.ca, untrusted.as_deref(), &self.leaf, &extra);
        if r.status == 0 {
            return None;
        }
        let all = format!("{}{}", r.stdout, r.stderr);
        Some(
            all.lines()
                .find(|l| l.starts_with("error "))
                .unwrap_or(all.trim())
                .to_string(),
        )
    }
}

#[test]
fn chains_judged_like_the_strictest_client() {
    let dir = tempdir();
    let out = dir.path().join("cases");
    run(Command::new(venv_python())
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/verify_cases.py"))
        .arg(&out))
    .assert_success();
    let cases = load(&out);
    assert!(cases.len() >= 150, "only {} cases", cases.len());
    for class in CLASSES {
        assert!(
            cases.iter().filter(|c| c.class == class).count() >= 5,
            "class {class} has fewer than 5 cases"
        );
    }

    let java_chains: Vec<Chain<'_>> = cases
        .iter()
        .filter(|c| c.java)
        .map(|c| Chain {
            name: &c.name,
            leaf: &c.leaf,
            chain: c.chain.as_deref(),
            anchors: &c.ca,
            crls: c.crls.iter().map(PathBuf::as_path).collect(),
        })
        .collect();
    let java: BTreeMap<String, Option<String>> =
        validate(dir.path(), &java_chains).into_iter().collect();
    assert_eq!(java.len(), java_chains.len(), "Java judged every chain");

    let mut table = String::new();
    let mut wrong = Vec::new();
    let mut lint_agreed = 0;
    let (mut openssl_refused, mut java_refused) = (0, 0);
    for c in &cases {
        let v = c.certmesh();
        let ok = v["ok"] == true;
        let error = v["error"].as_str().unwrap_or_default().to_string();
        let warnings: Vec<String> = v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap().to_string())
            .collect();
        let theirs = c.openssl.then(|| c.openssl());
        let java_says = java.get(&c.name).cloned();
        let verdict = |r: &Option<Option<String>>| match r {
            None => "-",
            Some(None) => "OK",
            Some(Some(_)) => "FAIL",
        };
        table.push_str(&format!(
            "{:<40} {:<17} expected {:<4} certmesh {:<4} openssl {:<4} java {:<4} {}\n",
            c.name,
            c.class,
            if c.expect_ok { "OK" } else { "FAIL" },
            if ok { "OK" } else { "FAIL" },
            verdict(&theirs),
            verdict(&java_says),
            if ok {
                warnings.join(" | ")
            } else {
                error.clone()
            }
        ));
        if ok != c.expect_ok {
            wrong.push(format!("{}: expected ok={}, got {v}", c.name, c.expect_ok));
        }
        if !ok && !error.contains(&c.reason) {
            wrong.push(format!("{}: error '{error}' lacks '{}'", c.name, c.reason));
        }
        if !ok && (error.contains('\n') || error.is_empty()) {
            wrong.push(format!("{}: not one line: '{error}'", c.name));
        }
        if ok && !c.warn.is_empty() && !warnings.iter().any(|w| w.contains(&c.warn)) {
            wrong.push(format!("{}: no warning '{}': {warnings:?}", c.name, c.warn));
        }
        if v["purpose"] != c.purpose_checked() {
            wrong.push(format!("{}: purpose {} checked", c.name, v["purpose"]));
        }
        if ok && !c.warn.is_empty() {
            // The text form says OK on stdout and the warning on stderr.
            let r = run(&mut c.command(false));
            if r.status != 0 || !r.stdout.contains(": OK (") || !r.stderr.contains(&c.warn) {
                wrong.push(format!("{}: text form lacks the warning: {r:?}", c.name));
            }
        }
        if !ok {
            match c.lint_agrees(&error) {
                Some(Ok(())) => lint_agreed += 1,
                Some(Err(why)) => wrong.push(format!("{}: {why}", c.name)),
                None => {}
            }
        }
        if let Some(Some(refusal)) = &theirs {
            openssl_refused += 1;
            let exempt = OPENSSL_NOT_A_RULE.iter().any(|e| refusal.starts_with(e));
            if ok && !exempt {
                wrong.push(format!(
                    "{}: openssl refuses ({refusal}), certmesh accepts",
                    c.name
                ));
            }
        }
        if let Some(Some(refusal)) = &java_says {
            java_refused += 1;
            if ok {
                wrong.push(format!(
                    "{}: Java refuses ({refusal}), certmesh accepts",
                    c.name
                ));
            }
        }
    }
    eprintln!("{table}");
    std::fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("verify-suite.txt"),
        &table,
    )
    .unwrap();
    // The independent validators did judge: they refuse the plainly broken chains.
    assert!(
        openssl_refused >= 40,
        "openssl refused only {openssl_refused}"
    );
    assert!(java_refused >= 30, "Java refused only {java_refused}");
    assert!(
        lint_agreed >= 15,
        "lint cross-checked only {lint_agreed} refusals"
    );
    assert!(wrong.is_empty(), "{}\n\n{table}", wrong.join("\n"));
}
