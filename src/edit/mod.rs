//! edit layer.
