//! Run configuration: modes, profiles, the YAML file, `MSMS_*` environment variables and
//! their precedence.
//!
//! Settings come from four places. For every key the first one that sets it wins:
//!
//! 1. command-line flags (the CLI builds a [`Layer`] itself),
//! 2. the `--config` YAML file ([`Layer::from_yaml_file`]),
//! 3. the environment, `MSMS_*` ([`Layer::from_env`]),
//! 4. the default of the resolved [`Mode`] (`Profile::for_mode`) and the built-in defaults.
//!
//! The mode itself is resolved the same way (flag, then the file's `mode:`, then
//! `MSMS_MODE`, then `local`), and only then are the mode's profile defaults filled in,
//! so `mode: production` in a file changes the defaults of every key the file leaves out.
//!
//! [`Settings::resolve`] merges the layers and validates the result;
//! [`Settings::config_hash`] fingerprints the settings that affect output bytes.
//!
//! # Files
//!
//! - `error.rs`: [`ParseError`], [`ConfigError`].
//! - `values.rs`: the value types ([`Mode`], [`Normalize`], [`Compression`], [`BinRange`],
//!   [`Splits`], [`Binning`], ...) and log levels.
//! - `byte_size.rs`: [`ByteSize`].
//! - `profile.rs`: [`Profile`], the per-mode defaults.
//! - `layer.rs`: [`Layer`]; `yaml.rs` fills one from the config file, `env.rs` from `MSMS_*`.
//! - `settings.rs`: [`Settings`], resolution and the config hash.
//! - `machine.rs`: memory from /proc/meminfo and the mode a machine suggests.

mod byte_size;
mod env;
mod error;
mod layer;
pub(crate) mod machine;
mod profile;
mod settings;
#[cfg(test)]
mod testutil;
mod values;
mod yaml;

pub use byte_size::ByteSize;
pub use error::{ConfigError, ParseError};
pub use layer::Layer;
pub use profile::Profile;
pub(crate) use settings::RecordedSettings;
pub use settings::{Settings, MAX_BINS};
pub(crate) use values::parse_log_level;
pub use values::{
    BinAggregation, BinOutput, BinRange, Binning, ColumnList, Compression, Dedup, Mode, Normalize,
    QualityFormat, SplitKey, Splits, LOG_LEVELS,
};
