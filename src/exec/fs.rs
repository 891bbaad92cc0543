//! Atomic replacement of files that are not the fleet's (vmctl's own state, such as pinned
//! known_hosts files in a temp directory). Fleet files go through [`crate::exec::apply`].

use std::io;
use std::path::Path;

/// Writes `contents` to `path` atomically: readers see the old file or the new one, never a mix.
/// The replacement keeps the mode of the file it replaces. Use [`crate::exec::apply`] for
/// fleet files: it also locks, checks the file did not change underneath and creates files
/// with their final mode.
pub fn atomic_write(path: &Path, contents: &[u8]) -> io::Result<()> {
    crate::exec::apply::write_atomic(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    #[cfg(unix)]
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn replaces_contents_and_keeps_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("secret.yaml");
        fs::write(&p, "old").unwrap();
        #[cfg(unix)]
        fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).unwrap();
        atomic_write(&p, b"new").unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new");
        #[cfg(unix)]
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let leftovers: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file left behind");
    }

    #[test]
    fn missing_directory_is_an_error_and_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope/file");
        assert!(atomic_write(&p, b"x").is_err());
        assert!(!p.exists());
    }
}
