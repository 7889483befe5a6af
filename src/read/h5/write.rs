//! Writing HDF5 files (for the sample generator and tests): creating files, groups and
//! datasets ([`WriteType`], [`Storage`]) and writing rows of numbers or strings.

use std::ffi::{c_char, c_void, CString};
use std::path::Path;

use hdf5_sys::h5i::hid_t;
use hdf5_sys::{h5d, h5f, h5g, h5p, h5s, h5t};

use super::{check, cstring, lock, string_type, Dataset, File, H5Error, Hid, Native};

impl File {
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

impl Dataset {
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
