//! `jobvisor completion SHELL` and the hidden `jobvisor generate-man DIR`: shell completions
//! and man pages, generated from the same clap definition the binary parses with, so they
//! never drift from it. Offline, no daemon.
//!
//! A subcommand, not a build script: a `build.rs` would have to compile the CLI definition a
//! second time, and cargo-deb's assets cannot point into `OUT_DIR`'s hashed paths. Packaging
//! runs the built binary (`scripts/build-deb.sh`); users run `jobvisor completion bash`
//! the way they run `kubectl completion bash`.

use std::io::Write;
use std::path::PathBuf;

use anyhow::Context;
use clap::CommandFactory;

#[derive(Debug, clap::Args)]
pub struct CompletionArgs {
    /// The shell to print a completion script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, clap::Args)]
pub struct GenerateManArgs {
    /// Directory to write jobvisor.1 and one jobvisor-VERB.1 per subcommand into.
    pub dir: PathBuf,
}

pub fn completion(args: &CompletionArgs, out: &mut dyn Write) -> anyhow::Result<()> {
    let mut cmd = super::Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "jobvisor", out);
    Ok(())
}

/// One page for `jobvisor` and one per visible subcommand (`jobvisor-get.1`), as git and
/// cargo ship theirs.
pub fn man(args: &GenerateManArgs) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    let cmd = super::Cli::command().name("jobvisor");
    let mut written = Vec::new();
    let mut write = |name: String, cmd: clap::Command| -> anyhow::Result<()> {
        let path = args.dir.join(format!("{name}.1"));
        let mut bytes = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut bytes)
            .with_context(|| format!("rendering {name}.1"))?;
        std::fs::write(&path, bytes).with_context(|| format!("writing {}", path.display()))?;
        written.push(path);
        Ok(())
    };
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        let name = format!("jobvisor-{}", sub.get_name());
        write(name.clone(), sub.clone().name(name))?;
    }
    write("jobvisor".into(), cmd)?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_know_the_verbs() {
        let mut out = Vec::new();
        completion(
            &CompletionArgs {
                shell: clap_complete::Shell::Bash,
            },
            &mut out,
        )
        .unwrap();
        let script = String::from_utf8(out).unwrap();
        assert!(script.contains("complete -F _jobvisor"), "{script}");
        for verb in ["get", "delete", "apply", "logs", "daemon"] {
            assert!(script.contains(verb), "no {verb}");
        }
    }

    #[test]
    fn a_man_page_per_verb() {
        let dir = tempfile::tempdir().unwrap();
        let written = man(&GenerateManArgs {
            dir: dir.path().to_path_buf(),
        })
        .unwrap();
        let names: Vec<String> = written
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert!(names.contains(&"jobvisor.1".to_string()), "{names:?}");
        assert!(names.contains(&"jobvisor-get.1".to_string()), "{names:?}");
        assert!(!names.iter().any(|n| n.contains("generate")), "{names:?}");
        let page = std::fs::read_to_string(dir.path().join("jobvisor-daemon.1")).unwrap();
        assert!(page.contains(".TH jobvisor-daemon"), "{page}");
        assert!(page.contains("log\\-target"), "{page}");
    }
}
