# The library a fleet's flake calls: `vmctl.lib.mkFleet { self = ./.; … }` (see docs/flake.md).
{ vmctl, nixpkgs }:
let
  inherit (builtins) attrNames concatMap filter isAttrs isString listToAttrs pathExists readDir substring;
  validator = import ./lib.nix;
  systems = [ "x86_64-linux" "aarch64-linux" ];
  genAttrs = names: f: listToAttrs (map (n: { name = n; value = f n; }) names);

  # The apps, each one vmctl command with the seed's argument order. They act on the fleet
  # checkout they are run in (vmctl walks up from the working directory, or VMCTL_FLEET), never
  # on the read-only copy in the Nix store.
  appsFor = pkgs: vmctlPkg:
    let
      app = name: text: {
        type = "app";
        program = "${pkgs.writeShellScriptBin name text}/bin/${name}";
      };
      bin = "${vmctlPkg}/bin";
    in
    {
      # nix run .#provision-vm -- NAME [--dry-run …]
      provision-vm = app "provision-vm" ''exec ${bin}/vmctl provision "$@"'';
      # nix run .#post-provision-vm -- NAME IP VMID
      post-provision-vm = app "post-provision-vm" ''exec ${bin}/vmctl post-provision "$@"'';
      # nix run .#destroy-vm -- NAME --confirm NAME
      destroy-vm = app "destroy-vm" ''exec ${bin}/vmctl destroy "$@"'';
      # nix run .#proxmox-ops -- list | status VMID | …
      proxmox-ops = app "proxmox-ops" ''exec ${bin}/vmctl ops "$@"'';
      # nix run .#vmlint -- [FILE…]
      vmlint = app "vmlint" ''exec ${bin}/vmlint "$@"'';
      default = app "vmctl" ''exec ${bin}/vmctl "$@"'';
    };

  # The checks of a fleet at `root`: the pure-Nix structural rules at evaluation time, then the
  # full rule set by vmlint itself in a build whose log holds its diagnostics.
  checksFor = { pkgs, vmctlPkg, root, name ? "fleet" }: {
    "${name}-structure" = assert validator.check { inherit root; };
      pkgs.runCommand "${name}-structure" { } "echo 'nix/lib.nix: no findings' > $out";
    "${name}-vmlint" = pkgs.runCommand "${name}-vmlint" { nativeBuildInputs = [ vmctlPkg ]; } ''
      cd ${root}
      # No Nix inside the build: a value only Nix could evaluate is reported (NX002), not guessed.
      vmlint --no-nix --color never --deny-warnings . > $out 2>&1 || { cat $out; exit 1; }
      cat $out
    '';
  };

  # Every managed VM whose hosts/<nixosConfig or name>/ exists, as a NixOS configuration with the
  # guest module, named as `vmctl provision` installs it (`nixos-anywhere --flake .#<config>`).
  nixosConfigurationsFor = { root, system ? "x86_64-linux", modules ? [ ], specialArgs ? { } }:
    let
      defs = import (root + "/vms/definitions.nix");
      settings = defs.settings or { };
      hostsDir = let d = settings.hostsDir or "hosts"; in if isString d then root + "/${d}" else d;
      managed = if isAttrs (defs.managed or null) then defs.managed else { };
      names = filter (n: substring 0 1 n != "_" && isAttrs managed.${n}) (attrNames managed);
      configOf = n: if isString (managed.${n}.nixosConfig or null) then managed.${n}.nixosConfig else n;
      dirs = if pathExists hostsDir then readDir hostsDir else { };
      withDir = filter (n: (dirs.${configOf n} or null) == "directory") names;
      hostModule = dir:
        let p = hostsDir + "/${dir}"; in
        if pathExists (p + "/default.nix") then p else p + "/configuration.nix";
    in
    listToAttrs (map
      (n: {
        name = configOf n;
        value = nixpkgs.lib.nixosSystem {
          inherit system specialArgs;
          modules = [ vmctl.nixosModules.proxmox-guest (hostModule (configOf n)) ] ++ modules;
        };
      })
      withDir);

  # What a fleet's flake returns: `outputs = inputs: vmctl.lib.mkFleet { self = inputs.self; };`
  # (or merge its attributes into your own outputs).
  mkFleet = { self, root ? self, systems ? [ "x86_64-linux" "aarch64-linux" ], nixosSystem ? "x86_64-linux", modules ? [ ], specialArgs ? { }, pkgsFor ? (system: nixpkgs.legacyPackages.${system}) }:
    {
      apps = genAttrs systems (system: appsFor (pkgsFor system) vmctl.packages.${system}.vmctl);
      checks = genAttrs systems (system: checksFor { pkgs = pkgsFor system; vmctlPkg = vmctl.packages.${system}.vmctl; inherit root; });
      nixosConfigurations = nixosConfigurationsFor { inherit root modules specialArgs; system = nixosSystem; };
    };
in
{
  inherit appsFor checksFor nixosConfigurationsFor mkFleet systems;
}
