//! `cluster export ansible`: the exported playbook, run by ansible-core from the test venv,
//! delivers a mixed cluster to loopback sshd hosts, reloads nginx (which then serves the
//! new certificate to `openssl s_client`), changes nothing on a second run, delivers only
//! what `renew --cluster` renewed, and changes nothing in check mode. Members taken from
//! an Ansible inventory, and that inventory's error cases.

mod support;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use support::ansible::{playbook, recap_changed};
use support::nginx::Nginx;
use support::openssl::{handshake_ok, openssl, s_client};
use support::pkilint::venv_bin;
use support::sshd::Sshd;
use support::{certmesh, cluster_apply, mode, run, snapshot, tempdir, Run};

/// Serial of the certificate nginx on `port` serves for `name`, waiting (bounded) until
/// it is `want` when given: a reloaded nginx starts new workers a moment after the signal.
fn served_serial(port: u16, ca: &Path, name: &str, want: Option<&str>) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let r = s_client(port, ca, name, &[]);
        assert!(handshake_ok(&r), "{r:?}");
        let start = r.stdout.find("-----BEGIN CERTIFICATE-----");
        let serial = match start {
            Some(s) => {
                let end = r.stdout.find("-----END CERTIFICATE-----").unwrap() + 25;
                let dir = tempdir();
                let f = dir.path().join("served.pem");
                fs::write(&f, &r.stdout[s..end]).unwrap();
                openssl(&["x509", "-in", f.to_str().unwrap(), "-noout", "-serial"])
                    .stdout
                    .trim()
                    .to_string()
            }
            None => String::new(),
        };
        if want.is_none_or(|w| w == serial) || Instant::now() > deadline {
            return serial;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn file_serial(pem: &Path) -> String {
    openssl(&["x509", "-in", pem.to_str().unwrap(), "-noout", "-serial"])
        .stdout
        .trim()
        .to_string()
}

fn reloads(remote: &Path, member: &str) -> usize {
    fs::read_to_string(remote.join(format!("{member}.reloads")))
        .map(|s| s.lines().count())
        .unwrap_or(0)
}

/// The base64 lines of every private key under `out`: none may appear in Ansible output.
fn key_lines(out: &Path, members: &[&str]) -> Vec<String> {
    let mut lines = Vec::new();
    for m in members {
        let p = out.join(m).join("privkey.pem");
        if let Ok(text) = fs::read_to_string(&p) {
            lines.extend(
                text.lines()
                    .filter(|l| !l.starts_with("-----") && l.len() > 16)
                    .map(String::from),
            );
        }
    }
    lines
}

#[track_caller]
fn assert_no_secret(r: &Run, secrets: &[String]) {
    for s in secrets {
        assert!(
            !r.stdout.contains(s.as_str()) && !r.stderr.contains(s.as_str()),
            "a private key line reached Ansible's output: {r:?}"
        );
    }
}

#[test]
fn exported_playbook_delivers_reloads_and_then_changes_nothing() {
    let dir = tempdir();
    let sshdir = dir.path().join("ssh");
    fs::create_dir(&sshdir).unwrap();
    let sshd = Sshd::start_many(&sshdir, 3, &["web-a", "web-b", "app", "st"]);
    let remote = dir.path().join("remote");
    fs::create_dir(&remote).unwrap();
    let r = remote.display();
    // Every reload command logs that it ran; nginx members also signal their nginx
    // once the test has started it (its pid file is linked next to the log).
    let reload = |m: &str| {
        format!("date +%s%N >> {r}/{m}.reloads; if [ -e {r}/{m}.pid ]; then kill -HUP \"$(cat {r}/{m}.pid)\"; fi")
    };
    let member = |name: &str, profile: &str, host: &str, extra: &str| {
        format!(
            "[[member]]\nname = \"{name}\"\ndns = [\"{name}.fleet.test\"]\nprofile = \"{profile}\"\n{extra}[member.deploy]\nhost = \"{host}\"\ndir = \"{r}/{name}\"\nreload = '{}'\n",
            reload(name)
        )
    };
    let text = |web_a_extra: &str| {
        [
            "name = \"fleet\"\ntrust = \"mesh\"\n".to_string(),
            member("web-a", "nginx", "web-a", web_a_extra),
            member("web-b", "nginx", "web-b", ""),
            member("app", "java-generic", "app", "")
                .replace("[member.deploy]\n", "[member.deploy]\nowner = \"nobody\"\n"),
            member("st-1", "securetransport", "st", ""),
            member("st-2", "securetransport", "st", ""),
        ]
        .concat()
    };
    let manifest = dir.path().join("cluster.toml");
    fs::write(&manifest, text("")).unwrap();
    let out = dir.path().join("out");
    let proj = dir.path().join("ansible");
    let applied = cluster_apply(&manifest, &out);
    applied.assert_success();
    let export = run(certmesh()
        .args(["cluster", "export", "ansible"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .arg("--to")
        .arg(&proj));
    export.assert_success();
    assert!(
        export.stdout.contains("st (defined here): st-1, st-2"),
        "{export:?}"
    );
    for f in [
        "inventory.yml",
        "site.yml",
        "ansible.cfg",
        "roles/certmesh/tasks/main.yml",
        "roles/certmesh/handlers/main.yml",
    ] {
        assert!(proj.join(f).is_file(), "{f} missing");
    }
    let members = ["web-a", "web-b", "app", "st-1", "st-2"];
    let secrets = key_lines(&out, &members);
    assert!(!secrets.is_empty());
    let hosts = ["app", "st", "web-a", "web-b"];

    // The real run: every member's files, with their modes, owners, and one reload each.
    // No nginx serves them yet, so the controller has no certmesh to probe with: the
    // probe step is skipped, as on a controller without certmesh.
    let no_certmesh = r#"{"certmesh_bin": "/nonexistent/certmesh"}"#;
    let first = playbook(&proj, &sshd, &["--diff", "-e", no_certmesh]);
    first.assert_success();
    assert_no_secret(&first, &secrets);
    for h in hosts {
        assert!(recap_changed(&first)[h] > 0, "{first:?}");
    }
    for (m, files) in [
        ("web-a", &["fullchain.pem", "privkey.pem", "trust.pem"][..]),
        ("web-b", &["fullchain.pem", "privkey.pem", "trust.pem"][..]),
        ("app", &["keystore.p12", "truststore.p12"][..]),
        (
            "st-1",
            &["cluster.p12", "peer-signers.pem", "own-signer.pem"][..],
        ),
        (
            "st-2",
            &["cluster.p12", "peer-signers.pem", "own-signer.pem"][..],
        ),
    ] {
        for f in files {
            let (local, there) = (out.join(m).join(f), remote.join(m).join(f));
            assert_eq!(
                fs::read(&there).unwrap(),
                fs::read(&local).unwrap(),
                "{m}/{f}"
            );
            assert_eq!(mode(&there), mode(&local), "{m}/{f}");
        }
        assert!(!remote.join(m).join("crl.pem").exists(), "no CRL yet");
        assert_eq!(reloads(&remote, m), 1, "{m}");
    }
    assert_eq!(mode(&remote.join("web-a/privkey.pem")), 0o600);
    assert_eq!(mode(&remote.join("st-1/cluster.p12")), 0o600);
    let nobody = fs::metadata(remote.join("app/keystore.p12")).unwrap().uid();
    assert_ne!(nobody, 0, "app's files belong to its deploy owner");

    // nginx serves the delivered files; its reload command can now signal it.
    let web = |m: &str| {
        let n = Nginx::serve_reloadable(
            &remote.join(m).join("fullchain.pem"),
            &remote.join(m).join("privkey.pem"),
        );
        std::os::unix::fs::symlink(n.dir().join("nginx.pid"), remote.join(format!("{m}.pid")))
            .unwrap();
        n
    };
    let (nginx_a, nginx_b) = (web("web-a"), web("web-b"));
    // Every member's trust bundle holds every signer of the mesh.
    let ca_a = out.join("web-a/trust.pem");
    let ca_b = out.join("web-b/trust.pem");
    let serial_b = file_serial(&out.join("web-b/fullchain.pem"));
    let old_a = file_serial(&out.join("web-a/fullchain.pem"));
    assert_eq!(
        served_serial(nginx_a.port(), &ca_a, "web-a.fleet.test", None),
        old_a
    );

    // Second run: nothing changed, nothing reloaded; the probe step runs where the
    // controller's certmesh has `probe` (a stand-in here that records its arguments).
    let fake = dir.path().join("fake-certmesh");
    let probes = dir.path().join("probes");
    fs::write(
        &fake,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", probes.display()),
    )
    .unwrap();
    fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let extra = format!(
        "{{\"certmesh_bin\": \"{}\", \"certmesh_probe\": {{\"web-a\": [\"127.0.0.1:{}\"]}}}}",
        fake.display(),
        nginx_a.port()
    );
    let second = playbook(&proj, &sshd, &["--diff", "-e", &extra]);
    second.assert_success();
    assert!(
        recap_changed(&second).values().all(|c| *c == 0),
        "{second:?}"
    );
    for m in members {
        assert_eq!(reloads(&remote, m), 1, "{m}");
    }
    let probed = fs::read_to_string(&probes).unwrap();
    let chain = out.join("pki/signers/web-a/issued/web-a/chain.pem");
    assert!(chain.is_file());
    assert!(
        probed.contains(&format!(
            "probe 127.0.0.1:{} --host web-a.fleet.test --ca {}",
            nginx_a.port(),
            fs::canonicalize(&chain).unwrap().display()
        )),
        "{probed}"
    );
    // The others are probed where `cluster apply --deploy` probes them: their first name
    // on the profile's probe_port.
    for (m, port) in [("web-b", 443), ("app", 8443), ("st-1", 443), ("st-2", 443)] {
        assert!(
            probed.contains(&format!(
                "probe {m}.fleet.test:{port} --host {m}.fleet.test --ca"
            )),
            "{m}: {probed}"
        );
    }
    assert_eq!(
        probed
            .lines()
            .filter(|l| l.starts_with("probe ") && !l.ends_with("--help"))
            .count(),
        5,
        "{probed}"
    );

    // renew from cron renews web-a only (its window now covers its lifetime) and leaves
    // delivery to the playbook.
    fs::write(&manifest, text("renew_before = \"400d\"\n")).unwrap();
    let renew = run(certmesh()
        .args(["renew", "--no-deploy", "--cluster"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out));
    renew.assert_success();
    assert!(renew.stdout.contains("renewed web-a"), "{renew:?}");
    let new_a = file_serial(&out.join("web-a/fullchain.pem"));
    assert_ne!(new_a, old_a);
    let secrets = key_lines(&out, &members);

    // Check mode shows web-a would change and changes nothing.
    let before = snapshot(&remote);
    let check = playbook(&proj, &sshd, &["--check", "--diff", "-v"]);
    check.assert_success();
    assert_no_secret(&check, &secrets);
    let changed = recap_changed(&check);
    assert!(changed["web-a"] > 0, "{check:?}");
    for h in ["app", "st", "web-b"] {
        assert_eq!(changed[h], 0, "{h}: {check:?}");
    }
    assert_eq!(snapshot(&remote), before, "check mode changed the hosts");

    // The run delivers web-a alone, and only its handler runs; then the controller's
    // certmesh probes both nginx members (on their loopback ports) and accepts what they
    // serve: web-a its renewed certificate, reloaded by the handler before the probe.
    let real_probes = format!(
        r#"{{"certmesh_probe": {{"web-a": ["127.0.0.1:{}"], "web-b": ["127.0.0.1:{}"], "app": [], "st-1": [], "st-2": []}}}}"#,
        nginx_a.port(),
        nginx_b.port()
    );
    let third = playbook(&proj, &sshd, &["--diff", "-e", &real_probes]);
    third.assert_success();
    assert_no_secret(&third, &secrets);
    let changed = recap_changed(&third);
    assert!(changed["web-a"] > 0, "{third:?}");
    for h in ["app", "st", "web-b"] {
        assert_eq!(changed[h], 0, "{h}: {third:?}");
    }
    assert_eq!(reloads(&remote, "web-a"), 2);
    for m in ["web-b", "app", "st-1", "st-2"] {
        assert_eq!(reloads(&remote, m), 1, "{m}");
    }
    assert_eq!(
        served_serial(nginx_a.port(), &ca_a, "web-a.fleet.test", Some(&new_a)),
        new_a,
        "nginx serves the renewed certificate: {}",
        nginx_a.logs()
    );
    assert_eq!(
        served_serial(nginx_b.port(), &ca_b, "web-b.fleet.test", None),
        serial_b
    );
}

/// An inventory of groups and host variables, as `ansible-inventory --list` prints it.
const HOSTS: &str = r#"all:
  children:
    web:
      hosts:
        web1: {certmesh_dns: [web1.fleet.test, www.fleet.test], certmesh_ip: 10.0.0.1}
        web2: {certmesh_dns: web2.fleet.test, certmesh_ip: 10.0.0.2}
      children:
        web_eu:
          hosts:
            web3: {certmesh_dns: web3.fleet.test, certmesh_ip: 10.0.0.3}
    app:
      hosts:
        app1: {certmesh_dns: app1.fleet.test, certmesh_ip: 10.0.1.1}
    db:
      hosts:
        db1: {certmesh_ip: 10.0.2.1}
"#;

fn inventory_manifest(source: &str, groups: &str) -> String {
    format!(
        r#"name = "inv"
[defaults]
profile = "nginx"

[ansible]
{source}
dns = ["inventory_hostname", "certmesh_dns"]
ip = ["certmesh_ip"]
dir = "/srv/certs/{{member}}"
{groups}
# A member written here, delivered to a host of the inventory.
[[member]]
name = "lb"
dns = ["lb.fleet.test"]
inventory_host = "web1"
"#
    )
}

const GROUPS: &str = "[[ansible.group]]\nname = \"web\"\n\n[[ansible.group]]\nname = \"app\"\nprofile = \"java-generic\"\n";

#[test]
fn members_come_from_an_ansible_inventory() {
    let dir = tempdir();
    let d = dir.path();
    fs::write(d.join("hosts.yml"), HOSTS).unwrap();
    let inv = run(std::process::Command::new(venv_bin("ansible-inventory"))
        .current_dir(d)
        .args(["-i", "hosts.yml", "--list"]));
    inv.assert_success();
    fs::write(d.join("inv.json"), &inv.stdout).unwrap();
    let manifest = d.join("cluster.toml");
    let out = d.join("out");
    let plan = |text: &str| {
        fs::write(&manifest, text).unwrap();
        run(certmesh()
            .args(["cluster", "plan", "--json"])
            .arg(&manifest)
            .arg("--out")
            .arg(&out))
    };

    // From the file, and from the command run by certmesh: the same members.
    let from_file = inventory_manifest("inventory = \"inv.json\"", GROUPS);
    let command = format!(
        "inventory_command = [\"{}\", \"-i\", \"hosts.yml\", \"--list\"]",
        venv_bin("ansible-inventory").display()
    );
    for text in [from_file.clone(), inventory_manifest(&command, GROUPS)] {
        let p = plan(&text);
        p.assert_success();
        let v: serde_json::Value = serde_json::from_str(&p.stdout).unwrap();
        let members: Vec<(String, String)> = v["members"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["name"].as_str().unwrap().to_string(),
                    m["profile"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        let want = [
            ("lb", "nginx"),
            ("web1", "nginx"),
            ("web2", "nginx"),
            ("web3", "nginx"),
            ("app1", "java-generic"),
        ];
        assert_eq!(
            members,
            want.map(|(a, b)| (a.to_string(), b.to_string())),
            "{p:?}"
        );
    }
    assert!(!out.exists(), "plan writes nothing");
    let early = run(certmesh()
        .args(["cluster", "export", "ansible"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .arg("--to")
        .arg(d.join("ansible")));
    assert_eq!(early.status, 1, "{early:?}");
    assert!(
        early
            .stderr
            .contains("out: no such directory: run `certmesh cluster apply` first"),
        "{early:?}"
    );
    assert!(!d.join("ansible").exists());

    // The certificates carry the names and addresses from the host variables.
    fs::write(&manifest, &from_file).unwrap();
    cluster_apply(&manifest, &out).assert_success();
    let san = openssl(&[
        "x509",
        "-in",
        out.join("web1/fullchain.pem").to_str().unwrap(),
        "-noout",
        "-ext",
        "subjectAltName",
    ]);
    for name in [
        "DNS:web1,",
        "DNS:web1.fleet.test",
        "DNS:www.fleet.test",
        "IP Address:10.0.0.1",
    ] {
        assert!(san.stdout.contains(name), "{name}: {san:?}");
    }

    // The export delivers to the inventory's own hosts: no connection variables of its
    // own, and Ansible merges both inventories.
    let proj = d.join("ansible");
    let export = run(certmesh()
        .args(["cluster", "export", "ansible", "--json"])
        .arg(&manifest)
        .arg("--out")
        .arg(&out)
        .arg("--to")
        .arg(&proj));
    export.assert_success();
    let v: serde_json::Value = serde_json::from_str(&export.stdout).unwrap();
    assert_eq!(v["group"], "certmesh_inv");
    let web1 = v["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["host"] == "web1")
        .unwrap();
    assert_eq!(web1["defined"], false);
    assert_eq!(web1["members"], serde_json::json!(["lb", "web1"]));
    let host = run(std::process::Command::new(venv_bin("ansible-inventory"))
        .current_dir(d)
        .args([
            "-i",
            "hosts.yml",
            "-i",
            "ansible/inventory.yml",
            "--host",
            "web1",
        ]));
    host.assert_success();
    let hv: serde_json::Value = serde_json::from_str(&host.stdout).unwrap();
    assert_eq!(hv["certmesh_ip"], "10.0.0.1", "{hv}");
    assert!(hv.get("ansible_host").is_none(), "{hv}");
    let dests: Vec<&str> = hv["certmesh_files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["dest"].as_str().unwrap())
        .collect();
    assert!(dests.contains(&"/srv/certs/lb/privkey.pem"), "{dests:?}");
    assert!(
        dests.contains(&"/srv/certs/web1/fullchain.pem"),
        "{dests:?}"
    );
    let graph = run(std::process::Command::new(venv_bin("ansible-inventory"))
        .current_dir(d)
        .args([
            "-i",
            "hosts.yml",
            "-i",
            "ansible/inventory.yml",
            "--graph",
            "certmesh_inv",
        ]));
    graph.assert_success();
    for h in ["web1", "web2", "web3", "app1"] {
        assert!(graph.stdout.contains(h), "{graph:?}");
    }
    assert!(!graph.stdout.contains("db1"), "{graph:?}");

    // Errors name the host and the variable (or the group), and leave the output alone.
    let before = snapshot(&out);
    let bad = |text: String, want: &str| {
        let r = plan(&text);
        assert_eq!(r.status, 1, "{r:?}");
        assert!(r.stderr.contains(want), "{want}: {r:?}");
        assert_eq!(r.stderr.trim().lines().count(), 1, "{r:?}");
    };
    bad(
        inventory_manifest(
            "inventory = \"inv.json\"",
            "[[ansible.group]]\nname = \"db\"\n",
        ),
        "inv.json: host 'db1': variable 'certmesh_dns' is missing",
    );
    bad(
        inventory_manifest(
            "inventory = \"inv.json\"",
            "[[ansible.group]]\nname = \"dbs\"\n",
        ),
        "inv.json: the inventory has no group 'dbs'",
    );
    bad(
        inventory_manifest(
            "inventory = \"inv.json\"",
            "[[ansible.group]]\nname = \"web\"\n[[ansible.group]]\nname = \"web_eu\"\n",
        ),
        "host 'web3' is in groups 'web' and 'web_eu'",
    );
    bad(
        inventory_manifest(
            "inventory = \"inv.json\"",
            "[[ansible.group]]\nname = \"app\"\nprofile = \"nope\"\n",
        ),
        "cluster.toml:11: unknown profile 'nope'",
    );
    bad(
        inventory_manifest("inventory_command = [\"false\"]", GROUPS),
        "false: exited with 1",
    );
    bad(
        inventory_manifest("inventory = \"hosts.yml\"", GROUPS),
        "hosts.yml: not ansible-inventory --list JSON",
    );
    fs::write(&manifest, &from_file).unwrap();
    assert_eq!(snapshot(&out), before);
}

/// scripts/fleet/certmesh-fleet-renew: renew, export, playbook; non-zero when either the
/// renewal or the playbook failed, and the playbook runs even after a failed renewal.
#[test]
fn fleet_recipe_fails_when_either_step_fails() {
    let dir = tempdir();
    let d = dir.path();
    let manifest = d.join("cluster.toml");
    let good = "name = \"cron\"\n[defaults]\nprofile = \"nginx\"\n[[member]]\nname = \"w\"\ndns = [\"w.cron.test\"]\n[member.deploy]\nhost = \"w\"\ndir = \"/srv/w\"\n";
    let playbook_log = d.join("playbook.log");
    let fake = d.join("ansible-playbook");
    fs::write(
        &fake,
        format!(
            "#!/bin/sh\necho \"$PWD $@\" >> {}\nexit \"$PLAY_RC\"\n",
            playbook_log.display()
        ),
    )
    .unwrap();
    fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/fleet/certmesh-fleet-renew");
    let recipe = |play_rc: &str| {
        run(std::process::Command::new(&script)
            .args(["-f", "20"])
            .env("CERTMESH", env!("CARGO_BIN_EXE_certmesh"))
            .env("ANSIBLE_PLAYBOOK", &fake)
            .env("PLAY_RC", play_rc)
            .env("CERTMESH_MANIFEST", &manifest)
            .env("CERTMESH_OUT", d.join("out"))
            .env("CERTMESH_ANSIBLE", d.join("ansible"))
            .env_remove("CERTMESH_HOME"))
    };
    let plays = || {
        fs::read_to_string(&playbook_log)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    };

    fs::write(&manifest, good).unwrap();
    let ok = recipe("0");
    ok.assert_success();
    assert!(d.join("out/w/privkey.pem").is_file(), "{ok:?}");
    assert!(d.join("ansible/site.yml").is_file(), "{ok:?}");
    let log = fs::read_to_string(&playbook_log).unwrap();
    assert!(
        log.contains(&format!("{} site.yml -f 20", d.join("ansible").display())),
        "{log}"
    );

    let failed_play = recipe("2");
    assert_eq!(failed_play.status, 2, "{failed_play:?}");
    assert!(failed_play.stderr.contains("ansible-playbook failed (2)"));
    assert_eq!(plays(), 2);

    // A renewal that fails (the CA passphrase it now asks for is not there) makes the run
    // fail; what is on disk is still delivered.
    fs::write(
        &manifest,
        good.replace(
            "[defaults]",
            "[ca]\nkey_pass = \"env:CERTMESH_TEST_UNSET_PASS\"\n[defaults]",
        ),
    )
    .unwrap();
    let failed_renew = recipe("0");
    assert_eq!(failed_renew.status, 1, "{failed_renew:?}");
    assert!(
        failed_renew.stderr.contains("certmesh renew failed (1)"),
        "{failed_renew:?}"
    );
    assert_eq!(plays(), 3, "the playbook still ran: {failed_renew:?}");
}
