//! `msms_shards._native`: what the Python package takes from the Rust library: the `msms`
//! command line (the package's `msms` console script) and `msms verify` without printing
//! (`Dataset.verify`), and the loader's one copy per peak ([`scatter_padded`]). Everything
//! else of the package is Python over pyarrow and numpy.

use std::io::Write as _;
use std::path::PathBuf;

use std::cell::Cell;

use pyo3::buffer::{PyBuffer, ReadOnlyCell};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;

/// Run the `msms` command line `argv` (program name first) exactly as the `msms` binary
/// does: same output, same exit code (returned), same handling of SIGINT and SIGTERM.
#[pyfunction]
fn run(py: Python<'_>, argv: Vec<String>) -> i32 {
    let code = py.detach(|| msms_shards::cli::run(argv));
    // The binary's stdout is flushed when its `main` returns; here Python goes on.
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    code
}

/// `msms verify ROOT [--full]` without printing: `(ok, problems, summary)`, each problem
/// and the summary as `msms verify` prints them. Raises `OSError` with its message when ROOT
/// or its manifest cannot be read (exit code 2 of the command).
#[pyfunction]
#[pyo3(signature = (root, full = false))]
fn verify(py: Python<'_>, root: PathBuf, full: bool) -> PyResult<(bool, Vec<String>, String)> {
    let found = py.detach(|| msms_shards::cli::verify_lines(&root, full));
    match found {
        Ok(v) => Ok((v.ok, v.problems, v.summary)),
        Err(message) => Err(PyOSError::new_err(message)),
    }
}

/// Copy each spectrum's peaks into its row of a zero-filled float32 matrix: the loader's
/// padding and shuffling in one pass (`msms_shards._batches`).
///
/// `values` (float64 or float32) holds the peaks of `len(offsets) - 1` spectra, spectrum `i`
/// at `values[offsets[i] - offsets[0] .. offsets[i + 1] - offsets[0]]`; its values, as
/// float32, go to the start of row `dest[i]` of `out` (`rows × width`), the rest of which is
/// left as it is. Every buffer must be C-contiguous, `offsets` and `dest` int64. Everything
/// is checked before anything is written: `ValueError` for offsets that decrease or run past
/// `values`, a spectrum with more than `width` peaks, or a destination row outside `out`.
#[pyfunction]
fn scatter_padded(
    py: Python<'_>,
    values: &Bound<'_, PyAny>,
    offsets: PyBuffer<i64>,
    dest: PyBuffer<i64>,
    out: PyBuffer<f32>,
    width: usize,
) -> PyResult<()> {
    let contiguous = |what: &str| PyValueError::new_err(format!("{what} must be C-contiguous"));
    let offsets = offsets.as_slice(py).ok_or_else(|| contiguous("offsets"))?;
    let dest = dest.as_slice(py).ok_or_else(|| contiguous("dest"))?;
    let out = out.as_mut_slice(py).ok_or_else(|| contiguous("out"))?;
    if let Ok(v) = PyBuffer::<f64>::get(values) {
        let v = v.as_slice(py).ok_or_else(|| contiguous("values"))?;
        scatter(v, offsets, dest, out, width, |x: f64| x as f32)
    } else {
        let v = PyBuffer::<f32>::get(values)?;
        let v = v.as_slice(py).ok_or_else(|| contiguous("values"))?;
        scatter(v, offsets, dest, out, width, |x: f32| x)
    }
}

/// [`scatter_padded`] for one value type.
fn scatter<T: pyo3::buffer::Element + Copy>(
    values: &[ReadOnlyCell<T>],
    offsets: &[ReadOnlyCell<i64>],
    dest: &[ReadOnlyCell<i64>],
    out: &[Cell<f32>],
    width: usize,
    to_f32: impl Fn(T) -> f32,
) -> PyResult<()> {
    let bad = |m: String| Err(PyValueError::new_err(m));
    let n = offsets.len().saturating_sub(1);
    if dest.len() != n {
        return bad(format!("{} destinations for {n} spectra", dest.len()));
    }
    if width == 0 || out.len() % width != 0 {
        return bad(format!(
            "out holds {} values, not rows of {width}",
            out.len()
        ));
    }
    let rows = out.len() / width;
    let base = offsets.first().map_or(0, |o| o.get());
    // Checked first, so that bad input writes nothing.
    let mut spans = Vec::with_capacity(n);
    for i in 0..n {
        let (a, b) = (offsets[i].get() - base, offsets[i + 1].get() - base);
        if a < 0 || b < a || b as usize > values.len() {
            return bad(format!(
                "offsets {a}..{b} of spectrum {i} are outside the {} values",
                values.len()
            ));
        }
        if (b - a) as usize > width {
            return bad(format!(
                "spectrum {i} has {} peaks, more than the width {width}",
                b - a
            ));
        }
        let d = dest[i].get();
        if d < 0 || d as usize >= rows {
            return bad(format!(
                "destination row {d} of spectrum {i} is outside the {rows} rows"
            ));
        }
        spans.push((a as usize, b as usize, d as usize));
    }
    for (a, b, d) in spans {
        let row = &out[d * width..d * width + (b - a)];
        for (cell, v) in row.iter().zip(&values[a..b]) {
            cell.set(to_f32(v.get()));
        }
    }
    Ok(())
}

/// The version of the msms-shards library inside.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// The module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(verify, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(scatter_padded, m)?)?;
    Ok(())
}
