# VM definitions: the source of truth for every VM vmctl knows about.
#
#   vmlint vms/definitions.nix            check this file
#   vmctl provision test-automation       create, install and integrate a managed VM
#
# `imported` VMs existed before vmctl and are documentation only: with
# `readonly = true` every mutating operation on them is refused.
{
  proxmox = {
    host = "prom.lan";
    node = "prom";
    user = "root";
    port = 22;
    defaultStorage = "nvmeprom";
    bridge = "vmbr0";
  };

  template = {
    vmid = 9001;
    name = "NixosServerBlank";
    description = "NixOS minimal template with cloud-init and the qemu guest agent";
  };

  vmidRanges = {
    imported = { start = 100; end = 109; description = "VMs that predate vmctl"; };
    managed = { start = 110; end = 199; description = "VMs provisioned by vmctl"; };
    templates = { start = 9000; end = 9099; description = "Clone sources"; };
  };

  imported = {
    doc1 = {
      vmid = 104;
      readonly = true;
      hostname = "doc1";
      sshAlias = "doc1";
      status = "running";
      purpose = "Docker host for home services";
      services = [ "Paperless" "Immich" "Home Assistant" ];
      nixosConfig = "proxmox-vm";
      specs = {
        cores = 8;
        memory = 16384;
        disk = "200G";
      };
      notes = ''
        Production: never touched by automation.
        Backups run nightly to the NAS.
      '';
    };

    igpu = {
      vmid = 109;
      readonly = true;
      hostname = "igpu";
      sshAlias = "igpu";
      status = "running";
      purpose = "Media transcoding with the iGPU passed through";
      services = [ "Jellyfin" ];
      nixosConfig = "igpu";
      hardware = "Intel UHD 770 (PCI passthrough)";
      cores = 4;
      memory = 8192;
      disk = "64G";
    };
  };

  managed = {
    test-automation = {
      vmid = 110;
      cores = 2;
      memory = 4096;
      disk = "20G";
      storage = "nvmeprom";
      nixosConfig = "test-automation";
      purpose = "Testing automated provisioning system";
      services = [ ];
      tags = [ "test" ];
      network = {
        bridge = "vmbr0";
        ip = "dhcp";
      };
    };
  };
}
