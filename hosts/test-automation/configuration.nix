# NixOS configuration of test-automation (VMID 110), a managed VM.
{ ... }:
{
  networking.hostName = "test-automation";
  services.qemuGuest.enable = true;
  services.openssh.enable = true;
  boot.kernelParams = [ "console=ttyS0,115200" ];
  sops.gnupg.sshKeyPaths = [ ];
  system.stateVersion = "24.05";
}
