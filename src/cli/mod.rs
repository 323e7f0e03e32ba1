//! The `jobvisor` command line: a kubectl-shaped client of the daemon, one file per verb.
//!
//! Verbs, flags, columns and messages follow kubectl so that its users need nothing new:
//! `get`, `describe`, `logs`, `delete`, `apply`, `create`, `wait` talk to the daemon over
//! [`crate::proto`]; `validate` and `cron next` work offline; `version` asks the daemon if it
//! answers. Output goes through [`Ctx`] so tests can run a verb against a fake server and read
//! what it printed.
//!
//! Errors: a verb returns `anyhow::Error`; [`report`] prints it like kubectl (`Error from
//! server (NotFound): …` for the daemon's answers, `error: …` for the rest) and gives the
//! exit code. A verb that already printed its errors (apply, validate, delete of several
//! names) returns [`Reported`] so nothing is printed twice.

pub mod apply;
pub mod create;
pub mod cron;
pub mod delete;
pub mod describe;
pub mod format;
pub mod generate;
pub mod get;
pub mod logs;
/// kubectl's tables, shared with the daemon's server-side printing.
pub use crate::printers as table;
pub mod top;
pub mod validate;
pub mod version;
pub mod wait;

use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};

use crate::clock::Clock;
use crate::config::Layout;
use crate::proto::{ApiError, Client};

#[derive(Debug, Parser)]
#[command(
    name = "jobvisor",
    version,
    about = "Kubernetes batch/v1 Jobs and CronJobs on one Linux host, as supervised processes",
    long_about = None,
)]
pub struct Cli {
    /// Keep everything under DIR (manifests, state, logs, DIR/jobvisor.sock).
    #[arg(long, global = true, env = "JOBVISOR_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// The daemon's socket (default: DIR/jobvisor.sock with --root, else the system one).
    #[arg(long, global = true, env = "JOBVISOR_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon: supervise the CronJobs, Jobs and Pods of the manifests directory and
    /// serve the API.
    Daemon(DaemonRunArgs),
    /// Display one or many resources (cronjobs, jobs, pods, events, manifests).
    Get(get::GetArgs),
    /// Show details of a cronjob, a job or a pod, with its events.
    Describe(describe::DescribeArgs),
    /// Print the logs of a container in a pod (or of a job's pod).
    Logs(logs::LogsArgs),
    /// Delete cronjobs, jobs or pods (and the manifest files that define them), by name or by
    /// file (-f).
    Delete(delete::DeleteArgs),
    /// Create or update objects from manifest files, by object identity (kubectl apply).
    Apply(apply::ApplyArgs),
    /// Create a cronjob or a job from flags (its manifest is written into the manifests
    /// directory), or a job from a cronjob's template (kubectl create).
    Create(create::CreateArgs),
    /// Wait for a job to reach a condition (complete, failed).
    Wait(wait::WaitArgs),
    /// Display CPU and memory of the running pods, from their cgroups (kubectl top pods).
    Top(top::TopArgs),
    /// Check manifest files offline, without the daemon.
    Validate(validate::ValidateArgs),
    /// CronJob schedules, offline: `cron next` prints when a schedule fires.
    Cron(cron::CronArgs),
    /// Print the client and server versions.
    Version(version::VersionArgs),
    /// Offline, with the daemon stopped: after a corrupt journal stopped start-up, keep the
    /// good records before the damage and move the damaged journal aside.
    RecoverState(DaemonArgs),
    /// Print a shell completion script: `source <(jobvisor completion bash)`.
    Completion(generate::CompletionArgs),
    /// Write the man pages into a directory (packaging).
    #[command(hide = true)]
    GenerateMan(generate::GenerateManArgs),
}

#[derive(Debug, clap::Args)]
pub struct DaemonArgs {
    /// Config file (default: DIR/config.yaml with --root, else the system one).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct DaemonRunArgs {
    #[command(flatten)]
    pub common: DaemonArgs,
    /// Where the daemon's own log goes: journald when started by systemd with its stderr on
    /// the journal (auto), stderr, or journald (structured fields JOB_NAME, POD_NAME…).
    #[arg(long, value_enum, default_value_t = crate::config::LogTarget::Auto)]
    pub log_target: crate::config::LogTarget,
}

/// `-n/--namespace`, shared by the namespaced verbs.
#[derive(Debug, Clone, clap::Args)]
pub struct NamespaceArg {
    /// The namespace of the objects.
    #[arg(
        short = 'n',
        long = "namespace",
        value_name = "NS",
        default_value = "default"
    )]
    pub namespace: String,
}

/// `--socket` > `--root DIR` → `DIR/jobvisor.sock` > the system default.
pub fn socket_path(socket: Option<&Path>, root: Option<&Path>) -> PathBuf {
    match (socket, root) {
        (Some(s), _) => s.to_path_buf(),
        (None, Some(root)) => Layout::under_root(root).socket,
        (None, None) => Layout::system_default().socket,
    }
}

/// What a verb runs with: the daemon client, a clock for ages, and where to print.
pub struct Ctx<'a> {
    pub client: Client,
    pub clock: &'a dyn Clock,
    pub out: &'a mut dyn Write,
    pub err: &'a mut dyn Write,
}

impl Ctx<'_> {
    /// Writes to stdout and flushes, so rows of a watch or lines of `logs -f` show at once.
    pub fn print(&mut self, text: &str) -> io::Result<()> {
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }

    /// A line to stderr (warnings, "No resources found", errors of one item among many).
    pub fn eprint(&mut self, line: &str) -> io::Result<()> {
        writeln!(self.err, "{line}")?;
        self.err.flush()
    }
}

/// Runs one client verb (everything but `daemon`, which `main` runs on its own runtime).
pub async fn run(ctx: &mut Ctx<'_>, command: Command) -> anyhow::Result<()> {
    match command {
        Command::Daemon(_) | Command::RecoverState(_) => {
            bail!("the daemon and recover-state are not client verbs")
        }
        Command::Get(args) => get::run(ctx, args).await,
        Command::Describe(args) => describe::run(ctx, args).await,
        Command::Logs(args) => logs::run(ctx, args).await,
        Command::Delete(args) => delete::run(ctx, args).await,
        Command::Apply(args) => apply::run(ctx, args).await,
        Command::Create(args) => create::run(ctx, args).await,
        Command::Wait(args) => wait::run(ctx, args).await,
        Command::Top(args) => top::run(ctx, args).await,
        Command::Validate(args) => validate::run(ctx, args),
        Command::Cron(args) => cron::run(ctx, args),
        Command::Version(args) => version::run(ctx, args).await,
        Command::Completion(args) => generate::completion(&args, ctx.out),
        Command::GenerateMan(args) => {
            for path in generate::man(&args)? {
                writeln!(ctx.out, "{}", path.display())?;
            }
            Ok(())
        }
    }
}

/// The errors were printed already; only the exit code is left to give.
#[derive(Debug)]
pub struct Reported;

impl fmt::Display for Reported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("errors were reported")
    }
}

impl std::error::Error for Reported {}

/// Prints an error the way kubectl does and returns the process exit code.
pub fn report(err: &anyhow::Error, stderr: &mut dyn Write) -> u8 {
    if err.downcast_ref::<Reported>().is_some() {
        return 1;
    }
    // `jobvisor get pods | head -1`: the reader left, nothing is wrong.
    let broken_pipe = err.chain().any(|cause| {
        cause
            .downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::BrokenPipe)
    });
    if broken_pipe {
        return 0;
    }
    let line = match err.downcast_ref::<ApiError>() {
        Some(api) if api.is_server_message() => api.to_string(),
        _ => format!("error: {err:#}"),
    };
    let _ = writeln!(stderr, "{line}");
    1
}

/// The kinds jobvisor serves, with kubectl's names for them.
pub use crate::api::Kind;

impl Kind {
    /// [`Kind::parse`] with kubectl's error for anything else.
    pub fn parse_or_err(text: &str) -> anyhow::Result<Kind> {
        Kind::parse(text)
            .with_context(|| format!("the server doesn't have a resource type \"{text}\""))
    }
}

/// Splits kubectl's `TYPE/NAME` form (`job/pi`, `jobs.batch/pi`).
pub fn split_type_name(text: &str) -> Option<(Kind, &str)> {
    let (kind, name) = text.split_once('/')?;
    Some((Kind::parse(kind)?, name))
}

/// The NotFound kubectl prints for an object the client looked up itself.
pub fn not_found(kind: Kind, name: &str) -> ApiError {
    ApiError::Status(Box::new(crate::api::Status::failure(
        404,
        "NotFound",
        format!("{} \"{name}\" not found", kind.resource()),
    )))
}

/// Manifest files named on the command line: files as given, directories expanded to their
/// `*.yaml`, `*.yml` and `*.json` files (not recursive, dotfiles skipped, sorted by name).
pub fn manifest_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let meta = match std::fs::metadata(path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                bail!("the path \"{}\" does not exist", path.display())
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        if !meta.is_dir() {
            files.push(path.clone());
            continue;
        }
        let mut found = Vec::new();
        let entries = std::fs::read_dir(path)
            .with_context(|| format!("reading directory {}", path.display()))?;
        for entry in entries {
            let entry = entry.with_context(|| format!("reading directory {}", path.display()))?;
            let file = entry.path();
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.starts_with('.') || !has_manifest_extension(&file) || file.is_dir() {
                continue;
            }
            found.push(file);
        }
        found.sort();
        files.extend(found);
    }
    Ok(files)
}

/// How standard input is named in messages, as kubectl names it.
pub const STDIN: &str = "STDIN";

/// The text of each manifest `-f` names: files as [`manifest_files`] finds them (every path
/// is looked at first: one that is not there stops them all), `-` for standard input. A file
/// that cannot be read is that file's error, not the others'.
pub fn manifest_texts(args: &[PathBuf]) -> anyhow::Result<Vec<(PathBuf, io::Result<String>)>> {
    let mut sources = Vec::new();
    for arg in args {
        if arg.as_os_str() == "-" {
            let text = io::read_to_string(io::stdin()).context("reading standard input")?;
            sources.push((PathBuf::from(STDIN), Ok(text)));
        } else {
            for file in manifest_files(std::slice::from_ref(arg))? {
                let text = std::fs::read_to_string(&file);
                sources.push((file, text));
            }
        }
    }
    Ok(sources)
}

pub fn has_manifest_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
}

#[cfg(test)]
pub(crate) mod testing {
    //! A fake daemon on a tempdir socket and a [`Ctx`] that records what a verb printed.
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::clock::FakeClock;
    use axum::Router;

    pub const NOW: &str = "2024-01-15T10:00:00Z";

    pub struct Harness {
        _dir: tempfile::TempDir,
        pub client: Client,
        pub clock: FakeClock,
        pub out: Vec<u8>,
        pub err: Vec<u8>,
    }

    impl Harness {
        pub fn ctx(&mut self) -> Ctx<'_> {
            Ctx {
                client: self.client.clone(),
                clock: &self.clock,
                out: &mut self.out,
                err: &mut self.err,
            }
        }
        pub fn out(&self) -> String {
            String::from_utf8_lossy(&self.out).into_owned()
        }
        pub fn err(&self) -> String {
            String::from_utf8_lossy(&self.err).into_owned()
        }
    }

    /// Serves `router` on a fresh socket; call from inside a tokio test.
    pub fn serve(router: Router) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("jobvisor.sock");
        let listener = tokio::net::UnixListener::bind(&socket).unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        Harness {
            _dir: dir,
            client: Client::new(socket),
            clock: FakeClock::new(NOW.parse().unwrap()),
            out: Vec::new(),
            err: Vec::new(),
        }
    }

    /// What `main` would print for an error.
    pub fn reported(err: &anyhow::Error) -> String {
        let mut buf = Vec::new();
        report(err, &mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn socket_resolution_order() {
        let p = |s: &str| PathBuf::from(s);
        assert_eq!(
            socket_path(Some(&p("/s.sock")), Some(&p("/r"))),
            p("/s.sock")
        );
        assert_eq!(socket_path(None, Some(&p("/r"))), p("/r/jobvisor.sock"));
        assert_eq!(socket_path(None, None), Layout::system_default().socket);
    }

    #[test]
    fn kinds_and_aliases() {
        for alias in ["job", "jobs", "Jobs", "jobs.batch", "job.batch"] {
            assert_eq!(Kind::parse(alias), Some(Kind::Job), "{alias}");
        }
        for alias in ["po", "pod", "pods"] {
            assert_eq!(Kind::parse(alias), Some(Kind::Pod), "{alias}");
        }
        for alias in ["ev", "event", "events"] {
            assert_eq!(Kind::parse(alias), Some(Kind::Event), "{alias}");
        }
        for alias in ["manifest", "manifests"] {
            assert_eq!(Kind::parse(alias), Some(Kind::Manifest), "{alias}");
        }
        assert_eq!(Kind::parse("deployments"), None);
        assert_eq!(
            Kind::parse_or_err("deploy").unwrap_err().to_string(),
            "the server doesn't have a resource type \"deploy\""
        );
        assert_eq!(split_type_name("jobs.batch/pi"), Some((Kind::Job, "pi")));
        assert_eq!(split_type_name("pi"), None);
        assert_eq!(
            not_found(Kind::Job, "x").to_string(),
            "Error from server (NotFound): jobs.batch \"x\" not found"
        );
    }

    #[test]
    fn errors_are_reported_like_kubectl() {
        let api: anyhow::Error = not_found(Kind::Pod, "p").into();
        assert_eq!(
            testing::reported(&api),
            "Error from server (NotFound): pods \"p\" not found\n"
        );
        let plain = anyhow::anyhow!("timed out waiting for the condition on jobs/x");
        assert_eq!(
            testing::reported(&plain),
            "error: timed out waiting for the condition on jobs/x\n"
        );
        let mut buf = Vec::new();
        assert_eq!(report(&Reported.into(), &mut buf), 1);
        assert!(buf.is_empty());
        let pipe: anyhow::Error = io::Error::from(io::ErrorKind::BrokenPipe).into();
        assert_eq!(report(&pipe, &mut buf), 0);
        assert!(buf.is_empty());
    }

    #[test]
    fn directories_expand_to_manifest_files() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            "b.yaml",
            "a.yml",
            "c.json",
            ".hidden.yaml",
            "notes.txt",
            "d.yaml~",
        ] {
            std::fs::write(dir.path().join(name), "").unwrap();
        }
        std::fs::create_dir(dir.path().join("sub.yaml")).unwrap();
        let files = manifest_files(&[dir.path().to_path_buf()]).unwrap();
        let names: Vec<_> = files
            .iter()
            .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["a.yml", "b.yaml", "c.json"]);
        let err = manifest_files(&[dir.path().join("missing.yaml")]).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
    }
}
