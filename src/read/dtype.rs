//! Stored element types the reader supports, and the one dispatch from an element type to
//! its Rust type ([`with_elem!`]); the typed buffers a read unit holds ([`PeakData`],
//! [`LshData`]).
//!
//! [`Elem`] is closed: the integers of 1, 2, 4 and 8 bytes, signed or not, and float32 and
//! float64. Every place that turns a stored element type into code (the Arrow type of a
//! column, preparing a mapped dataset, decoding it, reading it through libhdf5) goes through
//! [`with_elem!`], so the list is written once.

use std::sync::Arc;

use arrow::array::{ArrayRef, FixedSizeListArray, PrimitiveArray};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Field, Fields, Float32Type, Float64Type, Int16Type, Int32Type,
    Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};

use crate::read::h5::{self, DType};

/// Largest number of values one row of a pass-through dataset may hold, leaf values counted
/// through compounds and array types (guards allocation against absurd declared shapes).
pub(crate) const MAX_ROW_VALUES: u64 = 1 << 20;

/// Largest fixed-length string element accepted, in bytes.
pub(crate) const MAX_FIXED_STRING: u64 = 1 << 16;

/// A numeric element type the reader supports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Elem {
    /// int8
    I8,
    /// int16
    I16,
    /// int32
    I32,
    /// int64
    I64,
    /// uint8
    U8,
    /// uint16
    U16,
    /// uint32
    U32,
    /// uint64
    U64,
    /// float32
    F32,
    /// float64
    F64,
}

/// Run `$body` with `$T` the Rust type of the [`Elem`] `$elem`.
///
/// ```ignore
/// let bytes = with_elem!(elem, T => std::mem::size_of::<T>());
/// ```
macro_rules! with_elem {
    ($elem:expr, $T:ident => $body:expr) => {
        match $elem {
            $crate::read::dtype::Elem::I8 => {
                type $T = i8;
                $body
            }
            $crate::read::dtype::Elem::I16 => {
                type $T = i16;
                $body
            }
            $crate::read::dtype::Elem::I32 => {
                type $T = i32;
                $body
            }
            $crate::read::dtype::Elem::I64 => {
                type $T = i64;
                $body
            }
            $crate::read::dtype::Elem::U8 => {
                type $T = u8;
                $body
            }
            $crate::read::dtype::Elem::U16 => {
                type $T = u16;
                $body
            }
            $crate::read::dtype::Elem::U32 => {
                type $T = u32;
                $body
            }
            $crate::read::dtype::Elem::U64 => {
                type $T = u64;
                $body
            }
            $crate::read::dtype::Elem::F32 => {
                type $T = f32;
                $body
            }
            $crate::read::dtype::Elem::F64 => {
                type $T = f64;
                $body
            }
        }
    };
}
pub(crate) use with_elem;

/// The Rust type of an [`Elem`]: read through libhdf5 ([`h5::Native`]), decoded from the
/// memory map ([`bytemuck::Pod`]), and made into an Arrow array.
pub(crate) trait ElemType: h5::Native + bytemuck::Pod {
    /// The Arrow type of a column of these values.
    const ARROW: DataType;

    /// `values` as an Arrow array without nulls.
    fn array(values: Vec<Self>) -> ArrayRef;
}

macro_rules! elem_type {
    ($t:ty, $arrow:ty) => {
        impl ElemType for $t {
            const ARROW: DataType = <$arrow as ArrowPrimitiveType>::DATA_TYPE;

            fn array(values: Vec<$t>) -> ArrayRef {
                Arc::new(PrimitiveArray::<$arrow>::from(values))
            }
        }
    };
}
elem_type!(i8, Int8Type);
elem_type!(i16, Int16Type);
elem_type!(i32, Int32Type);
elem_type!(i64, Int64Type);
elem_type!(u8, UInt8Type);
elem_type!(u16, UInt16Type);
elem_type!(u32, UInt32Type);
elem_type!(u64, UInt64Type);
elem_type!(f32, Float32Type);
elem_type!(f64, Float64Type);

impl Elem {
    /// The supported element type stored as `d`, if any.
    pub(crate) fn of(d: &DType) -> Option<Elem> {
        Some(match *d {
            DType::Int {
                size: 1,
                signed: true,
            } => Elem::I8,
            DType::Int {
                size: 2,
                signed: true,
            } => Elem::I16,
            DType::Int {
                size: 4,
                signed: true,
            } => Elem::I32,
            DType::Int {
                size: 8,
                signed: true,
            } => Elem::I64,
            DType::Int {
                size: 1,
                signed: false,
            } => Elem::U8,
            DType::Int {
                size: 2,
                signed: false,
            } => Elem::U16,
            DType::Int {
                size: 4,
                signed: false,
            } => Elem::U32,
            DType::Int {
                size: 8,
                signed: false,
            } => Elem::U64,
            DType::Float { size: 4 } => Elem::F32,
            DType::Float { size: 8 } => Elem::F64,
            _ => return None,
        })
    }

    /// An integer type (signed or not)?
    pub(crate) fn is_int(self) -> bool {
        !matches!(self, Elem::F32 | Elem::F64)
    }

    /// The Arrow type of a column of these values.
    pub(crate) fn arrow_type(self) -> DataType {
        with_elem!(self, T => <T as ElemType>::ARROW)
    }
}

/// How the values of a per-spectrum column are stored, and so which Arrow type carries them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ValueKind {
    /// Numbers of this element type.
    Num(Elem),
    /// Fixed- or variable-length string, or variable-length bytes.
    Str,
    /// h5py's `bool` (an enum `FALSE`/`TRUE` over int8): an Arrow boolean column.
    Bool,
    /// Any other enum (its `(label, value)` members): its labels, dictionary-encoded
    /// (`Dictionary(Int32, Utf8)`, as `name`): readers get the labels as categories, the
    /// file stores each once per page.
    Label(Vec<(String, i64)>),
    /// A compound (numpy structured type): an Arrow struct of its members, in the type's
    /// order, each of its own kind.
    Struct(Vec<(String, ValueKind)>),
    /// An array type (numpy subarray) of `dims`: a fixed-size list of their product, in
    /// C order.
    List {
        /// The element kind.
        item: Box<ValueKind>,
        /// The array type's dimensions.
        dims: Vec<u64>,
    },
}

impl ValueKind {
    /// The kind of values stored as `d`, or why no column can carry them (other classes,
    /// other sizes, fixed strings over [`MAX_FIXED_STRING`] bytes, array types of over
    /// [`MAX_ROW_VALUES`] values; a compound's reason names the member by its path, `a.b`).
    pub(crate) fn of(d: &DType) -> Result<ValueKind, String> {
        let unsupported = || Err(format!("unsupported dtype {d}"));
        match d {
            DType::Int { .. } | DType::Float { .. } => match Elem::of(d) {
                Some(e) => Ok(ValueKind::Num(e)),
                None => unsupported(),
            },
            DType::FixedString { size } if *size as u64 <= MAX_FIXED_STRING => Ok(ValueKind::Str),
            DType::VarString | DType::VarBytes => Ok(ValueKind::Str),
            DType::Bool => Ok(ValueKind::Bool),
            DType::Enum { members, .. } => Ok(ValueKind::Label(members.clone())),
            DType::Compound { members, .. } => members
                .iter()
                .map(|(name, t)| match ValueKind::of(t) {
                    Ok(k) => Ok((name.clone(), k)),
                    Err(why) => Err(match why.strip_prefix("member `") {
                        Some(rest) => format!("member `{name}.{rest}"),
                        None => format!("member `{name}`: {why}"),
                    }),
                })
                .collect::<Result<_, _>>()
                .map(ValueKind::Struct),
            DType::Array { dims, base } => match h5::values_in(dims) {
                1..=MAX_ROW_VALUES => Ok(ValueKind::List {
                    item: Box::new(ValueKind::of(base)?),
                    dims: dims.clone(),
                }),
                n => Err(format!(
                    "unsupported dtype {d}: an array of {n} values (1 to {MAX_ROW_VALUES} are read)"
                )),
            },
            DType::FixedString { .. } | DType::Other(_) => unsupported(),
        }
    }

    /// Leaf values in one value of this kind: 1, a struct's members' sum, an array's
    /// product times its item's (saturating).
    pub(crate) fn leaf_values(&self) -> u64 {
        match self {
            ValueKind::Struct(members) => members
                .iter()
                .map(|(_, k)| k.leaf_values())
                .fold(0, u64::saturating_add),
            ValueKind::List { item, dims } => {
                h5::values_in(dims).saturating_mul(item.leaf_values())
            }
            _ => 1,
        }
    }

    /// The Arrow type of one value of the output column.
    pub(crate) fn arrow_type(&self) -> DataType {
        match self {
            ValueKind::Num(e) => e.arrow_type(),
            ValueKind::Str => DataType::Utf8,
            ValueKind::Bool => DataType::Boolean,
            ValueKind::Label(_) => {
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
            }
            ValueKind::Struct(members) => DataType::Struct(struct_fields(members)),
            ValueKind::List { item, dims } => {
                list_type(item.arrow_type(), h5::values_in(dims) as usize)
            }
        }
    }
}

/// The fields of the Arrow struct of a compound's `members`.
pub(crate) fn struct_fields(members: &[(String, ValueKind)]) -> Fields {
    members
        .iter()
        .map(|(name, k)| Field::new(name, k.arrow_type(), false))
        .collect()
}

/// The item field of a fixed-size list of values of `inner`.
fn item_field(inner: DataType) -> Arc<Field> {
    Arc::new(Field::new("item", inner, false))
}

/// A fixed-size list of `width` values of `inner`.
fn list_type(inner: DataType, width: usize) -> DataType {
    DataType::FixedSizeList(item_field(inner), width as i32)
}

/// The type of `width` values of `inner` per row: `inner` itself for width 1, else a
/// fixed-size list (a dataset's trailing dimensions, [`crate::read::PassColumn`]).
pub(crate) fn width_type(inner: DataType, width: usize) -> DataType {
    if width == 1 {
        inner
    } else {
        list_type(inner, width)
    }
}

/// A flat values array of `inner` as a fixed-size list of `width` values per row.
pub(crate) fn fixed_list(flat: ArrayRef, inner: DataType, width: usize) -> ArrayRef {
    Arc::new(FixedSizeListArray::new(
        item_field(inner),
        width as i32,
        flat,
        None,
    ))
}

/// A flat values array of `inner` as `width` values per row, of type [`width_type`].
pub(crate) fn wrap_width(flat: ArrayRef, inner: DataType, width: usize) -> ArrayRef {
    if width == 1 {
        flat
    } else {
        fixed_list(flat, inner, width)
    }
}

/// Element type of the stored spectrum tensor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeakElem {
    /// float32
    F32,
    /// float64
    F64,
}

impl PeakElem {
    /// The same type as an [`Elem`].
    pub(crate) fn elem(self) -> Elem {
        match self {
            PeakElem::F32 => Elem::F32,
            PeakElem::F64 => Elem::F64,
        }
    }
}

/// Peaks of a read unit, in the stored element type.
#[derive(Debug)]
pub(crate) enum PeakData {
    /// float32 tensor rows.
    F32(Vec<f32>),
    /// float64 tensor rows.
    F64(Vec<f64>),
}

/// `lsh` values of a read unit.
#[derive(Debug)]
pub(crate) enum LshData {
    /// int64 buckets.
    Int(Vec<i64>),
    /// 64-byte hex strings.
    Str(Vec<String>),
}
