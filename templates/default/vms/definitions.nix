# VM definitions: the source of truth for every VM vmctl knows about.
#
#   vmlint                          check the fleet
#   vmctl scaffold NAME             create hosts/NAME/ from hosts-template/
#   nix run .#provision-vm -- NAME  create, install and integrate a managed VM
{
  proxmox = {
    host = "proxmox.lan"; # the Proxmox host vmctl reaches over SSH
    node = "pve";
    user = "root";
    defaultStorage = "local-lvm";
    bridge = "vmbr0";
  };

  # The VM managed VMs are cloned from (`vmctl template create` makes it).
  template = {
    vmid = 9000;
    name = "nixos-template";
    description = "NixOS with cloud-init and the qemu guest agent";
  };

  vmidRanges = {
    imported = { start = 100; end = 109; description = "VMs that predate vmctl"; };
    managed = { start = 110; end = 199; description = "VMs provisioned by vmctl"; };
    templates = { start = 9000; end = 9099; description = "Clone sources"; };
  };

  # VMs that existed before vmctl: documentation only, never changed (`readonly = true`).
  imported = { };

  # VMs vmctl creates, e.g.
  #   web = { vmid = 110; cores = 2; memory = 4096; disk = "20G"; };
  managed = { };
}
