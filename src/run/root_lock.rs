//! One writer per output root: [`RootLock`], an exclusive `flock(2)` on `ROOT/.msms/lock`
//! that `build-shards` and `merge` hold for their whole run.
//!
//! The lock belongs to the open file, so the kernel releases it when the process ends in any
//! way (`kill -9` included): a lock file left behind by a dead process is never a stale lock,
//! only a file the next holder reuses. The file also records its holder (command, pid, host,
//! start time), which a refused command names.
//!
//! On NFS (v3 with lockd, v4) Linux implements `flock` with the server's byte-range locks,
//! so the lock holds between the nodes of a cluster; CephFS and GPFS lock across nodes too.
//! Lustre does so only when mounted with `-o flock` (without it `flock` fails with `ENOSYS`);
//! where the file system has no locks at all the command goes on, with a notice that it could
//! not lock ([`LockError::Unsupported`]).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::format::checkpoint;

/// The lock file, in the checkpoint directory of a root.
pub(crate) const LOCK_FILE: &str = "lock";

/// Who holds a root: recorded in the lock file by its holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    /// The msms command (`build-shards`, `merge`).
    pub command: String,
    /// Process id on `host`.
    pub pid: u32,
    /// Host name of the machine it runs on.
    pub host: String,
    /// When it took the lock, RFC 3339 UTC.
    pub started: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "msms {} (pid {} on {}, started {})",
            self.command, self.pid, self.host, self.started
        )
    }
}

/// Why a root could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another command holds the root.
    #[error("output root {} is in use by {}; wait for it to finish, or stop it first (a holder that died has released the root)", root.display(), describe(.holder))]
    Held {
        /// The root.
        root: PathBuf,
        /// The holder, as it recorded itself (`None`: not yet recorded, or unreadable).
        holder: Option<Holder>,
    },
    /// The file system does not support `flock` (e.g. Lustre without `-o flock`).
    #[error("cannot lock output root {}: {source} (this file system has no flock); make sure no other msms writes to it", root.display())]
    Unsupported {
        /// The root.
        root: PathBuf,
        /// The error `flock` returned.
        source: io::Error,
    },
    /// The root does not exist and cannot be created.
    #[error("output root {}: cannot create it: {source}", root.display())]
    CreateRoot {
        /// The root.
        root: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// Creating, opening or writing the lock file failed.
    #[error("output root {}: {op} {}: {source}", root.display(), path.display())]
    Io {
        /// The root.
        root: PathBuf,
        /// What was being done.
        op: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
}

fn describe(holder: &Option<Holder>) -> String {
    match holder {
        Some(h) => h.to_string(),
        None => "another msms (its lock file names no holder yet)".into(),
    }
}

/// An exclusive lock on an output root, held until dropped (or the process ends).
#[derive(Debug)]
pub struct RootLock {
    file: File,
    path: PathBuf,
}

/// The `.msms` directory of `root`, which holds the lock file and the checkpoint.
fn msms_dir(root: &Path) -> PathBuf {
    root.join(checkpoint::DIR)
}

/// The lock file of `root`.
pub(crate) fn lock_path(root: &Path) -> PathBuf {
    msms_dir(root).join(LOCK_FILE)
}

impl RootLock {
    /// Take the lock on `root` for `command`, creating `root` and its `.msms` directory if
    /// needed; fail at once ([`LockError::Held`]) when another process holds it.
    pub fn acquire(root: &Path, command: &str) -> Result<RootLock, LockError> {
        let path = lock_path(root);
        let io_err = |op: &'static str, path: &Path| {
            let root = root.to_path_buf();
            let path = path.to_path_buf();
            move |source| LockError::Io {
                root,
                op,
                path,
                source,
            }
        };
        std::fs::create_dir_all(root).map_err(|source| LockError::CreateRoot {
            root: root.to_path_buf(),
            source,
        })?;
        let dir = msms_dir(root);
        std::fs::create_dir_all(&dir).map_err(io_err("creating", &dir))?;
        loop {
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .map_err(io_err("opening", &path))?;
            // SAFETY: flock on a descriptor this function owns; no memory is involved.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
                let e = io::Error::last_os_error();
                return Err(match e.raw_os_error() {
                    Some(libc::EWOULDBLOCK) => LockError::Held {
                        root: root.to_path_buf(),
                        holder: read_holder(&file),
                    },
                    Some(libc::ENOLCK | libc::ENOSYS | libc::EOPNOTSUPP) => {
                        LockError::Unsupported {
                            root: root.to_path_buf(),
                            source: e,
                        }
                    }
                    _ => io_err("locking", &path)(e),
                });
            }
            // The previous holder removes the file while still holding it: a lock taken on
            // that unlinked file guards nothing, so take it again on the file now there.
            if same_file(&file, &path) {
                let mut lock = RootLock { file, path };
                lock.record(command)
                    .map_err(io_err("writing", &lock.path.clone()))?;
                return Ok(lock);
            }
        }
    }

    /// [`RootLock::acquire`], except that where the file system has no locks
    /// ([`LockError::Unsupported`]) the command goes on unlocked: `Ok((None, Some(warning)))`.
    pub fn acquire_where_supported(
        root: &Path,
        command: &str,
    ) -> Result<(Option<RootLock>, Option<String>), LockError> {
        match RootLock::acquire(root, command) {
            Ok(lock) => Ok((Some(lock), None)),
            Err(e @ LockError::Unsupported { .. }) => Ok((None, Some(format!("warning: {e}")))),
            Err(e) => Err(e),
        }
    }

    /// Write this process as the holder.
    fn record(&mut self, command: &str) -> io::Result<()> {
        let holder = Holder {
            command: command.to_string(),
            pid: std::process::id(),
            host: host_name(),
            started: checkpoint::now(),
        };
        let mut text = serde_json::to_string(&holder).expect("holder serialises");
        text.push('\n');
        self.file.set_len(0)?;
        self.file.rewind()?;
        self.file.write_all(text.as_bytes())
    }
}

impl Drop for RootLock {
    /// Remove the lock file while still holding it (a command waiting on it then retries on
    /// a new file), then the `.msms` directory if nothing else is in it; closing the file
    /// releases the lock.
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
        if let Some(dir) = self.path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Whether `path` still names the open `file`.
fn same_file(file: &File, path: &Path) -> bool {
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// The holder recorded in a lock file, if it parses.
fn read_holder(mut file: &File) -> Option<Holder> {
    let mut text = String::new();
    file.read_to_string(&mut text).ok()?;
    serde_json::from_str(text.trim()).ok()
}

/// This machine's host name (`gethostname`), or `unknown`.
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that many bytes.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "unknown".into();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// The command holding `root`, without taking any lock (a lock taken only to look would
/// refuse a command starting at that moment): the lock file exists only while a holder runs
/// or after one died, so its recorded holder is taken as running when its process is alive
/// on this host, or when it runs on another host (which cannot be checked from here).
pub(crate) fn lock_holder(root: &Path) -> Option<Holder> {
    let file = File::open(lock_path(root)).ok()?;
    let holder = read_holder(&file)?;
    if holder.host != host_name() {
        return Some(holder);
    }
    let pid = libc::pid_t::try_from(holder.pid).ok()?;
    // SAFETY: signal 0 only checks that the process exists and may be signalled.
    let alive = unsafe { libc::kill(pid, 0) } == 0
        || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    let is_msms = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
        c.split('\0')
            .next()
            .is_some_and(|exe| exe.ends_with("msms"))
    });
    (alive && is_msms).then_some(holder)
}

/// Whether `root`'s only content is an idle lock (its `.msms` directory holding nothing but
/// the lock file): such a root is empty for every purpose.
pub(crate) fn only_lock(root: &Path) -> bool {
    let Ok(entries) = std::fs::read_dir(root) else {
        return false;
    };
    let names: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.file_name())
        .collect();
    if names.len() != 1 || names[0] != checkpoint::DIR {
        return false;
    }
    std::fs::read_dir(msms_dir(root))
        .is_ok_and(|d| d.filter_map(Result::ok).all(|e| e.file_name() == LOCK_FILE))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("msms-lock-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn a_second_lock_on_one_root_is_refused_and_names_the_holder() {
        let root = tmp("second");
        let first = RootLock::acquire(&root, "build-shards").unwrap();
        match RootLock::acquire(&root, "merge") {
            Err(LockError::Held {
                holder: Some(h), ..
            }) => {
                assert_eq!(h.command, "build-shards");
                assert_eq!(h.pid, std::process::id());
                assert_eq!(h.host, host_name());
            }
            other => panic!("expected Held with a holder, got {other:?}"),
        }
        assert!(only_lock(&root));
        drop(first);
        // Released: the lock file and the directory are gone, and the root can be locked.
        assert!(!lock_path(&root).exists());
        assert!(!msms_dir(&root).exists());
        let again = RootLock::acquire(&root, "merge").unwrap();
        drop(again);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_lock_file_left_by_a_dead_holder_is_reused() {
        let root = tmp("stale");
        std::fs::create_dir_all(msms_dir(&root)).unwrap();
        std::fs::write(lock_path(&root), "{\"command\":\"build-shards\",\"pid\":1,\"host\":\"gone\",\"started\":\"2026-01-01T00:00:00Z\"}\n").unwrap();
        let lock = RootLock::acquire(&root, "merge").unwrap();
        let text = std::fs::read_to_string(lock_path(&root)).unwrap();
        let h: Holder = serde_json::from_str(text.trim()).unwrap();
        assert_eq!((h.command.as_str(), h.pid), ("merge", std::process::id()));
        drop(lock);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn only_lock_is_false_when_anything_else_is_there() {
        let root = tmp("only");
        let lock = RootLock::acquire(&root, "build-shards").unwrap();
        assert!(only_lock(&root));
        std::fs::write(msms_dir(&root).join("checkpoint.json"), "{}").unwrap();
        assert!(!only_lock(&root));
        std::fs::remove_file(msms_dir(&root).join("checkpoint.json")).unwrap();
        std::fs::write(root.join("x"), "").unwrap();
        assert!(!only_lock(&root));
        drop(lock);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
