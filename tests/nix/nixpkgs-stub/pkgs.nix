# STAND-IN (vmctl tests only): the few nixpkgs packages and builders vmctl's flake calls.
# Builders run /bin/sh of the machine (the tests' nix.conf has `sandbox = false`).
{ system, lib, stub }:
let
  local = if builtins.pathExists ./local.nix then import ./local.nix else { };
  cargoTarget = local.cargoTarget or (throw
    "nixpkgs-stub: no local.nix: write { cargoTarget = \"/abs/target/debug\"; } next to the stub's flake.nix (the tests do)");
  binPath = inputs: lib.makeBinPath inputs + ":/usr/bin:/bin";
  runCommand = name: env: script: derivation ({
    inherit name system;
    builder = "/bin/sh";
    args = [ "-c" script ];
    PATH = binPath ((env.nativeBuildInputs or [ ]) ++ (env.buildInputs or [ ]));
  } // removeAttrs env [ "nativeBuildInputs" "buildInputs" "passthru" "meta" ]) // (env.passthru or { }) // { meta = env.meta or { }; };
  placeholder = name: runCommand "stand-in-${name}" { } "mkdir -p $out/bin";
in
{
  inherit runCommand;
  writeShellScriptBin = name: text: runCommand name { } ''
    mkdir -p $out/bin
    cat > $out/bin/${name} <<'STUB_EOF'
    #!/bin/sh
    ${text}
    STUB_EOF
    chmod +x $out/bin/${name}
  '' // { meta.mainProgram = name; };
  mkShell = { packages ? [ ], ... }@args: runCommand "stand-in-shell" { } "echo ${lib.makeBinPath packages} > $out";
  rustPlatform.buildRustPackage = { pname, version, ... }@args:
    runCommand "${pname}-${version}" { } ''
      mkdir -p $out/bin
      for b in vmctl vmlint; do
        printf '#!/bin/sh\n# STAND-IN: the cargo-built binary of the checkout, not a Nix build\nexec %s/%s "$@"\n' '${cargoTarget}' "$b" > $out/bin/$b
        chmod +x $out/bin/$b
      done
    '' // { inherit pname version; meta.mainProgram = pname; };
  nixfmt-rfc-style = placeholder "nixfmt";
  makeWrapper = placeholder "makeWrapper";
} // lib.genAttrs [ "cargo" "rustc" "clippy" "rustfmt" "nix" "sops" "age" "openssh" "git" "nixos-anywhere" ] placeholder
