//! [`inflate_all_chunks`]: undo the filters of every stored chunk of a file, and nothing
//! else, through the same chunk index, memory map and [`decode_chunk`] as a conversion. It
//! is the input side of a conversion's floor (the work no conversion can skip), measured by
//! `benches/e2e.rs` and `scripts/bench-ratios.sh`; conversions do not call it.

use std::path::Path;

use super::{decode_chunk, pad3, DecodeScratch, MappedFile, Prepare, Storage};
use crate::read::error::InputError;
use crate::read::h5::{self, Layout, ObjectKind};

/// What [`inflate_all_chunks`] decoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InflateTotals {
    /// Chunked datasets of the root group walked.
    pub datasets: usize,
    /// Chunks decoded.
    pub chunks: u64,
    /// Bytes stored in the file (filtered) of those chunks.
    pub stored_bytes: u64,
    /// Bytes they decode to.
    pub bytes_out: u64,
}

/// Decode every stored chunk of every chunked dataset in the root group of `path`, one chunk
/// after the other on the calling thread, and discard the result.
///
/// Each dataset goes through the checks of the conversion's mapped path (every chunk
/// allocated, on the grid and inside the file; filters among deflate, shuffle and
/// fletcher32), its chunk index comes from `H5Dchunk_iter`, and each chunk is decoded by
/// [`decode_chunk`] from the memory map (deflate by libdeflate) with one reused
/// [`DecodeScratch`]; the mapped pages of a chunk are released after it, as a conversion
/// does. Unfiltered chunks are copied (what the conversion does with them); contiguous and
/// compact datasets have nothing to decode and are skipped, as are groups. Elements are
/// decoded at their stored size (variable-length strings as their 16-byte heap references).
///
/// Errors: the file cannot be opened or mapped, a chunked dataset the mapped path does not
/// decode (another filter, unallocated chunks, chunks over 16 MiB), or a chunk that does
/// not decode.
pub fn inflate_all_chunks(path: &Path) -> Result<InflateTotals, InputError> {
    let file = h5::File::open(path).map_err(|e| InputError::h5(path, None, e))?;
    let map = MappedFile::open(path)?;
    let members = file
        .root_members()
        .map_err(|e| InputError::h5(path, None, e))?;
    let mut scratch = DecodeScratch::default();
    let mut totals = InflateTotals::default();
    for (name, kind) in members {
        if kind != ObjectKind::Dataset {
            continue;
        }
        let err = |msg: String| InputError::new(path, Some(&name), msg);
        let h5err = |e: h5::H5Error| InputError::h5(path, Some(&name), e);
        let ds = file.dataset(&name).map_err(h5err)?;
        let info = ds.info(&name).map_err(h5err)?;
        let Layout::Chunked(chunk_shape) = &info.layout else {
            continue;
        };
        let elem = match info.dtype.stored_size() {
            Some(size) => size,
            None => return Err(err(format!("element type {}", info.dtype))),
        };
        let dims = pad3(&info.shape).ok_or_else(|| err(format!("rank {}", info.shape.len())))?;
        let prep = Prepare {
            file: &map,
            ds: &ds,
            info: &info,
            dims,
            elem,
        };
        let filters = prep.filters()?.map_err(|why| err(why.0))?;
        let Storage::Chunked { chunks } = prep
            .chunked(chunk_shape, &filters)?
            .map_err(|why| err(why.0))?
        else {
            unreachable!("chunked layout")
        };
        let n_bytes = chunk_shape.iter().product::<u64>() as usize * elem;
        for (i, c) in chunks.iter().enumerate() {
            // In the file: checked by `chunked`.
            let raw = map
                .slice(c.addr, c.size)
                .ok_or_else(|| err(format!("chunk {i}: beyond the end of the file")))?;
            decode_chunk(raw, &filters, c.filter_mask, n_bytes, &mut scratch)
                .map_err(|e| err(format!("chunk {i} at {:?}: {e}", &c.offset[..])))?;
            map.release(c.addr, c.size);
            totals.chunks += 1;
            totals.stored_bytes += c.size;
            totals.bytes_out += n_bytes as u64;
        }
        totals.datasets += 1;
    }
    Ok(totals)
}
