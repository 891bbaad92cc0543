//! Host scaffolding: the files of `hosts-template/` with their placeholders filled in from a
//! VM's definition, planned as "create" or "keep" against what already exists.
//!
//! Pure: the caller reads the template directory and the target directory, and writes the
//! files this plan says to create (never one that exists).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::hosts::{substitute, UnknownPlaceholder};
use super::nix;
use crate::model::{Host, Vm, VmKind};

/// Files of the template directory that are not copied: its own documentation and the
/// hosts.nix entry template.
pub const NOT_COPIED: &[&str] = &["README.md", "hosts-entry.nix"];

/// The disk device of a Proxmox guest's first SCSI disk (virtio-scsi, Proxmox's default).
pub const DEFAULT_DISK_DEVICE: &str = "/dev/sda";

/// Every placeholder scaffolding knows, for error messages.
pub const PLACEHOLDERS: &[&str] = &[
    "name",
    "hostname",
    "vmid",
    "disk_device",
    "ssh_alias",
    "public_key",
];

/// Why a host cannot be scaffolded. Nothing is written when one of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScaffoldError {
    #[error("`{name}` is not a VM in definitions.nix{}", suggestion.as_ref().map(|s| format!("; did you mean `{s}`?")).unwrap_or_default())]
    UnknownVm {
        name: String,
        suggestion: Option<String>,
    },
    #[error("`{name}` is the template VM, not a host; scaffold a managed or imported VM")]
    Template { name: String },
    #[error("the host template is empty: add configuration.nix (and disko.nix) to it")]
    EmptyTemplate,
    #[error("{file}: unknown placeholder `@{placeholder}@`; the known ones are {}", PLACEHOLDERS.iter().map(|p| format!("@{p}@")).collect::<Vec<_>>().join(", "))]
    UnknownPlaceholder { file: String, placeholder: String },
    #[error("{file}: uses `@{placeholder}@` but {why}")]
    MissingValue {
        file: String,
        placeholder: String,
        why: String,
    },
    #[error("VM `{vm}`: nixosConfig `{config}` is not one directory name, so hosts/{config} would lie outside the hosts directory; use a plain name like `{vm}`")]
    OutsideHostsDir { vm: String, config: String },
    #[error("{file}: after substitution it does not parse ({error}); keep placeholders inside \"…\" strings or comments")]
    Syntax { file: String, error: String },
}

/// One file of the template directory: its path relative to the template root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateFile {
    pub path: PathBuf,
    pub contents: Vec<u8>,
}

/// The placeholder values for one host; `Err(why)` for a value vmctl does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Values {
    values: BTreeMap<&'static str, Result<String, Unavailable>>,
}

/// Why vmctl has no value for a placeholder (and what to do about it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unavailable(pub String);

impl Values {
    /// Values from the VM's definition and, when it exists, its hosts.nix entry.
    pub fn for_vm(vm: &Vm, host: Option<&Host>, disk_device: Option<&str>) -> Values {
        let mut values = BTreeMap::new();
        values.insert("name", Ok(vm.name.clone()));
        values.insert(
            "hostname",
            Ok(vm.hostname.clone().unwrap_or_else(|| vm.name.clone())),
        );
        values.insert(
            "vmid",
            vm.vmid.map(|v| v.to_string()).ok_or_else(|| {
                Unavailable(format!("`{}` has no vmid in definitions.nix", vm.name))
            }),
        );
        values.insert(
            "disk_device",
            Ok(disk_device.unwrap_or(DEFAULT_DISK_DEVICE).to_string()),
        );
        values.insert(
            "ssh_alias",
            Ok(vm
                .ssh_alias
                .clone()
                .or_else(|| host.and_then(|h| h.ssh_alias.clone()))
                .unwrap_or_else(|| vm.name.clone())),
        );
        values.insert(
            "public_key",
            host.and_then(|h| h.public_key.clone()).ok_or_else(|| {
                Unavailable(format!(
                    "`{}` has no publicKey in hosts.nix yet; run `vmctl hosts add {} --key …` first",
                    vm.name, vm.name
                ))
            }),
        );
        Values { values }
    }

    pub fn get(&self, name: &str) -> Option<&Result<String, Unavailable>> {
        self.values.get(name)
    }
}

/// What scaffolding does with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Create,
    /// The file exists; it is kept as it is (identical or not).
    Keep {
        identical: bool,
    },
}

/// One planned file, with its path relative to the fleet root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    pub path: PathBuf,
    pub contents: Vec<u8>,
    pub action: Action,
}

/// The plan for one host: its directory and files, in path order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaffoldPlan {
    pub vm: String,
    pub dir: PathBuf,
    pub files: Vec<PlannedFile>,
}

impl ScaffoldPlan {
    pub fn creates(&self) -> impl Iterator<Item = &PlannedFile> {
        self.files.iter().filter(|f| f.action == Action::Create)
    }
}

/// The VM `name` of definitions.nix that can be scaffolded (managed or imported).
pub fn find_vm<'d>(
    defs: &'d crate::model::Definitions,
    name: &str,
) -> Result<&'d Vm, ScaffoldError> {
    match defs.vm_by_name(name) {
        Some(vm) if vm.kind == VmKind::Template => Err(ScaffoldError::Template {
            name: name.to_string(),
        }),
        Some(vm) => Ok(vm),
        None => Err(ScaffoldError::UnknownVm {
            name: name.to_string(),
            suggestion: defs
                .all_vms()
                .filter(|v| v.kind != VmKind::Template)
                .map(|v| (strsim::levenshtein(name, &v.name), &v.name))
                .filter(|(d, n)| *d <= 2.max(n.len() / 3))
                .min()
                .map(|(_, n)| n.clone()),
        }),
    }
}

/// Plans `hosts_dir/<config name>/` for `vm` from the template files. `existing(path)` returns
/// the current contents of a fleet-relative path, when it exists.
pub fn plan(
    vm: &Vm,
    hosts_dir: &Path,
    template: &[TemplateFile],
    values: &Values,
    existing: impl Fn(&Path) -> Option<Vec<u8>>,
) -> Result<ScaffoldPlan, ScaffoldError> {
    let config = vm.config_name();
    if !is_one_component(config) {
        return Err(ScaffoldError::OutsideHostsDir {
            vm: vm.name.clone(),
            config: config.to_string(),
        });
    }
    let dir = hosts_dir.join(config);
    let mut files = Vec::new();
    let mut sorted: Vec<&TemplateFile> = template
        .iter()
        .filter(|f| {
            !(f.path.parent() == Some(Path::new(""))
                && NOT_COPIED.iter().any(|n| f.path == Path::new(n)))
        })
        .collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    if sorted.is_empty() {
        return Err(ScaffoldError::EmptyTemplate);
    }
    for file in sorted {
        let contents = render_file(file, values)?;
        let path = dir.join(&file.path);
        let action = match existing(&path) {
            Some(current) => Action::Keep {
                identical: current == contents,
            },
            None => Action::Create,
        };
        files.push(PlannedFile {
            path,
            contents,
            action,
        });
    }
    Ok(ScaffoldPlan {
        vm: vm.name.clone(),
        dir,
        files,
    })
}

/// Whether `name` names exactly one directory below the hosts directory: not empty, not `.`
/// or `..`, without a path separator (so neither `../x` nor `/etc` nor `a/b`).
pub fn is_one_component(name: &str) -> bool {
    let mut parts = Path::new(name).components();
    matches!(
        (parts.next(), parts.next()),
        (Some(std::path::Component::Normal(_)), None)
    ) && !name.contains(['/', '\\', '\0'])
}

/// One template file with its placeholders substituted. Text in `.nix` files gets values
/// escaped for Nix strings and must parse afterwards; files that are not UTF-8 are copied as
/// they are.
pub fn render_file(file: &TemplateFile, values: &Values) -> Result<Vec<u8>, ScaffoldError> {
    let Ok(text) = std::str::from_utf8(&file.contents) else {
        return Ok(file.contents.clone());
    };
    let shown = file.path.display().to_string();
    let is_nix = file.path.extension().is_some_and(|e| e == "nix");
    let mut missing = None;
    let out = substitute(text, |name| match values.get(name) {
        Some(Ok(v)) => Some(if is_nix {
            nix::string_body(v)
        } else {
            v.clone()
        }),
        Some(Err(why)) => {
            missing.get_or_insert_with(|| (name.to_string(), why.to_string()));
            Some(String::new())
        }
        None => None,
    })
    .map_err(
        |UnknownPlaceholder(placeholder)| ScaffoldError::UnknownPlaceholder {
            file: shown.clone(),
            placeholder,
        },
    )?;
    if let Some((placeholder, why)) = missing {
        return Err(ScaffoldError::MissingValue {
            file: shown,
            placeholder,
            why,
        });
    }
    if is_nix {
        let parse = rnix::Root::parse(&out);
        if let Some(e) = parse.errors().first() {
            return Err(ScaffoldError::Syntax {
                file: shown,
                error: e.to_string(),
            });
        }
    }
    Ok(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(name: &str, kind: VmKind, vmid: Option<u32>) -> Vm {
        Vm::new(name, kind, vmid)
    }

    fn file(path: &str, text: &str) -> TemplateFile {
        TemplateFile {
            path: path.into(),
            contents: text.as_bytes().to_vec(),
        }
    }

    #[test]
    fn substitutes_and_plans_create_then_keep() {
        let v = vm("web", VmKind::Managed, Some(110));
        let values = Values::for_vm(&v, None, None);
        let template = [
            file(
                "configuration.nix",
                "{ networking.hostName = \"@hostname@\"; } # @vmid@\n",
            ),
            file("disko.nix", "{ device = \"@disk_device@\"; }\n"),
            file("README.md", "not copied @nope@"),
            file("hosts-entry.nix", "{ publicKey = \"@public_key@\"; }"),
        ];
        let p = plan(&v, Path::new("hosts"), &template, &values, |_| None).unwrap();
        assert_eq!(p.dir, Path::new("hosts/web"));
        assert_eq!(p.files.len(), 2);
        assert_eq!(
            p.files[0].contents,
            b"{ networking.hostName = \"web\"; } # 110\n"
        );
        assert_eq!(p.files[1].contents, b"{ device = \"/dev/sda\"; }\n");
        let again = plan(&v, Path::new("hosts"), &template, &values, |path| {
            p.files
                .iter()
                .find(|f| f.path == path)
                .map(|f| f.contents.clone())
        })
        .unwrap();
        assert!(again
            .files
            .iter()
            .all(|f| f.action == Action::Keep { identical: true }));
    }

    #[test]
    fn refuses_unknown_and_missing_placeholders_and_bad_nix() {
        let v = vm("web", VmKind::Managed, None);
        let values = Values::for_vm(&v, None, None);
        let run = |t: &str| {
            plan(&v, Path::new("hosts"), &[file("a.nix", t)], &values, |_| {
                None
            })
        };
        assert!(matches!(
            run("# @hostnme@"),
            Err(ScaffoldError::UnknownPlaceholder { .. })
        ));
        let missing = run("# @vmid@").unwrap_err();
        assert!(missing.to_string().contains("has no vmid"), "{missing}");
        let key = run("# @public_key@").unwrap_err();
        assert!(key.to_string().contains("vmctl hosts add web"), "{key}");
        assert!(matches!(
            run("{ @disk_device@ = 1; }"),
            Err(ScaffoldError::Syntax { .. })
        ));
    }

    #[test]
    fn finds_vms_with_suggestions() {
        let defs = crate::model::Definitions {
            template: Some(vm("tmpl", VmKind::Template, Some(9001))),
            managed: vec![vm("test-automation", VmKind::Managed, Some(110))],
            ..Default::default()
        };
        assert!(find_vm(&defs, "test-automation").is_ok());
        assert!(matches!(
            find_vm(&defs, "tmpl"),
            Err(ScaffoldError::Template { .. })
        ));
        let err = find_vm(&defs, "test-automaton").unwrap_err();
        assert!(
            err.to_string().contains("did you mean `test-automation`"),
            "{err}"
        );
    }

    #[test]
    fn refuses_a_config_directory_outside_the_hosts_directory() {
        let template = [file("configuration.nix", "{ }\n")];
        for bad in ["../x", "/etc", "a/b", "..", ".", "", "x/../../y"] {
            let mut v = vm("web", VmKind::Managed, Some(110));
            v.nixos_config = Some(bad.into());
            let values = Values::for_vm(&v, None, None);
            assert!(
                matches!(
                    plan(&v, Path::new("hosts"), &template, &values, |_| None),
                    Err(ScaffoldError::OutsideHostsDir { .. })
                ),
                "{bad}"
            );
        }
        assert!(is_one_component("web-1.lan"));
    }
}
