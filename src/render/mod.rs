//! render layer.
