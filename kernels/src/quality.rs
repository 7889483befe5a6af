//! GeMS quality formats A/B/C (DreaMS `dformats.py`).
