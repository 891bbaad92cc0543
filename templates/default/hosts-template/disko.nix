# Disk layout of @hostname@ (VMID @vmid@) for disko: nixos-anywhere partitions and formats
# @disk_device@ with it at install time, and NixOS mounts it from the same description.
{
  disko.devices.disk.main = {
    type = "disk";
    device = "@disk_device@";
    content = {
      type = "gpt";
      partitions = {
        # GRUB's core image on BIOS (SeaBIOS) machines.
        boot = {
          size = "1M";
          type = "EF02";
        };
        ESP = {
          size = "512M";
          type = "EF00";
          content = {
            type = "filesystem";
            format = "vfat";
            mountpoint = "/boot";
            mountOptions = [ "umask=0077" ];
          };
        };
        root = {
          size = "100%";
          content = {
            type = "filesystem";
            format = "ext4";
            mountpoint = "/";
          };
        };
      };
    };
  };
}
