//! The daemon: the only place that wires the pieces together.
//!
//! One task owns all state ([`World`]) and runs a `select!` loop over manifest hints, runtime
//! events, API requests, controller requeue timers, store flushes and signals — no polling.
//! Each turn drains what is ready, lets the pure controllers decide for every pod and Job
//! that changed, carries out their decisions through the runtime, then publishes changes to
//! watchers and marks what the store must write in its next batch.

mod answer;
mod apply;
#[cfg(test)]
mod create_scenarios;
mod cron;
#[cfg(test)]
mod cron_scenarios;
#[cfg(test)]
mod deadline_scenarios;
mod durable;
mod gc;
pub mod health;
mod heap;
#[cfg(test)]
mod indexed_scenarios;
mod launch;
pub mod logging;
mod names;
mod pack;
#[cfg(test)]
mod pod_failure_policy_scenarios;
mod reads;
mod reconcile;
pub mod requests;
mod retention;
#[cfg(test)]
mod scenarios;
mod serve;
mod service;
mod source;
#[cfg(test)]
mod suspend_scenarios;
mod table;
#[cfg(test)]
mod testing;
#[cfg(test)]
mod ttl_scenarios;
mod wall_timer;
mod world;
mod writes;

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{broadcast, mpsc};
use tokio::time::Instant;

use crate::clock::{Clock, SystemClock};
use crate::config::{Config, Layout};
use crate::runtime::{Runtime, RuntimeEvent};
use crate::store::{Durability, Store, StoreOptions, TestFaults};
use crate::watch::Hint;
use names::Names;
use requests::{Change, Kind, Request};
use world::{Key, World};

/// `jobvisor daemon [--root DIR] [--config FILE]`
#[derive(Debug, Clone, Default)]
pub struct DaemonOptions {
    pub root: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub log_target: crate::config::LogTarget,
}

/// The spawn ledger's file in the state directory (`runtime/ledger.rs`).
const SPAWN_LEDGER: &str = "spawned";

/// Kubernetes' default `terminationGracePeriodSeconds` (manifests get it by defaulting).
const DEFAULT_GRACE: Duration = Duration::from_secs(30);

/// Longest grace period honoured: valid Kubernetes allows any int64, our timers do not.
const MAX_GRACE: Duration = Duration::from_secs(365 * 24 * 3600);

/// `now + after`, saturating far in the future instead of overflowing.
fn later(after: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(after)
        .unwrap_or_else(|| now + Duration::from_secs(10 * 365 * 24 * 3600))
}

/// One broadcast channel per kind, so a change is turned into JSON only when somebody
/// watches its kind: `jobvisor wait` watches one Job and must not cost every pod a copy.
/// Each is made at the first watch of its kind: its ring of `backlog` slots (4,096 by
/// default, 40 bytes each) is memory an unwatched kind does not need.
struct Watchers {
    backlog: usize,
    by_kind: [Option<broadcast::Sender<Arc<Change>>>; crate::api::kind::RESOURCES.len()],
}

impl Watchers {
    /// `backlog` (`api.watchBacklog`): changes a slow watcher may fall behind by before it
    /// would miss some; its stream is then ended with a 410 `Expired` (`server.rs`). Sending
    /// never waits for a receiver: a broadcast overwrites the oldest change.
    fn new(backlog: usize) -> Watchers {
        Watchers {
            // `broadcast::channel` panics on 0 and on absurd sizes; a config value must not.
            backlog: backlog.clamp(1, 1 << 24),
            by_kind: Default::default(),
        }
    }

    fn subscribe(&mut self, kind: Kind) -> broadcast::Receiver<Arc<Change>> {
        let backlog = self.backlog;
        self.by_kind[kind as usize]
            .get_or_insert_with(|| broadcast::channel(backlog).0)
            .subscribe()
    }

    fn watched(&self, kind: Kind) -> bool {
        self.by_kind[kind as usize]
            .as_ref()
            .is_some_and(|tx| tx.receiver_count() > 0)
    }

    fn send(&self, change: Change) {
        // Every receiver gets a clone of what was sent: one reference count, not a copy of
        // the namespace and labels per watcher. No receiver left is fine: the watch ended.
        if let Some(tx) = &self.by_kind[change.kind as usize] {
            let _ = tx.send(Arc::new(change));
        }
    }
}

/// Something to look at again at a given time.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Target {
    Job(Key),
    Pod(Key),
    /// A manifest file found missing: removed for good if it is still missing then.
    Removal(PathBuf),
    /// A manifest whose read failed for a passing reason: read it again.
    Retry(PathBuf),
    /// Check that the manifests path still leads to the watched directory (the fallback).
    Recheck,
    /// Reading the manifests directory failed for a passing reason: list it again.
    Rescan,
    /// Sweep the logs of deleted pods (`retention.rs`).
    LogSweep,
    /// Give freed memory back to the system once the loop is quiet (`heap.rs`).
    Trim,
    /// Tell systemd the status, if it changed (at most once a second, `service.rs`).
    Status,
}

/// The wall-clock timer's next wake, or never without one.
async fn wait_wall(wall: &mut Option<wall_timer::WallTimer>) -> std::io::Result<wall_timer::Wake> {
    match wall {
        Some(w) => w.wait().await,
        None => std::future::pending().await,
    }
}

/// Back-off for re-reading a manifest after a passing error (EMFILE, EIO…): doubling from
/// `RETRY_BASE` to `RETRY_MAX`. Constants, not config: the first retry is quick because fd
/// exhaustion is usually brief, and the cap keeps a file on a failing disk from costing more
/// than a read every 10 s, while the last good version keeps running meanwhile.
const RETRY_BASE: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(10);

/// The next delay of that back-off, after `prev` (`None`: the first try).
fn back_off(prev: Option<Duration>) -> Duration {
    prev.map_or(RETRY_BASE, |d| (d * 2).min(RETRY_MAX))
}

pub struct Daemon {
    cfg: Config,
    layout: Layout,
    clock: Arc<dyn Clock>,
    runtime: Arc<dyn Runtime>,
    store: Store,
    world: World,
    names: Names,
    home: String,
    node_name: String,
    dirty_jobs: BTreeSet<Key>,
    dirty_cronjobs: BTreeSet<Key>,
    /// When each CronJob looks at its schedule next (`cron.rs`), armed on the wall clock.
    cron_wakes: cron::Wakes,
    /// The zone of CronJobs without `timeZone`: the daemon's own (TZ, /etc/localtime).
    local_zone: jiff::tz::TimeZone,
    dirty_pods: BTreeSet<Key>,
    pending_changes: Vec<(Kind, Key, &'static str)>,
    timers: BinaryHeap<Reverse<(Instant, Target)>>,
    /// Earliest pending wake-up per target, so requeues do not pile up.
    timer_index: std::collections::HashMap<Target, Instant>,
    changes: Watchers,
    /// What waits for the disk: changes, starts, answers (`durable.rs`).
    gate: durable::Gate,
    /// The store's writer reports each commit here.
    durability_rx: Option<mpsc::UnboundedReceiver<Durability>>,
    shutting_down: bool,
    /// When shutting down: give up waiting for processes at this time.
    shutdown_deadline: Option<Instant>,
    /// What keeps the daemon from its job now (`/healthz`, `/readyz`, `STATUS=`).
    problems: health::Problems,
    /// A failure the daemon cannot go on from; the loop ends with it.
    fatal: Option<crate::store::StoreError>,
    /// The manifests directory: watched, or unavailable (and why).
    source: source::Source,
    /// Where the directory watch sends its hints; `None` until `run` wires it.
    hint_tx: Option<mpsc::UnboundedSender<Hint>>,
    /// Manifest reads on the blocking pool.
    reads: reads::Reads,
    /// Manifest files being written or removed for API requests (`writes.rs`).
    writes: writes::Writes,
    /// Manifests being re-read after a passing error, and the delay before the next try.
    retries: std::collections::HashMap<PathBuf, Duration>,
    /// The delay before the manifests path is looked at again after a passing error.
    source_retry: Option<Duration>,
    /// The delay before the manifests directory is listed again after a passing error.
    rescan_retry: Option<Duration>,
    /// The sweep over the logs of deleted pods.
    retention: retention::Sweeper,
    /// When state last changed: the heap is trimmed after a quiet second.
    quiet: heap::Quiet,
    /// What systemd was told (`STATUS=`), and its watchdog (`service.rs`).
    notifier: service::Notifier,
    /// How the daemon was started: a reload reads the same config file.
    opts: DaemonOptions,
    /// The running log's filter, for `log.level` on a reload (`None` in in-process tests).
    log: Option<logging::LogHandle>,
}

/// Loads the config and resolves every path: `--config`, else the layout's default file.
pub fn load_config(opts: &DaemonOptions) -> anyhow::Result<(Config, Layout)> {
    let cfg = Config::find(opts.root.as_deref(), opts.config.as_deref())?;
    let base = match &opts.root {
        Some(root) => Layout::under_root(root),
        None => Layout::system_default(),
    };
    let layout = base
        .with_overrides(&cfg.paths)
        .absolute()
        .context("resolving the daemon's paths")?;
    Ok((cfg, layout))
}

/// Runs the daemon until SIGTERM/SIGINT. Errors here are start-up failures.
pub async fn run(opts: DaemonOptions) -> anyhow::Result<()> {
    heap::configure();
    bench_ballast();
    let (cfg, layout) = load_config(&opts)?;
    let log = logging::init(&cfg.log.level, opts.log_target);
    raise_fd_limit();
    // The state directory is the store's to create (private, 0700); the manifests
    // directory only on a first start (see `source.rs`).
    std::fs::create_dir_all(&layout.logs)
        .with_context(|| format!("creating {}", layout.logs.display()))?;
    if cfg.store.flush_interval.is_some() {
        tracing::warn!(
            "store.flushInterval is obsolete and ignored: state is written as soon as the writer \
             is free, one fsync per batch"
        );
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let (runtime_tx, runtime_rx) = mpsc::unbounded_channel();
    let (cgroups, leftovers) = setup_cgroups(&cfg, &layout);
    let processes = Arc::new(crate::runtime::process::ProcessRuntime::with_cgroups(
        clock.clone(),
        runtime_tx,
        cgroups,
    ));
    let log_feeds = processes.log_feeds();
    let runtime: Arc<dyn Runtime> = processes.clone();
    // Opening the state reads it and may wait for the lock (a dying daemon's children can hold
    // it for a moment): blocking work, kept off the runtime's threads.
    let mut daemon = tokio::task::spawn_blocking(move || {
        let daemon = Daemon::open(cfg, layout, clock, runtime)?;
        // With the state's lock held: what a crashed daemon spawned and never recorded.
        let ledger = daemon.layout.state.join(SPAWN_LEDGER);
        match processes.take_over_spawns(&ledger) {
            Ok(0) => {}
            Ok(n) => tracing::warn!(processes = n, "killed processes a previous daemon left running"),
            Err(e) => tracing::warn!(file = %ledger.display(), error = %e, "cannot use the spawn ledger: a crash may leave processes running"),
        }
        // A daemon without cgroups after one with them: what that one left in its pod
        // cgroups (escapees no pid on record names) dies too, and its subtree goes.
        if let Some(old) = leftovers {
            let pods = old.kill_all_pods();
            old.remove_base();
            if pods > 0 {
                tracing::warn!(pods, "killed what a previous daemon left in its pod cgroups");
            }
        }
        daemon.create_manifests_dir_on_first_start();
        anyhow::Ok(daemon)
    })
    .await
    .context("opening the state")??;
    daemon.log = log;
    daemon.opts = opts;
    let (hint_tx, hint_rx) = mpsc::unbounded_channel();
    daemon.hint_tx = Some(hint_tx);
    let (req_tx, req_rx) = mpsc::channel(256);
    let listener = serve::bind(&daemon.layout.socket, &daemon.cfg.socket)?;
    let limits = crate::server::Limits::from(&daemon.cfg.api);
    let server = tokio::spawn(crate::server::serve(listener, req_tx, limits, log_feeds));
    daemon.recover();
    // Arms the watch and rescans; a missing directory is reported, never a start-up failure.
    // These first reads are done before the loop starts, so that once the daemon says it is
    // ready every file in the directory has been applied; from then on reads go to the pool.
    daemon.check_source(true);
    daemon.recheck_source_later();
    daemon.sweep_logs_soon();
    daemon.turn();
    let read_rx = daemon.reads.on_pool();
    // What loading the state freed goes back once the start is over.
    daemon.schedule(heap::QUIET, Target::Trim);
    tracing::info!(
        manifests = %daemon.layout.manifests.display(),
        socket = %daemon.layout.socket.display(),
        "jobvisor {} ready",
        crate::VERSION
    );
    // Handlers before READY=1: a SIGHUP (`systemctl reload`) right after start must rescan,
    // not kill the daemon with the signal's default action.
    let signals = Signals::install()?;
    serve::notify("READY=1");
    // Anew after READY=1, so the first summary follows it (and the watchdog's first ping).
    daemon.notifier = service::Notifier::from_env();
    daemon.tell_status();
    daemon.feed_watchdog();
    let inputs = Inputs {
        runtime: runtime_rx,
        hints: hint_rx,
        reads: read_rx,
        requests: req_rx,
    };
    let result = daemon.run_loop(inputs, signals).await;
    serve::notify("STOPPING=1");
    // The containers are done: what they left behind goes too.
    daemon.runtime.shutdown();
    server.abort();
    let _ = std::fs::remove_file(&daemon.layout.socket);
    result
}

/// Bench only (`benches/bench.py`, spawn cost against the daemon's size): with
/// `JOBVISOR_BENCH_BALLAST_MIB=N` the daemon allocates and touches N MiB it never frees, so
/// that its RSS is that much larger. Not a config key: nothing but the bench needs it.
fn bench_ballast() {
    let Some(mib) = std::env::var("JOBVISOR_BENCH_BALLAST_MIB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
    else {
        return;
    };
    let mut ballast = vec![0u8; mib << 20];
    // Touch every page, or it stays unbacked (and out of the RSS).
    for page in ballast.chunks_mut(4096) {
        page[0] = 1;
    }
    tracing::warn!(mib, "bench ballast allocated (JOBVISOR_BENCH_BALLAST_MIB)");
    std::mem::forget(ballast);
}

/// Detects and sets up the pods' cgroups (`runtime/cgroup.rs`); `None`, logged with the
/// reason, when the daemon runs without them. Then also the subtree a previous daemon on
/// this state directory left, if any, for the caller to clean while it holds the state's lock.
fn setup_cgroups(
    cfg: &Config,
    layout: &Layout,
) -> (
    Option<Arc<crate::runtime::cgroup::Cgroups>>,
    Option<crate::runtime::cgroup::Cgroups>,
) {
    use crate::runtime::cgroup::{CgroupMode, Cgroups, Host, detect, instance_name};
    let under_systemd = std::env::var_os("INVOCATION_ID").is_some();
    let detected = || {
        let self_cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        detect(&Host {
            root: std::path::Path::new("/sys/fs/cgroup"),
            self_cgroup: &self_cgroup,
            under_systemd,
            instance: &instance_name(&layout.state),
        })
    };
    let (mode, leftovers) = match cfg.cgroups {
        crate::config::CgroupsSetting::None => (
            CgroupMode::None {
                reason: "cgroups: none in the config".into(),
            },
            Cgroups::leftovers(detected(), under_systemd),
        ),
        crate::config::CgroupsSetting::Auto => (detected(), None),
    };
    let limits_note = if cfg.pids_limit().is_some() {
        "; podPidsLimit and resources limits are not enforced"
    } else {
        "; resources limits are not enforced"
    };
    let cgroups = match Cgroups::setup(mode, under_systemd) {
        Ok(cg) => {
            tracing::info!(mode = ?cg.mode, "pods run in cgroups");
            Some(Arc::new(cg))
        }
        Err(reason) => {
            tracing::warn!(%reason, "running without cgroups{limits_note}");
            None
        }
    };
    (cgroups, leftovers)
}

/// `jobvisor recover-state`: the explicit way out of a corrupt journal (see `store::recover`).
pub fn recover_state(opts: &DaemonOptions) -> anyhow::Result<()> {
    let (_, layout) = load_config(opts)?;
    let dir = &layout.state;
    match crate::store::recover(dir).with_context(|| format!("recovering {}", dir.display()))? {
        crate::store::Recovered::Clean => {
            println!(
                "{}: nothing to recover; the state loads as it is",
                dir.display()
            );
        }
        crate::store::Recovered::Cut {
            offset,
            kept,
            dropped,
            aside,
        } => println!(
            "{}: kept {kept} good journal record(s) before byte offset {offset}; the damaged \
             journal ({dropped} record(s) from that offset on, not applied) is now {}",
            dir.display(),
            aside.display()
        ),
    }
    Ok(())
}

/// What the loop waits on besides timers and signals.
struct Inputs {
    runtime: mpsc::UnboundedReceiver<RuntimeEvent>,
    hints: mpsc::UnboundedReceiver<Hint>,
    /// Manifest files read on the blocking pool (`reads.rs`).
    reads: mpsc::UnboundedReceiver<reads::ReadDone>,
    requests: mpsc::Receiver<Request>,
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate()).context("installing SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("installing SIGINT handler")?,
            hup: signal(SignalKind::hangup()).context("installing SIGHUP handler")?,
        })
    }
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit, as Go programs (so the kubelet and
/// containerd) do at start: the usual soft limit of 1024 is less than `api.maxConnections`
/// plus the pipes and pidfds of the pods. Containers inherit the raised soft limit: unlike
/// Go's os/exec, `posix_spawn` has no way to hand them the old one back (the supervision
/// issue, which will set rlimits in the child, can).
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => tracing::debug!(from = soft, to = hard, "raised the open files limit"),
            Err(e) => {
                tracing::warn!(error = %e, soft, hard, "could not raise the open files limit")
            }
        },
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not read the open files limit"),
    }
}

impl Daemon {
    pub fn open(
        cfg: Config,
        layout: Layout,
        clock: Arc<dyn Clock>,
        runtime: Arc<dyn Runtime>,
    ) -> anyhow::Result<Daemon> {
        let (durability_tx, durability_rx) = mpsc::unbounded_channel();
        let opts = StoreOptions {
            compact_bytes: cfg.store.compact_bytes,
            faults: TestFaults::from_env(),
            on_durable: Box::new(move |d| {
                let _ = durability_tx.send(d);
            }),
        };
        // Objects go into the world one by one as the store reads them: no copy of the whole
        // state's JSON is held at any point.
        let mut world = World::default();
        let mut store = Store::open_each(&layout.state, opts, |k, v| {
            if let Err(p) = world.load_stored(k, v) {
                tracing::error!("{p}; skipped");
            }
        })
        .with_context(|| format!("opening state in {}", layout.state.display()))?;
        let gate = durable::Gate::new(store.covering_seq());
        for key in world.rebase_manifests(&layout.manifests) {
            store.touch(key);
        }
        let changes = Watchers::new(cfg.api.watch_backlog);
        Ok(Daemon {
            cfg,
            layout,
            clock,
            runtime,
            store,
            world,
            names: Names::new(),
            home: std::env::var("HOME").unwrap_or_else(|_| "/".into()),
            node_name: nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "localhost".into()),
            dirty_jobs: BTreeSet::new(),
            dirty_cronjobs: BTreeSet::new(),
            cron_wakes: cron::Wakes::default(),
            local_zone: crate::schedule::local_zone(),
            dirty_pods: BTreeSet::new(),
            pending_changes: Vec::new(),
            timers: BinaryHeap::new(),
            timer_index: std::collections::HashMap::new(),
            changes,
            gate,
            durability_rx: Some(durability_rx),
            shutting_down: false,
            shutdown_deadline: None,
            problems: health::Problems::default(),
            fatal: None,
            source: source::Source::NotLooked,
            hint_tx: None,
            reads: reads::Reads::inline(),
            writes: writes::Writes::new(),
            retries: std::collections::HashMap::new(),
            source_retry: None,
            rescan_retry: None,
            retention: retention::Sweeper::new(),
            quiet: heap::Quiet::default(),
            notifier: service::Notifier::default(),
            opts: DaemonOptions::default(),
            log: None,
        })
    }

    async fn run_loop(&mut self, inputs: Inputs, signals: Signals) -> anyhow::Result<()> {
        let Inputs {
            runtime: mut runtime_rx,
            hints: mut hint_rx,
            reads: mut read_rx,
            requests: mut req_rx,
        } = inputs;
        let Signals {
            mut term,
            mut int,
            mut hup,
        } = signals;
        let far = Duration::from_secs(3600);
        let mut durability_rx = self
            .durability_rx
            .take()
            .context("the daemon's loop runs once")?;
        let mut sweep_rx = self
            .retention
            .rx
            .take()
            .context("the daemon's loop runs once")?;
        let mut file_rx = self
            .writes
            .take_receiver()
            .context("the daemon's loop runs once")?;
        let mut wall = match wall_timer::WallTimer::new() {
            Ok(t) => Some(t),
            Err(e) => {
                tracing::warn!(error = %e, "no timerfd: CronJob slots wait on the monotonic clock and miss clock steps");
                None
            }
        };
        loop {
            let next_timer = self
                .timers
                .peek()
                .map(|Reverse((at, _))| *at)
                .unwrap_or_else(|| Instant::now() + far);
            let next_timer = self
                .shutdown_deadline
                .map_or(next_timer, |d| d.min(next_timer));
            // The watchdog is fed by this loop: a turn that never ends stops the pings.
            let next_timer = self
                .notifier
                .next_ping()
                .map_or(next_timer, |p| p.min(next_timer));
            let next_slot = self.cron_wakes.earliest();
            if let Some(Err(e)) = wall.as_mut().map(|w| w.arm(next_slot)) {
                // A slot must not wait for an unrelated input: the monotonic clock from now on.
                tracing::error!(error = %e, "arming the CronJob timer failed; CronJob slots now wait on the monotonic clock");
                wall = None;
            }
            let next_timer = match &wall {
                Some(_) => next_timer,
                None => next_slot.map_or(next_timer, |at| {
                    let wait = crate::controller::elapsed(self.clock.now(), at);
                    next_timer.min(later(wait))
                }),
            };
            let wall_armed = wall.as_ref().is_some_and(|w| w.armed().is_some());
            tokio::select! {
                Some(ev) = runtime_rx.recv() => {
                    self.on_runtime(ev);
                    while let Ok(ev) = runtime_rx.try_recv() { self.on_runtime(ev); }
                }
                Some(hint) = hint_rx.recv(), if !self.shutting_down => {
                    self.on_hint(hint);
                    while let Ok(h) = hint_rx.try_recv() { self.on_hint(h); }
                }
                Some(done) = read_rx.recv(), if !self.shutting_down => {
                    self.on_read(done);
                    while let Ok(d) = read_rx.try_recv() { self.on_read(d); }
                }
                Some(req) = req_rx.recv() => self.on_request(req),
                Some(report) = sweep_rx.recv() => self.on_log_sweep(report),
                Some(done) = file_rx.recv() => self.on_file_done(done),
                _ = tokio::time::sleep_until(next_timer) => {
                    self.fire_timers();
                    if wall.is_none() {
                        self.on_wall_timer(wall_timer::Wake::Due);
                    }
                }
                w = wait_wall(&mut wall), if wall_armed => match w {
                    Ok(w) => self.on_wall_timer(w),
                    Err(e) => {
                        tracing::error!(error = %e, "the CronJob timer failed; CronJob slots now wait on the monotonic clock");
                        wall = None;
                        self.on_wall_timer(wall_timer::Wake::Due);
                    }
                },
                d = durability_rx.recv() => match d {
                    Some(d) => {
                        self.on_durability(d);
                        while let Ok(d) = durability_rx.try_recv() { self.on_durability(d); }
                    }
                    // The writer thread is gone: nothing can become durable again.
                    None => { self.fatal.get_or_insert(crate::store::StoreError::WriterGone); }
                },
                _ = hup.recv() => self.reload(),
                _ = term.recv() => self.begin_shutdown("SIGTERM"),
                _ = int.recv() => self.begin_shutdown("SIGINT"),
            }
            self.turn();
            self.feed_watchdog();
            if let Some(e) = self.fatal.take() {
                return Err(anyhow::Error::new(e).context("the store's writer stopped"));
            }
            if self.shutting_down && self.shutdown_done() {
                break;
            }
        }
        self.flush();
        self.store.sync().context("writing final state")?;
        tracing::info!("stopped");
        Ok(())
    }

    /// After every input: decide for everything that changed, act, persist, and let out what
    /// is on disk.
    fn turn(&mut self) {
        self.reconcile();
        self.publish_changes();
        if self.store.has_dirty() {
            self.quiet.changed(Instant::now());
            self.schedule(heap::QUIET, Target::Trim);
        }
        self.stamp();
        if self.store.last_handed() <= self.gate.durable {
            // Group commit: the writer is idle, so this turn's changes go now; while it is
            // busy they gather into the next batch.
            self.flush();
        }
        // After the flush, which serialized this turn's changes from the typed records.
        self.world.pack_settled();
        self.release();
        self.tell_status();
    }

    fn flush(&mut self) {
        let world = &self.world;
        if let Err(e) = self.store.flush(|k| world.stored(k)) {
            // Only a dead writer thread gets here: nothing could ever become durable again,
            // so stop (systemd restarts us) rather than hold every answer and start forever.
            tracing::error!(error = %e, "the store cannot take state any more; stopping");
            self.fatal.get_or_insert(e);
        }
    }

    /// Wakes `target` after `after`, unless it is already due to wake no later than that.
    /// A removal is the exception: it counts only if the file stays missing a whole
    /// `watch.removalGrace` after its LAST disappearance, so a later deadline replaces it.
    fn schedule(&mut self, after: Duration, target: Target) {
        let at = later(after);
        let keep_earlier = !matches!(target, Target::Removal(_));
        if keep_earlier && self.timer_index.get(&target).is_some_and(|t| *t <= at) {
            return;
        }
        self.timer_index.insert(target.clone(), at);
        self.timers.push(Reverse((at, target)));
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(Reverse((at, _))) = self.timers.peek() {
            if *at > now {
                break;
            }
            if let Some(Reverse((at, target))) = self.timers.pop() {
                match self.timer_index.get(&target) {
                    Some(t) if *t == at => {
                        self.timer_index.remove(&target);
                    }
                    // A removal pushed later by a new disappearance: not due yet.
                    Some(_) if matches!(target, Target::Removal(_)) => continue,
                    // Cancelled: the file was read whole again before the grace ended.
                    None if matches!(target, Target::Removal(_)) => continue,
                    // The log sweep has one wake-up at a time; any other is stale.
                    _ if target == Target::LogSweep => continue,
                    _ => {}
                }
                match target {
                    Target::Job(k) => {
                        self.dirty_jobs.insert(k);
                    }
                    Target::Pod(k) => {
                        self.dirty_pods.insert(k);
                    }
                    Target::Removal(path) => self.confirm_removal(&path),
                    Target::Retry(path) => self.apply_file(&path),
                    Target::Recheck => {
                        self.recheck_source();
                        self.recheck_source_later();
                    }
                    Target::Rescan => self.rescan(),
                    Target::LogSweep => self.sweep_logs(),
                    Target::Trim => {
                        let quiet = self.quiet.is_quiet(Instant::now());
                        match self.quiet.due(Instant::now()) {
                            None if quiet => self.give_memory_back(),
                            None => heap::trim(),
                            Some(wait) => self.schedule(wait, Target::Trim),
                        }
                    }
                    Target::Status => self.notifier.status_timer_fired(),
                }
            }
        }
    }

    /// Once the loop is quiet: events packed, the world allocated again if a burst strewed it
    /// over the heap, and the free pages given back (`heap.rs`).
    fn give_memory_back(&mut self) {
        let started = Instant::now();
        self.world.pack_events();
        if self.world.worth_rebuilding() {
            self.world.rebuild();
            self.shrink_queues();
        }
        heap::trim();
        tracing::debug!(took = ?started.elapsed(), "gave free memory back");
    }

    /// Queues a burst filled keep their capacity once empty (10,000 timers of finished pods:
    /// 640 KB); given back with the world's rebuild.
    fn shrink_queues(&mut self) {
        self.timers.shrink_to_fit();
        self.timer_index.shrink_to_fit();
        self.pending_changes.shrink_to_fit();
        self.gate.shrink_to_fit();
    }

    fn on_hint(&mut self, hint: Hint) {
        match hint {
            Hint::Path(p) => self.apply_file(&p),
            Hint::Rescan => self.rescan(),
            Hint::Recheck => self.look_at_source(false, source::AfterLook::Nothing),
        }
    }

    /// Events were lost: compare the whole directory, if it is (still) the one watched (a
    /// re-armed one was just rescanned).
    fn rescan(&mut self) {
        self.look_at_source(false, source::AfterLook::Rescan);
    }

    /// Compares the whole manifests directory with what is applied, once listed
    /// (`rescan_listed`). False when it could not be listed inline (a listing on the pool
    /// reports its failure when it is back).
    fn rescan_dir(&mut self) -> bool {
        self.list_manifests()
    }

    /// What a rescan's listing found: every file listed, and every one on record but not
    /// listed, is read again. False when it could not be listed (a passing error: listed
    /// again after a back-off; or it is lost).
    fn rescan_listed(&mut self, listing: std::io::Result<Vec<PathBuf>>) -> bool {
        let files = match listing {
            Ok(f) => f,
            Err(e) if crate::watch::classify(&e) == crate::watch::ErrorClass::Transient => {
                let delay = back_off(self.rescan_retry);
                self.rescan_retry = Some(delay);
                tracing::warn!(dir = %self.layout.manifests.display(), error = %e, "cannot list manifests directory; retrying in {delay:?}");
                self.schedule(delay, Target::Rescan);
                return false;
            }
            Err(e) => {
                self.lose_source(e.to_string());
                return false;
            }
        };
        self.rescan_retry = None;
        // `scan` sorts: a binary search, since a linear one made a start with 10,000 files
        // cost 10^8 path comparisons (60% of the restart's CPU).
        let known: Vec<PathBuf> = self
            .world
            .manifests
            .keys()
            .filter(|p| files.binary_search(p).is_err())
            .cloned()
            .collect();
        for path in known.iter().chain(files.iter()) {
            self.apply_file(path);
        }
        true
    }

    fn begin_shutdown(&mut self, why: &str) {
        if self.shutting_down {
            return;
        }
        tracing::info!("{why}: stopping pods");
        self.shutting_down = true;
        self.stop_all_pods();
        // Past the longest grace period every process got SIGKILL; allow a little for reaping.
        self.shutdown_deadline = Some(later(self.max_grace() + Duration::from_secs(5)));
    }

    /// Done when every pod has ended as the records say — i.e. every container's exit has
    /// been received and recorded, not merely when no process runs any more — or when the
    /// longest grace period (plus a margin) has run out.
    fn shutdown_done(&self) -> bool {
        // A bare Pod that restarts in place stays Running across the stop: it has ended once
        // none of its containers runs or is starting.
        let all_ended = self.world.unsettled_pods().all(|(k, r)| {
            r.pod.status.phase.is_terminal()
                || (self.restarts_in_place(k)
                    && r.pod
                        .status
                        .container_statuses
                        .iter()
                        .all(|c| c.state.running.is_none() && !c.is_creating()))
        });
        let out_of_time = self.shutdown_deadline.is_some_and(|d| Instant::now() >= d);
        if out_of_time && !all_ended {
            tracing::warn!(
                running = self.runtime.running(),
                "giving up waiting for containers to exit"
            );
        }
        all_ended || out_of_time
    }

    /// Longest grace period among pods still running.
    fn max_grace(&self) -> Duration {
        self.world
            .unsettled_pods()
            .filter(|(_, r)| !r.pod.status.phase.is_terminal())
            .map(|(_, r)| self.grace_of(&r.pod))
            .max()
            .unwrap_or_default()
    }

    fn grace_of(&self, pod: &crate::api::Pod) -> Duration {
        pod.spec
            .termination_grace_period_seconds
            .map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(0)))
            .unwrap_or(DEFAULT_GRACE)
            .min(MAX_GRACE)
    }

    /// The manifests directory is created only on a first start (nothing applied yet): if it
    /// went missing later, creating it empty would delete every Job; the daemon waits for the
    /// user instead, and a failure here is reported as an unavailable source, not a start-up
    /// failure. Mode 0755 whatever the umask: the unit's `UMask=0007` would leave it
    /// group-writable, and a root daemon then refuses every file in it (`trust.rs`).
    fn create_manifests_dir_on_first_start(&self) {
        use std::os::unix::fs::DirBuilderExt;
        let dir = &self.layout.manifests;
        if self.world.manifests.is_empty()
            && std::fs::symlink_metadata(dir).is_err()
            && let Err(e) = std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(dir)
        {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot create the manifests directory");
        }
    }

    pub fn logs_root(&self) -> &Path {
        &self.layout.logs
    }
}
