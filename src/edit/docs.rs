//! docs/machines.md generation.
