//! The real [`Rotator`]: each file's data key rotated natively (`secrets::rotate`) when its
//! layout allows, else by the real `sops rotate --in-place`, written through the applier under
//! the fleet lock the run holds (as `vmctl secrets rotate` does file by file).

use std::path::{Path, PathBuf};

use super::{RotateError, Rotator};
use crate::exec::apply::{apply, ChangeSet, FileChange, FleetLock};
use crate::exec::sops as xsops;
use crate::secrets::config::path_for_matching;
use crate::secrets::rekey::{self, Route};
use crate::secrets::{rotate, Format, SecretsError, SopsFile};

/// Rotation with the identities sops would find plus `--age-identity`, and the sops binary
/// for the files vmctl does not rotate natively.
pub struct SecretsRotator {
    pub sops_config: PathBuf,
    pub identities: Vec<PathBuf>,
    pub sops: Option<PathBuf>,
}

impl Rotator for SecretsRotator {
    fn rotate(&self, root: &Path, lock: &FleetLock, files: &[PathBuf]) -> Result<(), RotateError> {
        if files.is_empty() {
            return Ok(());
        }
        let config = xsops::load_config(&self.sops_config)
            .map_err(|e| RotateError::Config(e.to_string()))?;
        let found =
            xsops::discover_identities(&xsops::IdentityEnv::from_process(), &self.identities)
                .map_err(|e| RotateError::Identities(e.to_string()))?;
        let ids = &found.identities;
        let sops = xsops::find_sops(self.sops.as_deref());
        let now = rotate::rfc3339_utc(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or_default(),
        );
        for rel in files {
            let shown = rel.display().to_string();
            let fail = |reason: String| RotateError::File {
                path: shown.clone(),
                reason,
            };
            let abs = std::path::absolute(root.join(rel)).map_err(|e| fail(e.to_string()))?;
            let rule = config
                .config
                .rule_for(&path_for_matching(&config.dir, &abs))
                .ok_or_else(|| fail("no creation rule matches it any more".into()))?;
            let text =
                std::fs::read_to_string(&abs).map_err(|e| fail(format!("cannot read it: {e}")))?;
            let parsed = SopsFile::parse(Format::for_path(&abs), &text);
            let native = match &parsed {
                Ok(f) if rekey::route(f, rule) == Route::Native => {
                    match rotate::rotate_native(f, rule, ids, &mut rand_core::OsRng, &now) {
                        Ok(out) => Some(out.text),
                        // A layout the native route turned out not to handle goes to sops.
                        Err(SecretsError::UnsupportedLayout(_)) => None,
                        Err(e) => return Err(fail(e.to_string())),
                    }
                }
                _ => None,
            };
            match native {
                Some(new) => {
                    let change =
                        FileChange::modify(&abs, shown.clone(), text, new, "rotated").secret();
                    apply(&ChangeSet::one(change), lock).map_err(|e| fail(e.to_string()))?;
                }
                None => {
                    let sops = sops.as_deref().ok_or_else(|| {
                        fail(format!("needs the sops binary; {}", xsops::INSTALL_SOPS))
                    })?;
                    xsops::run_rotate(sops, &config, &abs, ids)
                        .map_err(|e| fail(crate::exec::process::causes(&e)))?;
                }
            }
        }
        Ok(())
    }
}
