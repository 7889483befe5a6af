//! `msms status ROOT`: not started, running (a run held at a stall point), interrupted (a run
//! killed with SIGKILL), finished, and a planned root with parts finished, interrupted and
//! missing; text and `--json`.

mod common;

use std::path::Path;

use common::*;

fn status_json(root: &Path) -> serde_json::Value {
    let run = msms(["status".as_ref(), root.as_os_str(), "--json".as_ref()]);
    run.expect_code(0);
    serde_json::from_str(&run.stdout).unwrap_or_else(|e| panic!("{e}: {}", run.stdout))
}

fn status_text(root: &Path) -> String {
    let run = msms(["status".as_ref(), root.as_os_str()]);
    run.expect_code(0);
    run.stdout
}

fn sharded(input: &Path, root: &Path) -> std::process::Command {
    build_command(
        &[input],
        root,
        &[
            "--shard-size",
            "100kB",
            "--batch-size",
            "300",
            "--row-group-size",
            "100",
            "-q",
        ],
    )
}

#[test]
fn a_single_run_in_every_state() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 3000, 0.02, 4);
    let root = dir.path().join("root");

    // Not started.
    let s = status_json(&root);
    assert_eq!(s["format"], "msms-status");
    assert_eq!(s["version"], 1);
    assert_eq!(s["overall"]["state"], "not_started");
    assert_eq!(s["parts"], serde_json::json!([]));
    assert_eq!(
        status_text(&root),
        format!("{}: not started\n", root.display())
    );

    // Running: held by the thread that saves checkpoints, right before it renames one
    // listing a second shard, so that the checkpoint on disk stays as it is while we look.
    let held = Held::start(
        sharded(&input.path, &root),
        "checkpoint-rename:>=2",
        dir.path().join("release"),
    );
    let on_disk: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join(".msms/checkpoint.json")).unwrap())
            .unwrap();
    let s = status_json(&root);
    let o = &s["overall"];
    assert_eq!(o["state"], "running", "{s}");
    assert_eq!(o["holder"]["command"], "build-shards");
    assert_eq!(o["holder"]["pid"], held.pid());
    assert_eq!(o["spectra_total"], 3000);
    assert_eq!(
        o["shards"],
        on_disk["shards"].as_array().unwrap().len(),
        "{s}"
    );
    assert_eq!(o["spectra_read"], on_disk["read_so_far"], "{s}");
    assert!(o["resume_command"].is_null());
    let text = status_text(&root);
    assert!(
        text.starts_with(&format!(
            "{}: running (msms build-shards (pid {} on ",
            root.display(),
            held.pid()
        )),
        "{text}"
    );
    assert!(text.contains(" of 3,000 ("), "{text}");
    assert_eq!(held.release(), 0);

    // Finished: the manifest's figures.
    let m = read_manifest(&root);
    let s = status_json(&root);
    let o = &s["overall"];
    assert_eq!(o["state"], "finished");
    assert_eq!(o["spectra_read"], 3000);
    assert_eq!(o["rejected"], m["counts"]["rejected_total"]);
    assert_eq!(o["shards"], m["shards"].as_array().unwrap().len());
    let bytes: u64 = m["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["bytes"].as_u64().unwrap())
        .sum();
    assert_eq!(o["bytes"], bytes);
    assert!(o["holder"].is_null());

    // Interrupted: killed after its fourth shard's rename; the command that continues it is
    // shown, and it works.
    let killed = dir.path().join("killed");
    stall_and_kill(sharded(&input.path, &killed), "shard-renamed:3");
    let s = status_json(&killed);
    let o = &s["overall"];
    assert_eq!(o["state"], "interrupted", "{s}");
    assert!(o["holder"].is_null(), "a dead holder is not running: {s}");
    let cp: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(killed.join(".msms/checkpoint.json")).unwrap(),
    )
    .unwrap();
    let listed = cp["shards"].as_array().unwrap();
    assert!(!listed.is_empty(), "{cp}");
    assert_eq!(o["shards"], listed.len());
    assert_eq!(o["spectra_read"], cp["read_so_far"]);
    let resume = o["resume_command"].as_str().unwrap().to_string();
    assert!(resume.ends_with(" --resume"), "{resume}");
    assert!(status_text(&killed).contains(&format!("next       {resume}")));
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_msms")).parent().unwrap();
    let mut sh = std::process::Command::new("sh");
    sh.args(["-c", &resume]).env(
        "PATH",
        format!(
            "{}:{}",
            bin_dir.display(),
            std::env::var("PATH").unwrap_or_default()
        ),
    );
    run_command(sh).expect_code(0);
    assert_eq!(status_json(&killed)["overall"]["state"], "finished");
}

#[test]
fn a_planned_root_shows_each_part() {
    let dir = tempfile::tempdir().unwrap();
    let a = synth_input(&dir.path().join("a.hdf5"), "gems", 2000, 0.02, 1);
    let b = synth_input(&dir.path().join("b.hdf5"), "gems", 2000, 0.02, 2);
    let root = dir.path().join("root");
    std::fs::create_dir_all(&root).unwrap();
    let plan = root.join("_plan.json");
    msms([
        "plan".as_ref(),
        "--input-hdf5".as_ref(),
        a.path.as_os_str(),
        b.path.as_os_str(),
        "--parts".as_ref(),
        "3".as_ref(),
        "--output".as_ref(),
        plan.as_os_str(),
        "--shard-size".as_ref(),
        "100kB".as_ref(),
    ])
    .expect_code(0);
    let part = |k: usize| {
        let mut cmd = msms_command();
        cmd.arg("build-shards")
            .arg("--plan")
            .arg(&plan)
            .args(["--part", &k.to_string(), "-q", "--output-root"])
            .arg(&root);
        cmd
    };
    let rows: Vec<u64> =
        serde_json::from_str::<serde_json::Value>(&std::fs::read_to_string(&plan).unwrap())
            .unwrap()["parts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["rows"].as_u64().unwrap())
            .collect();

    // Part 0 finished, part 1 killed mid-way, part 2 never started.
    run_command(part(0)).expect_code(0);
    stall_and_kill(part(1), "shard-renamed:0");
    let s = status_json(&root);
    let states: Vec<&str> = s["parts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["state"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["finished", "interrupted", "not_started"], "{s}");
    assert_eq!(s["overall"]["state"], "interrupted");
    assert_eq!(
        s["overall"]["spectra_total"],
        rows.iter().sum::<u64>(),
        "{s}"
    );
    assert_eq!(s["parts"][0]["spectra_read"], rows[0]);
    let next2 = s["parts"][2]["resume_command"].as_str().unwrap();
    assert!(
        next2.starts_with("msms build-shards --plan ") && next2.contains(" --part 2 "),
        "{next2}"
    );
    let text = status_text(&root);
    for line in [
        "  part 0: finished",
        "  part 1: interrupted",
        "  part 2: not started",
    ] {
        assert!(text.contains(line), "{line:?} in\n{text}");
    }

    // All parts done: the merge is next; merged: finished.
    run_command(part(1)).expect_code(0);
    run_command(part(2)).expect_code(0);
    let s = status_json(&root);
    assert_eq!(s["overall"]["state"], "interrupted");
    assert_eq!(
        s["overall"]["resume_command"],
        format!("msms merge {}", root.display())
    );
    msms(["merge".as_ref(), root.as_os_str()]).expect_code(0);
    let s = status_json(&root);
    assert_eq!(s["overall"]["state"], "finished");
    assert_eq!(s["overall"]["spectra_read"], rows.iter().sum::<u64>());
}

/// `name{root="…"} value` lines of a metrics file, by name; every line is a comment or such.
fn metrics(path: &Path) -> std::collections::BTreeMap<String, f64> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut out = std::collections::BTreeMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (name, rest) = line.split_once('{').unwrap_or_else(|| panic!("{line}"));
        let (label, value) = rest.rsplit_once("} ").unwrap_or_else(|| panic!("{line}"));
        assert!(label.starts_with("root=\""), "{line}");
        out.insert(name.to_string(), value.parse().unwrap());
    }
    out
}

#[test]
fn the_metrics_file_holds_the_counters_during_and_after_a_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = synth_input(&dir.path().join("in.hdf5"), "gems", 3000, 0.02, 5);
    let root = dir.path().join("root");
    let prom = dir.path().join("msms.prom");
    let mut cmd = sharded(&input.path, &root);
    cmd.arg("--metrics-file").arg(&prom);
    let held = Held::start(cmd, "checkpoint-rename:>=2", dir.path().join("release"));
    // While it runs (held): written at least once, running, with the total.
    let m = metrics(&prom);
    assert_eq!(m.len(), 9, "{m:?}");
    assert_eq!(m["msms_running"], 1.0);
    assert_eq!(m["msms_spectra_total"], 3000.0);
    assert!(m["msms_spectra_read"] <= 3000.0);
    assert!(m["msms_start_time_seconds"] > 1.7e9, "{m:?}");
    assert!(m["msms_last_update_time_seconds"] >= m["msms_start_time_seconds"]);
    assert_eq!(held.release(), 0);
    // After: the run's final figures, not running; no temporary file left beside it.
    let m = metrics(&prom);
    let man = read_manifest(&root);
    assert_eq!(m["msms_running"], 0.0);
    assert_eq!(m["msms_spectra_read"], 3000.0);
    assert_eq!(
        m["msms_spectra_written"],
        man["counts"]["written"].as_f64().unwrap()
    );
    assert_eq!(
        m["msms_spectra_rejected"],
        man["counts"]["rejected_total"].as_f64().unwrap()
    );
    let shards = man["shards"].as_array().unwrap();
    assert_eq!(m["msms_shards_finished"], shards.len() as f64);
    let bytes: u64 = shards.iter().map(|s| s["bytes"].as_u64().unwrap()).sum();
    assert_eq!(m["msms_shard_bytes"], bytes as f64);
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("prom"))
        .collect();
    assert_eq!(names, ["msms.prom"]);

    // A path that cannot be written stops the run before it starts.
    let run = run_command({
        let mut c = sharded(&input.path, &dir.path().join("other"));
        c.arg("--metrics-file")
            .arg(dir.path().join("no/such/dir/m.prom"));
        c
    });
    run.expect_code(2);
    assert!(run.stderr.contains("--metrics-file"), "{}", run.stderr);
    assert!(
        !dir.path().join("other").exists(),
        "a refused run left its root"
    );
}
