//! Old paths of the output side, kept while other rooms move to the new ones: encoding is in
//! [`super::encode`], shard planning in [`super::planner`], the writer threads in
//! [`super::pool`]. (Temporary; the public `writer_properties` is also at
//! `msms_shards::write::writer_properties`.)

pub use crate::write::encode::writer_properties;
pub(crate) use crate::write::encode::{EncodedBatch, Encoder};
pub(crate) use crate::write::planner::{ShardPlanner, UnitOutput};
