//! Atomic file replacement: a temporary name, fsync, rename, fsync of the directory.
//!
//! The temporary name of a file is its own name with `.tmp` appended ([`temp_path`]):
//! `_manifest.json.tmp`, `.msms/checkpoint.json.tmp`, `plan.txt.tmp`,
//! `train/shard-00000.parquet.tmp`.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::write::error::{io_err, SinkError};
use crate::write::stall::stall_point;

/// Where `path` is staged before its rename into place: `<file name>.tmp` beside it. (A path
/// without a file name, such as `..`, is returned as it is: creating it fails.)
pub(crate) fn temp_path(path: &Path) -> PathBuf {
    match path.file_name() {
        Some(name) => {
            let mut tmp = name.to_os_string();
            tmp.push(".tmp");
            path.with_file_name(tmp)
        }
        None => path.to_path_buf(),
    }
}

/// fsync a directory so that a rename inside it is durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), SinkError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync", dir))
}

/// Write `bytes` to `path` atomically: `<path>.tmp`, fsync, rename, fsync the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SinkError> {
    write_replacing(path, bytes, true, &|| String::new())
}

/// Write `bytes` to `path` through `<path>.tmp` and a rename, so a reader sees the old or the
/// new content, never a mix. With `durable`, the file and then the directory are fsynced (the
/// rename survives a power loss). `stall` names the moment before the rename for the
/// crash-safety tests ([`stall_point`]).
pub(crate) fn write_replacing(
    path: &Path,
    bytes: &[u8],
    durable: bool,
    stall: &dyn Fn() -> String,
) -> Result<(), SinkError> {
    let tmp = temp_path(path);
    let mut f = File::create(&tmp).map_err(io_err("creating", &tmp))?;
    let written = f.write_all(bytes).map_err(io_err("writing", &tmp));
    let synced = written.and_then(|()| {
        if durable {
            f.sync_all().map_err(io_err("fsync", &tmp))
        } else {
            Ok(())
        }
    });
    drop(f);
    if let Err(e) = synced {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    stall_point(stall);
    fs::rename(&tmp, path).map_err(io_err("renaming into place", path))?;
    if durable {
        // A bare file name's parent is "": the working directory.
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        sync_dir(dir)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_temporary_name_is_the_file_name_and_tmp() {
        for (path, tmp) in [
            ("root/_manifest.json", "root/_manifest.json.tmp"),
            (
                "root/.msms/checkpoint.json",
                "root/.msms/checkpoint.json.tmp",
            ),
            ("plan.txt", "plan.txt.tmp"),
            ("plan", "plan.tmp"),
            ("train/shard-00000.parquet", "train/shard-00000.parquet.tmp"),
            ("..", ".."),
        ] {
            assert_eq!(temp_path(Path::new(path)), Path::new(tmp), "{path}");
        }
    }

    #[test]
    fn write_atomic_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.txt");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["plan.txt"]);
    }
}
