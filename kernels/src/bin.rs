//! Binning of peak lists into fixed m/z grids (dense or sparse).
