# NixOS configuration of the imported VM using hosts/proxmox-vm (documentation for the demo fleet).
{ ... }:
{
  networking.hostName = "doc1";
  services.qemuGuest.enable = true;
  services.openssh.enable = true;
  system.stateVersion = "24.05";
}
