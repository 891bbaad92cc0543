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
