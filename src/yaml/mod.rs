//! Lossless YAML for `.sops.yaml`: a span-keeping scanner and a semantic loader (a real YAML
//! parser) used to verify edits. The sops view of the scanned file is
//! `secrets::sops_yaml`, above both this and sops's own reading of the file.

pub mod scan;
pub mod value;
