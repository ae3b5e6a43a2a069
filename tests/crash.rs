//! Crash safety: `renew` killed with SIGKILL after every possible number of file writes
//! leaves every key with its certificate, and the next run finishes the job.

mod support;

use std::fs;
use std::path::Path;
use std::process::Command;

use support::{certmesh, cluster_apply, run, tempdir};

const MEMBERS: [&str; 4] = ["a", "b", "c", "d"];

fn manifest() -> String {
    let mut m = String::from(
        "name = \"crash\"\n[ca]\nintermediate = true\n[defaults]\nprofile = \"haproxy\"\n",
    );
    for n in MEMBERS {
        m.push_str(&format!("[[member]]\nname = \"{n}\"\ndns = [\"{n}.cluster.test\"]\ndays = 1\nprofile = \"{}\"\n", if n == "a" { "nginx" } else { "haproxy" }));
    }
    m
}

/// Every key in the output sits with its certificate, and every file parses.
fn consistent(out: &Path) -> Result<(), String> {
    let key_match = |key: &Path, cert: &Path| -> Result<(), String> {
        let r = run(certmesh().args(["key", "match"]).arg(key).arg(cert));
        if r.success() {
            Ok(())
        } else {
            Err(format!(
                "{} / {}: {}",
                key.display(),
                cert.display(),
                r.stderr.trim()
            ))
        }
    };
    for m in MEMBERS {
        let issued = out.join("pki/ca/issued").join(m);
        if issued.exists() {
            key_match(&issued.join("key.pem"), &issued.join("cert.pem"))?;
        }
        let dir = out.join(m);
        if !dir.exists() {
            continue;
        }
        if m == "a" {
            key_match(&dir.join("privkey.pem"), &dir.join("fullchain.pem"))?;
        } else {
            // haproxy.pem holds the chain and the key together.
            key_match(&dir.join("haproxy.pem"), &dir.join("haproxy.pem"))?;
        }
    }
    Ok(())
}

#[test]
fn renew_killed_at_every_write_leaves_pairs_intact_and_converges() {
    let dir = tempdir();
    let base = dir.path().join("base");
    fs::create_dir(&base).unwrap();
    let manifest_path = base.join("cluster.toml");
    fs::write(&manifest_path, manifest()).unwrap();
    cluster_apply(&manifest_path, base.join("out")).assert_success();
    consistent(&base.join("out")).unwrap();
    // From now on members get a year: one renewal makes them current.
    fs::write(&manifest_path, manifest().replace("days = 1\n", "")).unwrap();

    for k in 1..200 {
        let crashes = k - 1;
        let work = dir.path().join(format!("run-{k}"));
        let cp = Command::new("cp")
            .arg("-a")
            .arg(&base)
            .arg(&work)
            .status()
            .unwrap();
        assert!(cp.success());
        let out = work.join("out");
        let renew = |crash: Option<usize>| {
            let mut cmd = certmesh();
            cmd.args(["renew", "--cluster"])
                .arg(work.join("cluster.toml"))
                .arg("--out")
                .arg(&out)
                .args(["--within", "3d"]);
            if let Some(n) = crash {
                cmd.env("CERTMESH_TEST_CRASH_AFTER_WRITES", n.to_string());
            }
            run(&mut cmd)
        };
        let r = renew(Some(k));
        if r.status == 0 {
            // The whole run fits in k writes: every crash point has been tried.
            assert!(crashes > 10, "too few crash points: {crashes}");
            fs::remove_dir_all(&work).unwrap();
            return;
        }
        assert_eq!(r.status, -1, "killed by the signal at write {k}: {r:?}");
        if let Err(e) = consistent(&out) {
            panic!("after a crash at write {k}: {e}");
        }
        let again = renew(None);
        again.assert_success();
        consistent(&out).unwrap_or_else(|e| panic!("after the rerun of crash {k}: {e}"));
        let r = cluster_apply(work.join("cluster.toml"), &out);
        assert!(
            r.stdout.contains("nothing to do"),
            "crash {k}: the rerun did not converge: {r:?}"
        );
        let leftovers: Vec<String> = walk(&out)
            .into_iter()
            .filter(|p| {
                p.contains(".certmesh-")
                    && !p.contains(".certmesh-state")
                    && !p.contains(".certmesh-deployed")
            })
            .collect();
        assert!(
            leftovers.is_empty(),
            "crash {k}: temporaries left after the rerun: {leftovers:?}"
        );
        fs::remove_dir_all(&work).unwrap();
    }
    panic!("the run never completed within 200 writes");
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        }
        out.push(p.display().to_string());
    }
    out
}
