//! syntax layer.
