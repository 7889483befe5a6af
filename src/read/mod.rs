pub mod error;
pub mod h5;
pub mod mapped;
pub mod source;
