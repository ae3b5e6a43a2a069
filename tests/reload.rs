//! A member renewed from cron: `renew --cluster` writes the member's new files, they are
//! put where nginx reads them and nginx reloads (what a member's deploy step does; the
//! SSH push itself is tested in tests/deploy.rs), and clients connecting all the while
//! never see a failed handshake.

mod support;

use std::fs;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use support::nginx::Nginx;
use support::openssl::{handshake_ok, openssl, s_client};
use support::{certmesh, cluster_apply, run, tempdir};

fn served_serial(port: u16, ca: &std::path::Path) -> String {
    let r = s_client(port, ca, "web.cluster.test", &["-showcerts"]);
    assert!(handshake_ok(&r), "{r:?}");
    let pem_start = r.stdout.find("-----BEGIN CERTIFICATE-----").unwrap();
    let pem_end = r.stdout.find("-----END CERTIFICATE-----").unwrap() + 25;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("served.pem");
    fs::write(&f, &r.stdout[pem_start..pem_end]).unwrap();
    openssl(&["x509", "-in", f.to_str().unwrap(), "-noout", "-serial"])
        .stdout
        .trim()
        .to_string()
}

#[test]
fn renewal_reaches_the_server_without_a_failed_handshake() {
    let dir = tempdir();
    let manifest = dir.path().join("cluster.toml");
    let served = dir.path().join("served");
    fs::create_dir(&served).unwrap();
    // The member's "host" is this machine: its deploy step copies the files where nginx
    // reads them and reloads it (the SSH path is covered by tests/deploy.rs).
    let text = |days: &str| {
        format!(
            "name = \"reload\"\n[defaults]\nprofile = \"nginx\"\n[[member]]\nname = \"web\"\ndns = [\"web.cluster.test\"]\n{days}"
        )
    };
    fs::write(&manifest, text("days = 1\n")).unwrap();
    let out = dir.path().join("out");
    cluster_apply(&manifest, &out).assert_success();
    for f in ["fullchain.pem", "privkey.pem"] {
        fs::copy(out.join("web").join(f), served.join(f)).unwrap();
    }
    let nginx = Nginx::serve_reloadable(&served.join("fullchain.pem"), &served.join("privkey.pem"));
    let ca = out.join("web/trust.pem");
    let before = served_serial(nginx.port(), &ca);

    // Clients keep connecting during the renewal and the reload.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let port = nginx.port();
    let loop_ca = ca.clone();
    let clients = {
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        std::thread::spawn(move || {
            let mut failures = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let r = s_client(port, &loop_ca, "web.cluster.test", &[]);
                if handshake_ok(&r) {
                    ok.fetch_add(1, Ordering::SeqCst);
                } else {
                    failed.fetch_add(1, Ordering::SeqCst);
                    failures.push(r);
                }
            }
            failures
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    fs::write(&manifest, text("")).unwrap();
    let r = run(certmesh()
        .args(["renew", "--cluster"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .args(["--within", "3d"]));
    r.assert_success();
    assert!(r.stdout.contains("renewed web"), "{r:?}");
    // The deploy-and-reload step a member's reload command performs.
    for f in ["fullchain.pem", "privkey.pem"] {
        fs::copy(out.join("web").join(f), served.join(format!("{f}.new"))).unwrap();
        fs::rename(served.join(format!("{f}.new")), served.join(f)).unwrap();
    }
    nginx.reload();
    std::thread::sleep(Duration::from_millis(1500));
    stop.store(true, Ordering::SeqCst);
    let failures = clients.join().unwrap();
    assert!(
        failures.is_empty(),
        "{} handshakes failed during the renewal: {:?}",
        failures.len(),
        failures.first()
    );
    assert!(ok.load(Ordering::SeqCst) >= 3, "the client loop ran");
    let after = served_serial(nginx.port(), &ca);
    assert_ne!(before, after, "nginx serves the renewed certificate");
    let on_disk = openssl(&[
        "x509",
        "-in",
        out.join("web/fullchain.pem").to_str().unwrap(),
        "-noout",
        "-serial",
    ])
    .stdout
    .trim()
    .to_string();
    assert_eq!(after, on_disk);
}
