//! Pass-through columns read through libhdf5 ([`read_pass`]): numbers, strings, enum
//! labels, booleans, and compounds and array types of them, as Arrow arrays.
//!
//! A compound is read one leaf member at a time (libhdf5 converts compounds by member name,
//! [`h5::TypePath`]), each leaf into a dense buffer of its values; the leaves are then put
//! together as Arrow structs (for compounds) and fixed-size lists (for array types and for
//! the dataset's own trailing dimensions), so the column holds exactly the stored values.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, DictionaryArray, Int32Array, StringArray, StructArray};
use arrow::datatypes::Int32Type;

use crate::read::detect::PassColumn;
use crate::read::dtype::{fixed_list, struct_fields, with_elem, wrap_width, ElemType, ValueKind};
use crate::read::h5::{self, Step};

/// Rows `start..start + n` of pass-through column `p` through libhdf5. The rows (counted
/// from `start`) holding a string that is not UTF-8 are added to `invalid_utf8`.
pub(crate) fn read_pass(
    ds: &h5::Dataset,
    p: &PassColumn,
    start: u64,
    n: u64,
    invalid_utf8: &mut Vec<u64>,
) -> Result<ArrayRef, h5::H5Error> {
    let mut read = PassRead {
        ds,
        start,
        n,
        width: p.width,
        invalid_utf8,
    };
    let flat = read.values(&p.kind, &mut Vec::new())?;
    Ok(wrap_width(flat, p.kind.arrow_type(), p.width))
}

/// One read of a pass-through column's rows, leaf by leaf.
struct PassRead<'a> {
    ds: &'a h5::Dataset,
    start: u64,
    n: u64,
    /// Elements per row (the dataset's trailing dimensions).
    width: usize,
    invalid_utf8: &'a mut Vec<u64>,
}

impl PassRead<'_> {
    /// The values of kind `kind` at `path` inside each element, flat: one per element times
    /// the array types along `path`.
    fn values(&mut self, kind: &ValueKind, path: &mut Vec<Step>) -> Result<ArrayRef, h5::H5Error> {
        let (ds, start, n) = (self.ds, self.start, self.n);
        Ok(match kind {
            ValueKind::Num(elem) => with_elem!(*elem, T => {
                let mut v = Vec::new();
                ds.read_rows_at::<T>(start, n, path, &mut v)?;
                T::array(v)
            }),
            ValueKind::Str => {
                let mut v = Vec::new();
                let invalid = ds.read_strings_at(start, n, path, &mut v)?;
                let per_row = (self.width * h5::path_width(path)) as u64;
                self.invalid_utf8
                    .extend(invalid.into_iter().map(|i| i / per_row));
                Arc::new(StringArray::from(v))
            }
            ValueKind::Label(members) => {
                // libhdf5 converts the enum to its integer values.
                let mut v: Vec<i64> = Vec::new();
                ds.read_rows_at::<i64>(start, n, path, &mut v)?;
                Arc::new(enum_labels(&v, members))
            }
            ValueKind::Bool => {
                // libhdf5 converts the enum to its integer values (0 FALSE, 1 TRUE).
                let mut v: Vec<i8> = Vec::new();
                ds.read_rows_at::<i8>(start, n, path, &mut v)?;
                Arc::new(BooleanArray::from_iter(v.into_iter().map(|x| Some(x != 0))))
            }
            ValueKind::Struct(members) => {
                let mut children = Vec::with_capacity(members.len());
                for (name, k) in members {
                    path.push(Step::Member(name.clone()));
                    children.push(self.values(k, path)?);
                    path.pop();
                }
                Arc::new(StructArray::new(struct_fields(members), children, None))
            }
            ValueKind::List { item, dims } => {
                path.push(Step::Array(dims.clone()));
                let flat = self.values(item, path)?;
                path.pop();
                fixed_list(flat, item.arrow_type(), h5::values_in(dims) as usize)
            }
        })
    }
}

/// Enum values as their labels, dictionary-encoded: the dictionary is every member in the
/// type's order, then any value that is no member (written as its number) in order of first
/// appearance.
fn enum_labels(values: &[i64], members: &[(String, i64)]) -> DictionaryArray<Int32Type> {
    let mut dict: Vec<String> = members.iter().map(|(l, _)| l.clone()).collect();
    // Value → key; the first member of a value wins (HDF5 forbids duplicates anyway).
    let mut key: HashMap<i64, i32> = HashMap::with_capacity(members.len());
    for (i, (_, v)) in members.iter().enumerate() {
        key.entry(*v).or_insert(i as i32);
    }
    let keys: Vec<i32> = values
        .iter()
        .map(|v| {
            *key.entry(*v).or_insert_with(|| {
                dict.push(v.to_string());
                (dict.len() - 1) as i32
            })
        })
        .collect();
    DictionaryArray::try_new(Int32Array::from(keys), Arc::new(StringArray::from(dict)))
        .expect("every key indexes the dictionary")
}
