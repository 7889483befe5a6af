//! Helpers shared by the configuration's unit tests.

use std::path::Path;

use super::{ConfigError, Layer};

pub(crate) fn env(pairs: &[(&str, &str)]) -> Result<Layer, ConfigError> {
    Layer::from_env(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    )
}

pub(crate) fn yaml(text: &str) -> Result<Layer, ConfigError> {
    Layer::from_yaml_str(text, Path::new("configs/x.yaml"))
}

pub(crate) fn yaml_err(text: &str) -> String {
    yaml(text).unwrap_err().to_string()
}
