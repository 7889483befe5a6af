//! A thin, safe wrapper over the parts of libhdf5 (through `hdf5-metno-sys`, bundled static
//! HDF5 1.14) that msms-shards needs: walking the root group, reading dataset metadata,
//! reading row hyperslabs, and writing datasets for the sample generator.
//!
//! The bundled library is built without thread-safety, so every call into it happens under
//! one process-wide re-entrant lock ([`lock`]). Handles are closed on drop (under the same
//! lock). Errors carry the operation and the object it was applied to; HDF5's own error
//! stack printing is switched off once at start-up.
//!
//! This module owns the lock, the errors, owned identifiers, element and dataset
//! descriptions and opening files; `types` describes stored types (through compounds and
//! array types) and builds the memory types that read one member of them; `dataset` reads
//! datasets (metadata, chunk index, row hyperslabs of numbers and strings, whole or one
//! member) and `write` creates and writes them.

use std::ffi::{c_char, c_void, CStr, CString};
use std::path::{Path, PathBuf};
use std::sync::Once;

use hdf5_sys::{h5, h5d, h5e, h5f, h5i, h5l, h5o, h5p, h5t};
use parking_lot::{ReentrantMutex, ReentrantMutexGuard};

use h5i::hid_t;

mod dataset;
mod types;
mod write;

pub use dataset::{ChunkRecord, Dataset, RawFilter, MAX_CHUNK_RANK};
pub use types::{path_width, values_in, Step, TypePath};
pub use write::{Storage, WriteType};

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
    /// Variable-length string (ASCII or UTF-8).
    VarString,
    /// A boolean as h5py stores numpy's `bool`: an enum over a 1-byte integer with exactly
    /// the members `FALSE` = 0 and `TRUE` = 1.
    Bool,
    /// Any other enum over an integer of `size` bytes (`h5py.enum_dtype`): its labels.
    Enum {
        /// Bytes per element.
        size: usize,
        /// `(label, value)` in the type's order.
        members: Vec<(String, i64)>,
    },
    /// A compound (a numpy structured type): its members in the type's order.
    Compound {
        /// Bytes per element.
        size: usize,
        /// `(name, type)` of each member.
        members: Vec<(String, DType)>,
    },
    /// An array type (a numpy subarray, a C array member): `dims` values of `base` each.
    Array {
        /// The array's dimensions.
        dims: Vec<u64>,
        /// The element type.
        base: Box<DType>,
    },
    /// Variable-length sequence of bytes (1-byte integers), as h5py writes
    /// `h5py.vlen_dtype(bytes)` or `vlen_dtype(np.uint8)`: read as strings.
    VarBytes,
    /// Anything else (opaque, reference, vlen sequence, bitfield, time, …), by class name.
    Other(String),
}

impl DType {
    /// Bytes one element takes in the file (inside a chunk): its size; for a variable-length
    /// value its global-heap reference (4-byte length, 8-byte heap address, 4-byte index,
    /// with the 8-byte file addresses every writer uses by default: 16 bytes; the values live
    /// in the global heap, unfiltered); `None` for other classes.
    pub fn stored_size(&self) -> Option<usize> {
        match *self {
            DType::Int { size, .. } | DType::Float { size } | DType::FixedString { size } => {
                Some(size)
            }
            DType::VarString | DType::VarBytes => Some(16),
            DType::Bool => Some(1),
            DType::Enum { size, .. } => Some(size),
            // Its size with padding, plus 8 bytes per vlen string in it: the type's size
            // counts a string as an 8-byte pointer, the file as a 16-byte heap reference.
            DType::Compound { size, ref members } => members
                .iter()
                .try_fold(size, |acc, (_, t)| acc.checked_add(t.vlen_string_extra()?)),
            DType::Array { ref dims, ref base } => times(dims, base.stored_size()?),
            DType::Other(_) => None,
        }
    }
}

impl DType {
    /// Bytes a compound member of this type takes in the file beyond its size in the
    /// compound's own size: 8 per variable-length string in it (`None` on overflow).
    fn vlen_string_extra(&self) -> Option<usize> {
        match self {
            DType::VarString => Some(8),
            DType::Compound { members, .. } => members.iter().try_fold(0usize, |acc, (_, t)| {
                acc.checked_add(t.vlen_string_extra()?)
            }),
            DType::Array { dims, base } => times(dims, base.vlen_string_extra()?),
            _ => Some(0),
        }
    }
}

/// `n` bytes times every array dimension in `dims` (`None` on overflow).
fn times(dims: &[u64], n: usize) -> Option<usize> {
    dims.iter()
        .try_fold(n, |acc, &d| acc.checked_mul(usize::try_from(d).ok()?))
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
            DType::VarBytes => f.write_str("vlen-bytes"),
            DType::Bool => f.write_str("bool"),
            DType::Enum { size, .. } => write!(f, "enum{}", size * 8),
            DType::Compound { members, .. } => {
                f.write_str("compound{")?;
                for (i, (name, t)) in members.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}{name}: {t}")?;
                }
                f.write_str("}")
            }
            DType::Array { dims, base } => {
                let dims: Vec<String> = dims.iter().map(u64::to_string).collect();
                write!(f, "{base}[{}]", dims.join("x"))
            }
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
    /// Filter names in pipeline order (`deflate`, `shuffle`, `fletcher32`, `lzf`, …:
    /// [`filter_name`]).
    pub filters: Vec<String>,
    /// Their HDF5 filter ids, in the same order.
    pub filter_ids: Vec<i32>,
}

/// The registered name of HDF5 filter `id` (HDF Group's list of registered filters), or
/// `filter-<id>` for one this build does not know.
pub fn filter_name(id: i32) -> String {
    let name = match id {
        1 => "deflate",
        2 => "shuffle",
        3 => "fletcher32",
        4 => "szip",
        5 => "nbit",
        6 => "scaleoffset",
        32000 => "lzf",
        32001 => "blosc",
        32002 => "mafisc",
        32003 => "snappy",
        32004 => "lz4",
        32008 => "bitshuffle",
        32013 => "zfp",
        32014 => "fpzip",
        32015 => "zstd",
        32017 => "sz",
        32024 => "sz3",
        32026 => "blosc2",
        _ => return format!("filter-{id}"),
    };
    name.to_string()
}

/// Whether the linked libhdf5 can apply filter `id` (built in, or a plugin it finds).
pub fn filter_available(id: i32) -> bool {
    let _g = lock();
    // SAFETY: a query by id; no pointers.
    unsafe { hdf5_sys::h5z::H5Zfilter_avail(id) > 0 }
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
        check(
            // SAFETY: valid file id and name; the callback only appends to `names`, which
            // outlives the call.
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
