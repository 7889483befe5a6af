"""Model inputs computed with each batch (``batches(..., preset=NAME)``), vectorised over the
batch, each checked against its project's own definition in ``tests/python/test_package.py``:

``"dreams"``
    ``spectrum`` ``(B, max_peaks + 1, 2)`` float32, as DreaMS's ``SpectrumPreprocessor``
    (``dreams/utils/data.py``): row 0 the precursor pseudo-peak ``[precursor_mz, 1.1]``, then
    the ``max_peaks`` most intense peaks in m/z order as ``[m/z, intensity / base peak]``,
    zero rows after them (DreaMS masks rows whose m/z is 0). DreaMS's pre-trained models use
    ``max_peaks=100``. Ties for the last kept place go to the lower m/z (DreaMS leaves them
    to numpy's unstable ``argsort``).
``"massspecgym"``
    ``binned`` ``(B, 1005)`` float32, as MassSpecGym's ``SpecBinner(max_mz=1005,
    bin_width=1)`` (``massspecgym/data/transforms.py``): every peak with ``10 <= m/z <=
    1005`` (not only the ``max_peaks`` kept), bin ``floor(m/z)`` (1005 itself in the last
    bin), relative intensities summed per bin, the vector divided by its largest bin. A
    spectrum with no peak in range is all zeros (MassSpecGym's 0/0 gives NaN).
``"ms2deepscore"``
    ``binned`` ``(B, 9900)`` float32, as MS2DeepScore's ``vectorize_spectrum`` with its
    default settings (``min_mz=10, max_mz=1000, mz_bin_width=0.1, intensity_scaling=0.5``):
    every peak with ``10 <= m/z < 1000``, bin ``int((m/z - 10) / 0.1)`` computed in float64
    exactly as it does, value ``(intensity / base peak) ** 0.5``, the largest per bin.

Each function takes a row group's flat peaks (``mz``, ``intensity``, per-spectrum
``counts``), its ``precursor_mz`` and ``max_peaks``, and returns the keys it adds.
"""

from __future__ import annotations

from typing import Callable, Dict

import numpy as np

#: DreaMS's precursor pseudo-peak intensity (``prec_intens``).
DREAMS_PRECURSOR_INTENSITY = 1.1
#: MassSpecGym ``SpecBinner`` defaults (and ``select_by_mz``'s lower end).
MASSSPECGYM_MIN_MZ, MASSSPECGYM_MAX_MZ, MASSSPECGYM_BIN_WIDTH = 10.0, 1005.0, 1.0
#: MS2DeepScore ``SettingsMS2Deepscore`` defaults.
MS2DS_MIN_MZ, MS2DS_MAX_MZ, MS2DS_BIN_WIDTH, MS2DS_SCALING = 10.0, 1000.0, 0.1, 0.5


def _rows(counts: np.ndarray) -> np.ndarray:
    """The spectrum (row) of each flat peak."""
    return np.repeat(np.arange(len(counts)), counts)


def _relative(intensity: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Intensities divided by their spectrum's largest (float64). Written spectra have at
    least one peak, and positive intensities."""
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    top = np.maximum.reduceat(intensity.astype(np.float64), starts) if len(intensity) else np.zeros(0)
    return intensity / np.repeat(top, counts)


def dreams(mz, intensity, counts, precursor_mz, max_peaks) -> Dict[str, np.ndarray]:
    from ._batches import pad, top_k

    kept_mz, kept_in, kept = top_k(mz, intensity, counts, max_peaks)
    out = np.zeros((len(counts), max_peaks + 1, 2), dtype=np.float32)
    out[:, 0, 0] = precursor_mz
    out[:, 0, 1] = DREAMS_PRECURSOR_INTENSITY
    out[:, 1:, 0] = pad(kept_mz, kept, max_peaks)
    out[:, 1:, 1] = pad(_relative(kept_in, kept), kept, max_peaks)
    return {"spectrum": out}


def massspecgym(mz, intensity, counts, precursor_mz, max_peaks) -> Dict[str, np.ndarray]:
    bins = int(np.ceil(MASSSPECGYM_MAX_MZ / MASSSPECGYM_BIN_WIDTH))
    rows = _rows(counts)
    sel = (mz >= MASSSPECGYM_MIN_MZ) & (mz <= MASSSPECGYM_MAX_MZ)
    mz, rows = mz[sel], rows[sel]
    value = intensity[sel].astype(np.float64)
    index = np.clip(np.floor(mz / MASSSPECGYM_BIN_WIDTH).astype(np.int64), 0, bins - 1)
    out = np.bincount(rows * bins + index, weights=value, minlength=len(counts) * bins)
    out = out.reshape(len(counts), bins)
    top = out.max(axis=1, keepdims=True)
    np.divide(out, top, out=out, where=top > 0)
    return {"binned": out.astype(np.float32)}


def ms2deepscore(mz, intensity, counts, precursor_mz, max_peaks) -> Dict[str, np.ndarray]:
    bins = int((MS2DS_MAX_MZ - MS2DS_MIN_MZ) / MS2DS_BIN_WIDTH)
    rows = _rows(counts)
    value = _relative(intensity, counts) ** MS2DS_SCALING
    sel = (mz >= MS2DS_MIN_MZ) & (mz < MS2DS_MAX_MZ)
    index = ((mz[sel] - MS2DS_MIN_MZ) / MS2DS_BIN_WIDTH).astype(np.int64)
    out = np.zeros(len(counts) * bins, dtype=np.float64)
    np.maximum.at(out, rows[sel] * bins + index, value[sel])
    return {"binned": out.reshape(len(counts), bins).astype(np.float32)}


#: The key each preset adds to a batch.
KEYS: Dict[str, str] = {"dreams": "spectrum", "massspecgym": "binned", "ms2deepscore": "binned"}

#: The presets by name.
PRESETS: Dict[str, Callable[..., Dict[str, np.ndarray]]] = {
    "dreams": dreams,
    "massspecgym": massspecgym,
    "ms2deepscore": ms2deepscore,
}
