//! Host scaffolding.
