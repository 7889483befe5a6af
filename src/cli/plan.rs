//! `msms plan` (cut a conversion into parts for a cluster) and `msms merge` (join the
//! finished parts into one manifest): their flags and messages.

use std::path::PathBuf;

use clap::Args;

use super::build::BuildArgs;
use crate::config::{Layer, Settings};
use crate::format::manifest::manifest_name;
use crate::run;
use crate::text::{error_chain, human_bytes};

/// Text after `msms plan --help`.
pub(crate) const AFTER_PLAN: &str = "\
Example (3 parts; any engine runs the part commands, on a file system they all see):
  msms plan --input-hdf5 GeMS_C1_*.hdf5 --parts 3 --output shards/_plan.json --splits train=0.98,val=0.01,test=0.01
  msms build-shards --plan shards/_plan.json --part 0 --output-root shards   # … --part 1, --part 2
  msms merge shards
Each part keeps a copy of the plan in ROOT/_plan.json; merge writes ROOT/_manifest.json. Names
in ROOT that are not shards start with _ (or .), so a plan written into ROOT should be too.
--dedup exact cannot be planned (it needs every earlier spectrum).";

/// Flags of `msms plan`: `--parts`, `--output`, and the processing flags of build-shards.
#[derive(Debug, Args)]
pub(crate) struct PlanArgs {
    /// Number of parts.
    #[arg(long, value_name = "N")]
    pub(crate) parts: usize,
    /// Where to write the plan (JSON).
    #[arg(long, value_name = "PLAN.json")]
    pub(crate) output: PathBuf,
    /// The same inputs and processing options as `msms build-shards`.
    #[command(flatten)]
    pub(crate) build: BuildArgs,
}

/// Flags of `msms merge`.
#[derive(Debug, Args)]
pub(crate) struct MergeArgs {
    /// The output root given to every part (holds _plan.json and parts/K/).
    #[arg(value_name = "ROOT")]
    pub(crate) root: PathBuf,
}

/// `msms plan`: resolve the settings like build-shards, cut the inputs into parts, write
/// the plan and print its parts; exit 0, 2 (bad settings or inputs) or 1 (cannot write).
pub(crate) fn plan_cmd(a: PlanArgs) -> i32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let resolved = (|| {
        let file = a
            .build
            .config
            .as_deref()
            .map(Layer::from_yaml_file)
            .transpose()?;
        for n in file.iter().flat_map(|f| &f.notices) {
            eprintln!("msms plan: {n}");
        }
        let env = Layer::from_env(std::env::vars())?;
        Settings::resolve(&a.build.layer(), file.as_ref(), &env, cores)
    })();
    let settings = match resolved {
        Ok(s) => s,
        Err(e) => {
            eprintln!("msms plan: {}", error_chain(&e));
            return 2;
        }
    };
    if settings.inputs.is_empty() {
        eprintln!("msms plan: no inputs: give --input-hdf5 FILE...");
        return 2;
    }
    let b = &a.build;
    let pointless: Vec<&str> = [
        (
            b.output_root.is_some(),
            "--output-root (give it to each part)",
        ),
        (b.resume, "--resume"),
        (b.overwrite, "--overwrite"),
        (b.dry_run, "--dry-run"),
        (b.plan.is_some(), "--plan"),
        (b.interactive, "--interactive"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, f)| *f)
    .collect();
    if !pointless.is_empty() {
        eprintln!(
            "msms plan: {} has no meaning for a plan; remove it",
            pointless.join(", ")
        );
        return 2;
    }
    let mappings = match run::detect_inputs(&settings.inputs) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("msms plan: refusing input: {e}");
            return 2;
        }
    };
    let (plan, left_out) =
        match run::plan::make_plan(&settings, &mappings, a.parts, b.strict_columns) {
            Ok(p) => p,
            Err(e) => {
                eprintln!("msms plan: {e}");
                return 2;
            }
        };
    if !b.quiet {
        for notice in left_out {
            eprintln!("msms plan: {notice}");
        }
    }
    if let Err(e) = crate::write::atomic::write_atomic(&a.output, plan.to_json().as_bytes()) {
        eprintln!("msms plan: {}", error_chain(&e));
        return 1;
    }
    println!(
        "msms plan: {} parts of {} read units ({} spectra) in {}",
        plan.parts.len(),
        plan.units,
        plan.parts.iter().map(|p| p.rows).sum::<u64>(),
        a.output.display()
    );
    for p in &plan.parts {
        println!(
            "  part {:>3}: units {}..{}, {} spectra from spectrum_id {}, ~{}",
            p.part,
            p.units[0],
            p.units[1],
            p.rows,
            p.first_spectrum_id,
            human_bytes(p.stored_bytes)
        );
    }
    println!(
        "run each part:  msms build-shards --plan {} --part K --output-root ROOT\nthen:           msms merge ROOT",
        a.output.display()
    );
    0
}

/// `msms merge ROOT`: check the parts and write ROOT/_manifest.json (format-1 parts:
/// ROOT/manifest.json); exit 0, 2 or 1.
pub(crate) fn merge_cmd(a: MergeArgs) -> i32 {
    match crate::commands::merge::merge(&a.root) {
        Ok(crate::commands::merge::Merged {
            manifest: m,
            notices,
        }) => {
            for n in notices {
                eprintln!("msms merge: {n}");
            }
            println!(
                "msms merge: {} parts, {} shards, {} spectra written ({} read); {}",
                m.run.threads.split_whitespace().nth(2).unwrap_or("?"),
                m.shards.len(),
                m.counts.written,
                m.counts.read,
                a.root.join(manifest_name(m.format_version)).display()
            );
            println!("  dataset digest   {}", m.dataset_digest);
            0
        }
        Err(e) => {
            eprintln!("msms merge: {}", error_chain(&e));
            match e {
                crate::commands::merge::MergeError::Write(_) => 1,
                _ => 2,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Layer, Settings};
    use crate::run::plan::settings_args;

    #[test]
    fn settings_args_resolve_back_to_the_same_hash() {
        let cli = Layer {
            max_peaks: Some(64),
            splits: Some("train=0.9,test=0.1".parse().unwrap()),
            seed: Some(3),
            bin_width: Some(0.5),
            bin_range: Some("10:1000".parse().unwrap()),
            max_precursor_mz: Some(1200.5),
            row_group_size: Some(5000),
            compression: Some(crate::config::Compression::Zstd(7)),
            columns: Some("smiles,scan".parse().unwrap()),
            exclude_columns: Some("scan".parse().unwrap()),
            ..Layer::default()
        };
        let s = Settings::resolve(&cli, None, &Layer::default(), 2).unwrap();
        let args = settings_args(&s);
        let mut argv = vec!["msms".to_string(), "build-shards".to_string()];
        argv.extend(args);
        let cli = <crate::cli::Cli as clap::Parser>::try_parse_from(&argv).unwrap();
        let crate::cli::Command::BuildShards(b) = cli.command else {
            panic!("build-shards")
        };
        let again = Settings::resolve(&b.layer(), None, &Layer::default(), 2).unwrap();
        assert_eq!(again.config_hash(), s.config_hash());
        assert_eq!(again.columns, s.columns);
        assert_eq!(again.profile.row_group_size, 5000);
        assert_eq!(again.profile.compression.to_string(), "zstd:7");
    }
}
