//! Deploying a cluster without taking it down: the order of pushes and reloads, and the
//! check after each reload that the member serves its new certificate.
//!
//! Members whose profile reloads gracefully (nginx, Apache, IHS, HAProxy, Liberty's
//! config touch) keep serving through a reload, so they are deployed in parallel. Members
//! whose reload restarts the service (Tomcat, WSO2, SecureTransport, plain Java) stop
//! serving meanwhile: they go `max_unavailable` at a time, and the next starts only
//! once the previous ones serve their new certificate, so a cron renewal never restarts
//! every node of a cluster at once. A member that does not come back within
//! `ready_timeout` stops the roll; the members after it keep their old files, which are
//! still valid (renewal happens well before expiry).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::deploy::DeployReport;
use super::manifest::{Deploy, Manifest, Member};
use super::profile::ProductProfile;
use super::served::{endpoints, Expected, ProbeSettings, Served};
use crate::ca::Store;
use crate::probe::{bounded_map, Serves, Status};
use crate::Result;

/// How to deploy.
#[derive(Debug, Clone, Copy)]
pub struct RollOptions {
    /// Probe each member after its reload (and members with nothing to push, once).
    pub probe: bool,
    /// Restarting members reloaded at once.
    pub max_unavailable: usize,
    /// How long a restarted member may take to serve its new certificate.
    pub ready_timeout: Duration,
    /// How long a graceful reload may take to show on the wire.
    pub settle: Duration,
    /// Per probe: time to connect, and again for the handshake.
    pub probe_timeout: Duration,
}

impl Default for RollOptions {
    fn default() -> Self {
        RollOptions {
            probe: true,
            max_unavailable: 1,
            ready_timeout: Duration::from_secs(120),
            settle: Duration::from_secs(10),
            probe_timeout: Duration::from_secs(5),
        }
    }
}

/// One member's part of the deploy, in the order the members were started.
#[derive(Debug, Clone, Serialize)]
pub struct RollStep {
    pub member: String,
    /// `restart` (one at a time) or `graceful` (in parallel).
    pub reload: &'static str,
    /// Position in which its deploy started (1 first); absent when it was not started.
    pub order: Option<usize>,
    /// When its deploy started, milliseconds after the deploy phase began.
    pub started_ms: Option<u64>,
    /// How long it took after the push and reload until it served the new certificate
    /// (or until the wait gave up), milliseconds.
    pub waited_ms: Option<u64>,
    /// `ready` (reloaded and serves its new certificate), `current` (nothing to push;
    /// serves its certificate), `pushed` (not probed), `unverified` (no endpoint could be
    /// reached after a graceful reload, or with nothing pushed), `stale` (still serves an old or other
    /// certificate), `failed` (push or reload failed), `skipped` (an earlier failure
    /// stopped the roll; its host keeps the old files).
    pub outcome: &'static str,
    /// What each endpoint served at the end.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub served: Vec<Served>,
}

impl RollStep {
    /// True when this step makes the run fail.
    pub fn failed(&self) -> bool {
        matches!(self.outcome, "stale" | "failed" | "skipped")
    }
}

/// What deploying the cluster did, member by member (manifest order).
pub struct Outcome {
    /// The push to each member's host; `None` for members without a deploy section.
    pub deploys: Vec<Option<Result<DeployReport>>>,
    /// Members with a deploy section, in the order they were started (skipped last).
    pub steps: Vec<RollStep>,
}

/// Deploys every member with a `deploy` section: graceful ones `parallel` at once, then
/// restarting ones in a roll. `deploy` pushes one member's files and reloads it.
#[allow(clippy::too_many_arguments)]
pub fn deploy_all(
    manifest: &Manifest,
    products: &BTreeMap<&str, &ProductProfile>,
    stores: &BTreeMap<String, Option<Store>>,
    parallel: usize,
    opts: RollOptions,
    deploy: impl Fn(&Member, &Deploy, &ProductProfile) -> Result<DeployReport> + Sync,
) -> Result<Outcome> {
    let expected = Expected::new(manifest, stores)?;
    let settings = ProbeSettings {
        timeout: opts.probe_timeout,
        parallel: 1,
    };
    let start = Instant::now();
    let counter = AtomicUsize::new(0);
    let run_one = |i: &usize| -> (Result<DeployReport>, RollStep) {
        let m = &manifest.members[*i];
        let d = m.deploy.as_ref().expect("only members with deploy");
        let product = products[m.name.get_ref().as_str()];
        let restart = product.reload_restarts;
        let order = counter.fetch_add(1, Ordering::SeqCst) + 1;
        let mut step = RollStep {
            member: m.name.get_ref().clone(),
            reload: if restart { "restart" } else { "graceful" },
            order: Some(order),
            started_ms: Some(start.elapsed().as_millis() as u64),
            waited_ms: None,
            outcome: "pushed",
            served: Vec::new(),
        };
        let report = deploy(m, d, product);
        let ok = matches!(&report, Ok(r) if r.error.is_none());
        if !ok {
            step.outcome = "failed";
            return (report, step);
        }
        let pushed = report.as_ref().is_ok_and(|r| !r.files.is_empty());
        if !opts.probe || endpoints(m, product).is_empty() {
            return (report, step);
        }
        let window = match (pushed, restart) {
            (false, _) => Duration::ZERO,
            (true, true) => opts.ready_timeout,
            (true, false) => opts.settle,
        };
        let (served, waited) = expected.wait_current(m, product, &settings, window, restart);
        step.waited_ms = Some(waited.as_millis() as u64);
        step.outcome = if served.iter().all(|s| s.serves == Serves::Current) {
            if pushed {
                "ready"
            } else {
                "current"
            }
        } else if (!restart || !pushed)
            && served
                .iter()
                .all(|s| s.serves == Serves::Current || s.status == Status::Unknown)
        {
            "unverified"
        } else {
            "stale"
        };
        step.served = served;
        (report, step)
    };

    let with_deploy: Vec<usize> = (0..manifest.members.len())
        .filter(|i| manifest.members[*i].deploy.is_some())
        .collect();
    let (restarting, graceful): (Vec<usize>, Vec<usize>) =
        with_deploy.iter().copied().partition(|i: &usize| {
            products[manifest.members[*i].name.get_ref().as_str()].reload_restarts
        });
    let mut done: BTreeMap<usize, (Result<DeployReport>, RollStep)> = BTreeMap::new();
    for (i, r) in graceful
        .iter()
        .zip(bounded_map(&graceful, parallel, run_one))
    {
        done.insert(*i, r);
    }
    let mut stopped_by: Option<String> = None;
    for group in restarting.chunks(opts.max_unavailable.max(1)) {
        if let Some(by) = &stopped_by {
            for i in group {
                let m = &manifest.members[*i];
                let d = m.deploy.as_ref().expect("only members with deploy");
                let step = RollStep {
                    member: m.name.get_ref().clone(),
                    reload: "restart",
                    order: None,
                    started_ms: None,
                    waited_ms: None,
                    outcome: "skipped",
                    served: Vec::new(),
                };
                let report = DeployReport {
                    host: d.host.clone(),
                    files: Vec::new(),
                    reloaded: false,
                    error: Some(format!(
                        "not deployed: the rolling restart stopped at {by}; the host keeps its previous files"
                    )),
                };
                done.insert(*i, (Ok(report), step));
            }
            continue;
        }
        for (i, r) in group.iter().zip(bounded_map(group, group.len(), run_one)) {
            if r.1.failed() && stopped_by.is_none() {
                stopped_by = Some(r.1.member.clone());
            }
            done.insert(*i, r);
        }
    }
    let mut steps: Vec<RollStep> = done.values().map(|(_, s)| s.clone()).collect();
    steps.sort_by_key(|s| s.order.unwrap_or(usize::MAX));
    let mut deploys: Vec<Option<Result<DeployReport>>> =
        (0..manifest.members.len()).map(|_| None).collect();
    for (i, (r, _)) in done {
        deploys[i] = Some(r);
    }
    Ok(Outcome { deploys, steps })
}
