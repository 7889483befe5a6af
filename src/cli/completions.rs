//! `msms completions SHELL` (a shell completion script) and `msms man` (the man pages), both
//! generated from the clap definition of [`Cli`].

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use clap::CommandFactory;

use super::Cli;

/// Flags of `msms completions`.
#[derive(Debug, clap::Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete in: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum, value_name = "SHELL")]
    pub(crate) shell: clap_complete::Shell,
}

/// Text after `msms completions --help`.
pub(crate) const COMPLETIONS_AFTER_HELP: &str = "\
The script goes to stdout. To install it:
  bash        msms completions bash > ~/.local/share/bash-completion/completions/msms
              (or: source <(msms completions bash) in ~/.bashrc)
  zsh         msms completions zsh > ~/.zfunc/_msms
              (with fpath+=(~/.zfunc) before compinit in ~/.zshrc)
  fish        msms completions fish > ~/.config/fish/completions/msms.fish
  elvish      msms completions elvish >> ~/.config/elvish/rc.elv
  powershell  msms completions powershell >> $PROFILE";

/// Flags of `msms man`.
#[derive(Debug, clap::Args)]
pub(crate) struct ManArgs {
    /// Write msms.1 and one page per subcommand (msms-build-shards.1, msms-doctor.1, ...)
    /// into DIR (created if missing) instead of printing msms.1 to stdout.
    #[arg(long, value_name = "DIR")]
    pub(crate) output: Option<PathBuf>,
}

/// Text after `msms man --help`.
pub(crate) const MAN_AFTER_HELP: &str = "\
Examples:
  msms man | man -l -
  msms man --output ~/.local/share/man/man1 && man msms-build-shards";

/// `msms completions SHELL`: the script on stdout.
pub(crate) fn completions(a: &CompletionsArgs) -> i32 {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(a.shell, &mut cmd, "msms", &mut out);
    match io::stdout().write_all(&out) {
        Ok(()) => 0,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("msms completions: cannot write: {e}");
            1
        }
    }
}

/// `msms man [--output DIR]`.
pub(crate) fn man(a: &ManArgs) -> i32 {
    match &a.output {
        None => man_to_stdout(Cli::command()),
        Some(dir) => man_pages(Cli::command(), dir),
    }
}

/// msms.1 on stdout (a closed pipe is no error).
fn man_to_stdout(cmd: clap::Command) -> i32 {
    let mut out = Vec::new();
    if let Err(e) = clap_mangen::Man::new(cmd).render(&mut out) {
        eprintln!("msms man: {e}");
        return 1;
    }
    match io::stdout().write_all(&out) {
        Ok(()) => 0,
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            eprintln!("msms man: cannot write: {e}");
            1
        }
    }
}

/// msms.1 and one page per subcommand written into `dir` (created if missing), then one line
/// naming them.
fn man_pages(cmd: clap::Command, dir: &Path) -> i32 {
    let written = std::fs::create_dir_all(dir).and_then(|()| {
        clap_mangen::generate_to(cmd, dir)?;
        let mut pages: Vec<String> = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("msms") && n.ends_with(".1"))
            .collect();
        pages.sort();
        Ok(pages)
    });
    match written {
        Ok(pages) => {
            println!(
                "msms man: wrote {} pages to {}: {}",
                pages.len(),
                dir.display(),
                pages.join(", ")
            );
            0
        }
        Err(e) => {
            eprintln!("msms man: cannot write pages to {}: {e}", dir.display());
            1
        }
    }
}
