//! Top-k peaks by intensity, kept in m/z order.
