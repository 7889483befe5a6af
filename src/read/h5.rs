//! A thin, safe wrapper over the parts of libhdf5 (through `hdf5-metno-sys`, bundled static
//! HDF5 1.14) that msms-shards needs: walking the root group, reading dataset metadata,
//! reading row hyperslabs, and writing datasets for the sample generator.
//!
//! The bundled library is built without thread-safety, so every call into it happens under
//! one process-wide re-entrant lock ([`lock`]). Handles are closed on drop (under the same
//! lock). Errors carry the operation and the object it was applied to; HDF5's own error
//! stack printing is switched off once at start-up.

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::Once;

use hdf5_sys::{h5, h5d, h5e, h5f, h5g, h5i, h5l, h5o, h5p, h5s, h5t, h5z};
use parking_lot::{ReentrantMutex, ReentrantMutexGuard};

use h5i::hid_t;

static LOCK: ReentrantMutex<()> = ReentrantMutex::new(());
static INIT: Once = Once::new();

/// Take the process-wide HDF5 lock (re-entrant). Every FFI call in this module holds it.
pub fn lock() -> ReentrantMutexGuard<'static, ()> {
    let guard = LOCK.lock();
    INIT.call_once(|| {
        // SAFETY: H5open initialises the library; H5Eset_auto2 with a null callback turns off
        // automatic printing of the error stack. Both are called once, under the lock.
        unsafe {
            h5::H5open();
            h5e::H5Eset_auto2(h5e::H5E_DEFAULT, None, std::ptr::null_mut());
        }
    });
    guard
}

/// An HDF5 failure, with what was being done and to which object.
#[derive(Debug, thiserror::Error)]
#[error("{op} failed for {object}{}", detail.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
pub struct H5Error {
    /// The libhdf5 operation, e.g. `H5Dread`.
    pub op: &'static str,
    /// The file or dataset it was applied to.
    pub object: String,
    /// The innermost message of HDF5's error stack, when there was one.
    pub detail: Option<String>,
}

impl H5Error {
    fn new(op: &'static str, object: impl Into<String>) -> Self {
        H5Error {
            op,
            object: object.into(),
            detail: innermost_error_message(),
        }
    }
}

/// The description of the deepest entry on HDF5's default error stack, if any.
fn innermost_error_message() -> Option<String> {
    extern "C" fn walk(
        _n: std::ffi::c_uint,
        err: *const h5e::H5E_error2_t,
        data: *mut c_void,
    ) -> h5::herr_t {
        // SAFETY: HDF5 passes a valid error record; `data` is the &mut Option<String> below.
        unsafe {
            let out = &mut *(data as *mut Option<String>);
            let desc = (*err).desc;
            if !desc.is_null() && out.is_none() {
                *out = Some(CStr::from_ptr(desc).to_string_lossy().into_owned());
            }
        }
        0
    }
    let mut msg: Option<String> = None;
    // SAFETY: walks the default stack from the innermost entry; the callback only reads.
    unsafe {
        h5e::H5Ewalk2(
            h5e::H5E_DEFAULT,
            h5e::H5E_direction_t::H5E_WALK_UPWARD,
            Some(walk),
            &mut msg as *mut Option<String> as *mut c_void,
        );
        h5e::H5Eclear2(h5e::H5E_DEFAULT);
    }
    msg
}

/// An owned HDF5 identifier (file, dataset, dataspace, datatype or property list), released
/// with `H5Idec_ref` on drop.
#[derive(Debug)]
struct Hid(hid_t);

impl Hid {
    fn check(id: hid_t, op: &'static str, object: &str) -> Result<Hid, H5Error> {
        if id < 0 {
            Err(H5Error::new(op, object))
        } else {
            Ok(Hid(id))
        }
    }
}

impl Drop for Hid {
    fn drop(&mut self) {
        let _g = lock();
        // SAFETY: self.0 is a valid identifier owned by this handle.
        unsafe {
            h5i::H5Idec_ref(self.0);
        }
    }
}

fn check(status: h5::herr_t, op: &'static str, object: &str) -> Result<(), H5Error> {
    if status < 0 {
        Err(H5Error::new(op, object))
    } else {
        Ok(())
    }
}

fn cstring(s: &str, object: &str) -> Result<CString, H5Error> {
    CString::new(s).map_err(|_| H5Error {
        op: "name",
        object: object.to_string(),
        detail: Some("contains a NUL byte".into()),
    })
}

/// Element types the reader and writer move through memory. Each names its native HDF5
/// memory type; HDF5 converts from the stored type on read.
pub trait Native: Copy + Default + Send + 'static {
    /// The HDF5 native memory type for `Self`.
    fn mem_type() -> hid_t;
}

macro_rules! native {
    ($t:ty, $h:ident) => {
        impl Native for $t {
            fn mem_type() -> hid_t {
                let _g = lock();
                *h5t::$h
            }
        }
    };
}
native!(f32, H5T_NATIVE_FLOAT);
native!(f64, H5T_NATIVE_DOUBLE);
native!(i8, H5T_NATIVE_INT8);
native!(i16, H5T_NATIVE_INT16);
native!(i32, H5T_NATIVE_INT32);
native!(i64, H5T_NATIVE_INT64);
native!(u8, H5T_NATIVE_UINT8);
native!(u16, H5T_NATIVE_UINT16);
native!(u32, H5T_NATIVE_UINT32);
native!(u64, H5T_NATIVE_UINT64);

/// A stored element type, as far as msms-shards cares.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DType {
    /// Two's complement or unsigned integer of `size` bytes.
    Int {
        /// Bytes per element.
        size: usize,
        /// Signed?
        signed: bool,
    },
    /// IEEE float of `size` bytes.
    Float {
        /// Bytes per element.
        size: usize,
    },
    /// Fixed-length string of `size` bytes.
    FixedString {
        /// Bytes per element.
        size: usize,
    },
    /// Variable-length string.
    VarString,
    /// Anything else (compound, enum, opaque, reference, vlen sequence, …), by class name.
    Other(String),
}

impl std::fmt::Display for DType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DType::Int { size, signed: true } => write!(f, "int{}", size * 8),
            DType::Int {
                size,
                signed: false,
            } => write!(f, "uint{}", size * 8),
            DType::Float { size } => write!(f, "float{}", size * 8),
            DType::FixedString { size } => write!(f, "S{size}"),
            DType::VarString => f.write_str("vlen-str"),
            DType::Other(c) => f.write_str(c),
        }
    }
}

/// How a dataset's bytes are laid out in the file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Layout {
    /// One contiguous block.
    Contiguous,
    /// Chunked with this chunk shape.
    Chunked(Vec<u64>),
    /// Stored in the object header.
    Compact,
    /// Virtual or unknown layouts.
    Other,
}

/// Metadata of one dataset.
#[derive(Clone, Debug)]
pub struct DatasetInfo {
    /// Path inside the file, e.g. `spectrum`.
    pub name: String,
    /// Element type.
    pub dtype: DType,
    /// Dimensions.
    pub shape: Vec<u64>,
    /// Storage layout.
    pub layout: Layout,
    /// Filter names in pipeline order (`deflate`, `shuffle`, `fletcher32`, …).
    pub filters: Vec<String>,
}

/// What a root-group link points to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    /// A dataset.
    Dataset,
    /// A group.
    Group,
    /// A named datatype or something else.
    Other,
}

/// An open HDF5 file.
#[derive(Debug)]
pub struct File {
    id: Hid,
    path: PathBuf,
}

impl File {
    /// Open read-only.
    pub fn open(path: &Path) -> Result<File, H5Error> {
        let _g = lock();
        let shown = path.display().to_string();
        let c = cstring(&path.to_string_lossy(), &shown)?;
        // SAFETY: valid C string, default access property list.
        let id = unsafe { h5f::H5Fopen(c.as_ptr(), h5f::H5F_ACC_RDONLY, h5p::H5P_DEFAULT) };
        Ok(File {
            id: Hid::check(id, "H5Fopen", &shown)?,
            path: path.to_path_buf(),
        })
    }

    /// Create (truncating) for writing.
    pub fn create(path: &Path) -> Result<File, H5Error> {
        let _g = lock();
        let shown = path.display().to_string();
        let c = cstring(&path.to_string_lossy(), &shown)?;
        // SAFETY: valid C string, default creation and access property lists.
        let id = unsafe {
            h5f::H5Fcreate(
                c.as_ptr(),
                h5f::H5F_ACC_TRUNC,
                h5p::H5P_DEFAULT,
                h5p::H5P_DEFAULT,
            )
        };
        Ok(File {
            id: Hid::check(id, "H5Fcreate", &shown)?,
            path: path.to_path_buf(),
        })
    }

    /// The path the file was opened with.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn object(&self, name: &str) -> String {
        format!("{}:/{}", self.path.display(), name)
    }

    /// The links of the root group, in name order, with what they point to.
    ///
    /// Walks the stored links with `H5Literate_by_name2` in native order, then sorts the
    /// names. Never by a count read from the file: for a group in dense storage, a corrupt
    /// link count makes `H5Lget_name_by_idx`, and any ordered iteration, build a table sized
    /// by it (a heap overflow inside libhdf5 1.14), and would size our reservation too.
    pub fn root_members(&self) -> Result<Vec<(String, ObjectKind)>, H5Error> {
        let _g = lock();
        let shown = self.path.display().to_string();
        unsafe extern "C" fn visit(
            _group: hid_t,
            name: *const c_char,
            _info: *const h5l::H5L_info2_t,
            op_data: *mut c_void,
        ) -> h5::herr_t {
            // SAFETY: `op_data` is the `Vec<String>` passed below, alive for the whole
            // iteration; `name` is a NUL-terminated string valid during the call.
            unsafe {
                let names = &mut *(op_data as *mut Vec<String>);
                names.push(CStr::from_ptr(name).to_string_lossy().into_owned());
            }
            0
        }
        let dot = c".";
        let mut names: Vec<String> = Vec::new();
        let mut idx: h5::hsize_t = 0;
        // SAFETY: valid file id and name; the callback only appends to `names`, which
        // outlives the call.
        check(
            unsafe {
                h5l::H5Literate_by_name2(
                    self.id.0,
                    dot.as_ptr(),
                    h5::H5_index_t::H5_INDEX_NAME,
                    h5::H5_iter_order_t::H5_ITER_NATIVE,
                    &mut idx,
                    Some(visit),
                    &mut names as *mut Vec<String> as *mut c_void,
                    h5p::H5P_DEFAULT,
                )
            },
            "H5Literate_by_name2",
            &shown,
        )?;
        names.sort_unstable();
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            let cname = cstring(&name, &shown)?;
            let mut oinfo = std::mem::MaybeUninit::<h5o::H5O_info2_t>::uninit();
            // SAFETY: valid ids and name; oinfo is written by the call.
            let st = unsafe {
                h5o::H5Oget_info_by_name3(
                    self.id.0,
                    cname.as_ptr(),
                    oinfo.as_mut_ptr(),
                    h5o::H5O_INFO_BASIC,
                    h5p::H5P_DEFAULT,
                )
            };
            let kind = if st < 0 {
                // A dangling soft or external link: not a dataset we can read.
                innermost_error_message();
                ObjectKind::Other
            } else {
                // SAFETY: the call succeeded.
                match unsafe { oinfo.assume_init() }.type_ {
                    h5o::H5O_type_t::H5O_TYPE_DATASET => ObjectKind::Dataset,
                    h5o::H5O_type_t::H5O_TYPE_GROUP => ObjectKind::Group,
                    _ => ObjectKind::Other,
                }
            };
            out.push((name, kind));
        }
        Ok(out)
    }

    /// Open a dataset by path.
    pub fn dataset(&self, name: &str) -> Result<Dataset, H5Error> {
        let _g = lock();
        let object = self.object(name);
        let c = cstring(name, &object)?;
        // SAFETY: valid file id and name; default access property list.
        let id = unsafe { h5d::H5Dopen2(self.id.0, c.as_ptr(), h5p::H5P_DEFAULT) };
        Ok(Dataset {
            id: Hid::check(id, "H5Dopen2", &object)?,
            object,
        })
    }

    /// Create a group (for `metadata/`-style per-file arrays).
    pub fn create_group(&self, name: &str) -> Result<(), H5Error> {
        let _g = lock();
        let object = self.object(name);
        let c = cstring(name, &object)?;
        // SAFETY: valid file id and name; default property lists.
        let id = unsafe {
            h5g::H5Gcreate2(
                self.id.0,
                c.as_ptr(),
                h5p::H5P_DEFAULT,
                h5p::H5P_DEFAULT,
                h5p::H5P_DEFAULT,
            )
        };
        Hid::check(id, "H5Gcreate2", &object).map(drop)
    }

    /// Create a dataset.
    pub fn create_dataset(
        &self,
        name: &str,
        dtype: &WriteType,
        shape: &[u64],
        storage: &Storage,
    ) -> Result<Dataset, H5Error> {
        let _g = lock();
        let object = self.object(name);
        let c = cstring(name, &object)?;
        let ftype = dtype.file_type(&object)?;
        // SAFETY: shape points at shape.len() dims; null max dims means fixed size.
        let space = Hid::check(
            unsafe { h5s::H5Screate_simple(shape.len() as i32, shape.as_ptr(), std::ptr::null()) },
            "H5Screate_simple",
            &object,
        )?;
        // SAFETY: creating a dataset-creation property list from its class.
        let dcpl = Hid::check(
            unsafe { h5p::H5Pcreate(*h5p::H5P_CLS_DATASET_CREATE) },
            "H5Pcreate",
            &object,
        )?;
        if let Storage::Chunked {
            chunk,
            deflate,
            shuffle,
            fletcher32,
        } = storage
        {
            // SAFETY: dcpl is valid; chunk has one entry per dimension.
            unsafe {
                check(
                    h5p::H5Pset_chunk(dcpl.0, chunk.len() as i32, chunk.as_ptr()),
                    "H5Pset_chunk",
                    &object,
                )?;
                if *fletcher32 {
                    check(h5p::H5Pset_fletcher32(dcpl.0), "H5Pset_fletcher32", &object)?;
                }
                if *shuffle {
                    check(h5p::H5Pset_shuffle(dcpl.0), "H5Pset_shuffle", &object)?;
                }
                if let Some(level) = deflate {
                    check(
                        h5p::H5Pset_deflate(dcpl.0, *level as u32),
                        "H5Pset_deflate",
                        &object,
                    )?;
                }
            }
        }
        // SAFETY: all ids are valid; default link creation and access property lists.
        let id = unsafe {
            h5d::H5Dcreate2(
                self.id.0,
                c.as_ptr(),
                ftype.0,
                space.0,
                h5p::H5P_DEFAULT,
                dcpl.0,
                h5p::H5P_DEFAULT,
            )
        };
        Ok(Dataset {
            id: Hid::check(id, "H5Dcreate2", &object)?,
            object,
        })
    }
}

/// A type to create a dataset with.
#[derive(Clone, Debug)]
pub enum WriteType {
    /// A native numeric type, given by its memory type id.
    Numeric(hid_t),
    /// UTF-8 variable-length strings.
    VarString,
    /// Fixed-length strings of this many bytes (null-padded).
    FixedString(usize),
}

impl WriteType {
    /// The numeric type of `T`.
    pub fn of<T: Native>() -> WriteType {
        WriteType::Numeric(T::mem_type())
    }

    fn file_type(&self, object: &str) -> Result<Hid, H5Error> {
        match self {
            // SAFETY: copying a predefined type gives an owned type id.
            WriteType::Numeric(t) => Hid::check(unsafe { h5t::H5Tcopy(*t) }, "H5Tcopy", object),
            WriteType::VarString => string_type(None, object),
            WriteType::FixedString(n) => string_type(Some(*n), object),
        }
    }
}

fn string_type(size: Option<usize>, object: &str) -> Result<Hid, H5Error> {
    // SAFETY: copy of the predefined C string type, then size / cset / padding set on the copy.
    unsafe {
        let t = Hid::check(h5t::H5Tcopy(*h5t::H5T_C_S1), "H5Tcopy", object)?;
        check(
            h5t::H5Tset_size(t.0, size.unwrap_or(h5t::H5T_VARIABLE)),
            "H5Tset_size",
            object,
        )?;
        check(
            h5t::H5Tset_cset(t.0, h5t::H5T_cset_t::H5T_CSET_UTF8),
            "H5Tset_cset",
            object,
        )?;
        if size.is_some() {
            check(
                h5t::H5Tset_strpad(t.0, h5t::H5T_str_t::H5T_STR_NULLPAD),
                "H5Tset_strpad",
                object,
            )?;
        }
        Ok(t)
    }
}

/// How to store a dataset being created.
#[derive(Clone, Debug)]
pub enum Storage {
    /// One contiguous block, no filters.
    Contiguous,
    /// Chunked, with optional filters.
    Chunked {
        /// Chunk shape, one entry per dimension.
        chunk: Vec<u64>,
        /// gzip level.
        deflate: Option<u8>,
        /// Byte shuffle before deflate.
        shuffle: bool,
        /// Fletcher-32 checksum.
        fletcher32: bool,
    },
}

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
    id: Hid,
    object: String,
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
                filters.push(match f {
                    h5z::H5Z_FILTER_DEFLATE => "deflate".to_string(),
                    h5z::H5Z_FILTER_SHUFFLE => "shuffle".to_string(),
                    h5z::H5Z_FILTER_FLETCHER32 => "fletcher32".to_string(),
                    h5z::H5Z_FILTER_SZIP => "szip".to_string(),
                    h5z::H5Z_FILTER_NBIT => "nbit".to_string(),
                    h5z::H5Z_FILTER_SCALEOFFSET => "scaleoffset".to_string(),
                    other => format!("filter-{other}"),
                });
            }
            Ok(DatasetInfo {
                name: name.to_string(),
                dtype,
                shape,
                layout,
                filters,
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
    fn row_selection(&self, start: u64, count: u64) -> Result<(Hid, Hid, usize), H5Error> {
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

    /// Read string rows (variable- or fixed-length, any padding) and append them to `out`.
    pub fn read_strings(
        &self,
        start: u64,
        count: u64,
        out: &mut Vec<String>,
    ) -> Result<(), H5Error> {
        let _g = lock();
        let o = &self.object;
        let (fspace, mspace, elems) = self.row_selection(start, count)?;
        let what = format!("{o} rows {start}..{}", start + count);
        // SAFETY: the memory buffers match the memory type and the selection size; vlen
        // buffers are reclaimed with H5Treclaim after copying out.
        unsafe {
            let ftype = Hid::check(h5d::H5Dget_type(self.id.0), "H5Dget_type", o)?;
            if h5t::H5Tis_variable_str(ftype.0) > 0 {
                let mtype = string_type(None, o)?;
                let mut ptrs: Vec<*mut c_char> = vec![std::ptr::null_mut(); elems];
                let status = h5d::H5Dread(
                    self.id.0,
                    mtype.0,
                    mspace.0,
                    fspace.0,
                    h5p::H5P_DEFAULT,
                    ptrs.as_mut_ptr() as *mut c_void,
                );
                if status >= 0 {
                    out.extend(ptrs.iter().map(|&p| {
                        if p.is_null() {
                            String::new()
                        } else {
                            CStr::from_ptr(p).to_string_lossy().into_owned()
                        }
                    }));
                }
                // Freed whether or not the read completed: a failed read may have filled
                // some pointers (the rest are null, which H5Treclaim skips).
                let reclaimed = h5t::H5Treclaim(
                    mtype.0,
                    mspace.0,
                    h5p::H5P_DEFAULT,
                    ptrs.as_mut_ptr() as *mut c_void,
                );
                check(status, "H5Dread", &what)?;
                check(reclaimed, "H5Treclaim", &what)?;
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
                out.extend(buf.chunks_exact(size.max(1)).map(|raw| {
                    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
                    let mut s = &raw[..end];
                    if pad == h5t::H5T_str_t::H5T_STR_SPACEPAD {
                        while let [rest @ .., b' '] = s {
                            s = rest;
                        }
                    }
                    String::from_utf8_lossy(s).into_owned()
                }));
            }
        }
        Ok(())
    }

    /// Write `data` (whole rows, in the dataset's native layout) at rows `start..`.
    pub fn write_rows<T: Native>(&self, start: u64, count: u64, data: &[T]) -> Result<(), H5Error> {
        let _g = lock();
        let (fspace, mspace, elems) = self.row_selection(start, count)?;
        assert_eq!(
            elems,
            data.len(),
            "write_rows: buffer does not match the selection"
        );
        // SAFETY: data holds exactly `elems` values of the memory type, matching mspace.
        let st = unsafe {
            h5d::H5Dwrite(
                self.id.0,
                T::mem_type(),
                mspace.0,
                fspace.0,
                h5p::H5P_DEFAULT,
                data.as_ptr() as *const c_void,
            )
        };
        check(st, "H5Dwrite", &self.object)
    }

    /// Write strings at rows `start..start + data.len()`: variable-length UTF-8, or fixed
    /// length `fixed` bytes (null-padded; longer strings are an error).
    pub fn write_strings(
        &self,
        start: u64,
        data: &[String],
        fixed: Option<usize>,
    ) -> Result<(), H5Error> {
        let _g = lock();
        let o = self.object.clone();
        let (fspace, mspace, elems) = self.row_selection(start, data.len() as u64)?;
        assert_eq!(elems, data.len());
        let mtype = string_type(fixed, &o)?;
        // SAFETY: buffers match the memory type and selection; CStrings outlive the call.
        let st = unsafe {
            match fixed {
                None => {
                    let owned: Vec<CString> = data
                        .iter()
                        .map(|s| cstring(s, &o))
                        .collect::<Result<_, _>>()?;
                    let ptrs: Vec<*const c_char> = owned.iter().map(|c| c.as_ptr()).collect();
                    h5d::H5Dwrite(
                        self.id.0,
                        mtype.0,
                        mspace.0,
                        fspace.0,
                        h5p::H5P_DEFAULT,
                        ptrs.as_ptr() as *const c_void,
                    )
                }
                Some(n) => {
                    let mut buf = vec![0u8; n * data.len()];
                    for (slot, s) in buf.chunks_exact_mut(n).zip(data) {
                        if s.len() > n {
                            return Err(H5Error {
                                op: "write_strings",
                                object: o,
                                detail: Some(format!("string of {} bytes exceeds S{n}", s.len())),
                            });
                        }
                        slot[..s.len()].copy_from_slice(s.as_bytes());
                    }
                    h5d::H5Dwrite(
                        self.id.0,
                        mtype.0,
                        mspace.0,
                        fspace.0,
                        h5p::H5P_DEFAULT,
                        buf.as_ptr() as *const c_void,
                    )
                }
            }
        };
        check(st, "H5Dwrite", &o)
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
            other => DType::Other(
                format!("{other:?}")
                    .trim_start_matches("H5T_")
                    .to_lowercase(),
            ),
        }
    }
}

/// The linked libhdf5's version, e.g. `1.14.4`.
pub fn library_version() -> String {
    let _g = lock();
    let (mut major, mut minor, mut release) = (0u32, 0u32, 0u32);
    // SAFETY: the three out-pointers are valid for writes.
    let st = unsafe { h5::H5get_libversion(&mut major, &mut minor, &mut release) };
    if st < 0 {
        "unknown".into()
    } else {
        format!("{major}.{minor}.{release}")
    }
}
