//! The old path of the `build-shards` run's public items, kept while tests, benches and
//! other rooms still import them from here: everything is re-exported from [`crate::run`].

pub use crate::run::{
    build_shards, build_shards_with, detect_inputs, tune_allocator, BuildOptions, Event, Progress,
    RunError, Summary,
};
