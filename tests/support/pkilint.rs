//! pkilint 0.13 (https://github.com/digicert/pkilint), installed by
//! scripts/test into the test venv, as an independent RFC 5280 linter.
//!
//! What its CLI does (checked against 0.13.3):
//! * `lint_pkix_cert lint [-s SEVERITY] [-f TEXT|CSV|JSON]
//!   [--document-format DETECT|BASE64|DER|PEM] FILE` (PEM or DER, detected).
//! * `-s` is a threshold: findings *less* severe than it are not reported.
//!   Order: FATAL > ERROR > WARNING > NOTICE > INFO > DEBUG; default INFO
//!   (so DEBUG is hidden); `ALL` shows everything.
//! * `-f CSV` prints the header `node_path,validator,severity,code,message`
//!   and one RFC 4180 row per finding (CRLF line ends, `message` empty when
//!   the finding has none), then a blank line.
//! * Exit code: the number of reported findings (capped at 255), so 0 means
//!   clean at that threshold; 1 with "Failed to load certificate: ..." on
//!   stderr and nothing on stdout when the file is not a certificate;
//!   2 for argparse errors (e.g. the file does not exist).
//! * Note: pkilint reports a single-label dNSName such as `localhost` as
//!   `pkix.invalid_domain_name_syntax` (ERROR); use dotted names in tests.

use std::env;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::{run, Run};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// FATAL, ERROR, WARNING, NOTICE, INFO (or DEBUG).
    pub severity: String,
    /// e.g. `pkix.ee_certificate_keycertsign_keyusage_set`.
    pub code: String,
    /// Often empty.
    pub message: String,
    /// Where in the document, e.g. `certificate.tbsCertificate.extensions.3.extnValue.keyUsage`.
    pub node_path: String,
    /// e.g. `KeyUsageValidator`.
    pub validator: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.severity, self.code)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        write!(f, " ({} @ {})", self.validator, self.node_path)
    }
}

/// The test venv: `$CERTMESH_VENV`, else `<crate>/target/test-venv`.
pub fn venv_dir() -> PathBuf {
    match env::var_os("CERTMESH_VENV") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-venv"),
    }
}

/// The program `name` in the venv's bin/, panicking with a hint if absent.
#[track_caller]
pub fn venv_bin(name: &str) -> PathBuf {
    let p = venv_dir().join("bin").join(name);
    assert!(
        p.exists(),
        "{} not found: run scripts/test to install pkilint (and the test venv)",
        p.display()
    );
    p
}

/// The venv's python, which has `cryptography`, `jks` (pyjks) and `pkilint`.
#[track_caller]
pub fn venv_python() -> PathBuf {
    venv_bin("python")
}

/// `lint_pkix_cert lint` on a PEM (or DER) certificate: every finding at
/// INFO or above. Panics if pkilint fails to run or to load the certificate.
#[track_caller]
pub fn lint_pkix_cert(pem: &Path) -> Vec<Finding> {
    lint_with("lint_pkix_cert", &[], pem)
}

/// Runs `TOOL lint -s INFO -f CSV EXTRA... FILE` for any pkilint linter
/// (e.g. `lint_cabf_serverauth_cert` with `["-t", "ROOT-CA"]`, `lint_crl`
/// with `["-t", "CRL", "-p", "PKIX"]`) and parses its findings.
#[track_caller]
pub fn lint_with(tool: &str, extra: &[&str], file: &Path) -> Vec<Finding> {
    let exe = venv_bin(tool);
    let r: Run = run(Command::new(&exe)
        .args(["lint", "-s", "INFO", "-f", "CSV"])
        .args(extra)
        .arg(file));
    let rows = parse_csv(&r.stdout);
    let header = ["node_path", "validator", "severity", "code", "message"];
    let ok_header = rows
        .first()
        .is_some_and(|h| h.iter().map(String::as_str).eq(header));
    assert!(
        ok_header,
        "{tool} on {} gave no CSV report:\n{r:?}",
        file.display()
    );
    let findings: Vec<Finding> = rows[1..]
        .iter()
        .filter(|row| !(row.len() == 1 && row[0].is_empty()))
        .map(|row| {
            assert!(
                row.len() == 5,
                "unexpected pkilint CSV row {row:?} in:\n{r:?}"
            );
            Finding {
                node_path: row[0].clone(),
                validator: row[1].clone(),
                severity: row[2].clone(),
                code: row[3].clone(),
                message: row[4].clone(),
            }
        })
        .collect();
    // The exit code is the finding count (capped): anything else means the
    // run itself went wrong.
    assert!(
        r.status == findings.len().min(255) as i32,
        "{tool} exit status {} does not match {} findings:\n{r:?}",
        r.status,
        findings.len()
    );
    findings
}

/// What [`lint_batch`] lints a file as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Doc {
    /// `lint_pkix_cert lint`.
    Cert,
    /// `lint_crl lint -t CRL -p PKIX`.
    Crl,
}

/// Many files through pkilint's own command-line entry points in one Python process
/// (each `lint_*` run costs about a second of start-up): the same findings as
/// [`lint_pkix_cert`] / `lint_crl -t CRL -p PKIX` give, by file. Panics if pkilint
/// cannot load a file.
#[track_caller]
pub fn lint_batch(files: &[(Doc, PathBuf)]) -> Vec<(PathBuf, Finding)> {
    const DRIVER: &str = r#"
import contextlib, io, sys
from pkilint.bin import lint_crl, lint_pkix_cert
args = sys.argv[1:]
for kind, path in zip(args[::2], args[1::2]):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        if kind == "cert":
            rc = lint_pkix_cert.main(["lint", "-s", "INFO", "-f", "CSV", path])
        else:
            rc = lint_crl.main(["lint", "-t", "CRL", "-p", "PKIX", "-s", "INFO", "-f", "CSV", path])
    sys.stdout.write("@@@ %d %s\n%s" % (rc, path, out.getvalue()))
    if err.getvalue():
        sys.stderr.write("%s: %s" % (path, err.getvalue()))
"#;
    let mut cmd = Command::new(venv_python());
    cmd.args(["-c", DRIVER]);
    for (kind, path) in files {
        cmd.arg(match kind {
            Doc::Cert => "cert",
            Doc::Crl => "crl",
        });
        cmd.arg(path);
    }
    let r: Run = run(&mut cmd);
    assert!(
        r.status == 0 && r.stderr.is_empty(),
        "pkilint batch failed:\n{r:?}"
    );
    let mut out = Vec::new();
    let mut seen = 0;
    for chunk in r.stdout.split("@@@ ").skip(1) {
        let (head, csv) = chunk.split_once('\n').expect("marker line");
        let (rc, path) = head.split_once(' ').expect("rc and path");
        let rows = parse_csv(csv);
        let header = ["node_path", "validator", "severity", "code", "message"];
        assert!(
            rows.first()
                .is_some_and(|h| h.iter().map(String::as_str).eq(header)),
            "pkilint gave no CSV report for {path}:\n{r:?}"
        );
        let mut n = 0;
        for row in rows[1..]
            .iter()
            .filter(|row| !(row.len() == 1 && row[0].is_empty()))
        {
            assert!(row.len() == 5, "unexpected pkilint CSV row {row:?}");
            n += 1;
            out.push((
                PathBuf::from(path),
                Finding {
                    node_path: row[0].clone(),
                    validator: row[1].clone(),
                    severity: row[2].clone(),
                    code: row[3].clone(),
                    message: row[4].clone(),
                },
            ));
        }
        assert_eq!(rc.parse::<usize>().ok(), Some(n.min(255)), "{path}: {r:?}");
        seen += 1;
    }
    assert_eq!(seen, files.len(), "pkilint linted every file: {r:?}");
    out
}

/// The findings that matter: WARNING, ERROR and FATAL (not NOTICE/INFO/DEBUG).
pub fn at_least_warning(f: &[Finding]) -> Vec<&Finding> {
    f.iter()
        .filter(|x| matches!(x.severity.as_str(), "WARNING" | "ERROR" | "FATAL"))
        .collect()
}

/// One finding per line, for assertion messages.
pub fn describe(f: &[&Finding]) -> String {
    f.iter().map(|x| format!("  {x}\n")).collect()
}

/// Minimal RFC 4180 reader: quoted fields (with `""` escapes and embedded
/// newlines), CRLF or LF line ends. Returns the rows; an empty line is a row
/// with one empty field.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut in_quotes = false;
    let mut chars = text.chars().peekable();
    let mut dirty = false; // anything seen since the last row ended
    while let Some(c) = chars.next() {
        dirty = true;
        if in_quotes {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => in_quotes = false,
                _ => field.push(c),
            }
            continue;
        }
        match c {
            '"' => in_quotes = true,
            ',' => row.push(std::mem::take(&mut field)),
            '\r' if chars.peek() == Some(&'\n') => {}
            '\n' => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
                dirty = false;
            }
            _ => field.push(c),
        }
    }
    if dirty {
        row.push(field);
        rows.push(row);
    }
    rows
}
