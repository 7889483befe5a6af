//! Reading an open dataset: its metadata ([`Dataset::info`], the filter pipeline, the chunk
//! index, the extent of contiguous storage) and row hyperslabs of numbers or strings.

use std::ffi::{c_char, c_void, CStr};

use hdf5_sys::{h5, h5d, h5p, h5s, h5t};

use super::types::{path_width, type_at, wrap_at, TypePath};
use super::{check, cstring, lock, string_type, DatasetInfo, File, H5Error, Hid, Layout, Native};

/// Highest dataset rank whose chunks [`Dataset::chunk_index`] reports.
pub const MAX_CHUNK_RANK: usize = 3;

/// One stage of a dataset's filter pipeline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawFilter {
    /// Filter id (`H5Z_FILTER_DEFLATE` = 1, shuffle = 2, fletcher32 = 3, …).
    pub id: i32,
    /// Client data values (deflate: level; shuffle: element size).
    pub cd_values: Vec<u32>,
}

/// One allocated chunk of a chunked dataset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkRecord {
    /// Logical coordinates of the chunk's first element (unused dimensions 0).
    pub offset: [u64; MAX_CHUNK_RANK],
    /// Bit `i` set: filter `i` of the pipeline was skipped for this chunk.
    pub filter_mask: u32,
    /// Byte address in the file.
    pub addr: u64,
    /// Stored (filtered) size in bytes.
    pub size: u64,
}

/// An open dataset.
#[derive(Debug)]
pub struct Dataset {
    pub(super) id: Hid,
    pub(super) object: String,
}

impl Dataset {
    /// `file:/name`, for messages.
    pub fn object(&self) -> &str {
        &self.object
    }

    /// Shape, type, layout and filters.
    pub fn info(&self, name: &str) -> Result<DatasetInfo, H5Error> {
        let _g = lock();
        let o = &self.object;
        // SAFETY: all calls take the valid dataset id or ids derived from it.
        unsafe {
            let space = Hid::check(h5d::H5Dget_space(self.id.0), "H5Dget_space", o)?;
            let ndims = h5s::H5Sget_simple_extent_ndims(space.0);
            if ndims < 0 {
                return Err(H5Error::new("H5Sget_simple_extent_ndims", o.as_str()));
            }
            let mut shape = vec![0u64; ndims as usize];
            if ndims > 0
                && h5s::H5Sget_simple_extent_dims(space.0, shape.as_mut_ptr(), std::ptr::null_mut())
                    < 0
            {
                return Err(H5Error::new("H5Sget_simple_extent_dims", o.as_str()));
            }
            let ftype = Hid::check(h5d::H5Dget_type(self.id.0), "H5Dget_type", o)?;
            let dtype = super::types::describe_type(ftype.0);
            let dcpl = Hid::check(
                h5d::H5Dget_create_plist(self.id.0),
                "H5Dget_create_plist",
                o,
            )?;
            let layout = match h5p::H5Pget_layout(dcpl.0) {
                h5d::H5D_layout_t::H5D_CONTIGUOUS => Layout::Contiguous,
                h5d::H5D_layout_t::H5D_COMPACT => Layout::Compact,
                h5d::H5D_layout_t::H5D_CHUNKED => {
                    let mut chunk = vec![0u64; ndims.max(1) as usize];
                    let n = h5p::H5Pget_chunk(dcpl.0, chunk.len() as i32, chunk.as_mut_ptr());
                    if n < 0 {
                        return Err(H5Error::new("H5Pget_chunk", o.as_str()));
                    }
                    chunk.truncate(n as usize);
                    Layout::Chunked(chunk)
                }
                _ => Layout::Other,
            };
            let nfilters = h5p::H5Pget_nfilters(dcpl.0).max(0) as u32;
            let mut filters = Vec::with_capacity(nfilters as usize);
            let mut filter_ids = Vec::with_capacity(nfilters as usize);
            for i in 0..nfilters {
                let mut flags = 0u32;
                let mut nelmts: usize = 0;
                let mut fname = [0 as c_char; 64];
                let mut config = 0u32;
                let f = h5p::H5Pget_filter2(
                    dcpl.0,
                    i,
                    &mut flags,
                    &mut nelmts,
                    std::ptr::null_mut(),
                    fname.len(),
                    fname.as_mut_ptr(),
                    &mut config,
                );
                filter_ids.push(f);
                filters.push(super::filter_name(f));
            }
            Ok(DatasetInfo {
                name: name.to_string(),
                dtype,
                shape,
                layout,
                filters,
                filter_ids,
            })
        }
    }

    /// Is the stored element type exactly `T`'s native memory type (same class, size, byte
    /// order and bit layout)? Then stored bytes can be used as `T` without conversion.
    pub fn stored_as<T: Native>(&self) -> Result<bool, H5Error> {
        let _g = lock();
        // SAFETY: valid dataset id; the type id is owned by `ftype` and closed on drop.
        unsafe {
            let ftype = Hid::check(h5d::H5Dget_type(self.id.0), "H5Dget_type", &self.object)?;
            Ok(h5t::H5Tequal(ftype.0, T::mem_type()) > 0)
        }
    }

    /// Whether partial edge chunks are stored unfiltered (`H5Pset_chunk_opts` with
    /// `H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS`), which libhdf5 records in the layout, not in
    /// the chunks' filter masks. `false` for datasets that are not chunked.
    pub fn unfiltered_partial_chunks(&self) -> Result<bool, H5Error> {
        let _g = lock();
        let o = &self.object;
        // SAFETY: valid ids; `opts` is a valid out-pointer.
        unsafe {
            let dcpl = Hid::check(
                h5d::H5Dget_create_plist(self.id.0),
                "H5Dget_create_plist",
                o,
            )?;
            if h5p::H5Pget_layout(dcpl.0) != h5d::H5D_layout_t::H5D_CHUNKED {
                return Ok(false);
            }
            let mut opts: u32 = 0;
            check(
                h5p::H5Pget_chunk_opts(dcpl.0, &mut opts),
                "H5Pget_chunk_opts",
                o,
            )?;
            Ok(opts & h5d::H5D_CHUNK_DONT_FILTER_PARTIAL_CHUNKS != 0)
        }
    }

    /// The filter pipeline in pipeline (write) order, with each filter's client values.
    pub fn raw_filters(&self) -> Result<Vec<RawFilter>, H5Error> {
        let _g = lock();
        let o = &self.object;
        // SAFETY: valid ids; `cd` has room for `nelmts` values (the count is in/out).
        unsafe {
            let dcpl = Hid::check(
                h5d::H5Dget_create_plist(self.id.0),
                "H5Dget_create_plist",
                o,
            )?;
            let n = h5p::H5Pget_nfilters(dcpl.0);
            if n < 0 {
                return Err(H5Error::new("H5Pget_nfilters", o.as_str()));
            }
            let mut out = Vec::with_capacity(n as usize);
            for i in 0..n as u32 {
                let mut flags = 0u32;
                let mut cd = [0u32; 16];
                let mut nelmts: usize = cd.len();
                let mut config = 0u32;
                let id = h5p::H5Pget_filter2(
                    dcpl.0,
                    i,
                    &mut flags,
                    &mut nelmts,
                    cd.as_mut_ptr(),
                    0,
                    std::ptr::null_mut(),
                    &mut config,
                );
                if id < 0 {
                    return Err(H5Error::new("H5Pget_filter2", o.as_str()));
                }
                out.push(RawFilter {
                    id,
                    cd_values: cd[..nelmts.min(cd.len())].to_vec(),
                });
            }
            Ok(out)
        }
    }

    /// Every allocated chunk (logical offset, filter mask, file address, stored size), in
    /// the order libhdf5 reports them, via `H5Dchunk_iter`. Only for chunked datasets of
    /// rank 1 to [`MAX_CHUNK_RANK`].
    ///
    /// Stops after `limit + 1` records, so a file cannot make this allocate more than the
    /// caller expects (the caller compares the count with the chunk grid).
    pub fn chunk_index(&self, limit: usize) -> Result<Vec<ChunkRecord>, H5Error> {
        let _g = lock();
        let o = &self.object;
        struct State {
            rank: usize,
            limit: usize,
            chunks: Vec<ChunkRecord>,
        }
        unsafe extern "C" fn visit(
            offset: *const u64,
            filter_mask: u32,
            addr: u64,
            size: u64,
            op_data: *mut c_void,
        ) -> i32 {
            // SAFETY: op_data is the `State` passed below, alive for the whole iteration;
            // libhdf5 passes `rank` offsets.
            let state = unsafe { &mut *(op_data as *mut State) };
            let mut off = [0u64; MAX_CHUNK_RANK];
            for (i, o) in off.iter_mut().enumerate().take(state.rank) {
                // SAFETY: i < rank, the length of libhdf5's offset array.
                *o = unsafe { *offset.add(i) };
            }
            state.chunks.push(ChunkRecord {
                offset: off,
                filter_mask,
                addr,
                size,
            });
            // A positive value stops the iteration (successfully).
            i32::from(state.chunks.len() > state.limit)
        }
        // SAFETY: valid ids; the callback only touches `state`, which outlives the call.
        unsafe {
            let space = Hid::check(h5d::H5Dget_space(self.id.0), "H5Dget_space", o)?;
            let rank = h5s::H5Sget_simple_extent_ndims(space.0);
            if !(1..=MAX_CHUNK_RANK as i32).contains(&rank) {
                return Err(H5Error {
                    op: "H5Dchunk_iter",
                    object: o.clone(),
                    detail: Some(format!("rank {rank} not supported")),
                });
            }
            let mut state = State {
                rank: rank as usize,
                limit,
                chunks: Vec::new(),
            };
            let st = h5d::H5Dchunk_iter(
                self.id.0,
                h5p::H5P_DEFAULT,
                Some(visit),
                &mut state as *mut State as *mut c_void,
            );
            check(st, "H5Dchunk_iter", o)?;
            Ok(state.chunks)
        }
    }

    /// File address and size of a contiguous dataset's data; `None` when no storage is
    /// allocated (never written: every element is the fill value).
    pub fn contiguous_extent(&self) -> Result<Option<(u64, u64)>, H5Error> {
        let _g = lock();
        // SAFETY: valid dataset id.
        unsafe {
            let addr = h5d::H5Dget_offset(self.id.0);
            let size = h5d::H5Dget_storage_size(self.id.0);
            Ok((addr != h5::HADDR_UNDEF).then_some((addr, size)))
        }
    }

    /// Size the raw-data chunk cache so that one band of chunks across a row range fits:
    /// reading consecutive row ranges then inflates every chunk exactly once. Bounded.
    pub fn reopen_with_cache(
        self,
        file: &File,
        name: &str,
        bytes: usize,
    ) -> Result<Dataset, H5Error> {
        let _g = lock();
        let object = self.object.clone();
        drop(self);
        let c = cstring(name, &object)?;
        // SAFETY: creating a dataset-access property list, setting its cache, opening with it.
        unsafe {
            let dapl = Hid::check(
                h5p::H5Pcreate(*h5p::H5P_CLS_DATASET_ACCESS),
                "H5Pcreate",
                &object,
            )?;
            check(
                h5p::H5Pset_chunk_cache(dapl.0, 100_003, bytes, 1.0),
                "H5Pset_chunk_cache",
                &object,
            )?;
            let id = h5d::H5Dopen2(file.id.0, c.as_ptr(), dapl.0);
            Ok(Dataset {
                id: Hid::check(id, "H5Dopen2", &object)?,
                object,
            })
        }
    }

    /// Select rows `start..start + count` (all of the other dimensions) in the file space and
    /// build the matching memory space.
    pub(super) fn row_selection(
        &self,
        start: u64,
        count: u64,
    ) -> Result<(Hid, Hid, usize), H5Error> {
        let o = &self.object;
        // SAFETY: dataspace calls on ids derived from the valid dataset id; arrays sized ndims.
        unsafe {
            let fspace = Hid::check(h5d::H5Dget_space(self.id.0), "H5Dget_space", o)?;
            let ndims = h5s::H5Sget_simple_extent_ndims(fspace.0).max(0) as usize;
            let mut dims = vec![0u64; ndims];
            if ndims == 0
                || h5s::H5Sget_simple_extent_dims(fspace.0, dims.as_mut_ptr(), std::ptr::null_mut())
                    < 0
            {
                return Err(H5Error::new("H5Sget_simple_extent_dims", o.as_str()));
            }
            if start.checked_add(count).is_none_or(|end| end > dims[0]) {
                return Err(H5Error {
                    op: "row selection",
                    object: o.clone(),
                    detail: Some(format!(
                        "rows {start}..{} beyond {} rows",
                        start + count,
                        dims[0]
                    )),
                });
            }
            let mut offset = vec![0u64; ndims];
            offset[0] = start;
            let mut counts = dims.clone();
            counts[0] = count;
            check(
                h5s::H5Sselect_hyperslab(
                    fspace.0,
                    h5s::H5S_seloper_t::H5S_SELECT_SET,
                    offset.as_ptr(),
                    std::ptr::null(),
                    counts.as_ptr(),
                    std::ptr::null(),
                ),
                "H5Sselect_hyperslab",
                o,
            )?;
            let mspace = Hid::check(
                h5s::H5Screate_simple(ndims as i32, counts.as_ptr(), std::ptr::null()),
                "H5Screate_simple",
                o,
            )?;
            let elems = counts.iter().product::<u64>() as usize;
            Ok((fspace, mspace, elems))
        }
    }

    /// Read rows `start..start + count` (every element of each row) into `out`, converting to
    /// `T`. `out` is resized to the number of elements read.
    pub fn read_rows<T: Native>(
        &self,
        start: u64,
        count: u64,
        out: &mut Vec<T>,
    ) -> Result<(), H5Error> {
        self.read_rows_at(start, count, &[], out)
    }

    /// [`Dataset::read_rows`] of the leaf at `path` inside each element (a compound member,
    /// an array type's values): `out` holds [`path_width`] values per element.
    pub fn read_rows_at<T: Native>(
        &self,
        start: u64,
        count: u64,
        path: &TypePath,
        out: &mut Vec<T>,
    ) -> Result<(), H5Error> {
        let _g = lock();
        let (fspace, mspace, elems) = self.row_selection(start, count)?;
        let what = format!("{} rows {start}..{}", self.object, start + count);
        // SAFETY: H5Tcopy of a predefined type, owned by the Hid.
        let leaf = Hid::check(unsafe { h5t::H5Tcopy(T::mem_type()) }, "H5Tcopy", &what)?;
        let mtype = wrap_at(leaf, path, &what)?;
        out.clear();
        out.resize(elems * path_width(path), T::default());
        // SAFETY: out holds exactly `elems` values of the memory type (path_width leaf values
        // of T each, densely packed), matching mspace.
        let st = unsafe {
            h5d::H5Dread(
                self.id.0,
                mtype.0,
                mspace.0,
                fspace.0,
                h5p::H5P_DEFAULT,
                out.as_mut_ptr() as *mut c_void,
            )
        };
        check(st, "H5Dread", &what)
    }

    /// Read the strings of rows `start..start + count` (variable- or fixed-length, any
    /// padding; every element of each row, in order) and append them to `out`; returns the
    /// positions in that order (for a 1-D dataset: rows counted from `start`) of the strings
    /// whose bytes are not UTF-8, which are appended with U+FFFD in place of each invalid
    /// sequence.
    pub fn read_strings(
        &self,
        start: u64,
        count: u64,
        out: &mut Vec<String>,
    ) -> Result<Vec<u64>, H5Error> {
        self.read_strings_at(start, count, &[], out)
    }

    /// [`Dataset::read_strings`] of the leaf at `path` inside each element: `out` gets
    /// [`path_width`] strings per element, and the positions returned count those strings
    /// (from the first of row `start`), not rows.
    pub fn read_strings_at(
        &self,
        start: u64,
        count: u64,
        path: &TypePath,
        out: &mut Vec<String>,
    ) -> Result<Vec<u64>, H5Error> {
        let _g = lock();
        let o = &self.object;
        let (fspace, mspace, elems) = self.row_selection(start, count)?;
        let what = format!("{o} rows {start}..{}", start + count);
        let elems = elems * path_width(path);
        // SAFETY: type queries on valid ids.
        let ftype = Hid::check(unsafe { h5d::H5Dget_type(self.id.0) }, "H5Dget_type", o)?;
        let leaf = type_at(&ftype, path, o)?;
        let read = Read {
            ds: self,
            mspace: &mspace,
            fspace: &fspace,
            what: &what,
        };
        // SAFETY: type queries on the valid leaf type.
        let (vlen, variable_str) = unsafe {
            (
                h5t::H5Tget_class(leaf.0) == h5t::H5T_class_t::H5T_VLEN,
                h5t::H5Tis_variable_str(leaf.0) > 0,
            )
        };
        if vlen {
            read.vlen_bytes(&leaf, path, elems, out)
        } else if variable_str {
            read.vlen_strings(&leaf, path, elems, out)
        } else {
            read.fixed_strings(&leaf, path, elems, out)
        }
    }
}

/// One string read: the dataset and its selection (the caller holds the lock).
struct Read<'a> {
    ds: &'a Dataset,
    mspace: &'a Hid,
    fspace: &'a Hid,
    /// `file:/dataset rows a..b`, for errors.
    what: &'a str,
}

/// A variable-length sequence in memory (libhdf5's `hvl_t`).
#[repr(C)]
#[derive(Clone, Copy)]
struct Hvl {
    len: usize,
    p: *mut c_void,
}

impl Read<'_> {
    /// `H5Dread` of the selection as memory type `mtype` into `buf`.
    ///
    /// # Safety
    /// `buf` must hold one value of `mtype`'s layout per selected element.
    unsafe fn read_raw(&self, mtype: &Hid, buf: *mut c_void) -> h5::herr_t {
        // SAFETY: the caller's contract; the ids are valid.
        unsafe {
            h5d::H5Dread(
                self.ds.id.0,
                mtype.0,
                self.mspace.0,
                self.fspace.0,
                h5p::H5P_DEFAULT,
                buf,
            )
        }
    }

    /// Read the selection as memory type `mtype` into `buf` (one value per element), hand
    /// the filled values to `take`, then free what libhdf5 allocated for them.
    ///
    /// # Safety
    /// `buf` must hold exactly one value of `mtype`'s layout per selected element, each
    /// null or empty before the read.
    unsafe fn reclaimed<E>(
        &self,
        mtype: &Hid,
        mut buf: Vec<E>,
        take: impl FnOnce(&[E]),
    ) -> Result<(), H5Error> {
        // SAFETY: `buf` matches the memory type and the selection (the caller's contract).
        let status = unsafe { self.read_raw(mtype, buf.as_mut_ptr() as *mut c_void) };
        if status >= 0 {
            take(&buf);
        }
        // libhdf5's error stack is cleared by the next call: take the read's first.
        let read = check(status, "H5Dread", self.what);
        // Freed whether or not the read completed: a failed read may have filled some values
        // (the rest are null, which H5Treclaim skips).
        // SAFETY: the same buffer, memory type and selection as the read.
        let reclaimed = unsafe {
            h5t::H5Treclaim(
                mtype.0,
                self.mspace.0,
                h5p::H5P_DEFAULT,
                buf.as_mut_ptr() as *mut c_void,
            )
        };
        read?;
        check(reclaimed, "H5Treclaim", self.what)
    }

    /// Vlen byte sequences (`h5py.vlen_dtype(bytes)`; `leaf` is their type) as strings, cut
    /// at the first NUL.
    fn vlen_bytes(
        &self,
        leaf: &Hid,
        path: &TypePath,
        elems: usize,
        out: &mut Vec<String>,
    ) -> Result<Vec<u64>, H5Error> {
        let what = self.what;
        // The base's own signedness: libhdf5 would clip signed bytes >= 0x80 to 0 when
        // converting int8 to uint8 (C writers' `char` is signed on x86).
        // SAFETY: type queries and a vlen type created from a predefined one, on valid ids.
        let vlen = unsafe {
            let base = Hid::check(h5t::H5Tget_super(leaf.0), "H5Tget_super", what)?;
            let byte = if h5t::H5Tget_sign(base.0) == h5t::H5T_sign_t::H5T_SGN_2 {
                *h5t::H5T_NATIVE_SCHAR
            } else {
                *h5t::H5T_NATIVE_UCHAR
            };
            Hid::check(h5t::H5Tvlen_create(byte), "H5Tvlen_create", what)?
        };
        let mtype = wrap_at(vlen, path, what)?;
        let empty = Hvl {
            len: 0,
            p: std::ptr::null_mut(),
        };
        let mut invalid = Vec::new();
        // SAFETY: the memory type is (one-member compounds or arrays around) a vlen of
        // native bytes, whose elements are `hvl_t` (`Hvl`, the same layout), densely packed;
        // each filled sequence points at `len` bytes until reclaimed.
        unsafe {
            self.reclaimed(&mtype, vec![empty; elems], |seqs: &[Hvl]| {
                for (i, s) in seqs.iter().enumerate() {
                    let bytes = if s.p.is_null() || s.len == 0 {
                        &[][..]
                    } else {
                        std::slice::from_raw_parts(s.p as *const u8, s.len)
                    };
                    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                    out.push(lossy(&bytes[..end], i, &mut invalid));
                }
            })?;
        }
        Ok(invalid)
    }

    /// Variable-length strings (`leaf` is their type), in the file's character set.
    fn vlen_strings(
        &self,
        leaf: &Hid,
        path: &TypePath,
        elems: usize,
        out: &mut Vec<String>,
    ) -> Result<Vec<u64>, H5Error> {
        let what = self.what;
        // The file's character set: libhdf5 does not convert between ASCII and UTF-8 (the
        // bytes are taken as they are, and checked as UTF-8 below).
        let str_type = string_type(None, what)?;
        // SAFETY: type calls on valid ids.
        let status = unsafe { h5t::H5Tset_cset(str_type.0, h5t::H5Tget_cset(leaf.0)) };
        check(status, "H5Tset_cset", what)?;
        let mtype = wrap_at(str_type, path, what)?;
        let mut invalid = Vec::new();
        // SAFETY: the memory type is (one-member compounds or arrays around) a C string
        // pointer, densely packed; each filled pointer is NUL-terminated until reclaimed.
        unsafe {
            self.reclaimed(
                &mtype,
                vec![std::ptr::null_mut::<c_char>(); elems],
                |ptrs| {
                    for (i, &p) in ptrs.iter().enumerate() {
                        let bytes = if p.is_null() {
                            &[][..]
                        } else {
                            CStr::from_ptr(p).to_bytes()
                        };
                        out.push(lossy(bytes, i, &mut invalid));
                    }
                },
            )?;
        }
        Ok(invalid)
    }

    /// Fixed-length strings (`leaf` is their type), cut at the first NUL, trailing spaces
    /// dropped when space-padded.
    fn fixed_strings(
        &self,
        leaf: &Hid,
        path: &TypePath,
        elems: usize,
        out: &mut Vec<String>,
    ) -> Result<Vec<u64>, H5Error> {
        let what = self.what;
        // SAFETY: type queries and a copy on the valid leaf type.
        let (size, pad, copy) = unsafe {
            (
                h5t::H5Tget_size(leaf.0),
                h5t::H5Tget_strpad(leaf.0),
                Hid::check(h5t::H5Tcopy(leaf.0), "H5Tcopy", what)?,
            )
        };
        let mtype = wrap_at(copy, path, what)?;
        let mut buf = vec![0u8; size * elems];
        // SAFETY: buf holds `elems` strings of `size` bytes, the memory type's layout.
        let status = unsafe { self.read_raw(&mtype, buf.as_mut_ptr() as *mut c_void) };
        check(status, "H5Dread", what)?;
        let mut invalid = Vec::new();
        for (i, raw) in buf.chunks_exact(size.max(1)).enumerate() {
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            let mut s = &raw[..end];
            if pad == h5t::H5T_str_t::H5T_STR_SPACEPAD {
                while let [rest @ .., b' '] = s {
                    s = rest;
                }
            }
            out.push(lossy(s, i, &mut invalid));
        }
        Ok(invalid)
    }
}

/// `bytes` as text, U+FFFD for each sequence that is not UTF-8; position `i` joins
/// `invalid` when there was one.
fn lossy(bytes: &[u8], i: usize, invalid: &mut Vec<u64>) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => {
            invalid.push(i as u64);
            String::from_utf8_lossy(bytes).into_owned()
        }
    }
}
