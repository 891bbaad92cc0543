# STAND-IN FOR NIXPKGS, FOR vmctl'S TESTS ONLY. It is not nixpkgs and builds nothing real.
#
# Debian's Nix 2.8 on the test machine cannot fetch or evaluate nixpkgs, so vmctl's flake
# tests pass this flake instead (`--override-input nixpkgs path:…/nixpkgs-stub`, or
# `--override-input vmctl/nixpkgs …` in a fleet's flake). It has the few functions vmctl's
# flake calls, with the same names and argument shapes, and nothing else:
#
#   lib.genAttrs, lib.nixosSystem (a tiny module system: imports, function modules, merged
#   definitions; no option declarations, types or priorities), lib.mkDefault/mkForce/mkIf/
#   mkMerge/optionalAttrs/makeBinPath/getExe;
#   legacyPackages.<system>.{rustPlatform.buildRustPackage, runCommand, mkShell,
#   writeShellScriptBin, nixfmt-rfc-style, cargo, rustc, clippy, rustfmt, nix, sops, age,
#   openssh, git, nixos-anywhere, makeWrapper}.
#
# rustPlatform.buildRustPackage does NOT build: it wraps the binaries cargo already built in the
# checkout's target/ directory, named by `local.nix` next to this file, which the tests write:
#   { cargoTarget = "/abs/path/to/target/debug"; }
# The tool packages (sops, openssh, …) are empty placeholders; NixOS systems build a text file.
# docs/flake.md lists what only a machine with real nixpkgs can check.
{
  description = "STAND-IN for nixpkgs (vmctl tests only): not nixpkgs";

  outputs = { self }:
    let
      lib = import ./lib.nix { stub = self; };
    in
    {
      inherit lib;
      legacyPackages = lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (system: import ./pkgs.nix { inherit system lib; stub = self; });
      outPath = ./.;
    };
}
