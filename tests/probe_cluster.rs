//! The renewed file nobody reloaded: nginx keeps serving the previous certificate from
//! memory. `cluster status --probe` and `check --tls` must say so, and stop saying so once
//! nginx reloads.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::nginx::Nginx;
use support::openssl::{handshake_ok, openssl, s_client};
use support::pkilint::venv_python;
use support::{certmesh, cluster_apply, run, tempdir, Run};

fn apply(manifest: &Path, out: &Path) -> Run {
    cluster_apply(manifest, out)
}

fn status(manifest: &Path, out: &Path) -> Value {
    let r = run(certmesh()
        .args(["cluster", "status", "--probe", "--json"])
        .arg(manifest)
        .arg("--out")
        .arg(out));
    r.assert_success();
    serde_json::from_str(&r.stdout).unwrap()
}

fn check(manifest: &Path, out: &Path, ep: &str, prom: &Path) -> Run {
    run(certmesh()
        .args(["check", "--within", "1h", "--cluster"])
        .arg(manifest)
        .arg("--out")
        .arg(out)
        .args(["--tls", ep, "--prometheus"])
        .arg(prom))
}

/// The TLS metrics of a textfile, read with the Prometheus client's own parser:
/// "expiry_days probe_success serves_expected".
fn tls_metrics(prom: &Path, ep: &str) -> String {
    let script = r#"
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = {f.name: f for f in text_string_to_metric_families(open(sys.argv[1]).read())}
def one(name):
    s = [s for s in fams[name].samples if s.labels == {"endpoint": sys.argv[2]}]
    assert len(s) == 1, (name, fams[name].samples)
    return s[0].value
print(round(one("certmesh_tls_cert_expiry_seconds") / 86400), int(one("certmesh_tls_probe_success")), int(one("certmesh_tls_serves_expected")))
"#;
    let o = Command::new(venv_python())
        .arg("-c")
        .arg(script)
        .arg(prom)
        .arg(ep)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

fn served_serial(port: u16, ca: &Path) -> String {
    let r = s_client(port, ca, "web.cluster.test", &["-showcerts"]);
    assert!(handshake_ok(&r), "{r:?}");
    let start = r.stdout.find("-----BEGIN CERTIFICATE-----").unwrap();
    let end = r.stdout.find("-----END CERTIFICATE-----").unwrap() + 25;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("served.pem");
    fs::write(&f, &r.stdout[start..end]).unwrap();
    let s = openssl(&["x509", "-in", f.to_str().unwrap(), "-noout", "-serial"]);
    s.stdout.trim().trim_start_matches("serial=").to_lowercase()
}

#[test]
fn a_renewal_without_reload_is_seen_on_the_wire_until_nginx_reloads() {
    let dir = tempdir();
    let manifest = dir.path().join("cluster.toml");
    let out = dir.path().join("out");
    // days = 1 is inside the 30-day renew window: every apply renews.
    let text = |probe: &str| {
        format!(
            "name = \"served\"\n[defaults]\nprofile = \"nginx\"\n[[member]]\nname = \"web\"\ndns = [\"web.cluster.test\"]\nip = [\"127.0.0.1\"]\ndays = 1\n{probe}"
        )
    };
    fs::write(&manifest, text("")).unwrap();
    apply(&manifest, &out).assert_success();
    let nginx =
        Nginx::serve_reloadable(&out.join("web/fullchain.pem"), &out.join("web/privkey.pem"));
    let ep = format!("127.0.0.1:{}", nginx.port());
    fs::write(&manifest, text(&format!("probe = [\"{ep}\"]\n"))).unwrap();
    let ca = out.join("web/trust.pem");
    let prom = dir.path().join("certmesh.prom");

    // Serving what the files hold.
    let v = status(&manifest, &out);
    assert_eq!(v[0]["served"][0]["endpoint"], ep.as_str(), "{v}");
    assert_eq!(v[0]["served"][0]["serves"], "current", "{v}");
    let r = check(&manifest, &out, &ep, &prom);
    assert_eq!(r.status, 0, "{r:?}");
    assert!(r.stdout.contains("and 1 TLS endpoint(s)"), "{r:?}");
    assert_eq!(tls_metrics(&prom, &ep), "1 1 1");
    let old = served_serial(nginx.port(), &ca);

    // Renewed on disk, not reloaded: the wire still has the old serial.
    apply(&manifest, &out).assert_success();
    assert_eq!(served_serial(nginx.port(), &ca), old);
    let v = status(&manifest, &out);
    assert_eq!(v[0]["served"][0]["serves"], "previous", "{v}");
    assert_eq!(v[0]["served"][0]["serial"], old.as_str(), "{v}");
    assert_ne!(v[0]["served"][0]["expected_serial"], old.as_str(), "{v}");
    let text_status = run(certmesh()
        .args(["cluster", "status", "--probe"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out));
    assert!(
        text_status.stdout.contains(&format!(
            "{ep}: serves the previous certificate (serial {old};"
        )) && text_status.stdout.contains("reload missing"),
        "{text_status:?}"
    );
    let r = check(&manifest, &out, &ep, &prom);
    assert_eq!(r.status, 1, "WARNING: {r:?}");
    assert!(
        r.stdout.starts_with(&format!(
            "CERTMESH WARNING - {ep}: serves the previous certificate of web (serial {old};"
        )),
        "{r:?}"
    );
    assert_eq!(tls_metrics(&prom, &ep), "1 1 0");

    // After the reload: current again.
    nginx.reload();
    let start = Instant::now();
    while served_serial(nginx.port(), &ca) == old {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "nginx did not reload"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let v = status(&manifest, &out);
    assert_eq!(v[0]["served"][0]["serves"], "current", "{v}");
    let r = check(&manifest, &out, &ep, &prom);
    assert_eq!(r.status, 0, "{r:?}");
    assert_eq!(tls_metrics(&prom, &ep), "1 1 1");

    // Something certmesh did not issue, served under the member's name: CRITICAL.
    let stranger = dir.path().join("stranger");
    run(certmesh()
        .arg("--home")
        .arg(&stranger)
        .args(["ca", "init", "--name", "Stranger"]))
    .assert_success();
    run(certmesh().arg("--home").arg(&stranger).args([
        "issue",
        "web",
        "--dns",
        "web.cluster.test",
        "--ip",
        "127.0.0.1",
    ]))
    .assert_success();
    let other = Nginx::serve(
        &stranger.join("issued/web/fullchain.pem"),
        &stranger.join("issued/web/key.pem"),
    );
    let oep = format!("127.0.0.1:{}", other.port());
    fs::write(&manifest, text(&format!("probe = [\"{oep}\"]\n"))).unwrap();
    let v = status(&manifest, &out);
    assert_eq!(v[0]["served"][0]["serves"], "other", "{v}");
    let r = check(&manifest, &out, &oep, &prom);
    assert_eq!(r.status, 2, "{r:?}");
    assert!(
        r.stdout
            .contains("serves a certificate certmesh did not issue"),
        "{r:?}"
    );
}
