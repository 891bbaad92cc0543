//! The private temporary directory holding the new host's key pair, laid out for
//! `nixos-anywhere --extra-files` (`etc/ssh/ssh_host_ed25519_key{,.pub}`), removed when the run
//! ends whatever happens (a crash, `kill -9` or a panic, leaves it for `--resume`; the journal
//! names it and `--rollback` removes it).

use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::keys::HostKeyPair;

/// Where the key files go below the directory (the installed system's `/etc/ssh`).
pub const SSH_DIR: &str = "etc/ssh";
pub const PRIVATE: &str = "ssh_host_ed25519_key";

/// The key directory; removed on drop.
#[derive(Debug)]
pub struct KeyDir {
    path: PathBuf,
}

impl KeyDir {
    /// Creates a fresh 0700 directory under the system temp dir and writes the pair: the
    /// private key 0600, the public key 0644, the directories 0755 as nixos-anywhere copies
    /// them onto the target.
    pub fn create(pair: &HostKeyPair) -> io::Result<KeyDir> {
        let path = tempfile::Builder::new()
            .prefix("vmctl-hostkey-")
            .permissions(fs::Permissions::from_mode(0o700))
            .tempdir()?
            .keep();
        let dir = KeyDir { path };
        let ssh = dir.path.join(SSH_DIR);
        fs::create_dir_all(&ssh)?;
        for d in [dir.path.join("etc"), ssh.clone()] {
            fs::set_permissions(&d, fs::Permissions::from_mode(0o755))?;
        }
        write_new(&ssh.join(PRIVATE), pair.private_openssh.as_bytes(), 0o600)?;
        write_new(
            &ssh.join(format!("{PRIVATE}.pub")),
            pair.public_openssh.as_bytes(),
            0o644,
        )?;
        Ok(dir)
    }

    /// The directory an interrupted run left (from its journal), when it still holds the key.
    pub fn reopen(path: &Path) -> Option<KeyDir> {
        path.join(SSH_DIR).join(PRIVATE).is_file().then(|| KeyDir {
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Writes `dir/known_hosts` holding only `public` for `host` (`IP`, or `[IP]:PORT` off port
/// 22), mode 0600, replacing an earlier one.
pub fn write_known_hosts(dir: &Path, host: &str, public: &str) -> io::Result<PathBuf> {
    let p = dir.join("known_hosts");
    let mut parts = public.split_whitespace();
    let line = format!(
        "{host} {} {}\n",
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default()
    );
    let _ = fs::remove_file(&p);
    write_new(&p, line.as_bytes(), 0o600)?;
    Ok(p)
}

impl Drop for KeyDir {
    fn drop(&mut self) {
        // A panic is a crash like `kill -9`: the journal names the directory, and `--resume`
        // (which needs the key) or `--rollback` (which removes it) takes over.
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_layout_and_removed_on_drop() {
        let pair = crate::keys::generate_host_key(&mut rand_core::OsRng, None);
        let dir = KeyDir::create(&pair).unwrap();
        let p = dir.path().to_path_buf();
        let mode = |q: &Path| fs::metadata(q).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&p), 0o700);
        assert_eq!(mode(&p.join("etc/ssh/ssh_host_ed25519_key")), 0o600);
        assert_eq!(mode(&p.join("etc/ssh/ssh_host_ed25519_key.pub")), 0o644);
        let kh = write_known_hosts(dir.path(), "10.0.0.7", &pair.public_openssh).unwrap();
        assert_eq!(
            fs::read_to_string(kh).unwrap(),
            format!("10.0.0.7 {}\n", pair.public_openssh.trim_end())
        );
        assert!(KeyDir::reopen(&p).is_some_and(|d| {
            std::mem::forget(d);
            true
        }));
        drop(dir);
        assert!(!p.exists());
    }
}
