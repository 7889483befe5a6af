//! Atomic file replacement: a temporary name, fsync, rename, fsync of the directory.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::write::error::{io_err, SinkError};
use crate::write::stall::stall_point;

/// fsync a directory so that a rename inside it is durable.
pub fn sync_dir(dir: &Path) -> Result<(), SinkError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err("fsync", dir))
}

/// Write `bytes` to `path` atomically: `path.tmp`, fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), SinkError> {
    write_replacing(path, bytes, true, &|| String::new())
}

/// Write `bytes` to `path` through `<path>.tmp` and a rename, so a reader sees the old or the
/// new content, never a mix. With `durable`, the file and then the directory are fsynced (the
/// rename survives a power loss). `stall` names the moment before the rename for the
/// crash-safety tests ([`stall_point`]).
pub fn write_replacing(
    path: &Path,
    bytes: &[u8],
    durable: bool,
    stall: &dyn Fn() -> String,
) -> Result<(), SinkError> {
    let tmp = path.with_extension("json.tmp");
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
