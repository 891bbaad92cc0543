# This fleet's flake: vmctl's apps, checks and NixOS configurations, bound to this repository.
#
#   nix flake check                          the fleet's rules (nix/lib.nix, then vmlint)
#   nix run .#provision-vm -- NAME           create, install and integrate a managed VM
#   nix run .#proxmox-ops -- list            the VMs on the Proxmox host
{
  description = "NixOS VMs on Proxmox, managed with vmctl";

  inputs = {
    vmctl.url = "github:vmctl/vmctl";
    # The hosts' configurations (hosts-template/) use disko and sops-nix: add them when the
    # first host is scaffolded, and pass their modules below.
    # disko.url = "github:nix-community/disko";
    # disko.inputs.nixpkgs.follows = "vmctl/nixpkgs";
    # sops-nix.url = "github:Mic92/sops-nix";
    # sops-nix.inputs.nixpkgs.follows = "vmctl/nixpkgs";
  };

  outputs = { self, vmctl, ... }@inputs:
    vmctl.lib.mkFleet {
      inherit self;
      # modules = [ inputs.disko.nixosModules.disko inputs.sops-nix.nixosModules.sops ];
    };
}
