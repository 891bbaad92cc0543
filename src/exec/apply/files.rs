//! The file operations under the applier: reading a target's current bytes, exclusive temp
//! files created with their final mode, directory fsyncs, and the lock-free atomic write.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use super::{io_err, ApplyError, FileChange, DEFAULT_MODE};

/// A file's bytes, `None` when it does not exist (a dangling symlink is an error).
pub fn read_current(path: &Path) -> io::Result<Option<Vec<u8>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if fs::symlink_metadata(path).is_ok() {
                Err(io::Error::new(
                    io::ErrorKind::NotFound,
                    "it is a symlink whose target does not exist",
                ))
            } else {
                Ok(None)
            }
        }
        Err(e) => Err(e),
    }
}

/// Where the bytes of `path` really live: symlinks followed, so the link itself stays.
pub(super) fn write_target(change: &FileChange) -> Result<PathBuf, ApplyError> {
    let path = &change.path;
    match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            fs::canonicalize(path).map_err(|_| ApplyError::DanglingSymlink {
                shown: change.shown.clone(),
            })
        }
        _ => Ok(path.clone()),
    }
}

/// A temp file beside `target`, created exclusively with `mode` before any byte is written.
pub(super) fn create_temp(
    target: &Path,
    mode: u32,
    owner: Option<(u32, u32)>,
) -> io::Result<(PathBuf, File)> {
    let dir = parent_of(target);
    let name = target
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    for attempt in 0..100u32 {
        let mut tmp_name = std::ffi::OsString::from(".");
        tmp_name.push(name);
        tmp_name.push(format!(
            ".vmctl-tmp-{}-{}",
            std::process::id(),
            unique_suffix(attempt)
        ));
        let tmp = dir.join(tmp_name);
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt as _;
            // The umask can only narrow this, never widen it.
            opts.mode(mode & 0o777);
        }
        match opts.open(&tmp) {
            Ok(f) => {
                let set = (|| {
                    #[cfg(unix)]
                    {
                        use std::os::unix::fs::PermissionsExt as _;
                        if let Some((uid, gid)) = owner {
                            // Keep the owner of a file root edits for a user; not being allowed
                            // to is fine (then the caller owns the file anyway).
                            let _ = std::os::unix::fs::fchown(&f, Some(uid), Some(gid));
                        }
                        // The exact mode (the umask may have removed bits the file had), set
                        // while the file is still empty.
                        f.set_permissions(fs::Permissions::from_mode(mode))?;
                    }
                    Ok::<(), io::Error>(())
                })();
                if let Err(e) = set {
                    let _ = fs::remove_file(&tmp);
                    return Err(e);
                }
                return Ok((tmp, f));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        "no free temp file name",
    ))
}

pub(super) fn unique_suffix(attempt: u32) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{nanos:08x}{attempt}")
}

pub(super) fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    }
}

/// The mode (and owner) a file's replacement gets: the existing file's, else `create_mode`.
pub(super) fn final_mode(target: &Path, create_mode: u32) -> (u32, Option<(u32, u32)>) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if let Ok(m) = fs::metadata(target) {
            return (m.mode() & 0o7777, Some((m.uid(), m.gid())));
        }
    }
    (create_mode, None)
}

pub(super) fn sync_dir(dir: &Path) {
    // Not every filesystem can fsync a directory; the rename is durable on the ones that can.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Whether the file now holds what the change was computed from.
pub(super) fn unchanged_since_read(change: &FileChange) -> Result<Option<Vec<u8>>, ApplyError> {
    let now = read_current(&change.path).map_err(io_err("read", &change.path))?;
    if now == change.old {
        return Ok(None);
    }
    Ok(Some(now.unwrap_or_default()))
}

/// Replaces `path` with `contents` (temp file, fsync, rename), keeping the mode of the file
/// it replaces, without the lock or the precondition: for files that are not the fleet's
/// (vmctl's own known_hosts under a temp directory) and for putting back an original.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    replace(path, contents, true)
}

/// [`write_atomic`] without the fsyncs: the rename still makes the change all-or-nothing for
/// any reader and survives the writer being killed (the page cache holds it), but not a power
/// loss. For progress records that a durable write follows before anything depends on them.
pub fn write_atomic_unsynced(path: &Path, contents: &[u8]) -> io::Result<()> {
    replace(path, contents, false)
}

fn replace(path: &Path, contents: &[u8], durable: bool) -> io::Result<()> {
    let target = match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => fs::canonicalize(path)?,
        _ => path.to_path_buf(),
    };
    let (mode, owner) = final_mode(&target, DEFAULT_MODE);
    let (tmp, mut f) = create_temp(&target, mode, owner)?;
    let r = f
        .write_all(contents)
        .and_then(|()| if durable { f.sync_all() } else { Ok(()) })
        .and_then(|()| fs::rename(&tmp, &target));
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r?;
    if durable {
        sync_dir(parent_of(&target));
    }
    Ok(())
}

/// Writes one of vmctl's own state files under the fleet's `.vmctl/` (a journal): its directory
/// created, `.vmctl/` ignoring itself in git, the file born readable only by its owner (it
/// holds fleet files' contents), replaced atomically; `durable` waits for the disk.
pub fn write_state_file(
    root: &Path,
    path: &Path,
    contents: &[u8],
    durable: bool,
) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    fs::create_dir_all(parent_of(path))?;
    let ignore = root.join(super::STATE_DIR).join(".gitignore");
    if !ignore.exists() {
        let _ = fs::write(&ignore, "# vmctl's runtime files (lock, journals)\n*\n");
    }
    if !path.exists() {
        // The first write fixes the mode that every atomic replacement keeps.
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
    }
    replace(path, contents, durable)
}

/// Reads a whole file as the change's `old` bytes (a missing file is `None`).
pub fn read_for_change(path: &Path) -> Result<Option<Vec<u8>>, ApplyError> {
    read_current(path).map_err(io_err("read", path))
}

/// Reads a file that must exist, as text.
pub fn read_text(path: &Path) -> io::Result<String> {
    let mut s = String::new();
    File::open(path)?.read_to_string(&mut s)?;
    Ok(s)
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
        write_atomic(&p, b"new").unwrap();
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
        assert!(write_atomic(&p, b"x").is_err());
        assert!(!p.exists());
    }
}
