//! `vmctl template create`, planned: the template VM definitions.nix declares, made from a VMA
//! image (`nix build .#proxmox-template`, or a file given): upload it to the Proxmox host,
//! `qmrestore` it to the template's VMID on the declared storage, name it and add the
//! cloud-init drive, convert it to a template, remove the upload.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::model::Definitions;
use crate::proxmox::quote::command_line;
use crate::proxmox::{Mutation, VmId};

/// The flake output that builds the image (flake.nix `packages.<system>.proxmox-template`).
pub const IMAGE_OUTPUT: &str = ".#proxmox-template";

/// The endings qmrestore reads a VMA archive's compression from.
pub const VMA_ENDINGS: &[&str] = &[".vma.zst", ".vma.gz", ".vma.lzo", ".vma"];

/// One step of the run, in order; each is recorded in the journal when done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "step", rename_all = "kebab-case")]
pub enum Step {
    /// `nix build --json --no-link .#proxmox-template` in the fleet (only without `--image`).
    Build {
        argv: Vec<String>,
    },
    /// The image copied to `remote` on the Proxmox host (relative to the SSH user's home).
    Upload {
        local: Option<PathBuf>,
        remote: String,
    },
    Restore(Mutation),
    /// The declared name (the fences compare it before `qm template`) and the cloud-init drive.
    Configure(Mutation),
    Template(Mutation),
    /// `rm -f -- REMOTE` on the Proxmox host.
    Cleanup {
        argv: Vec<String>,
    },
}

impl Step {
    /// The step's name, as the journal records it.
    pub fn id(&self) -> &'static str {
        match self {
            Step::Build { .. } => "build",
            Step::Upload { .. } => "upload",
            Step::Restore(_) => "restore",
            Step::Configure(_) => "configure",
            Step::Template(_) => "template",
            Step::Cleanup { .. } => "cleanup",
        }
    }

    /// The command line this step runs, as a dry run shows it.
    pub fn line(&self) -> String {
        match self {
            Step::Build { argv } | Step::Cleanup { argv } => command_line(argv),
            Step::Upload { local, remote } => format!(
                "upload {} to {remote} on the Proxmox host",
                local
                    .as_ref()
                    .map_or("the built image".to_string(), |p| p.display().to_string())
            ),
            Step::Restore(m) | Step::Configure(m) | Step::Template(m) => command_line(&m.argv()),
        }
    }
}

/// What `vmctl template create` will do.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplatePlan {
    pub vmid: VmId,
    pub name: String,
    pub storage: String,
    /// Where the image goes on the Proxmox host.
    pub upload: String,
    pub steps: Vec<Step>,
}

/// Why there is nothing to plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("vms/definitions.nix declares no `template`: add one, e.g. `template = {{ vmid = 9000; name = \"nixos-template\"; }};`")]
    NoTemplate,
    #[error("the template of vms/definitions.nix has no usable `vmid`: give it a free VMID (run `vmlint` to see why this one is not)")]
    NoVmid,
    #[error("no storage for the template: set `template.storage` or `proxmox.defaultStorage` in vms/definitions.nix")]
    NoStorage,
    #[error("`template.node` is `{template}` but vmctl reaches node `{proxmox}` (`proxmox.node`), where qmrestore would put it: make them the same")]
    OtherNode { template: String, proxmox: String },
    #[error("`{file}` is not a VMA archive: qmrestore reads its compression from the name, which must end in .vma, .vma.zst, .vma.gz or .vma.lzo (`nix build .#proxmox-template` makes one)")]
    NotVma { file: String },
}

/// The VMA ending of `file`'s name, when it has one.
pub fn vma_ending(file: &str) -> Option<&'static str> {
    VMA_ENDINGS.iter().copied().find(|e| file.ends_with(e))
}

/// The plan for the declared template from `image` (a VMA file), or from the flake's image
/// when `image` is `None`.
pub fn plan(defs: &Definitions, image: Option<&Path>) -> Result<TemplatePlan, TemplateError> {
    let t = defs.template.as_ref().ok_or(TemplateError::NoTemplate)?;
    let vmid = t.vmid.ok_or(TemplateError::NoVmid)?;
    // A template without `name` is DF001, which stops the command before it plans.
    let name = t.name.clone();
    if let (Some(tn), Some(pn)) = (&t.node, &defs.proxmox.node) {
        if tn != pn {
            return Err(TemplateError::OtherNode {
                template: tn.clone(),
                proxmox: pn.clone(),
            });
        }
    }
    let storage = t
        .storage
        .clone()
        .or_else(|| defs.proxmox.storage.clone())
        .ok_or(TemplateError::NoStorage)?;
    let ending = match image {
        Some(p) => {
            let file = p
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            vma_ending(&file).ok_or_else(|| TemplateError::NotVma {
                file: p.display().to_string(),
            })?
        }
        // nixpkgs' proxmox-image.nix writes `vzdump-qemu-NAME.vma.zst`.
        None => ".vma.zst",
    };
    let upload = format!(".vmctl-template-{vmid}{ending}");
    let mut steps = Vec::new();
    if image.is_none() {
        steps.push(Step::Build {
            argv: ["nix", "build", "--json", "--no-link", IMAGE_OUTPUT]
                .map(String::from)
                .to_vec(),
        });
    }
    steps.push(Step::Upload {
        local: image.map(Path::to_path_buf),
        remote: upload.clone(),
    });
    steps.push(Step::Restore(Mutation::RestoreVma {
        archive: upload.clone(),
        vmid,
        storage: Some(storage.clone()),
    }));
    steps.push(Step::Configure(Mutation::Configure {
        vmid,
        options: vec![
            ("name".into(), name.clone()),
            ("ide2".into(), format!("{storage}:cloudinit")),
        ],
    }));
    steps.push(Step::Template(Mutation::Template { vmid }));
    steps.push(Step::Cleanup {
        argv: ["rm", "-f", "--", &upload].map(String::from).to_vec(),
    });
    Ok(TemplatePlan {
        vmid,
        name,
        storage,
        upload,
        steps,
    })
}

/// The dry run: each step's command line, numbered.
pub fn render(plan: &TemplatePlan) -> String {
    let mut out = format!(
        "template `{}` (VMID {}) on storage `{}`:\n",
        plan.name, plan.vmid, plan.storage
    );
    for (i, s) in plan.steps.iter().enumerate() {
        out.push_str(&format!("{:>2}. {:<9} {}\n", i + 1, s.id(), s.line()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Vm, VmKind};

    fn defs(storage: Option<&str>, template_storage: Option<&str>) -> Definitions {
        let mut d = Definitions::default();
        d.proxmox.storage = storage.map(String::from);
        d.proxmox.node = Some("prom".into());
        d.template = Some(Vm {
            storage: template_storage.map(String::from),
            ..Vm::new("NixosServerBlank", VmKind::Template, Some(9001))
        });
        d
    }

    #[test]
    fn plans_upload_restore_configure_template_cleanup_for_a_given_image() {
        let p = plan(
            &defs(Some("nvmeprom"), None),
            Some(Path::new("/tmp/vzdump-qemu-nixos.vma.zst")),
        )
        .unwrap();
        let ids: Vec<&str> = p.steps.iter().map(Step::id).collect();
        assert_eq!(
            ids,
            ["upload", "restore", "configure", "template", "cleanup"]
        );
        assert_eq!(
            render(&p),
            "template `NixosServerBlank` (VMID 9001) on storage `nvmeprom`:\n \
             1. upload    upload /tmp/vzdump-qemu-nixos.vma.zst to .vmctl-template-9001.vma.zst on the Proxmox host\n \
             2. restore   qmrestore .vmctl-template-9001.vma.zst 9001 --storage nvmeprom\n \
             3. configure qm set 9001 --name NixosServerBlank --ide2 nvmeprom:cloudinit\n \
             4. template  qm template 9001\n \
             5. cleanup   rm -f -- .vmctl-template-9001.vma.zst\n"
        );
    }

    #[test]
    fn builds_the_image_when_none_is_given_and_prefers_the_template_storage() {
        let p = plan(&defs(Some("nvmeprom"), Some("local-lvm")), None).unwrap();
        assert_eq!(
            p.steps[0].line(),
            "nix build --json --no-link '.#proxmox-template'"
        );
        assert_eq!(p.storage, "local-lvm");
        assert_eq!(p.upload, ".vmctl-template-9001.vma.zst");
    }

    #[test]
    fn refuses_what_it_cannot_do_right() {
        assert_eq!(
            plan(&defs(None, None), None).unwrap_err(),
            TemplateError::NoStorage
        );
        assert_eq!(
            plan(&Definitions::default(), None).unwrap_err(),
            TemplateError::NoTemplate
        );
        let e = plan(&defs(Some("s"), None), Some(Path::new("image.qcow2"))).unwrap_err();
        assert!(matches!(e, TemplateError::NotVma { .. }), "{e}");
        let mut d = defs(Some("s"), None);
        d.template.as_mut().unwrap().node = Some("prom2".into());
        assert!(matches!(
            plan(&d, None).unwrap_err(),
            TemplateError::OtherNode { .. }
        ));
        let mut d = defs(Some("s"), None);
        d.template.as_mut().unwrap().vmid = None;
        assert_eq!(plan(&d, None).unwrap_err(), TemplateError::NoVmid);
    }
}
