//! The HDF5 shuffle filter's inverse and the gather of per-peak-slot chunks into rows.
