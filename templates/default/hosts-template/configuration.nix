# NixOS configuration of @hostname@ (VMID @vmid@), a Proxmox guest.
#
# Scaffolded by `vmctl scaffold @name@` from the fleet's hosts-template/. It is yours now:
# vmctl never overwrites an existing file here.
{ lib, modulesPath, ... }:
{
  imports = [
    # virtio drivers and the other bits a QEMU/KVM guest needs.
    (modulesPath + "/profiles/qemu-guest.nix")
    # The disk layout nixos-anywhere partitions (needs the disko NixOS module in the flake).
    ./disko.nix
  ];

  networking.hostName = "@hostname@";

  # GRUB on the BIOS boot partition of disko.nix, with an EFI copy so the VM boots with
  # SeaBIOS (Proxmox's default) and OVMF alike.
  boot.loader.grub = {
    enable = true;
    efiSupport = true;
    efiInstallAsRemovable = true;
  };

  # Proxmox asks the guest agent for the VM's addresses (`qm guest cmd @vmid@
  # network-get-interfaces`) and uses it for clean shutdowns and backups.
  services.qemuGuest.enable = true;

  # A serial console, so `qm terminal @vmid@` reaches a login prompt when the network does not.
  boot.kernelParams = [ "console=tty0" "console=ttyS0,115200" ];

  # First boot: Proxmox's cloud-init drive carries the root SSH keys and the IP settings
  # (`qm set @vmid@ --ipconfig0 …`); cloud-init applies them through systemd-networkd.
  services.cloud-init = {
    enable = true;
    network.enable = true;
  };
  networking.useNetworkd = true;
  networking.useDHCP = lib.mkDefault false;

  services.openssh = {
    enable = true;
    settings = {
      PasswordAuthentication = false;
      KbdInteractiveAuthentication = false;
      PermitRootLogin = "prohibit-password";
    };
  };

  # sops-nix decrypts this host's secrets with the age key derived from its ed25519 host key.
  # With an empty gnupg list it does not look for an RSA host key the VM never gets
  # (sops-nix#427), which would fail activation on first boot.
  sops.age.sshKeyPaths = [ "/etc/ssh/ssh_host_ed25519_key" ];
  sops.gnupg.sshKeyPaths = [ ];

  # The NixOS release this host was first installed with; do not change it later.
  system.stateVersion = "24.11";
}
