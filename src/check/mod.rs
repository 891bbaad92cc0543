//! check layer.
