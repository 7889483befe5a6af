//! For a person at a shell: `msms build-shards --interactive` (also bare `msms` on a
//! terminal).
//!
//! The interactive build asks for the mode, the inputs, the output root, a config file and a
//! few options, checking each answer as it comes (inputs are opened and mapped like
//! build-shards does; option values go through the same flag parser), then shows the
//! equivalent `msms build-shards …` command line and asks before running it. Confirmed, that
//! command line is run through [`crate::cli::run`], exactly as if it had been typed.

use std::io::{self, BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};

use clap::CommandFactory;

use super::build::BuildArgs;
use super::{Cli, Command};
use crate::config::{Layer, Mode, Profile, Settings};
use crate::format::manifest::{find_manifest, manifest_name, FORMAT_VERSION};
use crate::text::shell_quote;

/// Whether standard input and standard error are both terminals (bare `msms` then starts an
/// interactive build instead of printing the usage).
pub(crate) fn on_terminal() -> bool {
    io::stdin().is_terminal() && io::stderr().is_terminal()
}

/// The refusal printed when `--interactive` has no terminal.
const NO_TERMINAL: &str = "msms build-shards: --interactive needs a terminal to ask questions, and standard input is not one; pass the settings as flags instead, e.g.\n  msms build-shards --input-hdf5 FILE... --output-root DIR [--mode local|production] [--config FILE]\n(`msms build-shards --help` lists them)";

/// `msms build-shards --interactive`: refuse without a terminal (exit 2) or with other flags
/// (exit 2); otherwise ask, show the command line, and run it when confirmed.
pub(crate) fn build(a: &BuildArgs) -> i32 {
    if !io::stdin().is_terminal() {
        eprintln!("{NO_TERMINAL}");
        return 2;
    }
    let others = other_flags(a);
    if !others.is_empty() {
        eprintln!(
            "msms build-shards: --interactive asks for the settings itself and takes no other flags (got {}); give them all as flags without --interactive, or --interactive alone",
            others.join(", ")
        );
        return 2;
    }
    on_the_terminal()
}

/// Bare `msms` on a terminal: an interactive build.
pub(crate) fn bare() -> i32 {
    eprintln!("msms: no command given, so this is `msms build-shards --interactive` (`msms --help` lists the commands; Ctrl-C quits).");
    on_the_terminal()
}

fn on_the_terminal() -> i32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let env: Vec<(String, String)> = std::env::vars().collect();
    let outcome = {
        let stdin = io::stdin();
        let mut p = Prompter::new(stdin.lock(), io::stderr());
        session(&mut p, cores, &env)
    };
    match outcome {
        Ok(Outcome { argv, run: true }) => {
            eprintln!("Running: {}", command_line(&argv));
            run_as_typed(argv)
        }
        Ok(Outcome { argv, run: false }) => {
            eprintln!("Not run. The command line (also on stdout):");
            println!("{}", command_line(&argv));
            0
        }
        Err(Quit) => {
            eprintln!("msms: input ended; nothing was run");
            1
        }
    }
}

/// Run `argv` exactly as if it had been typed: this `msms` executable replaces itself with
/// it (`exec`), so the process's command line, signals, exit code and the `--resume` hint
/// after an interruption are those of the typed command. Where that is not possible (not
/// the `msms` binary, or `exec` fails) the same code path runs in this process.
fn run_as_typed(argv: Vec<String>) -> i32 {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()
        .ok()
        .filter(|p| p.file_name().is_some_and(|n| n == "msms"));
    if let Some(exe) = exe {
        let err = std::process::Command::new(exe)
            .arg0(&argv[0])
            .args(&argv[1..])
            .exec();
        eprintln!("msms: cannot re-run as typed ({err}); running in this process");
    }
    super::run(argv)
}

/// The flags given on the command line besides `--interactive`, as `--flag-name`s.
///
/// Compares the parsed flags with those of a bare `msms build-shards --interactive` parsed in
/// the same environment (so defaults and `MSMS_*` values such as `MSMS_DECODE` are not
/// counted), field by field of their `Debug` form; new flags are covered without a list.
fn other_flags(a: &BuildArgs) -> Vec<String> {
    use clap::FromArgMatches;
    let baseline = Cli::command()
        .try_get_matches_from(["msms", "build-shards", "--interactive"])
        .ok()
        .and_then(|m| Cli::from_arg_matches(&m).ok());
    let Some(Cli {
        command: Command::BuildShards(base),
    }) = baseline
    else {
        return Vec::new();
    };
    let given = debug_fields(&format!("{a:#?}"));
    let base = debug_fields(&format!("{base:#?}"));
    given
        .iter()
        .filter(|(name, text)| base.iter().find(|(n, _)| n == name).map(|(_, t)| t) != Some(text))
        .map(|(name, _)| format!("--{}", name.replace('_', "-")))
        .collect()
}

/// Top-level fields of a pretty `Debug` struct: (name, text of its value).
fn debug_fields(pretty: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in pretty.lines().skip(1).filter(|l| *l != "}") {
        let top = line.strip_prefix("    ").filter(|l| !l.starts_with(' '));
        match top.and_then(|l| l.split_once(':')) {
            Some((name, rest)) if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                fields.push((name.to_string(), rest.to_string()));
            }
            _ => {
                if let Some(last) = fields.last_mut() {
                    last.1.push('\n');
                    last.1.push_str(line);
                }
            }
        }
    }
    fields
}

/// The person stopped answering (end of input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Quit;

/// What an interactive session decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The command line, starting with `msms build-shards`.
    pub(crate) argv: Vec<String>,
    /// Whether to run it (the person answered yes).
    pub(crate) run: bool,
}

/// Questions on `out`, answers from `input`, one line each.
pub(crate) struct Prompter<R, W> {
    input: R,
    out: W,
}

impl<R: BufRead, W: Write> Prompter<R, W> {
    /// A prompter over a reader and a writer (a terminal: stdin and stderr).
    pub(crate) fn new(input: R, out: W) -> Self {
        Prompter { input, out }
    }

    /// Print a line.
    fn say(&mut self, text: &str) {
        let _ = writeln!(self.out, "{text}");
    }

    /// Ask; the trimmed answer, or the default for an empty one.
    fn ask(&mut self, question: &str, default: Option<&str>) -> Result<String, Quit> {
        match default {
            Some(d) => {
                let _ = write!(self.out, "{question} [{d}]: ");
            }
            None => {
                let _ = write!(self.out, "{question}: ");
            }
        }
        let _ = self.out.flush();
        let mut line = String::new();
        match self.input.read_line(&mut line) {
            Ok(0) | Err(_) => {
                let _ = writeln!(self.out);
                Err(Quit)
            }
            Ok(_) => {
                let answer = line.trim();
                Ok(if answer.is_empty() {
                    default.unwrap_or("").to_string()
                } else {
                    answer.to_string()
                })
            }
        }
    }

    /// Ask until `check` accepts the answer; its error is printed before asking again.
    fn ask_until<T>(
        &mut self,
        question: &str,
        default: Option<&str>,
        mut check: impl FnMut(&str, &mut Self) -> Result<T, String>,
    ) -> Result<T, Quit> {
        loop {
            let answer = self.ask(question, default)?;
            match check(&answer, self) {
                Ok(v) => return Ok(v),
                Err(e) => self.say(&format!("  {e}")),
            }
        }
    }
}

/// A typed path: surrounding quotes (as terminals add to dropped files) removed, a leading
/// `~/` expanded from `HOME`.
fn typed_path(answer: &str, env: &[(String, String)]) -> String {
    let a = answer.trim();
    let a = ['\'', '"']
        .iter()
        .find_map(|q| a.strip_prefix(*q).and_then(|s| s.strip_suffix(*q)))
        .unwrap_or(a);
    if let Some(rest) = a.strip_prefix("~/") {
        if let Some((_, home)) = env.iter().find(|(k, _)| k == "HOME") {
            return Path::new(home).join(rest).to_string_lossy().into_owned();
        }
    }
    a.to_string()
}

/// Parse `msms build-shards FLAG VALUE` with the real flag parser: `Err` is clap's message.
fn check_flag(flag: &str, value: &str) -> Result<(), String> {
    Cli::command()
        .try_get_matches_from(["msms", "build-shards", flag, value])
        .map(|_| ())
        .map_err(|e| {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("invalid value").to_string();
            first.strip_prefix("error: ").unwrap_or(&first).to_string()
        })
}

/// Whether `msms build-shards` has a flag with this id (flags added later are offered once
/// they exist).
fn has_flag(id: &str) -> Option<String> {
    let cmd = Cli::command();
    let build = cmd.find_subcommand("build-shards")?;
    let arg = build.get_arguments().find(|a| a.get_id() == id)?;
    Some(arg.get_help().map(|h| h.to_string()).unwrap_or_default())
}

/// The questions, in order: mode, inputs, output root (what to do when it is not empty),
/// config file, options; then the command line and the confirmation.
pub(crate) fn session<R: BufRead, W: Write>(
    p: &mut Prompter<R, W>,
    cores: usize,
    env: &[(String, String)],
) -> Result<Outcome, Quit> {
    let mut argv: Vec<String> = vec!["msms".into(), "build-shards".into()];
    let mode = ask_mode(p, cores)?;
    argv.extend(["--mode".into(), mode.as_str().into()]);
    let inputs = ask_inputs(p, env)?;
    argv.push("--input-hdf5".into());
    argv.extend(inputs);
    let (root, root_flag) = ask_root(p, env)?;
    argv.extend(["--output-root".into(), root]);
    if let Some(flag) = root_flag {
        argv.push(flag.into());
    }
    let config = ask_config(p, env)?;
    let file_layer = config.as_ref().map(|(_, l)| l.clone());
    if let Some((path, _)) = config {
        argv.extend(["--config".into(), path]);
    }
    let env_layer = Layer::from_env(env.iter().cloned()).unwrap_or_default();
    let defaults = Defaults::resolve(mode, file_layer.as_ref(), &env_layer, cores);
    ask_options(p, &defaults, &mut argv)?;
    confirm(p, argv)
}

/// The mode, after showing both profiles on this machine and the one `msms doctor` suggests.
fn ask_mode<R: BufRead, W: Write>(p: &mut Prompter<R, W>, cores: usize) -> Result<Mode, Quit> {
    let total_memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| crate::config::machine::parse_meminfo(&t).0);
    let suggested = crate::config::machine::suggest_mode(cores, total_memory);
    let describe = |m: Mode| {
        let pr = Profile::for_mode(m, cores);
        format!(
            "{} workers, {} writer{}, {} shards, batches of {}",
            pr.num_workers,
            pr.writers,
            if pr.writers == 1 { "" } else { "s" },
            pr.shard_size,
            pr.batch_size
        )
    };

    p.say("msms build-shards, interactive. Enter keeps the [default]; Ctrl-C quits.");
    p.say("");
    p.say("Mode: the profile of defaults.");
    p.say(&format!(
        "  local       laptop or workstation: {}",
        describe(Mode::Local)
    ));
    p.say(&format!(
        "  production  many-core server: {}",
        describe(Mode::Production)
    ));
    p.say(&format!(
        "  This machine has {cores} usable core{}{}; `msms doctor` suggests {} (production from 16 cores and 32 GiB).",
        if cores == 1 { "" } else { "s" },
        total_memory
            .map(|m| format!(" and {:.1} GiB of memory", m as f64 / (1u64 << 30) as f64))
            .unwrap_or_default(),
        suggested.as_str()
    ));
    p.ask_until(
        "Mode (local or production)",
        Some(suggested.as_str()),
        |a, _| a.parse::<Mode>().map_err(|e| e.to_string()),
    )
}

/// The input files, one per line until an empty one; each is opened and mapped as it comes.
fn ask_inputs<R: BufRead, W: Write>(
    p: &mut Prompter<R, W>,
    env: &[(String, String)],
) -> Result<Vec<String>, Quit> {
    p.say("");
    p.say("Input HDF5 files (GeMS layout), one per line, converted in this order; an empty line ends the list.");
    let mut inputs: Vec<String> = Vec::new();
    loop {
        let n = inputs.len() + 1;
        let answer = p.ask_until(&format!("Input {n}"), None, |a, p| {
            if a.is_empty() {
                return if inputs.is_empty() {
                    Err("give at least one input file".into())
                } else {
                    Ok(None)
                };
            }
            input_answer(a, env, p).map(Some)
        })?;
        match answer {
            Some(path) => inputs.push(path),
            None => return Ok(inputs),
        }
    }
}

/// A typed input file that exists, is no directory and maps like build-shards maps it (said
/// on `p`); `Err` is why not.
fn input_answer<R: BufRead, W: Write>(
    a: &str,
    env: &[(String, String)],
    p: &mut Prompter<R, W>,
) -> Result<String, String> {
    let path = typed_path(a, env);
    let meta = std::fs::metadata(&path).map_err(|e| format!("{path}: {e}"))?;
    if meta.is_dir() {
        return Err(format!("{path}: is a directory; give an HDF5 file"));
    }
    let m = crate::read::FileMapping::detect(Path::new(&path))
        .map_err(|e| format!("not usable: {e}"))?;
    p.say(&format!(
        "  ok: {} spectra, peaks in `{}`",
        m.rows, m.spectrum.dataset
    ));
    Ok(path)
}

/// What to do with the output root given.
enum RootChoice {
    /// Use it, with this flag (`--resume`, `--overwrite`) or none (it is empty).
    Use(Option<&'static str>),
    /// Ask for another root.
    Another,
}

/// The output root and the flag it needs (`--resume` or `--overwrite` when it is not empty).
fn ask_root<R: BufRead, W: Write>(
    p: &mut Prompter<R, W>,
    env: &[(String, String)],
) -> Result<(String, Option<&'static str>), Quit> {
    p.say("");
    p.say("Output root: the directory for _manifest.json and the shards (created if missing).");
    loop {
        let root = p.ask_until("Output root", None, |a, _| root_answer(a, env))?;
        if let RootChoice::Use(flag) = root_choice(p, &root)? {
            return Ok((root, flag));
        }
    }
}

/// A typed output root whose nearest existing ancestor is a directory; `Err` is why not.
fn root_answer(a: &str, env: &[(String, String)]) -> Result<String, String> {
    if a.is_empty() {
        return Err("give a directory".into());
    }
    let path = typed_path(a, env);
    let mut probe = PathBuf::from(&path);
    loop {
        match std::fs::metadata(&probe) {
            Ok(m) if m.is_dir() => break,
            Ok(_) => {
                return Err(format!(
                    "{} is a file, not a directory; choose another root",
                    probe.display()
                ))
            }
            Err(_) => match probe.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => probe = parent.to_path_buf(),
                _ => break,
            },
        }
    }
    Ok(path)
}

/// For a root that is not empty, ask: resume an interrupted run there, overwrite, or choose
/// another root.
fn root_choice<R: BufRead, W: Write>(
    p: &mut Prompter<R, W>,
    root: &str,
) -> Result<RootChoice, Quit> {
    let dir = Path::new(root);
    let not_empty = std::fs::read_dir(dir).is_ok_and(|mut d| d.next().is_some());
    if !not_empty {
        return Ok(RootChoice::Use(None));
    }
    if crate::format::checkpoint::path(dir).is_file() {
        // A run started by an msms of another output format cannot be resumed by this one.
        if let Some(v) = crate::run::other_format_checkpoint(dir) {
            p.say(&format!(
                "  {root} holds an interrupted run of output format {v} ({}; .msms/checkpoint.json), \
                 which this msms (format {FORMAT_VERSION}) cannot resume.",
                manifest_name(v)
            ));
            let choice = p.ask_until(
                "  [o]verwrite it (start over) or [c]hoose another root",
                Some("c"),
                |a, _| pick(a, &['o', 'c']),
            )?;
            return Ok(if choice == 'o' {
                RootChoice::Use(Some("--overwrite"))
            } else {
                RootChoice::Another
            });
        }
        p.say(&format!(
            "  {root} holds an interrupted run (.msms/checkpoint.json)."
        ));
        let choice = p.ask_until(
            "  [r]esume it (same inputs and settings), [o]verwrite it (start over), or [c]hoose another root",
            Some("r"),
            |a, _| pick(a, &['r', 'o', 'c']),
        )?;
        return Ok(match choice {
            'r' => RootChoice::Use(Some("--resume")),
            'o' => RootChoice::Use(Some("--overwrite")),
            _ => RootChoice::Another,
        });
    }
    let finished = find_manifest(dir).filter(|m| m.is_file());
    p.say(&format!(
        "  {root} is not empty{}.",
        match finished.as_ref().and_then(|m| m.file_name()) {
            Some(name) => format!(" (it holds a finished run: {})", name.to_string_lossy()),
            None => String::new(),
        }
    ));
    let choice = p.ask_until(
        "  [o]verwrite (an earlier run's manifest, shards and checkpoint are removed; other files stay) or [c]hoose another root",
        Some("c"),
        |a, _| pick(a, &['o', 'c']),
    )?;
    Ok(if choice == 'o' {
        RootChoice::Use(Some("--overwrite"))
    } else {
        RootChoice::Another
    })
}

/// A config file (read and checked now) with its layer, or none.
fn ask_config<R: BufRead, W: Write>(
    p: &mut Prompter<R, W>,
    env: &[(String, String)],
) -> Result<Option<(String, Layer)>, Quit> {
    p.say("");
    p.ask_until(
        "Config file (YAML, see configs/; empty for none)",
        None,
        |a, _| {
            if a.is_empty() {
                return Ok(None);
            }
            let path = typed_path(a, env);
            let layer = Layer::from_yaml_file(Path::new(&path))
                .map_err(|e| crate::text::error_chain(&e))?;
            Ok(Some((path, layer)))
        },
    )
}

/// The defaults of the options as they resolve now (mode, config file, environment), as
/// offered in the questions.
struct Defaults {
    shard_size: String,
    workers: String,
    normalize: String,
    max_peaks: String,
}

impl Defaults {
    /// Resolve the settings of `mode`, a config file and the environment; where they do not
    /// resolve, the mode's profile and the built-in defaults.
    fn resolve(mode: Mode, file: Option<&Layer>, env: &Layer, cores: usize) -> Defaults {
        let cli_layer = Layer {
            mode: Some(mode),
            ..Layer::default()
        };
        let resolved = Settings::resolve(&cli_layer, file, env, cores).ok();
        let profile = resolved
            .as_ref()
            .map_or_else(|| Profile::for_mode(mode, cores), |s| s.profile);
        Defaults {
            shard_size: profile.shard_size.to_string(),
            workers: profile.num_workers.to_string(),
            normalize: resolved
                .as_ref()
                .map_or_else(|| "max".to_string(), |s| s.normalize.as_str().to_string()),
            max_peaks: resolved
                .as_ref()
                .and_then(|s| s.max_peaks)
                .map_or_else(|| "all".to_string(), |k| k.to_string()),
        }
    }
}

/// The options: shard size, workers, normalisation, peaks kept and (when the flag exists)
/// splits; each answer other than the default is added to `argv` as its flag.
fn ask_options<R: BufRead, W: Write>(
    p: &mut Prompter<R, W>,
    d: &Defaults,
    argv: &mut Vec<String>,
) -> Result<(), Quit> {
    p.say("");
    p.say("Options (Enter keeps what the mode, config file and MSMS_* variables give):");
    let shard = p.ask_until(
        "Largest shard (e.g. 500MB, 2GiB)",
        Some(&d.shard_size),
        |a, _| {
            if a == d.shard_size {
                return Ok(None);
            }
            match option_answer("--shard-size", a)? {
                Some(v)
                    if v.parse::<crate::config::ByteSize>()
                        .is_ok_and(|b| b.bytes() == 0) =>
                {
                    Err("must be greater than zero".into())
                }
                v => Ok(v),
            }
        },
    )?;
    push_flag(argv, "--shard-size", shard);
    let workers = p.ask_until("Worker threads", Some(&d.workers), |a, _| {
        if a == d.workers {
            return Ok(None);
        }
        count_answer("--num-workers", a)
    })?;
    push_flag(argv, "--num-workers", workers);
    let norm = p.ask_until(
        "Normalize intensities (max, sum, l2, sqrt or none)",
        Some(&d.normalize),
        |a, _| {
            if a == d.normalize {
                return Ok(None);
            }
            option_answer("--normalize", a)
        },
    )?;
    push_flag(argv, "--normalize", norm);
    let peaks = p.ask_until(
        "Keep at most this many peaks per spectrum (a number, or all)",
        Some(&d.max_peaks),
        |a, _| {
            if a == d.max_peaks || (a.eq_ignore_ascii_case("all") && d.max_peaks == "all") {
                return Ok(None);
            }
            count_answer("--max-peaks", a)
        },
    )?;
    push_flag(argv, "--max-peaks", peaks);
    if let Some(help) = has_flag("splits") {
        let help = help.lines().next().unwrap_or("").to_string();
        p.say(&format!("Splits: {help}"));
        let splits = p.ask_until("Splits (empty for none)", None, |a, _| {
            option_answer("--splits", a)
        })?;
        push_flag(argv, "--splits", splits);
    }
    Ok(())
}

/// An option's answer checked by the flag parser: `None` for an empty one.
fn option_answer(flag: &str, a: &str) -> Result<Option<String>, String> {
    if a.is_empty() {
        return Ok(None);
    }
    check_flag(flag, a)?;
    Ok(Some(a.to_string()))
}

/// A count's answer checked by the flag parser and at least 1: `None` for an empty one.
fn count_answer(flag: &str, a: &str) -> Result<Option<String>, String> {
    if a.is_empty() {
        return Ok(None);
    }
    check_flag(flag, a)?;
    match a.parse::<u64>() {
        Ok(0) => Err("must be at least 1".into()),
        _ => Ok(Some(a.to_string())),
    }
}

/// Show the command line (it must parse, conflicts included, before it is offered) and ask
/// whether to run it.
fn confirm<R: BufRead, W: Write>(
    p: &mut Prompter<R, W>,
    argv: Vec<String>,
) -> Result<Outcome, Quit> {
    if let Err(e) = Cli::command().try_get_matches_from(&argv) {
        p.say(&format!(
            "The command line does not parse: {}",
            e.render().to_string().lines().next().unwrap_or_default()
        ));
        return Ok(Outcome { argv, run: false });
    }
    p.say("");
    p.say("The equivalent command line:");
    p.say(&format!("  {}", command_line(&argv)));
    let run = p.ask_until("Run it now? [y/N]", None, |a, _| {
        match a.to_ascii_lowercase().as_str() {
            "y" | "yes" => Ok(true),
            "" | "n" | "no" => Ok(false),
            _ => Err("answer y or n".into()),
        }
    })?;
    Ok(Outcome { argv, run })
}

fn push_flag(argv: &mut Vec<String>, flag: &str, value: Option<String>) {
    if let Some(v) = value {
        argv.push(flag.into());
        argv.push(v);
    }
}

/// The first letter of an answer, when it is one of `allowed`.
fn pick(answer: &str, allowed: &[char]) -> Result<char, String> {
    let c = answer.trim().chars().next().map(|c| c.to_ascii_lowercase());
    match c {
        Some(c) if allowed.contains(&c) => Ok(c),
        _ => Err(format!(
            "answer one of {}",
            allowed
                .iter()
                .map(char::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// `argv` quoted for a POSIX shell, joined by spaces.
fn command_line(argv: &[String]) -> String {
    argv.iter()
        .map(|a| shell_quote(a))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answers(lines: &[&str]) -> Result<Outcome, Quit> {
        let text = lines.iter().map(|l| format!("{l}\n")).collect::<String>();
        let mut out = Vec::new();
        let mut p = Prompter::new(io::Cursor::new(text.into_bytes()), &mut out);
        session(&mut p, 2, &[])
    }

    #[test]
    fn quotes_for_the_shell() {
        assert_eq!(shell_quote("a/b.h5"), "a/b.h5");
        assert_eq!(shell_quote("my file.h5"), "'my file.h5'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn typed_paths_lose_quotes_and_expand_home() {
        let env = vec![("HOME".to_string(), "/home/u".to_string())];
        assert_eq!(typed_path("'/a b/c.h5'", &env), "/a b/c.h5");
        assert_eq!(typed_path("~/x.h5", &env), "/home/u/x.h5");
        assert_eq!(typed_path(" plain ", &env), "plain");
    }

    #[test]
    fn reads_debug_fields() {
        let f = debug_fields("S {\n    a: [\n        1,\n    ],\n    b_c: None,\n}");
        assert_eq!(f.len(), 2);
        assert_eq!(f[1], ("b_c".to_string(), " None,".to_string()));
    }

    #[test]
    fn flag_values_go_through_the_parser() {
        assert!(check_flag("--shard-size", "1GB").is_ok());
        let e = check_flag("--shard-size", "lots").unwrap_err();
        assert!(e.contains("--shard-size"), "{e}");
        assert!(check_flag("--normalize", "sideways").is_err());
    }

    #[test]
    fn end_of_input_quits() {
        assert_eq!(answers(&[]), Err(Quit));
        assert_eq!(answers(&["local"]), Err(Quit));
    }

    #[test]
    fn a_whole_session_with_reprompts() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("in.h5");
        crate::commands::synth::write(
            &input,
            &crate::commands::synth::SynthOptions {
                spectra: 20,
                layout: "gems".parse().unwrap(),
                faults: 0.0,
                seed: 1,
            },
        )
        .unwrap();
        let not_hdf5 = dir.path().join("notes.txt");
        std::fs::write(&not_hdf5, "hello").unwrap();
        let root = dir.path().join("out");
        let input_s = input.to_str().unwrap();
        let root_s = root.to_str().unwrap();
        let o = answers(&[
            "sideways",                 // bad mode: asked again
            "production",               // mode
            "",                         // no input yet: asked again
            "/no/such/file.h5",         // missing: asked again
            not_hdf5.to_str().unwrap(), // not HDF5: asked again
            input_s,                    // input 1
            "",                         // end of inputs
            root_s,                     // output root
            "",                         // no config
            "lots",                     // bad shard size: asked again
            "500MB",                    // shard size
            "0",                        // bad worker count: asked again
            "",                         // default workers
            "sum",                      // normalize
            "50",                       // max peaks
            "",                         // splits, if offered; else the confirmation (no)
            "n",                        // confirmation when splits were offered
        ])
        .unwrap();
        assert!(!o.run);
        assert_eq!(
            o.argv[..10],
            [
                "msms",
                "build-shards",
                "--mode",
                "production",
                "--input-hdf5",
                input_s,
                "--output-root",
                root_s,
                "--shard-size",
                "500MB"
            ]
        );
        assert_eq!(o.argv[10..], ["--normalize", "sum", "--max-peaks", "50"]);
        assert!(!root.exists());
    }
}
