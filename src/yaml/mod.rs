//! yaml layer.
