//! secrets layer.
