//! Element types: describing a stored datatype as a [`DType`] (recursively, through
//! compounds and array types), and the memory types that read one part of it
//! ([`TypePath`]).
//!
//! A pass-through compound is read one leaf member at a time: libhdf5 converts compounds by
//! member name, so a memory type that is a compound of that one member (wrapped in further
//! one-member compounds and array types down the path) reads just that member, converted to
//! the leaf's memory type, into a dense buffer of leaf values.

use std::ffi::{c_void, CStr};

use hdf5_sys::{h5, h5p, h5t};

use super::{check, cstring, DType, H5Error, Hid};
use hdf5_sys::h5i::hid_t;

/// Most members a compound or an enum may have to be described (guards against absurd type
/// headers).
const MAX_MEMBERS: u32 = 1 << 12;
/// Deepest nesting of compounds and array types described (a deeper type is `Other`, and
/// so left out): bounds the recursion whatever a file declares.
const MAX_DEPTH: u32 = 16;

/// One step from an element type into a part of it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// The compound member of this name.
    Member(String),
    /// The elements of an array type of these dimensions.
    Array(Vec<u64>),
}

/// Where a leaf value sits inside a dataset's element type: the steps from the outside in.
/// Empty for the element type itself.
pub type TypePath = [Step];

/// Values in an array of `dims` (their product; saturating, so an absurd declaration is
/// refused, never wrapped; 1 for no dimensions).
pub fn values_in(dims: &[u64]) -> u64 {
    dims.iter().fold(1u64, |acc, &x| acc.saturating_mul(x))
}

/// Leaf values per element along `path`: the product of its array dimensions.
pub fn path_width(path: &TypePath) -> usize {
    path.iter()
        .map(|s| match s {
            Step::Array(dims) => values_in(dims),
            Step::Member(_) => 1,
        })
        .fold(1u64, u64::saturating_mul) as usize
}

/// The part of file type `t` at `path` (a new handle).
pub(super) fn type_at(t: &Hid, path: &TypePath, object: &str) -> Result<Hid, H5Error> {
    // SAFETY: H5Tcopy/H5Tget_member_type/H5Tget_super on valid datatype ids; each result is
    // owned by a Hid.
    unsafe {
        let mut cur = Hid::check(h5t::H5Tcopy(t.0), "H5Tcopy", object)?;
        for step in path {
            cur = match step {
                Step::Member(name) => {
                    let c = cstring(name, object)?;
                    let i = h5t::H5Tget_member_index(cur.0, c.as_ptr());
                    if i < 0 {
                        return Err(H5Error::new("H5Tget_member_index", object));
                    }
                    Hid::check(
                        h5t::H5Tget_member_type(cur.0, i as u32),
                        "H5Tget_member_type",
                        object,
                    )?
                }
                Step::Array(_) => Hid::check(h5t::H5Tget_super(cur.0), "H5Tget_super", object)?,
            };
        }
        Ok(cur)
    }
}

/// Memory type `leaf` placed at `path`: from the inside out, an array type for each array
/// step and a compound of the one member for each member step.
pub(super) fn wrap_at(leaf: Hid, path: &TypePath, object: &str) -> Result<Hid, H5Error> {
    let mut cur = leaf;
    // SAFETY: the created types are owned by Hids; dims outlive the call that reads them;
    // H5Tinsert copies the member type.
    unsafe {
        for step in path.iter().rev() {
            cur = match step {
                Step::Array(dims) => Hid::check(
                    h5t::H5Tarray_create2(cur.0, dims.len() as u32, dims.as_ptr()),
                    "H5Tarray_create2",
                    object,
                )?,
                Step::Member(name) => {
                    let size = h5t::H5Tget_size(cur.0);
                    let c = Hid::check(
                        h5t::H5Tcreate(h5t::H5T_class_t::H5T_COMPOUND, size),
                        "H5Tcreate",
                        object,
                    )?;
                    let n = cstring(name, object)?;
                    check(
                        h5t::H5Tinsert(c.0, n.as_ptr(), 0, cur.0),
                        "H5Tinsert",
                        object,
                    )?;
                    c
                }
            };
        }
    }
    Ok(cur)
}

/// `t`'s members `(label, value)` in the type's order, when it is an enum over an integer of
/// at most 8 bytes.
fn enum_members(t: hid_t) -> Option<Vec<(String, i64)>> {
    // SAFETY: t is a valid enum datatype id; each member value is read into an 8-byte
    // buffer (the base is at most 8 bytes, checked first) and converted to i64 by H5Tconvert
    // from the base type; member names are freed with H5free_memory.
    unsafe {
        if !(1..=8).contains(&h5t::H5Tget_size(t)) {
            return None;
        }
        let base = Hid::check(h5t::H5Tget_super(t), "H5Tget_super", "").ok()?;
        let n = h5t::H5Tget_nmembers(t);
        if !(0..=MAX_MEMBERS as i32).contains(&n) {
            return None;
        }
        let mut out = Vec::with_capacity(n as usize);
        for i in 0..n as u32 {
            let label = String::from_utf8_lossy(&member_name(t, i)?).into_owned();
            let mut raw = [0u8; 8];
            if h5t::H5Tget_member_value(t, i, raw.as_mut_ptr() as *mut c_void) < 0
                || h5t::H5Tconvert(
                    base.0,
                    *h5t::H5T_NATIVE_INT64,
                    1,
                    raw.as_mut_ptr() as *mut c_void,
                    std::ptr::null_mut(),
                    h5p::H5P_DEFAULT,
                ) < 0
            {
                return None;
            }
            out.push((label, i64::from_ne_bytes(raw)));
        }
        Some(out)
    }
}

/// The name of member `i` of compound or enum type `t`, as stored.
fn member_name(t: hid_t, i: u32) -> Option<Vec<u8>> {
    // SAFETY: t is a valid compound or enum type; the returned name is freed with
    // H5free_memory after copying.
    unsafe {
        let name = h5t::H5Tget_member_name(t, i);
        if name.is_null() {
            return None;
        }
        let bytes = CStr::from_ptr(name).to_bytes().to_vec();
        h5::H5free_memory(name as *mut c_void);
        Some(bytes)
    }
}

/// Whether the vlen type `t` is a sequence of 1-byte integers.
fn vlen_of_bytes(t: hid_t) -> bool {
    // SAFETY: t is a valid vlen datatype id; the base type is released on drop.
    unsafe {
        let Ok(base) = Hid::check(h5t::H5Tget_super(t), "H5Tget_super", "") else {
            return false;
        };
        h5t::H5Tget_class(base.0) == h5t::H5T_class_t::H5T_INTEGER && h5t::H5Tget_size(base.0) == 1
    }
}

/// The members of compound type `t`, described at `depth`, or why not: members are read
/// by name, so each must be UTF-8 (the name libhdf5 is given back).
fn compound_members(t: hid_t, depth: u32) -> Result<Vec<(String, DType)>, String> {
    // SAFETY: t is a valid compound type; member types are owned by Hids.
    unsafe {
        let n = h5t::H5Tget_nmembers(t);
        if !(1..=MAX_MEMBERS as i32).contains(&n) {
            return Err(format!(
                "compound of {n} members (1 to {MAX_MEMBERS} are read)"
            ));
        }
        (0..n as u32)
            .map(|i| {
                let unreadable = || format!("compound whose member {i} cannot be described");
                let raw = member_name(t, i).ok_or_else(unreadable)?;
                let name = String::from_utf8(raw).map_err(|e| {
                    format!(
                        "compound with a member name that is not UTF-8 ({:?})",
                        String::from_utf8_lossy(e.as_bytes())
                    )
                })?;
                let mt = Hid::check(h5t::H5Tget_member_type(t, i), "H5Tget_member_type", "")
                    .map_err(|_| unreadable())?;
                Ok((name, describe_at(mt.0, depth)))
            })
            .collect()
    }
}

/// The dimensions and base of array type `t`, described at `depth`.
fn array_of(t: hid_t, depth: u32) -> Option<(Vec<u64>, DType)> {
    // SAFETY: t is a valid array type; dims holds ndims entries; the base is owned by a Hid.
    unsafe {
        let ndims = h5t::H5Tget_array_ndims(t);
        if !(1..=32).contains(&ndims) {
            return None;
        }
        let mut dims = vec![0u64; ndims as usize];
        if h5t::H5Tget_array_dims2(t, dims.as_mut_ptr()) < 0 {
            return None;
        }
        let base = Hid::check(h5t::H5Tget_super(t), "H5Tget_super", "").ok()?;
        Some((dims, describe_at(base.0, depth)))
    }
}

/// `t` as a [`DType`].
pub(super) fn describe_type(t: hid_t) -> DType {
    describe_at(t, 0)
}

/// `t`, found `depth` compounds and array types deep, as a [`DType`].
fn describe_at(t: hid_t, depth: u32) -> DType {
    // SAFETY: queries of the valid datatype id t.
    let (size, class) = unsafe { (h5t::H5Tget_size(t), h5t::H5Tget_class(t)) };
    let other = |class: h5t::H5T_class_t| DType::Other(other_name(class));
    match class {
        h5t::H5T_class_t::H5T_INTEGER => {
            // SAFETY: t is a valid integer type.
            let sign = unsafe { h5t::H5Tget_sign(t) };
            DType::Int {
                size,
                signed: sign == h5t::H5T_sign_t::H5T_SGN_2,
            }
        }
        h5t::H5T_class_t::H5T_FLOAT => DType::Float { size },
        h5t::H5T_class_t::H5T_STRING => {
            // SAFETY: t is a valid string type.
            if unsafe { h5t::H5Tis_variable_str(t) } > 0 {
                DType::VarString
            } else {
                DType::FixedString { size }
            }
        }
        h5t::H5T_class_t::H5T_VLEN if vlen_of_bytes(t) => DType::VarBytes,
        h5t::H5T_class_t::H5T_ENUM => match enum_members(t) {
            Some(members) if is_h5py_bool(size, &members) => DType::Bool,
            Some(members) => DType::Enum { size, members },
            None => other(class),
        },
        h5t::H5T_class_t::H5T_COMPOUND | h5t::H5T_class_t::H5T_ARRAY if depth >= MAX_DEPTH => {
            DType::Other(format!(
                "{} nested over {MAX_DEPTH} deep",
                other_name(class)
            ))
        }
        h5t::H5T_class_t::H5T_COMPOUND => match compound_members(t, depth + 1) {
            Ok(members) => DType::Compound { size, members },
            Err(why) => DType::Other(why),
        },
        h5t::H5T_class_t::H5T_ARRAY => match array_of(t, depth + 1) {
            Some((dims, base)) => DType::Array {
                dims,
                base: Box::new(base),
            },
            None => other(class),
        },
        _ => other(class),
    }
}

/// The name of type class `class`: `compound`, `reference`, `opaque`, ….
fn other_name(class: h5t::H5T_class_t) -> String {
    format!("{class:?}")
        .trim_start_matches("H5T_")
        .to_lowercase()
}

/// Whether an enum of `size` bytes with these members is h5py's `bool`: one byte, exactly
/// the members `FALSE` = 0 and `TRUE` = 1.
fn is_h5py_bool(size: usize, members: &[(String, i64)]) -> bool {
    let mut m = members.to_vec();
    m.sort();
    size == 1 && m == [("FALSE".to_string(), 0), ("TRUE".to_string(), 1)]
}
