# STAND-IN (vmctl tests only): the few nixpkgs `lib` functions vmctl's flake calls.
{ stub }:
let
  inherit (builtins) attrNames concatMap foldl' functionArgs intersectAttrs isAttrs isFunction isList isPath isString listToAttrs;
  recursiveMerge = a: b:
    if isAttrs a && isAttrs b && !(a ? type && a.type == "derivation") then
      foldl' (acc: n: acc // { ${n} = if acc ? ${n} then recursiveMerge acc.${n} b.${n} else b.${n}; }) a (attrNames b)
    else if isList a && isList b then a ++ b
    else b;
  # Calls a module function with the arguments it names, as the real module system does.
  apply = args: m:
    let v = if isPath m || isString m then import m else m;
    in if isFunction v then v (intersectAttrs (functionArgs v) args // (if (functionArgs v) == { } then args else { })) else v;
in
rec {
  genAttrs = names: f: listToAttrs (map (n: { name = n; value = f n; }) names);
  mkDefault = v: v;
  mkForce = v: v;
  mkIf = cond: v: if cond then v else { };
  mkMerge = foldl' recursiveMerge { };
  optionalAttrs = cond: v: if cond then v else { };
  makeBinPath = pkgs: builtins.concatStringsSep ":" (map (p: "${p}/bin") pkgs);
  getExe = p: "${p}/bin/${p.meta.mainProgram or p.pname or p.name}";
  inherit recursiveMerge;

  # A NixOS system, as far as evaluation goes: every module (and what it imports) is called
  # with { config, lib, pkgs, modulesPath, options } // specialArgs, and the definitions are
  # merged (sets recursively, lists appended, otherwise the later one). No option is declared or
  # type-checked. `config.system.build.toplevel` and `.VMA` build a text file naming the system.
  nixosSystem = { system ? "x86_64-linux", modules, specialArgs ? { } }:
    let
      pkgs = stub.legacyPackages.${system};
      args = { inherit config pkgs; lib = stub.lib; modulesPath = "${stub}/nixos/modules"; options = { }; } // specialArgs;
      collect = ms: concatMap (m:
        let r = apply args m;
        in [ (if r ? config then r.config else removeAttrs r [ "imports" "options" ]) ] ++ collect (r.imports or [ ])) ms;
      merged = mkMerge (collect modules);
      name = merged.networking.hostName or "nixos";
      build = what: pkgs.runCommand "stand-in-nixos-${what}-${name}" { } ''
        echo "STAND-IN ${what} of ${name}: not a NixOS system (tests/nix/nixpkgs-stub)" > $out
      '';
      config = merged // { system = (merged.system or { }) // { build = { toplevel = build "system"; VMA = build "vma"; }; }; };
    in
    { inherit config pkgs; _type = "configuration"; };
}
