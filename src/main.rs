//! The `jobvisor` binary: parse the command line, run the daemon or one client verb, and
//! turn the outcome into an exit code (errors on stderr, kubectl-style, exit 1).

use std::io::{self, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use jobvisor::cli::{self, Cli, Command, Ctx};
use jobvisor::clock::SystemClock;
use jobvisor::daemon::{self, DaemonOptions};
use jobvisor::proto::Client;

fn main() -> ExitCode {
    let args = Cli::parse();
    let result = match args.command {
        Command::Daemon(d) => run_daemon(DaemonOptions {
            root: args.root,
            config: d.common.config,
            log_target: d.log_target,
        }),
        Command::RecoverState(d) => daemon::recover_state(&DaemonOptions {
            root: args.root,
            config: d.config,
            ..DaemonOptions::default()
        }),
        // Offline, but it judges manifests against the config the daemon under --root reads.
        Command::Validate(mut v) => {
            v.root.clone_from(&args.root);
            run_client(&args.root, &args.socket, Command::Validate(v))
        }
        command => run_client(&args.root, &args.socket, command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => ExitCode::from(cli::report(&err, &mut io::stderr().lock())),
    }
}

fn run_daemon(opts: DaemonOptions) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(daemon::run(opts))
}

/// Client verbs make a few requests one after another: one thread is plenty.
fn run_client(
    root: &Option<std::path::PathBuf>,
    socket: &Option<std::path::PathBuf>,
    command: Command,
) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let socket = cli::socket_path(socket.as_deref(), root.as_deref());
    let stdout = io::stdout();
    let stderr = io::stderr();
    let mut out = stdout.lock();
    let mut err = stderr.lock();
    let mut ctx = Ctx {
        client: Client::new(socket),
        clock: &SystemClock,
        out: &mut out,
        err: &mut err,
    };
    let result = runtime.block_on(cli::run(&mut ctx, command));
    let _ = out.flush();
    result
}
