pub mod atomic;
pub mod direct;
pub mod error;
pub mod hashing;
pub mod sink;
pub mod stall;
