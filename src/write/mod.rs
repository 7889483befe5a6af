//! Output: shards encoded (`encode`), planned (`planner`) and written by a pool of
//! writer threads (`pool`) through `O_DIRECT` files (`direct`) and a hashing writer
//! (`hashing`); small files replaced atomically (`atomic`); [`error::SinkError`].

pub(crate) mod atomic;
pub(crate) mod direct;
pub(crate) mod encode;
pub mod error;
pub(crate) mod hashing;
pub(crate) mod planner;
pub(crate) mod pool;
pub(crate) mod stall;

pub use encode::writer_properties;
