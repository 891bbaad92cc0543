//! The one support module of the integration tests: the repository, its fixtures, the
//! binaries under test and the real tools they are checked against. Area-specific harnesses
//! are submodules: `pve` (real sshd + Proxmox simulator), `secrets` (real sops, test
//! identities), `sops_oracle` (sops as the oracle for `.sops.yaml` edits), `mutate` (fuzzing).

pub mod mutate;
pub mod pve;
pub mod secrets;
pub mod sops_oracle;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository root.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A fixture path under tests/fixtures.
pub fn fixture(rel: &str) -> PathBuf {
    repo().join("tests/fixtures").join(rel)
}

/// Fails the test (never skips) when a tool the test needs is missing.
pub fn require_tool(name: &str) {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        found,
        "`{name}` is not installed: run ./scripts/test.sh (it installs the test tools), \
         or eval \"$(./scripts/setup-test-tools.sh)\" before cargo test"
    );
}

/// `nix-instantiate --eval --strict --json FILE`, or the error text.
pub fn nix_eval_json(file: &Path) -> Result<serde_json::Value, String> {
    require_tool("nix-instantiate");
    let out = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "--readonly-mode"])
        .arg(file)
        .output()
        .expect("run nix-instantiate");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    serde_json::from_slice(&out.stdout).map_err(|e| e.to_string())
}

/// Where Nix places the error of `nix-instantiate` on `file` (line and column, 1-based, as in
/// its first `at FILE:L:C`), or why there is none.
pub fn nix_error_position(file: &Path) -> Result<(usize, usize), String> {
    let err = match nix_eval_json(file) {
        Ok(v) => return Err(format!("nix evaluates {} to {v}", file.display())),
        Err(e) => e,
    };
    nix_position(&err, file).ok_or(err)
}

/// The first `at FILE:L:C` of a Nix error message.
pub fn nix_position(stderr: &str, file: &Path) -> Option<(usize, usize)> {
    let at = format!("at {}:", file.display());
    let rest = &stderr[stderr.find(&at)? + at.len()..];
    let mut parts = rest.split(|c: char| !c.is_ascii_digit());
    Some((parts.next()?.parse().ok()?, parts.next()?.parse().ok()?))
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A copy of the demo fleet (definitions, hosts.nix, hosts/, hosts-template/) in a temp dir.
pub fn demo_fleet() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for d in ["vms", "hosts", "hosts-template"] {
        copy_dir(&repo().join(d), &dir.path().join(d));
    }
    std::fs::copy(repo().join("hosts.nix"), dir.path().join("hosts.nix")).unwrap();
    dir
}

/// The `vmctl` binary under test, blind to a fleet named by the caller's environment.
pub fn vmctl_cmd() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vmctl"));
    c.env_remove("VMCTL_FLEET");
    c
}

/// The `vmlint` binary under test.
pub fn vmlint_cmd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_vmlint"))
}

/// Runs the `vmctl` binary on the fleet named with `--fleet`.
pub fn vmctl(fleet: &Path, args: &[&str]) -> Output {
    vmctl_cmd()
        .arg("--fleet")
        .arg(fleet)
        .args(args)
        .output()
        .unwrap()
}

/// Runs the `vmctl` binary in `dir`, which finds its fleet from there as a user's shell does.
pub fn vmctl_in(dir: &Path, args: &[&str]) -> Output {
    vmctl_cmd().current_dir(dir).args(args).output().unwrap()
}

/// Every `.nix` file under `dir`, recursively, in path order (appended to `out`).
pub fn nix_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            nix_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "nix") {
            out.push(p);
        }
    }
}

/// A fresh ed25519 public key line (`ssh-ed25519 AAAA… COMMENT`) for a host the test adds.
pub fn new_public_key(comment: Option<&str>) -> String {
    vmctl::keys::generate_host_key(&mut rand_core::OsRng, comment.map(Into::into))
        .public_openssh
        .trim()
        .to_string()
}

/// Text without spaces, line breaks and miette's frame characters, so a message can be
/// searched for whatever the terminal width made of it.
pub fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && *c != '│')
        .collect()
}

/// A repository file's text (path relative to the repository root).
pub fn read_repo(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap()
}

/// A unified diff of two texts with `context` lines around each change and `--- a/NAME`,
/// `+++ b/NAME` headers (`a`, `b` given in full).
pub fn unified_diff(old: &str, new: &str, context: usize, (a, b): (&str, &str)) -> String {
    similar::TextDiff::from_lines(old, new)
        .unified_diff()
        .context_radius(context)
        .header(a, b)
        .to_string()
}

/// Writes an executable script. The file is written by `install`, a child process, so no
/// writable descriptor of it ever exists in this (multi-threaded) test process: a sibling
/// test forking meanwhile would inherit one, and exec of the script would fail with "text
/// file busy" (ETXTBSY) until that child execs.
pub fn write_script(path: &Path, text: &str) {
    let src = path.with_extension("src");
    std::fs::write(&src, text).unwrap();
    let st = Command::new("install")
        .args(["-m", "755"])
        .arg(&src)
        .arg(path)
        .status()
        .expect("run install");
    assert!(st.success(), "install {}", path.display());
    std::fs::remove_file(&src).unwrap();
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Output with miette's line wrapping undone, for `contains` checks.
pub fn unwrapped(b: &[u8]) -> String {
    text(b)
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace("- ", "-")
}

/// The upstream SSH/age test keys (public test vectors from ssh-to-age and sops-nix, see
/// tests/fixtures/sops/SOURCES.txt) by their short names.
pub fn key_fixture(name: &str) -> PathBuf {
    let rel = if let Some(rest) = name.strip_prefix("sops-nix-") {
        format!("sops/sops-nix/{rest}")
    } else if name == "ssh-to-age-vectors.txt" {
        "sops/ssh-to-age-vectors.txt".to_string()
    } else {
        format!("sops/ssh-to-age/{name}")
    };
    fixture(&rel)
}

impl pve::Pve {
    /// `vmctl --fleet FLEET ops` against this host (its ssh config, fast lock retries).
    pub fn ops_cmd(&self, fleet: &Path) -> Command {
        let mut cmd = vmctl_cmd();
        cmd.arg("--fleet").arg(fleet).arg("ops");
        cmd.envs(self.vmctl_env());
        cmd
    }

    /// `vmctl ops ARGS` on this repository's demo fleet against this host.
    pub fn vmctl_ops(&self, args: &[&str]) -> Output {
        self.ops_cmd(repo()).args(args).output().expect("run vmctl")
    }
}

/// `git -C ROOT ARGS…`, which must succeed; its stdout, trimmed.
pub fn git(root: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(root)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {}", text(&out.stderr));
    text(&out.stdout).trim().to_string()
}

/// Every file of the fleet (but .git and .vmctl) with its bytes.
pub fn fleet_files(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            if rel == ".git" || rel == ".vmctl" {
                continue;
            }
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Stops the ssh ControlMaster a killed vmctl left behind (ControlPersist outlives it): by
/// PID, found by the sandbox's ssh config `ssh_config` on its command line, so only the
/// masters of this test's own runs.
pub fn stop_ssh_masters(ssh_config: &Path) {
    let config = ssh_config.display().to_string();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args.first() == Some(&&b"ssh"[..])
            && args.contains(&&b"-M"[..])
            && args.contains(&config.as_bytes())
        {
            // SAFETY: kill(2) on the master ssh of a vmctl this test started and killed.
            unsafe { libc::kill(pid, libc::SIGTERM) };
        }
    }
}

/// Appends managed VMs `(name, VMID, node)` to the fleet's definitions.nix at `root` (1 core,
/// 1 GiB, a 20G disk on nvmeprom, the static address 127.0.0.X/8 from the VMID's last byte, the
/// `purpose` given) and writes each one's `hosts/NAME/configuration.nix`, as the sandbox's
/// multi-VM suites need them.
pub fn add_managed_vms(root: &Path, vms: &[(&str, u32, Option<&str>)], purpose: &str) {
    let defs_path = root.join("vms/definitions.nix");
    let defs = std::fs::read_to_string(&defs_path).unwrap();
    let end = defs
        .rfind("\n  };\n}")
        .expect("definitions.nix ends with `managed`");
    let mut blocks = String::new();
    for (name, vmid, node) in vms {
        let last = vmid % 256;
        let node = node.map_or(String::new(), |n| format!("\n      node = \"{n}\";"));
        blocks.push_str(&format!(
            "\n    {name} = {{\n      vmid = {vmid};{node}\n      cores = 1;\n      \
             memory = 1024;\n      disk = \"20G\";\n      storage = \"nvmeprom\";\n      \
             nixosConfig = \"{name}\";\n      purpose = \"{purpose}\";\n      \
             services = [ ];\n      tags = [ \"test\" ];\n      network = {{\n        \
             bridge = \"vmbr0\";\n        ip = \"127.0.0.{last}/8\";\n      }};\n    }};"
        ));
        let dir = root.join("hosts").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("configuration.nix"),
            format!(
                "# NixOS configuration of {name} (VMID {vmid}), a managed VM.\n{{ ... }}:\n{{\n  \
                 networking.hostName = \"{name}\";\n  services.qemuGuest.enable = true;\n  \
                 services.openssh.enable = true;\n  sops.gnupg.sshKeyPaths = [ ];\n  \
                 system.stateVersion = \"24.05\";\n}}\n"
            ),
        )
        .unwrap();
    }
    let mut new = defs;
    new.insert_str(end, &blocks);
    std::fs::write(&defs_path, new).unwrap();
}

/// `vmctl --fleet FLEET ARGS…` against the simulated Proxmox host `pve`.
pub fn vmctl_on(pve: &pve::Pve, fleet: &Path, args: &[&str]) -> Output {
    vmctl_cmd()
        .arg("--fleet")
        .arg(fleet)
        .envs(pve.vmctl_env())
        .args(args)
        .output()
        .unwrap()
}
