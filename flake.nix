# vmctl as a flake: the package, the apps (`nix run .#provision-vm -- NAME`), the library a
# fleet's flake calls (`vmctl.lib.mkFleet`), the Proxmox guest module, the fleet template and
# the template VM's image. docs/flake.md explains each output and what is tested where.
{
  description = "vmctl: declarative NixOS VMs on Proxmox";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs = { self, nixpkgs }:
    let
      fleet = import ./nix/fleet.nix { vmctl = self; inherit nixpkgs; };
      forAllSystems = f: nixpkgs.lib.genAttrs fleet.systems (system: f system nixpkgs.legacyPackages.${system});
      version = (builtins.fromTOML (builtins.readFile ./Cargo.toml)).package.version;
      # This repository is itself a demo fleet: the fleet rules run on it like on any user's.
      demo = fleet.mkFleet { inherit self; };
    in
    {
      packages = forAllSystems (system: pkgs: rec {
        vmctl = pkgs.rustPlatform.buildRustPackage {
          pname = "vmctl";
          inherit version;
          src = self;
          cargoLock.lockFile = ./Cargo.lock;
          cargoBuildFlags = [ "--package" "vmctl" ];
          # The build sandbox has no network, no root, no sshd, sops or Nix store to talk to:
          # the integration tests (tests/it, which start real sshd, nix, sops and git) run in
          # CI (./scripts/test.sh); inside the Nix build only the unit tests run.
          cargoTestFlags = [ "--package" "vmctl" "--lib" ];
          nativeBuildInputs = [ pkgs.makeWrapper ];
          # vmctl starts ssh, git, sops, nix-instantiate and nixos-anywhere: found on PATH first,
          # these otherwise.
          postInstall = ''
            wrapProgram $out/bin/vmctl --suffix PATH : ${nixpkgs.lib.makeBinPath [ pkgs.openssh pkgs.git pkgs.sops pkgs.nix pkgs.nixos-anywhere ]}
          '';
          meta = {
            description = "Declarative NixOS VMs on Proxmox: lint, provision, operate";
            mainProgram = "vmctl";
          };
        };
        default = vmctl;
        # The template VM's disk image in Proxmox's VMA format (`vmctl template create` restores it).
        proxmox-template = (nixpkgs.lib.nixosSystem {
          inherit system;
          modules = [
            self.nixosModules.proxmox-guest
            "${nixpkgs}/nixos/modules/virtualisation/proxmox-image.nix"
            ({ ... }: {
              networking.hostName = "nixos-template";
              # Root logs in with the keys of the cloud-init drive only.
              users.users.root.openssh.authorizedKeys.keys = [ ];
              system.stateVersion = "24.11";
            })
          ];
        }).config.system.build.VMA;
      });

      apps = forAllSystems (system: pkgs: fleet.appsFor pkgs self.packages.${system}.vmctl);

      checks = forAllSystems (system: pkgs:
        let vmctl = self.packages.${system}.vmctl; in
        demo.checks.${system} // {
          # docs/machines.md matches vms/definitions.nix.
          docs = pkgs.runCommand "vmctl-docs-current" { nativeBuildInputs = [ vmctl ]; } ''
            cd ${self}
            vmctl --no-nix --color never docs --check > $out 2>&1 || { cat $out; exit 1; }
          '';
          # Every sops file is encrypted for exactly the recipients .sops.yaml gives it.
          secrets = pkgs.runCommand "vmctl-secrets-match" { nativeBuildInputs = [ vmctl ]; } ''
            cd ${self}
            vmctl --no-nix --color never secrets check > $out 2>&1 || { cat $out; exit 1; }
          '';
        });

      devShells = forAllSystems (system: pkgs: {
        default = pkgs.mkShell {
          packages = with pkgs; [ cargo rustc clippy rustfmt nix sops age openssh git nixos-anywhere ];
        };
      });

      formatter = forAllSystems (system: pkgs: pkgs.nixfmt-rfc-style);

      lib = import ./nix/lib.nix // { inherit (fleet) mkFleet; };

      nixosModules = rec {
        proxmox-guest = import ./nix/proxmox-guest.nix;
        default = proxmox-guest;
      };

      # The demo fleet's managed VMs that have hosts/<name>/ (the test-automation VM).
      inherit (demo) nixosConfigurations;

      templates.default = {
        path = ./templates/default;
        description = "A new vmctl fleet: vms/definitions.nix, hosts.nix, hosts-template/, .sops.yaml, docs/machines.md";
      };
    };
}
