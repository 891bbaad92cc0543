//! The flake, evaluated and checked by real Nix (Debian's 2.8) with the labelled nixpkgs
//! stand-in of tests/nix/nixpkgs-stub: `nix flake show` and `nix flake check` on this
//! repository, `nix run` of its apps, a user's fleet flake calling `lib.mkFleet` (clean and
//! broken), and `nix flake init -t`. Nothing here reaches the network: the copy of this
//! repository has its nixpkgs locked to the stand-in before any other Nix command runs.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use super::support::{copy_dir, repo, require_tool, text};

/// One copy of this repository (the files git tracks or would track, as a flake sees them), the
/// stand-in nixpkgs and a private Nix configuration, shared by the tests of this process.
pub struct FlakeEnv {
    base: PathBuf,
}

impl FlakeEnv {
    pub fn get() -> &'static FlakeEnv {
        static ENV: OnceLock<FlakeEnv> = OnceLock::new();
        ENV.get_or_init(FlakeEnv::create)
    }

    fn create() -> FlakeEnv {
        require_tool("nix");
        require_tool("git");
        let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
        // Copies left by earlier test processes that are gone.
        for e in std::fs::read_dir(&tmp).into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(pid) = name.strip_prefix("flake-tests-") {
                if !Path::new("/proc").join(pid).exists() {
                    let _ = std::fs::remove_dir_all(e.path());
                }
            }
        }
        let base = tmp.join(format!("flake-tests-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("home")).unwrap();
        // Daemon-less Nix as root, offline: no build users, no sandbox, no substituters.
        std::fs::create_dir_all(base.join("nix-conf")).unwrap();
        std::fs::write(
            base.join("nix-conf/nix.conf"),
            "experimental-features = nix-command flakes\nbuild-users-group =\nsandbox = false\n\
             substituters =\nconnect-timeout = 1\n",
        )
        .unwrap();
        // The stand-in nixpkgs, told where cargo put the binaries it wraps.
        copy_dir(&repo().join("tests/nix/nixpkgs-stub"), &base.join("stub"));
        let target = Path::new(env!("CARGO_BIN_EXE_vmctl")).parent().unwrap();
        std::fs::write(
            base.join("stub/local.nix"),
            format!("{{ cargoTarget = \"{}\"; }}\n", target.display()),
        )
        .unwrap();
        // The repository as its flake sees it.
        let files = Command::new("git")
            .current_dir(repo())
            .args([
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ])
            .output()
            .unwrap();
        assert!(files.status.success(), "{}", text(&files.stderr));
        for rel in files.stdout.split(|b| *b == 0).filter(|p| !p.is_empty()) {
            let rel = Path::new(std::str::from_utf8(rel).unwrap());
            let (from, to) = (repo().join(rel), base.join("vmctl").join(rel));
            if from.is_file() && rel.components().count() > 0 {
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::copy(&from, &to).unwrap();
            }
        }
        let env = FlakeEnv { base };
        // Lock nixpkgs to the stand-in, so no later command looks for the real one.
        let out = env
            .nix(&env.repo())
            .args(["flake", "lock"])
            .args(env.stub_override("nixpkgs"))
            .arg(env.repo_ref())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "nix flake lock: {}",
            text(&out.stderr)
        );
        env
    }

    pub fn repo(&self) -> PathBuf {
        self.base.join("vmctl")
    }

    pub fn repo_ref(&self) -> String {
        format!("path:{}", self.repo().display())
    }

    pub fn stub_override(&self, input: &str) -> [String; 3] {
        [
            "--override-input".into(),
            input.into(),
            format!("path:{}", self.base.join("stub").display()),
        ]
    }

    /// `nix` with the private configuration, run in `dir`.
    pub fn nix(&self, dir: &Path) -> Command {
        let mut c = Command::new("nix");
        c.current_dir(dir)
            .env("NIX_CONF_DIR", self.base.join("nix-conf"))
            .env("HOME", self.base.join("home"))
            .env("XDG_CACHE_HOME", self.base.join("home/.cache"))
            .env_remove("NIX_PATH")
            .env_remove("VMCTL_FLEET")
            .args(["--extra-experimental-features", "nix-command flakes"]);
        c
    }

    /// A user's fleet flake (this repository as its `vmctl` input) in `dir`: `nix flake check`.
    pub fn check_fleet(&self, dir: &Path) -> Output {
        self.nix(dir)
            .args(["flake", "check", "--no-write-lock-file"])
            .args(["--override-input", "vmctl", &self.repo_ref()])
            .args(self.stub_override("vmctl/nixpkgs"))
            .arg(format!("path:{}", dir.display()))
            .output()
            .unwrap()
    }
}

fn show(env: &FlakeEnv) -> serde_json::Value {
    let out = env
        .nix(&env.repo())
        .args(["flake", "show", "--json"])
        .arg(env.repo_ref())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn flake_show_lists_every_output_and_flake_check_passes() {
    let env = FlakeEnv::get();
    let s = show(env);
    let sys = "x86_64-linux";
    for name in ["vmctl", "default", "proxmox-template"] {
        assert_eq!(
            s["packages"][sys][name]["type"], "derivation",
            "packages.{name}: {s}"
        );
    }
    for name in [
        "provision-vm",
        "post-provision-vm",
        "destroy-vm",
        "proxmox-ops",
        "vmlint",
        "default",
    ] {
        assert_eq!(s["apps"][sys][name]["type"], "app", "apps.{name}");
    }
    for name in ["fleet-structure", "fleet-vmlint", "docs", "secrets"] {
        assert_eq!(
            s["checks"][sys][name]["type"], "derivation",
            "checks.{name}"
        );
    }
    assert_eq!(s["devShells"][sys]["default"]["type"], "derivation");
    assert_eq!(s["formatter"][sys]["type"], "derivation");
    assert_eq!(s["nixosModules"]["proxmox-guest"]["type"], "nixos-module");
    assert_eq!(s["templates"]["default"]["type"], "template");
    assert_eq!(
        s["nixosConfigurations"]["test-automation"]["type"],
        "nixos-configuration"
    );
    assert!(s.get("lib").is_some(), "lib: {s}");

    let out = env
        .nix(&env.repo())
        .args(["flake", "check", "--no-write-lock-file"])
        .arg(env.repo_ref())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    // The checks ran: vmlint's own summary is the log of the vmlint check.
    let log = env
        .nix(&env.repo())
        .args(["build", "--no-link", "--json"])
        .arg(format!("{}#checks.{sys}.fleet-vmlint", env.repo_ref()))
        .output()
        .unwrap();
    assert!(log.status.success(), "{}", text(&log.stderr));
    let built: serde_json::Value = serde_json::from_slice(&log.stdout).unwrap();
    let path = built[0]["outputs"]["out"].as_str().unwrap();
    assert_eq!(
        std::fs::read_to_string(path).unwrap().trim(),
        "vmlint: checked 3 files: no problems"
    );
}

#[test]
fn nix_run_vmlint_and_proxmox_ops_through_the_stand_in_package() {
    let env = FlakeEnv::get();
    let run = |dir: &Path, app: &str, args: &[&str]| {
        env.nix(dir)
            .args(["run", &format!("{}#{app}", env.repo_ref()), "--"])
            .args(args)
            .output()
            .unwrap()
    };
    let fleet = super::support::demo_fleet();
    let out = run(fleet.path(), "vmlint", &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("no problems"),
        "{}",
        text(&out.stderr)
    );

    // The app is vmlint, not a wrapper that always succeeds.
    let defs = fleet.path().join("vms/definitions.nix");
    let broken = std::fs::read_to_string(&defs)
        .unwrap()
        .replace("vmid = 110;", "vmid = 104;");
    std::fs::write(&defs, broken).unwrap();
    let out = run(fleet.path(), "vmlint", &["--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("\"VM001\""),
        "{}",
        text(&out.stdout)
    );

    // proxmox-ops is `vmctl ops`: a dry run prints the command it would send.
    let demo = super::support::demo_fleet();
    let out = run(demo.path(), "proxmox-ops", &["start", "110", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "qm start 110");
    // The issue's own line: `list --dry-run` names the read it would send, connecting nowhere
    // (no Proxmox is reachable from here: a connection would fail the command).
    // Should it try, an ssh config that refuses every host keeps it on this machine.
    let refuse = demo.path().join("refuse-all.ssh_config");
    std::fs::write(&refuse, "Host *\n  ProxyCommand false\n").unwrap();
    let out = env
        .nix(demo.path())
        .args(["run", &format!("{}#proxmox-ops", env.repo_ref()), "--"])
        .args(["list", "--dry-run"])
        .env("VMCTL_SSH_CONFIG", &refuse)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout).trim(),
        "pvesh get /cluster/resources --type vm --output-format json"
    );

    // And a real read against the Proxmox simulator behind a real sshd.
    let pve = super::support::pve::Pve::start();
    pve.seed_demo();
    let out = env
        .nix(demo.path())
        .args(["run", &format!("{}#proxmox-ops", env.repo_ref()), "--"])
        .args(["list", "--json"])
        .envs(pve.vmctl_env())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        list.as_array().unwrap().iter().any(|vm| vm["vmid"] == 104),
        "{list}"
    );
}
