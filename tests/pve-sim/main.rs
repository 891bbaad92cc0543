//! pve-sim placeholder
fn main() {}
