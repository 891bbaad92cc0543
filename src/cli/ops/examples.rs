//! Examples and shared argument descriptions of `vmctl ops --help`, kept out of ops.rs so the
//! command definitions stay readable. One format everywhere: `Examples:`, then command lines
//! indented by two spaces, a `# comment` saying what a line does when it is not obvious.

/// A VMID positional.
pub const VMID: &str = "The VM's VMID (e.g. 110)";
/// `clone`'s source.
pub const TEMPLATE_VMID: &str = "VMID of the template to clone (e.g. 9001)";
/// `clone`'s target.
pub const NEW_VMID: &str = "VMID of the new VM (must be free in the cluster)";

/// A snapshot name positional.
pub const SNAPSHOT_NAME: &str =
    "Snapshot name: 2 to 40 characters, a letter first, then letters, digits, `-` or `_`";

pub const LIST: &str = "Examples:
  vmctl ops list                          # every VM of the cluster, with its definitions.nix role
  vmctl ops list --json | jq -r '.[].vmid'";
pub const STATUS: &str = "Examples:
  vmctl ops status 110                    # `status: running` or `status: stopped`
  vmctl ops status 104 --json";
pub const CONFIG: &str = "Examples:
  vmctl ops config 109                    # the `qm config` of igpu
  vmctl ops config 9001 --json";
pub const CLONE: &str = "Examples:
  vmctl ops clone 9001 110 test-automation --dry-run  # full clone of the template
  vmctl ops clone 9001 110 test-automation --linked --pool fleet
  vmctl ops clone 9001 110 test-automation local-lvm --description 'CI runner'";
pub const CONFIGURE: &str = "Examples:
  vmctl ops configure 110 4 8192 --dry-run           # 4 cores, 8 GiB
  vmctl ops configure 110 2 4096 --set ciuser=root --set ipconfig0=ip=dhcp";
pub const CREATE_DISK: &str = "Examples:
  vmctl ops create-disk 110 20G --dry-run            # 20 GiB scsi0 on proxmox.storage
  vmctl ops create-disk 110 50G local-lvm scsi1";
pub const RESIZE: &str = "Examples:
  vmctl ops resize 110 scsi0 +10G --dry-run          # grow by 10 GiB
  vmctl ops resize 110 scsi0 40G                    # grow to 40 GiB";
pub const RESTORE_VMA: &str = "Examples:
  vmctl ops restore-vma /var/lib/vz/dump/vzdump-qemu-110.vma.zst 110 --dry-run
  vmctl ops restore-vma /var/lib/vz/dump/vzdump-qemu-110.vma.zst 110 local-lvm";
pub const SERIAL_SOCKET: &str = "Examples:
  vmctl ops serial-socket 110 --dry-run              # then `vmctl ops console 110`";
pub const START: &str = "Examples:
  vmctl ops start 110
  vmctl ops start 110 --dry-run                      # print the `qm start` it would send";
pub const STOP: &str = "Examples:
  vmctl ops stop 110 --dry-run                       # print the `qm stop` it would send
  vmctl ops stop 110";
pub const SHUTDOWN: &str = "Examples:
  vmctl ops shutdown 110
  vmctl ops shutdown 110 --dry-run";
pub const TEMPLATE: &str = "Examples:
  vmctl ops template 110 --dry-run                   # turn test-automation into a template";
pub const CONSOLE: &str = "Examples:
  vmctl ops console 110                              # Ctrl+O leaves";
pub const DESTROY: &str = "Examples:
  vmctl ops destroy 110 --confirm test-automation --dry-run
  vmctl ops destroy 110 --confirm test-automation";
pub const GET_IP: &str = "Examples:
  vmctl ops get-ip 110
  vmctl ops get-ip 104 --json";
pub const WAIT_SSH: &str = "Examples:
  vmctl ops wait-ssh 192.0.2.10                      # up to 300 s
  vmctl ops wait-ssh 192.0.2.10 60 root              # wait at most 60 s";
pub const STORAGE: &str = "Examples:
  vmctl ops storage
  vmctl ops storage --json";
pub const NEXT_VMID: &str = "Examples:
  vmctl ops next-vmid                                # in the `managed` vmidRange
  vmctl ops next-vmid 200 299";
pub const SNAPSHOT: &str = "Examples:
  vmctl ops snapshot create 110 before-upgrade --dry-run
  vmctl ops snapshot list 110";
pub const MIGRATE: &str = "Examples:
  vmctl ops migrate 110 pve2 --dry-run
  vmctl ops migrate 110 pve2 --online";
pub const PROTECT: &str = "Examples:
  vmctl ops protect 110 on --dry-run
  vmctl ops protect --readonly-vms                   # fence every readonly VM in Proxmox too";
pub const SNAP_CREATE: &str = "Examples:
  vmctl ops snapshot create 110 before-upgrade --dry-run
  vmctl ops snapshot create 110 before-upgrade --vmstate --description 'before nixos 25.05'";
pub const SNAP_LIST: &str = "Examples:
  vmctl ops snapshot list 110
  vmctl ops snapshot list 110 --json";
pub const SNAP_ROLLBACK: &str = "Examples:
  vmctl ops snapshot rollback 110 before-upgrade --dry-run";
pub const SNAP_DELETE: &str = "Examples:
  vmctl ops snapshot delete 110 before-upgrade --dry-run";

/// `configure`'s cores.
pub const CORES: &str = "Number of CPU cores";
/// `create-disk`'s size.
pub const DISK_SIZE: &str = "Size of the new disk in GiB, e.g. `20G`";
/// A storage positional.
pub const STORAGE_ID: &str = "Proxmox storage, e.g. `local-lvm`";
/// `create-disk`'s disk.
pub const NEW_DISK: &str = "Disk to create, e.g. `scsi1` [default: scsi0]";
/// `resize`'s disk.
pub const DISK: &str = "Disk to grow, e.g. `scsi0`";
/// `resize`'s size.
pub const RESIZE_SIZE: &str = "`+10G` grows by 10 GiB, `40G` grows to 40 GiB";
/// `restore-vma`'s archive.
pub const ARCHIVE: &str = "Path of the vzdump archive on the Proxmox host";
/// `wait-ssh`'s address.
pub const IP: &str = "IP address of the VM";
/// `wait-ssh`'s user.
pub const USER: &str = "Accepted for the seed's habits; no login is tried";
/// `migrate`'s target.
pub const NODE: &str = "Cluster node to move the VM to";
