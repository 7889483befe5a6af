//! Which HDF5 filters msms can undo, and by whom: natively in the mapped path (deflate,
//! shuffle, fletcher32, h5py's lzf, hdf5plugin's zstd and lz4: [`NATIVE`]) or through the
//! linked libhdf5 (its built-in filters and any plugin it finds). A dataset with a filter
//! neither can undo is refused when the inputs are checked, before anything is written,
//! naming the dataset, the filter and the way out ([`check`]).

use std::path::Path;

use crate::read::h5::{self, DType, DatasetInfo};
use crate::read::InputError;

/// Filter ids the mapped path decodes itself (`mapped::chunk::decode_chunk`).
pub(crate) const NATIVE: [i32; 6] = [1, 2, 3, 32000, 32004, 32015];

/// Who undoes a filter, for `msms inspect`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FilterReader {
    /// msms's own decoder (numeric datasets on the default `--decode native`).
    Native,
    /// libhdf5 (built in, or a plugin on `HDF5_PLUGIN_PATH`).
    Libhdf5,
    /// Nobody: a dataset with it is refused.
    None,
}

impl FilterReader {
    /// Who undoes filter `id` of a dataset stored as `dtype`, decoded as `decode` says.
    pub(crate) fn of(id: i32, dtype: &DType, native: bool) -> FilterReader {
        let numeric = matches!(dtype, DType::Int { .. } | DType::Float { .. });
        if native && numeric && NATIVE.contains(&id) {
            FilterReader::Native
        } else if h5::filter_available(id) {
            FilterReader::Libhdf5
        } else {
            FilterReader::None
        }
    }
}

/// Refuse `info` when one of its filters is undone by nobody ([`FilterReader::None`]);
/// `native` is whether the native decoders may be used (`--decode native`).
pub(crate) fn check(path: &Path, info: &DatasetInfo, native: bool) -> Result<(), InputError> {
    let Some(&id) = info
        .filter_ids
        .iter()
        .find(|&&id| FilterReader::of(id, &info.dtype, native) == FilterReader::None)
    else {
        return Ok(());
    };
    let name = h5::filter_name(id);
    let natively = if native {
        "msms decodes deflate, shuffle, fletcher32, lzf, zstd and lz4 itself in numeric datasets"
    } else {
        "with --decode libhdf5, libhdf5 must decode every filter (the default --decode native \
         decodes deflate, shuffle, fletcher32, lzf, zstd and lz4 in numeric datasets)"
    };
    Err(InputError::new(
        path,
        Some(&info.name),
        format!(
            "filter {id} ({name}) cannot be decoded: {natively}, and the linked libhdf5 finds \
             no plugin for it. Either point HDF5_PLUGIN_PATH at one (`pip install hdf5plugin`, \
             then HDF5_PLUGIN_PATH=$(python -c 'import hdf5plugin; print(hdf5plugin.PLUGIN_PATH)')), \
             or rewrite the file without it: `h5repack -f {ds}:GZIP=4 IN.h5 OUT.h5` (or `-f NONE`)",
            ds = info.name
        ),
    ))
}
