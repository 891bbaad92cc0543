# STAND-IN (vmctl tests only) for nixpkgs' nixos/modules/virtualisation/proxmox-image.nix,
# which builds `config.system.build.VMA` (the stub's nixosSystem builds a text file instead).
{ ... }: { proxmox = { }; }
