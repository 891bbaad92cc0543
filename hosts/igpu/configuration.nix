# NixOS configuration of the imported VM using hosts/igpu (documentation for the demo fleet).
{ ... }:
{
  networking.hostName = "igpu";
  services.qemuGuest.enable = true;
  services.openssh.enable = true;
  system.stateVersion = "24.05";
}
