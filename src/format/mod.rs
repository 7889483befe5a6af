pub mod checkpoint;
pub mod manifest;
pub mod paths;
