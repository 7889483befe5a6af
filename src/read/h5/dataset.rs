//! Reading an open dataset: its metadata ([`Dataset::info`], the filter pipeline, the chunk
//! index, the extent of contiguous storage) and row hyperslabs of numbers or strings.

use std::ffi::{c_char, c_void, CStr};

use hdf5_sys::{h5, h5d, h5p, h5s, h5t};

use super::{
    check, cstring, lock, string_type, DType, DatasetInfo, File, H5Error, Hid, Layout, Native,
};
use hdf5_sys::h5i::hid_t;

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
            let dtype = describe_type(ftype.0);
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
        let _g = lock();
        let (fspace, mspace, elems) = self.row_selection(start, count)?;
        out.clear();
        out.resize(elems, T::default());
        // SAFETY: out holds exactly `elems` values of the memory type, matching mspace.
        let st = unsafe {
            h5d::H5Dread(
                self.id.0,
                T::mem_type(),
                mspace.0,
                fspace.0,
                h5p::H5P_DEFAULT,
                out.as_mut_ptr() as *mut c_void,
            )
        };
        check(
            st,
            "H5Dread",
            &format!("{} rows {start}..{}", self.object, start + count),
        )
    }

    /// Read vlen byte sequences (`h5py.vlen_dtype(bytes)`) of the selection as strings.
    fn read_vlen_bytes(
        &self,
        mspace: &Hid,
        fspace: &Hid,
        elems: usize,
        what: &str,
        out: &mut Vec<String>,
    ) -> Result<Vec<u64>, H5Error> {
        #[repr(C)]
        struct Hvl {
            len: usize,
            p: *mut c_void,
        }
        // SAFETY: the memory type is a vlen of native uchar, whose elements are `hvl_t`
        // (`Hvl`, the same layout); each filled sequence points at `len` bytes, freed by
        // H5Treclaim after copying out.
        unsafe {
            // The base's own signedness: libhdf5 would clip signed bytes >= 0x80 to 0 when
            // converting int8 to uint8 (C writers' `char` is signed on x86).
            let ftype = Hid::check(h5d::H5Dget_type(self.id.0), "H5Dget_type", what)?;
            let base = Hid::check(h5t::H5Tget_super(ftype.0), "H5Tget_super", what)?;
            let byte = if h5t::H5Tget_sign(base.0) == h5t::H5T_sign_t::H5T_SGN_2 {
                *h5t::H5T_NATIVE_SCHAR
            } else {
                *h5t::H5T_NATIVE_UCHAR
            };
            let mtype = Hid::check(h5t::H5Tvlen_create(byte), "H5Tvlen_create", what)?;
            let mut seqs: Vec<Hvl> = (0..elems)
                .map(|_| Hvl {
                    len: 0,
                    p: std::ptr::null_mut(),
                })
                .collect();
            let status = h5d::H5Dread(
                self.id.0,
                mtype.0,
                mspace.0,
                fspace.0,
                h5p::H5P_DEFAULT,
                seqs.as_mut_ptr() as *mut c_void,
            );
            let read = check(status, "H5Dread", what);
            let mut invalid = Vec::new();
            if read.is_ok() {
                for (i, s) in seqs.iter().enumerate() {
                    let bytes = if s.p.is_null() || s.len == 0 {
                        &[][..]
                    } else {
                        std::slice::from_raw_parts(s.p as *const u8, s.len)
                    };
                    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
                    out.push(lossy(&bytes[..end], i, &mut invalid));
                }
            }
            let reclaimed = h5t::H5Treclaim(
                mtype.0,
                mspace.0,
                h5p::H5P_DEFAULT,
                seqs.as_mut_ptr() as *mut c_void,
            );
            read?;
            check(reclaimed, "H5Treclaim", what)?;
            Ok(invalid)
        }
    }

    /// The members of an enum dataset's type, `(label, value)` in the type's order.
    pub fn enum_members(&self) -> Result<Vec<(String, i64)>, H5Error> {
        let _g = lock();
        let o = &self.object;
        // SAFETY: valid ids; each member value is read into an 8-byte buffer (the base is at
        // most 8 bytes: `DType::Enum`), then converted to i64 by H5Tconvert from the base
        // type; member names are freed with H5free_memory.
        unsafe {
            let t = Hid::check(h5d::H5Dget_type(self.id.0), "H5Dget_type", o)?;
            let base = Hid::check(h5t::H5Tget_super(t.0), "H5Tget_super", o)?;
            let n = h5t::H5Tget_nmembers(t.0);
            if n < 0 {
                return Err(H5Error::new("H5Tget_nmembers", o.as_str()));
            }
            let mut out = Vec::with_capacity(n as usize);
            for i in 0..n as u32 {
                let name = h5t::H5Tget_member_name(t.0, i);
                if name.is_null() {
                    return Err(H5Error::new("H5Tget_member_name", o.as_str()));
                }
                let label = CStr::from_ptr(name).to_string_lossy().into_owned();
                h5::H5free_memory(name as *mut c_void);
                let mut raw = [0u8; 8];
                check(
                    h5t::H5Tget_member_value(t.0, i, raw.as_mut_ptr() as *mut c_void),
                    "H5Tget_member_value",
                    o,
                )?;
                check(
                    h5t::H5Tconvert(
                        base.0,
                        *h5t::H5T_NATIVE_INT64,
                        1,
                        raw.as_mut_ptr() as *mut c_void,
                        std::ptr::null_mut(),
                        h5p::H5P_DEFAULT,
                    ),
                    "H5Tconvert",
                    o,
                )?;
                out.push((label, i64::from_ne_bytes(raw)));
            }
            Ok(out)
        }
    }

    /// Read string rows (variable- or fixed-length, any padding) and append them to `out`;
    /// returns the rows (counted from `start`) whose bytes are not UTF-8, which are appended
    /// with U+FFFD in place of each invalid sequence.
    pub fn read_strings(
        &self,
        start: u64,
        count: u64,
        out: &mut Vec<String>,
    ) -> Result<Vec<u64>, H5Error> {
        let _g = lock();
        let o = &self.object;
        let (fspace, mspace, elems) = self.row_selection(start, count)?;
        let what = format!("{o} rows {start}..{}", start + count);
        // SAFETY: the memory buffers match the memory type and the selection size; vlen
        // buffers are reclaimed with H5Treclaim after copying out.
        unsafe {
            let ftype = Hid::check(h5d::H5Dget_type(self.id.0), "H5Dget_type", o)?;
            if h5t::H5Tget_class(ftype.0) == h5t::H5T_class_t::H5T_VLEN {
                return self.read_vlen_bytes(&mspace, &fspace, elems, &what, out);
            }
            if h5t::H5Tis_variable_str(ftype.0) > 0 {
                // The file's character set: libhdf5 does not convert between ASCII and UTF-8
                // (the bytes are taken as they are, and checked as UTF-8 below).
                let mtype = string_type(None, o)?;
                check(
                    h5t::H5Tset_cset(mtype.0, h5t::H5Tget_cset(ftype.0)),
                    "H5Tset_cset",
                    o,
                )?;
                let mut ptrs: Vec<*mut c_char> = vec![std::ptr::null_mut(); elems];
                let status = h5d::H5Dread(
                    self.id.0,
                    mtype.0,
                    mspace.0,
                    fspace.0,
                    h5p::H5P_DEFAULT,
                    ptrs.as_mut_ptr() as *mut c_void,
                );
                let mut invalid = Vec::new();
                if status >= 0 {
                    for (i, &p) in ptrs.iter().enumerate() {
                        let bytes = if p.is_null() {
                            &[][..]
                        } else {
                            CStr::from_ptr(p).to_bytes()
                        };
                        out.push(lossy(bytes, i, &mut invalid));
                    }
                }
                // libhdf5's error stack is cleared by the next call: take the read's first.
                let read = check(status, "H5Dread", &what);
                // Freed whether or not the read completed: a failed read may have filled
                // some pointers (the rest are null, which H5Treclaim skips).
                let reclaimed = h5t::H5Treclaim(
                    mtype.0,
                    mspace.0,
                    h5p::H5P_DEFAULT,
                    ptrs.as_mut_ptr() as *mut c_void,
                );
                read?;
                check(reclaimed, "H5Treclaim", &what)?;
                Ok(invalid)
            } else {
                let size = h5t::H5Tget_size(ftype.0);
                let pad = h5t::H5Tget_strpad(ftype.0);
                let mtype = Hid::check(h5t::H5Tcopy(ftype.0), "H5Tcopy", o)?;
                let mut buf = vec![0u8; size * elems];
                check(
                    h5d::H5Dread(
                        self.id.0,
                        mtype.0,
                        mspace.0,
                        fspace.0,
                        h5p::H5P_DEFAULT,
                        buf.as_mut_ptr() as *mut c_void,
                    ),
                    "H5Dread",
                    &what,
                )?;
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
    }
}

/// `bytes` as text, U+FFFD for each sequence that is not UTF-8; row `i` joins `invalid`
/// when there was one.
fn lossy(bytes: &[u8], i: usize, invalid: &mut Vec<u64>) -> String {
    match std::str::from_utf8(bytes) {
        Ok(s) => s.to_string(),
        Err(_) => {
            invalid.push(i as u64);
            String::from_utf8_lossy(bytes).into_owned()
        }
    }
}

/// Whether the enum type `t` is h5py's `bool`: a 1-byte integer base with exactly the
/// members `FALSE` = 0 and `TRUE` = 1.
fn h5py_bool(t: hid_t) -> bool {
    // SAFETY: t is a valid enum datatype id; names returned by H5Tget_member_name are freed
    // with H5free_memory; values are read into an i8 (the base is 1 byte, checked first).
    unsafe {
        if h5t::H5Tget_size(t) != 1 || h5t::H5Tget_nmembers(t) != 2 {
            return false;
        }
        let mut members = Vec::new();
        for i in 0..2u32 {
            let name = h5t::H5Tget_member_name(t, i);
            if name.is_null() {
                return false;
            }
            let text = CStr::from_ptr(name).to_string_lossy().into_owned();
            h5::H5free_memory(name as *mut c_void);
            let mut value: i8 = -1;
            if h5t::H5Tget_member_value(t, i, &mut value as *mut i8 as *mut c_void) < 0 {
                return false;
            }
            members.push((text, value));
        }
        members.sort();
        members == [("FALSE".to_string(), 0), ("TRUE".to_string(), 1)]
    }
}

/// Whether the vlen type `t` is a sequence of 1-byte integers.
fn vlen_of_bytes(t: hid_t) -> bool {
    // SAFETY: t is a valid vlen datatype id; the base type is released below.
    unsafe {
        let base = h5t::H5Tget_super(t);
        if base < 0 {
            return false;
        }
        let bytes =
            h5t::H5Tget_class(base) == h5t::H5T_class_t::H5T_INTEGER && h5t::H5Tget_size(base) == 1;
        h5t::H5Tclose(base);
        bytes
    }
}

fn describe_type(t: hid_t) -> DType {
    // SAFETY: t is a valid datatype id.
    unsafe {
        let size = h5t::H5Tget_size(t);
        match h5t::H5Tget_class(t) {
            h5t::H5T_class_t::H5T_INTEGER => DType::Int {
                size,
                signed: h5t::H5Tget_sign(t) == h5t::H5T_sign_t::H5T_SGN_2,
            },
            h5t::H5T_class_t::H5T_FLOAT => DType::Float { size },
            h5t::H5T_class_t::H5T_STRING => {
                if h5t::H5Tis_variable_str(t) > 0 {
                    DType::VarString
                } else {
                    DType::FixedString { size }
                }
            }
            h5t::H5T_class_t::H5T_VLEN if vlen_of_bytes(t) => DType::VarBytes,
            h5t::H5T_class_t::H5T_ENUM if h5py_bool(t) => DType::Bool,
            h5t::H5T_class_t::H5T_ENUM if (1..=8).contains(&size) => DType::Enum { size },
            other => DType::Other(
                format!("{other:?}")
                    .trim_start_matches("H5T_")
                    .to_lowercase(),
            ),
        }
    }
}
