//! Processing: read units → validated, transformed Arrow batches ([`batch`]), and how rows
//! are divided into splits and deduplicated (`split`), and how each split's rows are cut
//! into row groups ([`groups`]).

pub mod batch;
pub(crate) mod groups;
pub(crate) mod split;
