//! On-disk formats of an output root: the manifest ([`manifest`]), the checkpoint of an
//! unfinished run ([`checkpoint`]) and the path rules of shards (`paths`).

pub mod checkpoint;
pub mod manifest;
pub(crate) mod paths;
