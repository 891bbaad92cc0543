//! Nix's error messages with their absolute paths shown relative to the fleet root.

use std::path::{Path, PathBuf};

/// Nix's message with each quoted absolute path written relative to the fleet root, as every
/// other path vmctl shows: `'/home/me/fleet/../x.nix'` becomes `'../x.nix'`.
pub(super) fn fleet_relative(message: &str, root: &Path) -> String {
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(open) = rest.find("'/") {
        out.push_str(&rest[..=open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('\'') else {
            rest = after;
            break;
        };
        out.push_str(&relative_path(Path::new(&after[..close]), &root));
        rest = &after[close..];
    }
    out.push_str(rest);
    out
}

/// `path` relative to the directory `base` (both absolute), with `..` where it lies outside.
fn relative_path(path: &Path, base: &Path) -> String {
    let p: Vec<_> = path.components().collect();
    let b: Vec<_> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut rel = PathBuf::new();
    for _ in common..b.len() {
        rel.push("..");
    }
    for c in &p[common..] {
        rel.push(c);
    }
    if rel.as_os_str().is_empty() {
        ".".into()
    } else {
        rel.display().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nix_paths_are_shown_relative_to_the_fleet() {
        let root = Path::new("/nonexistent/home/me/fleet");
        assert_eq!(
            fleet_relative(
                "access to absolute path '/nonexistent/home/me/x.nix' is forbidden in restricted mode",
                root
            ),
            "access to absolute path '../x.nix' is forbidden in restricted mode"
        );
        assert_eq!(
            fleet_relative("cannot read '/nonexistent/home/me/fleet/vms/a.nix'", root),
            "cannot read 'vms/a.nix'"
        );
        assert_eq!(fleet_relative("no path here", root), "no path here");
        assert_eq!(fleet_relative("odd '/unclosed", root), "odd '/unclosed");
    }
}
