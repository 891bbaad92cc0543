//! One commit per VM of a many-VM run, through git plumbing and a temporary index, so each
//! commit holds exactly its VM's changes while siblings' in-flight edits sit in the same files
//! of the working tree (and whatever the user staged stays staged, uncommitted).
//!
//! The shared text files (hosts.nix, .sops.yaml, machines.md) are committed as HEAD's content
//! plus this VM's key ceremony, computed again by the pure `ceremony::changes` over HEAD's
//! blobs; the VM's own files (its scaffold) and the secrets as the working tree holds them.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use super::{files, journal, Git, GitError};
use crate::exec::process::Process;
use crate::model::Definitions;
use crate::plan::provision::ceremony;

fn git(
    root: &Path,
    index: Option<&Path>,
    args: &[&str],
    input: Option<&[u8]>,
) -> Result<Vec<u8>, GitError> {
    let mut cmd = Process::new("commit the run's files with git", "git")
        .arg("-C")
        .arg(root)
        .args(args);
    if let Some(i) = index {
        cmd = cmd.env("GIT_INDEX_FILE", i);
    }
    if let Some(bytes) = input {
        cmd = cmd.stdin(bytes.to_vec());
    }
    let out = cmd.output().map_err(GitError::Spawn)?;
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = err.lines().rev().take(3).collect();
        return Err(GitError::Failed {
            what: "git plumbing",
            status: out.status.to_string(),
            stderr: format!(
                "git {}: {}",
                args.first().copied().unwrap_or_default(),
                tail.into_iter().rev().collect::<Vec<_>>().join(" / ")
            ),
        });
    }
    Ok(out.stdout)
}

fn trimmed(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).trim().to_string()
}

/// `path`'s bytes at HEAD; `None` when HEAD does not hold it.
pub fn head_blob(root: &Path, path: &Path) -> Result<Option<Vec<u8>>, GitError> {
    let spec = format!("HEAD:{}", path.display());
    match git(root, None, &["cat-file", "-e", &spec], None) {
        Ok(_) => git(root, None, &["cat-file", "blob", &spec], None).map(Some),
        Err(_) => Ok(None),
    }
}

/// Commits `files` (fleet-relative path, bytes) on top of HEAD and nothing else, through a
/// temporary index; then points the user's index entries of exactly those paths at the
/// committed blobs. Returns the new commit's hash.
pub fn commit_contents(
    root: &Path,
    files: &[(PathBuf, Vec<u8>)],
    message: &str,
) -> Result<String, GitError> {
    let head = trimmed(git(root, None, &["rev-parse", "--verify", "HEAD"], None)?);
    let tmp = tempfile::tempdir().map_err(|e| GitError::Failed {
        what: "a temporary index",
        status: "not created".into(),
        stderr: e.to_string(),
    })?;
    let index = tmp.path().join("index");
    git(root, Some(&index), &["read-tree", &head], None)?;
    let mut entries = Vec::new();
    for (path, bytes) in files {
        let blob = trimmed(git(
            root,
            None,
            &["hash-object", "-w", "--stdin"],
            Some(bytes),
        )?);
        let mode = executable(&root.join(path));
        let info = format!("{mode},{blob},{}", path.display());
        git(
            root,
            Some(&index),
            &["update-index", "--add", "--cacheinfo", &info],
            None,
        )?;
        entries.push(info);
    }
    let tree = trimmed(git(root, Some(&index), &["write-tree"], None)?);
    let commit = trimmed(git(
        root,
        None,
        &["commit-tree", &tree, "-p", &head, "-F", "-"],
        Some(message.as_bytes()),
    )?);
    // Compare-and-swap: a HEAD moved by someone else since is never overwritten.
    git(
        root,
        None,
        &[
            "update-ref",
            "-m",
            "vmctl provision",
            "HEAD",
            &commit,
            &head,
        ],
        None,
    )?;
    for info in &entries {
        git(
            root,
            None,
            &["update-index", "--add", "--cacheinfo", info],
            None,
        )?;
    }
    Ok(commit)
}

fn executable(path: &Path) -> &'static str {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::metadata(path) {
        Ok(m) if m.permissions().mode() & 0o111 != 0 => "100755",
        _ => "100644",
    }
}

/// The order in which the VMs' ceremonies edited the shared files, and which of them are
/// settled (committed, or failed and undone). A VM commits only once every VM whose ceremony
/// came before it is settled, so HEAD gains the shared files' edits in the order the working
/// tree got them and the run ends with both the same.
#[derive(Default)]
pub struct CommitOrder {
    state: Mutex<(Vec<String>, Vec<String>)>,
    changed: Condvar,
}

impl CommitOrder {
    /// `name`'s ceremony edited the files (called under the fleet-files lock).
    pub fn entered(&self, name: &str) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !s.0.iter().any(|n| n == name) {
            s.0.push(name.to_string());
        }
    }

    /// `name` will not commit (any more): the ones after it may.
    pub fn settle(&self, name: &str) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !s.1.iter().any(|n| n == name) {
            s.1.push(name.to_string());
        }
        self.changed.notify_all();
    }

    fn wait_turn(&self, name: &str) {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let before: Vec<&String> = s.0.iter().take_while(|n| *n != name).collect();
            if before.iter().all(|n| s.1.contains(n)) {
                return;
            }
            s = self.changed.wait(s).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// [`Git`] for one VM of a many-VM run.
pub struct VmCommit<'a> {
    pub name: &'a str,
    pub defs: &'a Definitions,
    pub order: &'a CommitOrder,
}

impl VmCommit<'_> {
    /// What this VM's commit holds: `changed` (the journaled files that differ from before the
    /// run) with the shared files recomputed over HEAD.
    pub fn contents(
        &self,
        root: &Path,
        changed: &[PathBuf],
    ) -> Result<Vec<(PathBuf, Vec<u8>)>, GitError> {
        let broken = |stderr: String| GitError::Failed {
            what: "the commit's contents",
            status: "not computed".into(),
            stderr,
        };
        let vm = self
            .defs
            .managed
            .iter()
            .find(|v| v.name == self.name)
            .ok_or_else(|| broken(format!("`{}` left definitions.nix", self.name)))?;
        let j = journal::load(root, self.name)
            .map_err(|e| broken(e.to_string()))?
            .ok_or_else(|| broken("the journal is gone".into()))?;
        let k = j
            .key
            .ok_or_else(|| broken("the journal holds no host key".into()))?;
        // The ceremony over HEAD's shared files: the working tree's template and hosts dir.
        let mut view = files::load(root, self.defs, vm).map_err(|e| broken(e.to_string()))?;
        let s = &self.defs.settings;
        let text = |p: &Path| -> Result<Option<String>, GitError> {
            Ok(head_blob(root, p)?.map(|b| String::from_utf8_lossy(&b).into_owned()))
        };
        view.hosts = text(&s.hosts_file)?.unwrap_or_default();
        view.sops = text(&s.sops_config)?.unwrap_or_default();
        view.docs = text(&s.docs_file)?;
        view.host_names = crate::edit::hosts::locate(&view.hosts)
            .map(|d| d.hosts().map(|e| e.name.clone()).collect())
            .unwrap_or_default();
        // Scaffold files come from the working tree below; keep them out of the recomputation.
        view.host_dir_exists = true;
        let planned = ceremony::changes(self.defs, vm, &view.view(), &k.public, &k.age_recipient)
            .map_err(|e| broken(e.to_string()))?;
        let mut out = Vec::new();
        for path in changed {
            let bytes = match planned.iter().find(|f| &f.path == path) {
                Some(f) => f.new.clone(),
                None => std::fs::read(root.join(path))
                    .map_err(|e| broken(format!("cannot read `{}`: {e}", path.display())))?,
            };
            out.push((path.clone(), bytes));
        }
        Ok(out)
    }
}

impl Git for VmCommit<'_> {
    fn commit(&self, root: &Path, files: &[PathBuf], message: &str) -> Result<String, GitError> {
        self.order.wait_turn(self.name);
        let _serial = super::fleet_files();
        let contents = self.contents(root, files)?;
        let hash = commit_contents(root, &contents, message);
        if hash.is_ok() {
            self.order.settle(self.name);
        }
        hash
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(root: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(root)
            .args(args)
            .output()
            .expect("git runs");
        assert!(out.status.success(), "git {args:?}: {:?}", out);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn commits_exactly_the_given_contents_and_leaves_what_the_user_staged() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        sh(root, &["init", "-q"]);
        sh(root, &["config", "user.name", "t"]);
        sh(root, &["config", "user.email", "t@example.invalid"]);
        std::fs::write(root.join("hosts.nix"), "{ a = 1; }\n").unwrap();
        std::fs::write(root.join("notes"), "old\n").unwrap();
        sh(root, &["add", "-A"]);
        sh(root, &["commit", "-q", "-m", "init"]);
        // The working tree holds a sibling's edit too; the user staged an unrelated change.
        std::fs::write(root.join("hosts.nix"), "{ a = 1; b = 2; c = 3; }\n").unwrap();
        std::fs::write(root.join("notes"), "staged by the user\n").unwrap();
        sh(root, &["add", "notes"]);
        let committed = b"{ a = 1; b = 2; }\n".to_vec();
        let files = vec![
            (PathBuf::from("hosts.nix"), committed.clone()),
            (
                PathBuf::from("hosts/b/configuration.nix"),
                b"{ }\n".to_vec(),
            ),
        ];
        let hash = commit_contents(root, &files, "feat(vms): provision b\n").unwrap();
        assert_eq!(sh(root, &["rev-parse", "HEAD"]).trim(), hash);
        assert_eq!(sh(root, &["show", "HEAD:hosts.nix"]).as_bytes(), committed);
        assert_eq!(
            sh(root, &["show", "HEAD:hosts/b/configuration.nix"]),
            "{ }\n"
        );
        assert_eq!(sh(root, &["show", "HEAD:notes"]), "old\n");
        let changed = sh(root, &["show", "--format=", "--name-only", "HEAD"]);
        assert_eq!(changed, "hosts.nix\nhosts/b/configuration.nix\n");
        // The user's index: their staged change still staged, the committed paths as committed.
        assert_eq!(sh(root, &["diff", "--cached", "--name-only"]), "notes\n");
        assert_eq!(sh(root, &["show", ":hosts.nix"]).as_bytes(), committed);
        assert_eq!(
            std::fs::read_to_string(root.join("hosts.nix")).unwrap(),
            "{ a = 1; b = 2; c = 3; }\n",
            "the working tree is left alone"
        );
        assert_eq!(
            sh(root, &["log", "-1", "--format=%s"]).trim(),
            "feat(vms): provision b"
        );
    }

    #[test]
    fn a_vm_commits_only_after_the_ones_whose_ceremony_came_first_settled() {
        let order = CommitOrder::default();
        order.entered("a");
        order.entered("b");
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|s| {
            s.spawn(|| {
                order.wait_turn("b");
                assert!(
                    done.load(std::sync::atomic::Ordering::SeqCst),
                    "b went before a"
                );
            });
            std::thread::sleep(std::time::Duration::from_millis(100));
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            order.settle("a");
        });
        // The first in line never waits.
        order.wait_turn("a");
    }
}
