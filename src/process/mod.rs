pub mod batch;
pub mod split;
