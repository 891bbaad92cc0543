//! The imperative shell: every side effect (files, processes, SSH) lives here.

pub mod fleet;
pub mod fs;
pub mod lint;
