//! Processing: read units → validated, transformed Arrow batches ([`batch`]), and how rows
//! are divided into splits and deduplicated (`split`).

pub mod batch;
pub(crate) mod split;
