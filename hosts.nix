# Fleet identity: every host's SSH host key and how to reach it.
# vmctl adds an entry here when it provisions a VM (`vmctl hosts add`).
let
  admin = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHxM2a6DvE298UXZdhKYSMrTPvzvceh5+ZJ77tKj9n0D admin@workstation";
in
{
  _proxmox = {
    hostname = "prom.lan";
    adminKeys = [ admin ];
  };

  doc1 = {
    hostname = "doc1";
    sshAlias = "doc1";
    publicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMlLRoQ0HoeSXd9Rbb9WB51hQUGkEPeKZvmAsJFjg/wH";
  };

  igpu = {
    hostname = "igpu";
    sshAlias = "igpu";
    publicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHHwBfbIUrK41MhsO5+UBAKg1AW/ZVSeh7AdndYmIED6";
  };
}
