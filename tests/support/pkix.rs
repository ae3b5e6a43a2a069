//! Java's PKIX path validator (the one JSSE's default TrustManager uses), as an independent
//! second opinion on chains: a small program compiled once per test run that judges a
//! whole batch of cases in one JVM.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use super::run;

const VALIDATOR: &str = r#"
import java.io.*;
import java.nio.file.*;
import java.security.cert.*;
import java.util.*;

public class PkixBatch {
    static Collection<? extends Certificate> certs(CertificateFactory cf, String f) throws Exception {
        try (InputStream in = new FileInputStream(f)) { return cf.generateCertificates(in); }
    }
    public static void main(String[] a) throws Exception {
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        for (String line : Files.readAllLines(Paths.get(a[0]))) {
            String[] f = line.split("\t", -1);
            String verdict;
            try {
                List<Certificate> leafFile = new ArrayList<>(certs(cf, f[1]));
                X509Certificate leaf = (X509Certificate) leafFile.get(0);
                List<Object> pool = new ArrayList<>(leafFile);
                if (!f[2].isEmpty() && new File(f[2]).length() > 0) pool.addAll(certs(cf, f[2]));
                Set<TrustAnchor> anchors = new HashSet<>();
                for (Certificate c : certs(cf, f[3])) anchors.add(new TrustAnchor((X509Certificate) c, null));
                boolean crls = !f[4].isEmpty();
                if (crls) for (String c : f[4].split(",")) {
                    try (InputStream in = new FileInputStream(c)) { pool.addAll(cf.generateCRLs(in)); }
                }
                X509CertSelector sel = new X509CertSelector();
                sel.setCertificate(leaf);
                PKIXBuilderParameters p = new PKIXBuilderParameters(anchors, sel);
                p.addCertStore(CertStore.getInstance("Collection", new CollectionCertStoreParameters(pool)));
                CertPathBuilder b = CertPathBuilder.getInstance("PKIX");
                if (crls) {
                    PKIXRevocationChecker rc = (PKIXRevocationChecker) b.getRevocationChecker();
                    rc.setOptions(EnumSet.of(PKIXRevocationChecker.Option.PREFER_CRLS,
                        PKIXRevocationChecker.Option.NO_FALLBACK, PKIXRevocationChecker.Option.SOFT_FAIL));
                    p.addCertPathChecker(rc);
                } else {
                    p.setRevocationEnabled(false);
                }
                b.build(p);
                verdict = "OK";
            } catch (Exception e) {
                Throwable t = e;
                while (t.getCause() != null) t = t.getCause();
                verdict = "FAIL\t" + String.valueOf(t.getMessage()).replace('\n', ' ').replace('\t', ' ');
            }
            System.out.println(f[0] + "\t" + verdict);
        }
    }
}
"#;

fn classes() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("pkixbatch-")
            .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
            .unwrap()
            .keep();
        fs::write(dir.join("PkixBatch.java"), VALIDATOR).unwrap();
        run(Command::new("javac")
            .arg("-d")
            .arg(&dir)
            .arg(dir.join("PkixBatch.java")))
        .assert_success();
        dir
    })
}

/// One chain for the validator: the leaf file (its first certificate is the target, the
/// rest join the pool), an optional chain file, the trust anchors, and CRL files.
pub struct Chain<'a> {
    pub name: &'a str,
    pub leaf: &'a Path,
    pub chain: Option<&'a Path>,
    pub anchors: &'a Path,
    pub crls: Vec<&'a Path>,
}

/// Validates every chain with `CertPathBuilder.getInstance("PKIX")` (revocation, when
/// CRLs are given, from those CRLs only, an unknown status accepted). Returns, per name,
/// `None` when Java accepts and `Some(reason)` when it refuses.
pub fn validate(work: &Path, chains: &[Chain<'_>]) -> Vec<(String, Option<String>)> {
    let list = work.join("pkix-batch.tsv");
    let mut text = String::new();
    let s = |p: &Path| p.to_str().expect("UTF-8 path").to_string();
    for c in chains {
        let crls: Vec<String> = c.crls.iter().map(|p| s(p)).collect();
        text.push_str(&format!(
            "{}\t{}\t{}\t{}\t{}\n",
            c.name,
            s(c.leaf),
            c.chain.map(s).unwrap_or_default(),
            s(c.anchors),
            crls.join(",")
        ));
    }
    fs::write(&list, text).unwrap();
    let r = run(Command::new("java")
        .arg("-cp")
        .arg(classes())
        .arg("PkixBatch")
        .arg(&list));
    r.assert_success();
    r.stdout
        .lines()
        .map(|l| {
            let mut f = l.splitn(3, '\t');
            let name = f.next().unwrap_or_default().to_string();
            let verdict = f.next().unwrap_or_default();
            let reason = f.next().unwrap_or_default().to_string();
            (name, (verdict != "OK").then_some(reason))
        })
        .collect()
}
