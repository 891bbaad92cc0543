//! keys layer.
