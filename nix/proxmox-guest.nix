# nixosModules.proxmox-guest: what every VM vmctl provisions needs from NixOS, whatever its own
# configuration says: the qemu guest agent (vmctl asks it for the VM's address), a serial console
# (`qm terminal`), cloud-init for the first boot (root's SSH keys and the IP settings of the
# Proxmox cloud-init drive), and openssh with the ed25519 host key vmctl generated and
# nixos-anywhere placed in /etc/ssh, which sops-nix (when the host uses it) reads as its age key.
{ lib, modulesPath, options, ... }:
{
  imports = [ (modulesPath + "/profiles/qemu-guest.nix") ];

  config = lib.mkMerge [
    {
      services.qemuGuest.enable = lib.mkDefault true;
      boot.kernelParams = [ "console=tty0" "console=ttyS0,115200" ];

      services.cloud-init = {
        enable = lib.mkDefault true;
        network.enable = lib.mkDefault true;
      };
      networking.useNetworkd = lib.mkDefault true;

      services.openssh = {
        enable = true;
        settings = {
          PasswordAuthentication = lib.mkDefault false;
          KbdInteractiveAuthentication = lib.mkDefault false;
          PermitRootLogin = lib.mkDefault "prohibit-password";
        };
        # Only the key vmctl generated before the install (and pinned in hosts.nix): no RSA key
        # is generated on first boot, so the host's identity is the one the fleet knows.
        hostKeys = lib.mkDefault [{ path = "/etc/ssh/ssh_host_ed25519_key"; type = "ed25519"; }];
      };
    }
    # sops-nix is the fleet's input, not vmctl's: set its key only when the host imports it. An
    # empty gnupg list keeps it from looking for an RSA host key (sops-nix#427).
    (lib.mkIf (options ? sops) {
      sops.age.sshKeyPaths = [ "/etc/ssh/ssh_host_ed25519_key" ];
      sops.gnupg.sshKeyPaths = [ ];
    })
  ];
}
