//! model layer.
