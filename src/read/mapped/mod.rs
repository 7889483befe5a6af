//! Direct chunk decoding from a memory-mapped HDF5 file.
//!
//! libhdf5 is asked once per dataset, on the reader thread, for the metadata: the chunk index
//! (`H5Dchunk_iter`: logical offset, file address, stored size, filter mask of every chunk),
//! or the extent of a contiguous dataset (`H5Dget_offset` / `H5Dget_storage_size`), and the
//! filter pipeline. The workers then decode chunks themselves, in parallel, from the mapped
//! bytes: the filters run in reverse pipeline order, skipping those masked off for a chunk
//! (deflate by `libdeflater`, shuffle by the `msms-kernels` unshuffle, fletcher32 verified),
//! and the kernels' `gather_chunk` copies the part of each chunk a unit needs into its
//! buffer. Per-worker buffers are reused ([`DecodeScratch`]): no allocation per chunk once
//! they have grown to the chunk size.
//!
//! A dataset is decoded this way when its stored type is the memory type byte for byte, its
//! layout is chunked (rank 1 to 3, every chunk allocated) or contiguous, and every filter is
//! one of deflate, shuffle and fletcher32. Anything else (szip, lzf, blosc, n-bit, compact or
//! virtual layouts, big-endian or converted types, unallocated chunks that read as the fill
//! value, chunks over `MAX_CHUNK_BYTES` decoded, partial edge chunks stored unfiltered)
//! goes through libhdf5's `H5Dread` instead; `MappedDataset::new` says why.
//!
//! Every slice of the map is bounds-checked against the file length before use: a chunk
//! whose address or size points past the end is an error naming file, dataset and chunk.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytemuck::Pod;
use memmap2::{Advice, Mmap, UncheckedAdvice};

use crate::read::error::InputError;
use crate::read::h5::{self, ChunkRecord, DatasetInfo, Layout, MAX_CHUNK_RANK};

mod chunk;
mod inflate;

use chunk::CacheEntry;
pub use chunk::{decode_chunk, fletcher32, Buffer, ChunkError, ChunkFilter, DecodeScratch};
pub use inflate::{inflate_all_chunks, InflateTotals};

/// Rows per tile when a band of several chunks is copied into a unit ([`MappedDataset::read_band`]).
const TILE_ROWS: u64 = 64;

/// Largest band of chunks staged at once; bigger bands are copied chunk by chunk.
const MAX_STAGE_BYTES: usize = 64 << 20;

/// Largest decoded chunk the mapped path takes (libhdf5 allows up to 4 GiB; h5py's automatic
/// chunks stay under 1 MiB); bigger chunks go through libhdf5. Each worker holds up to two
/// chunks of decode buffers, so this bounds memory per worker.
pub(crate) const MAX_CHUNK_BYTES: u64 = 16 << 20;

/// Decoded chunks a worker keeps for the next unit (chunks that straddle units), in bytes.
const CACHE_BYTES: usize = 32 << 20;

/// A read-only memory map of one input file.
///
/// # Safety contract
///
/// The map is created read-only (a shared file mapping this process never writes). Its contents are only sound to read while no
/// one truncates or rewrites the file: a file truncated while mapped makes reads of the
/// missing pages raise SIGBUS (the process dies with a signal, not an error), and a file
/// rewritten in place changes the bytes under the decoder (caught by deflate and fletcher32
/// where the data has them, otherwise it yields whatever is there). Input files are treated
/// as immutable for the duration of a run, as every HDF5 reader does; the length checked
/// against is the length when the file was mapped.
pub(crate) struct MappedFile {
    path: PathBuf,
    map: Mmap,
}

impl fmt::Debug for MappedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MappedFile")
            .field("path", &self.path)
            .field("len", &self.map.len())
            .finish()
    }
}

impl MappedFile {
    /// Map `path` read-only (shared; never written) and advise the kernel of sequential
    /// access.
    pub(crate) fn open(path: &Path) -> Result<Arc<MappedFile>, InputError> {
        let err = |e: std::io::Error| InputError::new(path, None, format!("cannot map: {e}"));
        let file = std::fs::File::open(path).map_err(err)?;
        // SAFETY: read-only map; see the type's safety contract (the file must not
        // be truncated or modified while mapped). Every access goes through `slice`, which
        // bounds-checks against the mapped length.
        let map = unsafe { memmap2::MmapOptions::new().map(&file) }.map_err(err)?;
        // Advice is a hint: failing to give it changes nothing but speed.
        let _ = map.advise(Advice::Sequential);
        Ok(Arc::new(MappedFile {
            path: path.to_path_buf(),
            map,
        }))
    }

    /// Length of the mapped file in bytes.
    pub(crate) fn len(&self) -> u64 {
        self.map.len() as u64
    }

    /// The bytes `addr..addr + size`, or `None` when they are not all inside the file.
    fn slice(&self, addr: u64, size: u64) -> Option<&[u8]> {
        let end = addr.checked_add(size)?;
        if end > self.len() {
            return None;
        }
        Some(&self.map[addr as usize..end as usize])
    }

    /// Tell the kernel the pages of `addr..addr + size` are no longer needed, so they leave
    /// this process's resident set (they stay in the page cache).
    ///
    /// The range is widened to the 64 KiB-aligned blocks around it: on a page fault the
    /// kernel also maps the cached neighbours within such a block ("fault-around"), which
    /// may belong to metadata or string heaps this process never touches again; released
    /// exactly, they would stay mapped and the resident set would grow with the input (it
    /// did, by 20 MB/s). A page of a neighbouring chunk that another worker is still reading
    /// is simply faulted back in from the page cache, with the same bytes.
    fn release(&self, addr: u64, size: u64) {
        const FAULT_AROUND: u64 = 64 << 10;
        let start = (addr / FAULT_AROUND) * FAULT_AROUND;
        let end = addr
            .saturating_add(size)
            .min(self.len())
            .div_ceil(FAULT_AROUND)
            .saturating_mul(FAULT_AROUND)
            .min(self.len());
        if end > start {
            // SAFETY: MADV_DONTNEED on a read-only file mapping (never written, so holding
            // no modified pages) drops the pages from this mapping; a later read,
            // including one through a slice another thread holds, faults them back in from
            // the file with the same contents, so no reference into the map observes a
            // change. The range is inside the map (end <= len; a partial last page is
            // covered by the mapping).
            let _ = unsafe {
                self.map.unchecked_advise_range(
                    UncheckedAdvice::DontNeed,
                    start as usize,
                    (end - start) as usize,
                )
            };
        }
    }
}

/// Where a dataset's bytes are.
#[derive(Debug)]
enum Storage {
    /// `addr` of row 0; rows are contiguous.
    Contiguous { addr: u64 },
    /// Every chunk, sorted by logical offset (row-major).
    Chunked { chunks: Vec<ChunkRecord> },
}

static NEXT_UID: AtomicU64 = AtomicU64::new(1);

/// A dataset decoded from the map.
#[derive(Debug)]
pub(crate) struct MappedDataset {
    name: String,
    file: Arc<MappedFile>,
    /// Identity for the per-worker chunk cache.
    uid: u64,
    /// Shape padded to rank 3 with 1s.
    dims: [usize; 3],
    /// Chunk shape padded the same way (= dims for contiguous storage).
    chunk: [usize; 3],
    elem: usize,
    filters: Vec<ChunkFilter>,
    storage: Storage,
}

/// Why a dataset goes through libhdf5 instead of the map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Fallback(pub(crate) String);

impl fmt::Display for Fallback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn pad3(v: &[u64]) -> Option<[usize; 3]> {
    if v.is_empty() || v.len() > 3 {
        return None;
    }
    let mut out = [1usize; 3];
    for (o, &x) in out.iter_mut().zip(v) {
        *o = usize::try_from(x).ok()?;
    }
    Some(out)
}

/// The outcome of a preparation step: `Ok(Err(fallback))` when the dataset must be read
/// through libhdf5, `Err` when the file is broken.
type Step<T> = Result<Result<T, Fallback>, InputError>;

/// The value of a [`Step`], or return its fallback or error.
macro_rules! step {
    ($e:expr) => {
        match $e? {
            Ok(v) => v,
            Err(fallback) => return Ok(Err(fallback)),
        }
    };
}

/// What [`MappedDataset::new`] checks a dataset against: the file, the dataset, its
/// metadata and its shape padded to rank 3.
struct Prepare<'a> {
    file: &'a Arc<MappedFile>,
    ds: &'a h5::Dataset,
    info: &'a DatasetInfo,
    dims: [usize; 3],
    elem: usize,
}

impl Prepare<'_> {
    fn broken(&self, msg: String) -> InputError {
        InputError::new(&self.file.path, Some(&self.info.name), msg)
    }

    fn h5err(&self, e: h5::H5Error) -> InputError {
        InputError::h5(&self.file.path, Some(&self.info.name), e)
    }

    /// The filter pipeline, when every filter is one the workers decode.
    fn filters(&self) -> Step<Vec<ChunkFilter>> {
        let (info, elem) = (self.info, self.elem);
        let mut filters = Vec::new();
        for f in self.ds.raw_filters().map_err(|e| self.h5err(e))? {
            filters.push(match f.id {
                1 => ChunkFilter::Deflate,
                2 => match f.cd_values.first() {
                    Some(&e) if e as usize == elem => ChunkFilter::Shuffle { elem },
                    _ => return fallback(format!("shuffle parameters {:?}", f.cd_values)),
                },
                3 => ChunkFilter::Fletcher32,
                32000 => ChunkFilter::Lzf,
                32004 => ChunkFilter::Lz4,
                32015 => ChunkFilter::Zstd,
                _ => {
                    let label = info
                        .filters
                        .get(filters.len())
                        .cloned()
                        .unwrap_or_else(|| format!("filter-{}", f.id));
                    return fallback(format!("filter {label} is decoded by libhdf5"));
                }
            });
        }
        Ok(Ok(filters))
    }

    /// Contiguous storage: unfiltered, allocated, and inside the file.
    fn contiguous(&self, filters: &[ChunkFilter]) -> Step<Storage> {
        let (file, dims) = (self.file, self.dims);
        let row_bytes = (dims[1] * dims[2] * self.elem) as u64;
        if !filters.is_empty() {
            return fallback("filters on contiguous storage".into());
        }
        let Some((addr, size)) = self.ds.contiguous_extent().map_err(|e| self.h5err(e))? else {
            return fallback("no storage allocated (fill values)".into());
        };
        let need = (dims[0] as u64)
            .checked_mul(row_bytes)
            .ok_or_else(|| self.broken("shape overflows".into()))?;
        if size < need || file.slice(addr, need).is_none() {
            return Err(self.broken(format!(
                "contiguous data at byte {addr} ({need} bytes) lies beyond the end of the file ({} bytes)",
                file.len()
            )));
        }
        Ok(Ok(Storage::Contiguous { addr }))
    }

    /// Chunked storage of shape `chunk`: chunks of at most [`MAX_CHUNK_BYTES`], every one
    /// allocated, filtered alike, and inside the file.
    fn chunked(&self, chunk: &[u64], filters: &[ChunkFilter]) -> Step<Storage> {
        let (file, dims) = (self.file, self.dims);
        let Some(chunk) = pad3(chunk) else {
            return fallback(format!("chunk rank {} not mapped", chunk.len()));
        };
        if chunk.contains(&0) {
            return Err(self.broken(format!("chunk shape {chunk:?} has a zero dimension")));
        }
        let chunk_bytes = chunk
            .iter()
            .try_fold(self.elem as u64, |a, &c| a.checked_mul(c as u64))
            .unwrap_or(u64::MAX);
        if chunk_bytes > MAX_CHUNK_BYTES {
            return fallback(format!("chunks of {chunk_bytes} bytes"));
        }
        let expected: u64 = (0..3)
            .map(|i| dims[i].div_ceil(chunk[i]) as u64)
            .try_fold(1u64, |a, n| a.checked_mul(n))
            .unwrap_or(u64::MAX);
        if self
            .ds
            .unfiltered_partial_chunks()
            .map_err(|e| self.h5err(e))?
            && !filters.is_empty()
        {
            return fallback("partial edge chunks are stored unfiltered".into());
        }
        if dims.contains(&0) {
            return Ok(Ok(Storage::Chunked { chunks: Vec::new() }));
        }
        if expected > file.len() {
            // Every allocated chunk takes at least a byte of the file.
            return fallback(format!(
                "{expected} chunks declared, more than the file could hold (the rest read as fill values)"
            ));
        }
        let mut chunks = self
            .ds
            .chunk_index(expected as usize)
            .map_err(|e| self.h5err(e))?;
        if chunks.len() as u64 != expected {
            return fallback(format!(
                "{} of {expected} chunks allocated (the rest read as fill values)",
                chunks.len()
            ));
        }
        chunks.sort_unstable_by_key(|c| c.offset);
        self.check_chunks(&chunks, chunk)?;
        Ok(Ok(Storage::Chunked { chunks }))
    }

    /// Every chunk (sorted by offset) aligned to the chunk grid, inside the shape, listed
    /// once, and with its bytes inside the file.
    fn check_chunks(&self, chunks: &[ChunkRecord], chunk: [usize; 3]) -> Result<(), InputError> {
        let (file, dims) = (self.file, self.dims);
        for (i, c) in chunks.iter().enumerate() {
            let aligned = (0..3).all(|d| {
                let o = c.offset[d];
                o % chunk[d] as u64 == 0 && o < dims[d] as u64
            }) && c.offset[MAX_CHUNK_RANK - 1] < dims[2] as u64;
            if !aligned || (i > 0 && chunks[i - 1].offset == c.offset) {
                return Err(self.broken(format!(
                    "chunk index entry {i} at {:?} does not fit the shape {:?} / chunk {:?}",
                    c.offset, self.info.shape, chunk
                )));
            }
            if file.slice(c.addr, c.size).is_none() {
                return Err(self.broken(format!(
                    "chunk {i} at {:?}: bytes {}..{} lie beyond the end of the file ({} bytes)",
                    c.offset,
                    c.addr,
                    c.addr.saturating_add(c.size),
                    file.len()
                )));
            }
        }
        Ok(())
    }
}

/// A fallback outcome for `why`.
fn fallback<T>(why: String) -> Step<T> {
    Ok(Err(Fallback(why)))
}

impl MappedDataset {
    /// Prepare `ds` (described by `info`, element type `T` in memory) for mapped decoding.
    ///
    /// `Ok(Err(fallback))`: the dataset is fine but must be read through libhdf5, for the
    /// reason given. `Err`: the file is broken (a chunk outside the file, a chunk index that
    /// does not match the shape), or it must be read through libhdf5 but has a filter
    /// libhdf5 cannot undo (an LZF dataset with unallocated chunks, say).
    pub(crate) fn new<T: h5::Native>(
        file: &Arc<MappedFile>,
        ds: &h5::Dataset,
        info: &DatasetInfo,
    ) -> Step<MappedDataset> {
        match Self::plan::<T>(file, ds, info)? {
            Err(why) => match info
                .filter_ids
                .iter()
                .find(|&&id| !h5::filter_available(id))
            {
                Some(&id) => Err(InputError::new(
                    &file.path,
                    Some(&info.name),
                    format!(
                        "{why}, but libhdf5 cannot undo its filter {id} ({}) (no plugin); \
                         rewrite it without that filter, e.g. `h5repack -f {}:GZIP=4 IN.h5 OUT.h5`",
                        h5::filter_name(id),
                        info.name
                    ),
                )),
                None => Ok(Err(why)),
            },
            ready => Ok(ready),
        }
    }

    /// [`MappedDataset::new`] before the check of a fallback's filters.
    fn plan<T: h5::Native>(
        file: &Arc<MappedFile>,
        ds: &h5::Dataset,
        info: &DatasetInfo,
    ) -> Step<MappedDataset> {
        let h5err = |e: h5::H5Error| InputError::h5(&file.path, Some(&info.name), e);
        if !ds.stored_as::<T>().map_err(h5err)? {
            return fallback(format!(
                "stored type {} is converted by libhdf5",
                info.dtype
            ));
        }
        let elem = std::mem::size_of::<T>();
        let Some(dims) = pad3(&info.shape) else {
            return fallback(format!("rank {} not mapped", info.shape.len()));
        };
        let prep = Prepare {
            file,
            ds,
            info,
            dims,
            elem,
        };
        let filters = step!(prep.filters());
        let uid = NEXT_UID.fetch_add(1, Ordering::Relaxed);
        let storage = match &info.layout {
            Layout::Contiguous => step!(prep.contiguous(&filters)),
            Layout::Chunked(chunk) => step!(prep.chunked(chunk, &filters)),
            Layout::Compact => return fallback("compact layout".into()),
            Layout::Other => return fallback("virtual or external layout".into()),
        };
        let chunk = match &storage {
            Storage::Contiguous { .. } => dims,
            Storage::Chunked { .. } => match &info.layout {
                Layout::Chunked(c) => pad3(c).expect("checked"),
                _ => unreachable!(),
            },
        };
        Ok(Ok(MappedDataset {
            name: info.name.clone(),
            file: Arc::clone(file),
            uid,
            dims,
            chunk,
            elem,
            filters,
            storage,
        }))
    }

    /// One-line description of the decode path, e.g. `mapped: deflate, chunks (1024, 2, 128)`.
    pub(crate) fn describe(&self) -> String {
        let filters: Vec<&str> = self
            .filters
            .iter()
            .map(|f| match f {
                ChunkFilter::Deflate => "deflate",
                ChunkFilter::Shuffle { .. } => "shuffle",
                ChunkFilter::Fletcher32 => "fletcher32",
                ChunkFilter::Lzf => "lzf",
                ChunkFilter::Zstd => "zstd",
                ChunkFilter::Lz4 => "lz4",
            })
            .collect();
        let storage = match &self.storage {
            Storage::Contiguous { .. } => "contiguous".to_string(),
            Storage::Chunked { chunks } => {
                format!("{} chunks of {:?}", chunks.len(), self.chunk)
            }
        };
        if filters.is_empty() {
            format!("mapped, {storage}")
        } else {
            format!("mapped, {storage}, {}", filters.join(" + "))
        }
    }

    fn error(&self, msg: String) -> InputError {
        InputError::new(&self.file.path, Some(&self.name), msg)
    }

    /// Decode rows `start..start + rows` into `dst` (`rows × d1 × d2` elements of `T`, the
    /// type given to [`MappedDataset::new`]). Releases the mapped pages of chunks the range
    /// consumes entirely.
    pub(crate) fn read_rows<T: Pod>(
        &self,
        start: u64,
        rows: usize,
        dst: &mut [T],
        scratch: &mut DecodeScratch,
    ) -> Result<(), InputError> {
        assert_eq!(std::mem::size_of::<T>(), self.elem, "element type mismatch");
        let row_len = self.dims[1] * self.dims[2];
        let end = start
            .checked_add(rows as u64)
            .filter(|&e| e <= self.dims[0] as u64)
            .ok_or_else(|| self.error(format!("rows {start}+{rows} beyond the dataset")))?;
        assert_eq!(dst.len(), rows * row_len, "destination length");
        if rows == 0 || row_len == 0 {
            return Ok(());
        }
        match &self.storage {
            Storage::Contiguous { addr } => {
                let row_bytes = (row_len * self.elem) as u64;
                let at = addr + start * row_bytes;
                let len = rows as u64 * row_bytes;
                let bytes = self.file.slice(at, len).ok_or_else(|| {
                    self.error(format!(
                        "rows {start}..{end}: bytes {at}..{} beyond the end of the file",
                        at + len
                    ))
                })?;
                bytemuck::cast_slice_mut::<T, u8>(dst).copy_from_slice(bytes);
                self.file.release(at, len);
                Ok(())
            }
            Storage::Chunked { chunks } => {
                let c0 = self.chunk[0] as u64;
                let band_lo = (start / c0) * c0;
                let mut i = chunks.partition_point(|c| c.offset[0] < band_lo);
                while i < chunks.len() && chunks[i].offset[0] < end {
                    // One band: the chunks sharing this row offset (one for row chunks).
                    let lo = chunks[i].offset[0];
                    let n = chunks[i..].partition_point(|c| c.offset[0] == lo);
                    // Decoded whole here; released by the unit that consumes its last row
                    // (earlier rows went to earlier units, which do not release it).
                    let whole = lo >= start && lo + c0 <= end;
                    let last = (lo + c0).min(self.dims[0] as u64) <= end;
                    if n > 1 && self.stage_bytes(n) <= MAX_STAGE_BYTES {
                        self.read_band(i, &chunks[i..i + n], start, end, dst, scratch)?;
                    } else {
                        for (k, c) in chunks[i..i + n].iter().enumerate() {
                            let data = self.decode::<T>(i + k, c, scratch, !whole)?;
                            let offset = c.offset.map(|o| o as usize);
                            msms_kernels::gather_chunk(
                                data,
                                self.chunk,
                                offset,
                                self.dims,
                                dst,
                                start as usize,
                                rows,
                            );
                        }
                    }
                    if last {
                        for c in &chunks[i..i + n] {
                            self.file.release(c.addr, c.size);
                        }
                    }
                    i += n;
                }
                Ok(())
            }
        }
    }

    /// Bytes of `n` decoded chunks.
    fn stage_bytes(&self, n: usize) -> usize {
        self.chunk
            .iter()
            .product::<usize>()
            .saturating_mul(self.elem)
            .saturating_mul(n)
    }

    /// A band of several chunks across the peak axes (h5py's per-slot chunks (c, 1, 1) and
    /// the like): decode them all into the staging buffer, then copy into `dst` in tiles of
    /// [`TILE_ROWS`] rows, so that each tile's rows and the chunks' matching stretches stay in
    /// cache (chunk by chunk, every chunk's scatter would sweep the whole unit once).
    fn read_band<T: Pod>(
        &self,
        first: usize,
        band: &[ChunkRecord],
        start: u64,
        end: u64,
        dst: &mut [T],
        scratch: &mut DecodeScratch,
    ) -> Result<(), InputError> {
        let n_bytes = self.chunk.iter().product::<usize>() * self.elem;
        let words = n_bytes.div_ceil(8);
        let mut stage = std::mem::take(&mut scratch.stage);
        if stage.len() < words * band.len() {
            stage.resize(words * band.len(), 0);
        }
        let staged = (|| {
            for (k, c) in band.iter().enumerate() {
                let out =
                    &mut bytemuck::cast_slice_mut::<u64, u8>(&mut stage[k * words..])[..n_bytes];
                let all_masked = self
                    .filters
                    .iter()
                    .enumerate()
                    .all(|(f, _)| f < 32 && c.filter_mask & (1 << f) != 0);
                if self.filters.is_empty() || all_masked {
                    // Stored as is: one copy from the map.
                    let raw = self.file.slice(c.addr, c.size).ok_or_else(|| {
                        self.error(format!(
                            "chunk {} at {:?}: beyond the end of the file",
                            first + k,
                            &c.offset[..]
                        ))
                    })?;
                    if raw.len() != n_bytes {
                        return Err(self.error(format!(
                            "chunk {} at {:?} (byte {}, {} bytes stored): expected {n_bytes} bytes",
                            first + k,
                            &c.offset[..],
                            c.addr,
                            c.size
                        )));
                    }
                    out.copy_from_slice(raw);
                } else {
                    let data = self.decode::<u8>(first + k, c, scratch, false);
                    out.copy_from_slice(data?);
                }
            }
            Ok(())
        })();
        if let Err(e) = staged {
            scratch.stage = stage;
            return Err(e);
        }
        let row_len = self.dims[1] * self.dims[2];
        let lo = band[0].offset[0].max(start);
        let hi = (band[0].offset[0] + self.chunk[0] as u64).min(end);
        let mut t = lo;
        while t < hi {
            let rows_t = (hi - t).min(TILE_ROWS) as usize;
            let at = (t - start) as usize * row_len;
            let tile = &mut dst[at..at + rows_t * row_len];
            for (k, c) in band.iter().enumerate() {
                let data: &[T] = words_as(&stage[k * words..(k + 1) * words], n_bytes);
                msms_kernels::gather_chunk(
                    data,
                    self.chunk,
                    c.offset.map(|o| o as usize),
                    self.dims,
                    tile,
                    t as usize,
                    rows_t,
                );
            }
            t += rows_t as u64;
        }
        scratch.stage = stage;
        Ok(())
    }

    /// Decode chunk `i` into the scratch (or find it in the cache) and return its elements.
    /// `keep`: the chunk is also needed by a neighbouring range; cache it.
    fn decode<'s, T: Pod>(
        &self,
        i: usize,
        c: &ChunkRecord,
        scratch: &'s mut DecodeScratch,
        keep: bool,
    ) -> Result<&'s [T], InputError> {
        let n_bytes = self.chunk.iter().product::<usize>() * self.elem;
        if let Some(pos) = scratch
            .cache
            .iter()
            .position(|e| e.uid == self.uid && e.chunk == i)
        {
            return Ok(words_as::<T>(&scratch.cache[pos].data, n_bytes));
        }
        let what = |msg: &str| {
            self.error(format!(
                "chunk {i} at {:?} (byte {}, {} bytes stored): {msg}",
                &c.offset[..],
                c.addr,
                c.size
            ))
        };
        let raw = self
            .file
            .slice(c.addr, c.size)
            .ok_or_else(|| what("beyond the end of the file"))?;
        let at = decode_chunk(raw, &self.filters, c.filter_mask, n_bytes, scratch)
            .map_err(|e| what(&e.to_string()))?;
        let DecodeScratch { a, b, cache, .. } = scratch;
        let buf: &'s Vec<u64> = if at == Buffer::A { a } else { b };
        if keep && n_bytes <= CACHE_BYTES / 4 {
            // Oldest first out, until the new entry fits the byte budget.
            let words = n_bytes.div_ceil(8);
            while !cache.is_empty()
                && cache.iter().map(|e| e.data.len()).sum::<usize>() + words > CACHE_BYTES / 8
            {
                cache.remove(0);
            }
            cache.push(CacheEntry {
                uid: self.uid,
                chunk: i,
                data: buf[..n_bytes.div_ceil(8)].to_vec(),
            });
        }
        Ok(words_as::<T>(buf, n_bytes))
    }
}

/// The first `n_bytes` of `words` as `T`s (`u64` storage is aligned for every `T` used).
fn words_as<T: Pod>(words: &[u64], n_bytes: usize) -> &[T] {
    bytemuck::cast_slice(&bytemuck::cast_slice::<u64, u8>(words)[..n_bytes])
}
