//! Path rules of an output root: where shards live, and which manifest paths are safe. (The
//! file names of the manifest and the checkpoint are kept with their formats:
//! [`super::manifest::MANIFEST`] and [`super::manifest::find_manifest`],
//! [`super::checkpoint::path`].)

use std::path::{Component, Path};

/// Path of shard `index` of `split`, relative to the output root.
pub(crate) fn shard_name(split: &str, index: usize) -> String {
    format!("{split}/shard-{index:05}.parquet")
}

/// `a/b.parquet`: relative, no `..`, `.` or empty components (a manifest's shard path that
/// cannot leave the output root).
pub(crate) fn is_plain_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.contains('\\')
        && Path::new(path)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
        && !path.split('/').any(str::is_empty)
}
