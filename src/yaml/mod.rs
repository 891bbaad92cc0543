//! Lossless YAML for `.sops.yaml`: a span-keeping scanner, the sops view of it, and a
//! semantic loader (a real YAML parser) used to verify edits.

pub mod scan;
pub mod sops;
pub mod value;
