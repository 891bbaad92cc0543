//! How errors reach the user: a nested error's causes are printed, not dropped, and refused
//! edits point at the file like lint findings do.

use crate::support::secrets::{Env, ADMIN, FIX, NEWVM, OLDHOST};
use crate::support::text;

/// A file the native re-key cannot handle (it holds pgp keys), so the sops binary runs.
fn fallback_file(env: &Env) -> std::path::PathBuf {
    let dest = env.fleet().join("secrets/host.yaml");
    std::fs::copy(format!("{FIX}/sops-nix/secrets.yaml"), &dest).unwrap();
    env.write_rule(&[ADMIN, OLDHOST, NEWVM]);
    dest
}

#[test]
fn a_failing_sops_shows_its_status_and_the_tail_of_its_stderr() {
    let env = Env::new();
    let file = fallback_file(&env);
    let original = std::fs::read(&file).unwrap();
    // A sops that half-writes the file, explains itself on stderr and fails.
    let sops = env.path("failing-sops");
    crate::support::write_script(
        &sops,
        "#!/bin/sh\nfor last; do :; done\nprintf 'garbage' > \"$last\"\necho 'some progress' >&2\necho 'Failed to get the data key required to decrypt the SOPS file.' >&2\nexit 128\n",
    );
    let o = env
        .vmctl()
        .args(["secrets", "rekey", "--sops"])
        .arg(&sops)
        .arg("-i")
        .arg(env.key("admin"))
        .arg(&file)
        .output()
        .unwrap();
    let out = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{out}{}", text(&o.stderr));
    // The outer error (what became of the file), then its cause: the purpose, the status and
    // sops's own last words.
    assert!(
        out.contains(
            "sops failed (the original file was restored): cannot run `sops updatekeys` on"
        ),
        "{out}"
    );
    assert!(
        out.contains("`failing-sops` exited with status 128: some progress | Failed to get the data key required to decrypt the SOPS file."),
        "{out}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), original);
}

#[test]
fn a_refused_hosts_edit_points_into_the_file_with_a_label_and_help() {
    let fleet = crate::support::demo_fleet();
    let root = fleet.path();
    let hosts = root.join("hosts.nix");
    let mut content = std::fs::read_to_string(&hosts).unwrap();
    // A second definition of the first host: vmctl cannot tell which one to edit.
    let first = content.find('{').unwrap() + 1;
    content.insert_str(first, "\n  doc1 = { publicKey = \"ssh-ed25519 AAAA\"; };");
    std::fs::write(&hosts, &content).unwrap();
    let o = crate::support::vmctl(
        root,
        &[
            "hosts",
            "add",
            "newhost",
            "--key",
            &crate::support::new_public_key(None),
        ],
    );
    let err = text(&o.stderr);
    assert_ne!(o.status.code(), Some(0), "{err}");
    assert!(err.contains("`doc1` is defined twice"), "{err}");
    // The snippet names the file and the line, the label marks the name, help says what to do.
    assert!(err.contains("[hosts.nix:"), "{err}");
    assert!(err.contains("defined again here"), "{err}");
    assert!(err.contains("help: remove one definition first"), "{err}");
    assert!(!err.contains("line "), "{err}");
    assert_eq!(std::fs::read_to_string(&hosts).unwrap(), content);
}
