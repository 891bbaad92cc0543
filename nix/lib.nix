# The structural rules of vmlint in pure Nix (builtins only, no nixpkgs), for evaluation-time
# checks in a fleet's flake and for anyone with plain `nix-instantiate`:
#
#   (import ./nix/lib.nix).validate { root = ./.; }   # the findings, a list of
#                                                       # { code; severity; file; line; column; message; }
#   (import ./nix/lib.nix).check { root = ./.; }      # true, or throws with every finding
#
# Codes, severities and locations are vmlint's (a differential test in tests/it/flake_lib.rs
# compares the two on every fixture of the covered codes). Covered:
#   DF001 missing field, DF002 wrong type, VM001 duplicate VMID, VM002 VMID out of bounds,
#   VM003 VMID outside the declared ranges, VM007 imported VM not readonly, VM008 managed VM
#   without hosts/<nixosConfig>/, VM009 empty or overlapping VMID range, VM015 a `node` that is
#   not a Proxmox node name.
# Everything else (hosts.nix keys, .sops.yaml, secrets, unknown fields, …) is the derivation
# check's: it runs vmlint itself.
let
  inherit (builtins)
    attrNames concatLists concatStringsSep elemAt filter foldl' genList head isAttrs isBool isInt
    isList isPath isString length listToAttrs match pathExists readDir readFile replaceStrings
    sort stringLength substring tail toString typeOf unsafeGetAttrPos;

  # ---------------------------------------------------------------- locations in the source
  # unsafeGetAttrPos gives the start of the attribute path an attribute was written in (for
  # `managed.web = …` both `managed` and `web` are at `managed`), in bytes. vmlint points at the
  # attribute's own name, or at its value, in Unicode scalar values: the scanner below reads the
  # source from Nix's position to get there.

  # The 64 UTF-8 continuation bytes (0x80–0xBF): the second bytes of U+0400–U+043F.
  cyrillic = "ЀЁЂЃЄЅІЇЈЉЊЋЌЍЎЏАБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯабвгдежзийклмноп";
  continuation = listToAttrs (genList (i: { name = substring (2 * i + 1) 1 cyrillic; value = true; }) 64);
  # Characters (not bytes) in `s`.
  charCount = s:
    foldl' (n: i: if continuation ? ${substring i 1 s} then n else n + 1) 0
      (genList (i: i) (stringLength s));

  lineStarts = text:
    let lines = filter isString (builtins.split "\n" text);
    in foldl' (acc: l: acc ++ [ (elemAt acc (length acc - 1) + stringLength l + 1) ]) [ 0 ] lines;

  ch = text: o: substring o 1 text;
  isSpace = c: c == " " || c == "\t" || c == "\r" || c == "\n";
  isIdent = c: c != "" && match "[A-Za-z0-9_'-]" c != null;

  # A scan state: byte offset `o`, 1-based `line`, the offset its line starts at `ls`.
  step = text: st:
    if ch text st.o == "\n" then { o = st.o + 1; line = st.line + 1; ls = st.o + 1; }
    else st // { o = st.o + 1; };
  skipWhile = text: pred: st: if pred (ch text st.o) then skipWhile text pred (step text st) else st;
  skipBlockComment = text: st:
    if ch text st.o == "" then st
    else if ch text st.o == "*" && ch text (st.o + 1) == "/" then step text (step text st)
    else skipBlockComment text (step text st);
  # Skips white space and comments.
  skipWs = text: st:
    let c = ch text st.o; in
    if isSpace c then skipWs text (step text st)
    else if c == "#" then skipWs text (skipWhile text (c: c != "\n" && c != "") st)
    else if c == "/" && ch text (st.o + 1) == "*" then skipWs text (skipBlockComment text (step text (step text st)))
    else st;
  skipString = text: st:
    let c = ch text st.o; in
    if c == "" || c == "\"" then step text st
    else if c == "\\" then skipString text (step text (step text st))
    else skipString text (step text st);
  # One attribute-path component at `st`: { name; start; end; }, or null.
  component = text: st:
    let c = ch text st.o; in
    if c == "\"" then
      let end = skipString text (step text st);
      in { name = substring (st.o + 1) (end.o - st.o - 2) text; start = st; inherit end; }
    else if isIdent c then
      let end = skipWhile text isIdent st;
      in { name = substring st.o (end.o - st.o) text; start = st; inherit end; }
    else null;
  # The components of the attribute path at `st`.
  components = text: st:
    let
      first = component text st;
      more = acc: last:
        let dot = skipWs text last.end; in
        if ch text dot.o != "." then acc
        else
          let next = component text (skipWs text (step text dot));
          in if next == null then acc else more (acc ++ [ next ]) next;
    in if first == null then [ ] else more [ first ] first;

  lastN = n: xs: genList (i: elemAt xs (length xs - n + i)) n;
  take = n: xs: genList (i: elemAt xs i) n;

  startState = text: line:
    { o = elemAt (lineStarts text) (line - 1); inherit line; ls = elemAt (lineStarts text) (line - 1); };
  locOf = root: text: file: st: {
    file = relative root file;
    line = st.line;
    column = charCount (substring st.ls (st.o - st.ls) text) + 1;
  };

  # Where attribute `name` of the set at `path` is written: its name (`what = "key"`) or its
  # value (`what = "value"`).
  attrLoc = root: what: path: set: name:
    let
      pos = unsafeGetAttrPos name set;
      text = readFile pos.file;
      st0 = (startState text pos.line) // { };
      st = st0 // { o = st0.o + byteOffset text st0 pos.column; };
      comps = components text st;
      n = length comps;
      names = map (c: c.name) comps;
      fits = i: elemAt names i == name && i <= length path && take i names == lastN i path;
      found = filter fits (genList (i: i) n);
      i = if found == [ ] then null else head found;
      comp = elemAt comps i;
      afterName = skipWs text comp.end;
      value = skipWs text (step text afterName);
      at =
        if i == null then st
        else if what == "value" && i == n - 1 && ch text afterName.o == "=" then value
        else comp.start;
    in
    if pos == null then null else locOf root text pos.file at;
  # Nix's columns count bytes already; the column as a byte offset from the line start.
  byteOffset = text: st: column: column - 1;

  # The start of the file's top expression (where vmlint puts what the whole file lacks).
  topLoc = root: file:
    let text = readFile file;
    in locOf root text file (skipWs text { o = 0; line = 1; ls = 0; });

  relative = root: file:
    let
      r = toString root + "/";
      f = toString file;
    in if substring 0 (stringLength r) f == r then substring (stringLength r) (stringLength f) f else f;

  # ---------------------------------------------------------------- types
  describeType = v:
    {
      int = "an integer"; string = "a string"; bool = "a Boolean"; set = "an attribute set";
      list = "a list"; null = "null"; float = "a float"; lambda = "a function"; path = "a path";
    }.${typeOf v} or (typeOf v);
  types = {
    int = { test = isInt; describe = "an integer"; };
    str = { test = isString; describe = "a string"; };
    bool = { test = isBool; describe = "a Boolean (`true` or `false`)"; };
    attrs = { test = isAttrs; describe = "an attribute set"; };
    strList = { test = v: isList v && builtins.all isString v; describe = "a list of strings"; };
    strOrPath = { test = v: isString v || isPath v; describe = "a string"; };
  };

  severities = {
    DF001 = "error"; DF002 = "error"; VM001 = "error"; VM002 = "error"; VM003 = "warning";
    VM007 = "warning"; VM008 = "warning"; VM009 = "error"; VM015 = "error";
  };
  finding = code: loc: message:
    if loc == null then [ ]
    else [ ({ inherit code message; severity = severities.${code}; } // loc) ];

  # ---------------------------------------------------------------- the rules
  validateDefinitions = { root, file, hostsDirOverride ? null }:
    let
      top = import file;
      L = attrLoc root;
      # Required and typed fields of the set at `path` (described as `context`).
      fieldsOf = { path, set, context, keyLoc, required ? { }, optional ? { } }:
        concatLists (map
          (f:
            if !(set ? ${f}) then
              finding "DF001" keyLoc "${context} has no `${f}`"
            else [ ])
          (attrNames required))
        ++ concatLists (map
          (f:
            let ty = (required // optional).${f}; in
            if set ? ${f} && !(ty.test set.${f}) then
              finding "DF002" (L "value" path set f)
                "`${f}` of ${context} is ${describeType set.${f}}, expected ${ty.describe}"
            else [ ])
          (attrNames (required // optional)));
      topTypes = { proxmox = types.attrs; template = types.attrs; imported = types.attrs; managed = types.attrs; vmidRanges = types.attrs; settings = types.attrs; snapshots = types.attrs; backups = types.attrs; };
      topFindings = fieldsOf {
        path = [ ]; set = top; context = "definitions.nix"; keyLoc = topLoc root file;
        required = { proxmox = types.attrs; };
        optional = removeAttrs topTypes [ "proxmox" ];
      };
      table = name: if top ? ${name} && isAttrs top.${name} then top.${name} else { };
      entries = name: filter (n: substring 0 1 n != "_") (attrNames (table name));

      proxmox = if top ? proxmox && isAttrs top.proxmox then
        fieldsOf {
          path = [ "proxmox" ]; set = top.proxmox; context = "proxmox";
          keyLoc = L "key" [ ] top "proxmox";
          required = { host = types.str; };
          optional = {
            node = types.str; user = types.str; port = types.int; storage = types.str;
            defaultStorage = types.str; bridge = types.str; hostKey = types.str;
          };
        } else [ ];

      template = if top ? template && isAttrs top.template then
        fieldsOf {
          path = [ "template" ]; set = top.template; context = "template";
          keyLoc = L "key" [ ] top "template";
          required = { vmid = types.int; name = types.str; };
          optional = { readonly = types.bool; storage = types.str; node = types.str; };
        } else [ ];

      vmFindings = kind: name:
        let
          set = (table kind).${name};
          context = "${kind} VM `${name}`";
          keyLoc = L "key" [ kind ] (table kind) name;
          common = {
            readonly = types.bool; nixosConfig = types.str; hostname = types.str;
            sshAlias = types.str; sopsRules = types.strList;
          };
        in
        if !isAttrs set then
          finding "DF002" (L "value" [ kind ] (table kind) name)
            "`${name}` of ${context} is ${describeType set}, expected an attribute set"
        else if kind == "imported" then
          fieldsOf { path = [ kind name ]; inherit set context keyLoc; required = { vmid = types.int; }; optional = common; }
        else
          fieldsOf {
            path = [ kind name ]; inherit set context keyLoc;
            required = { vmid = types.int; cores = types.int; memory = types.int; disk = types.str; };
            optional = common // {
              storage = types.str; node = types.str; purpose = types.str; description = types.str;
              status = types.str; services = types.strList; tags = types.strList; network = types.attrs;
            };
          }
          ++ (if set ? network && isAttrs set.network then
            fieldsOf {
              path = [ kind name "network" ]; set = set.network; context = "network of `${name}`";
              keyLoc = null;
              optional = { bridge = types.str; vlan = types.int; ip = types.str; gateway = types.str; mac = types.str; };
            } else [ ]);

      vmTables = concatLists (map (kind: concatLists (map (vmFindings kind) (entries kind))) [ "imported" "managed" ]);

      # Every VM with an integer VMID: { name; kind; vmid; loc; sortKey; }.
      vmOf = kind: path: set: name: displayName:
        if isAttrs set && set ? vmid && isInt set.vmid then [{
          inherit kind; name = displayName; vmid = set.vmid;
          loc = L "value" path set "vmid";
        }] else [ ];
      templateName = t: if t ? name && isString t.name then t.name else "template";
      vms =
        (if top ? template && isAttrs top.template then vmOf "template" [ "template" ] top.template "vmid" (templateName top.template) else [ ])
        ++ concatLists (map (kind: concatLists (map (n: vmOf kind [ kind n ] (table kind).${n} n n) (entries kind))) [ "imported" "managed" ]);
      before = a: b: a.loc.line < b.loc.line || (a.loc.line == b.loc.line && a.loc.column < b.loc.column);
      vmsInOrder = sort before vms;

      duplicates = (foldl'
        (acc: vm:
          let key = toString vm.vmid; in
          if acc.seen ? ${key} then acc // {
            out = acc.out ++ finding "VM001" vm.loc "VMID ${key} of `${vm.name}` is already used by `${acc.seen.${key}}`";
          } else acc // { seen = acc.seen // { ${key} = vm.name; }; })
        { seen = { }; out = [ ]; }
        vmsInOrder).out;

      outOfBounds = id: id < 100 || id > 999999999;
      bounds = concatLists (map
        (vm: if outOfBounds vm.vmid then finding "VM002" vm.loc "VMID ${toString vm.vmid} of `${vm.name}` is outside 100–999999999" else [ ])
        vms);

      rangeNames = entries "vmidRanges";
      rangeSet = table "vmidRanges";
      rangeFindings = concatLists (map
        (name:
          let
            r = rangeSet.${name};
            context = "VMID range `${name}`";
          in
          if !isAttrs r then
            finding "DF002" (L "value" [ "vmidRanges" ] rangeSet name) "`${name}` of ${context} is ${describeType r}, expected an attribute set"
          else
            fieldsOf {
              path = [ "vmidRanges" name ]; set = r; inherit context;
              keyLoc = L "key" [ "vmidRanges" ] rangeSet name;
              required = { start = types.int; end = types.int; };
              optional = { description = types.str; };
            }
            ++ concatLists (map
              (field:
                if r ? ${field} && isInt r.${field} && outOfBounds r.${field} then
                  finding "VM002" (L "value" [ "vmidRanges" name ] r field)
                    "`${field}` ${toString r.${field}} of VMID range `${name}` is outside 100–999999999"
                else [ ])
              [ "start" "end" ]))
        rangeNames);
      # The ranges vmlint keeps: integer bounds that fit an unsigned 32-bit number.
      fitsU32 = v: isInt v && v >= 0 && v <= 4294967295;
      ranges = map
        (name: { inherit name; inherit (rangeSet.${name}) start end; loc = L "key" [ "vmidRanges" ] rangeSet name; })
        (filter (n: isAttrs rangeSet.${n} && fitsU32 (rangeSet.${n}.start or null) && fitsU32 (rangeSet.${n}.end or null)) rangeNames);
      rangesInOrder = sort before ranges;
      invalidRanges = concatLists (genList
        (i:
          let r = elemAt rangesInOrder i; in
          if r.start > r.end then
            finding "VM009" r.loc "VMID range `${r.name}` starts at ${toString r.start} but ends at ${toString r.end}"
          else concatLists (map
            (o:
              if o.start <= o.end && r.start <= o.end && o.start <= r.end then
                finding "VM009" r.loc "VMID range `${r.name}` (${toString r.start}–${toString r.end}) overlaps `${o.name}` (${toString o.start}–${toString o.end})"
              else [ ])
            (take i rangesInOrder)))
        (length rangesInOrder));

      templateRanges = filter (r: match ".*template.*" (toLowerAscii r.name) != null) ranges;
      outsideRanges = if ranges == [ ] then [ ] else concatLists (map
        (vm:
          let
            isTemplate = vm.kind == "template" && templateRanges != [ ];
            candidates = if isTemplate then templateRanges else ranges;
            inside = builtins.any (r: r.start <= vm.vmid && vm.vmid <= r.end) candidates;
            what = if isTemplate then "any template range" else "every declared VMID range";
          in
          if inside then [ ] else finding "VM003" vm.loc "VMID ${toString vm.vmid} of `${vm.name}` is outside ${what}")
        vms);

      importedReadonly = concatLists (map
        (name:
          let set = (table "imported").${name}; in
          if !isAttrs set then [ ]
          else if !(set ? readonly) then
            finding "VM007" (L "key" [ "imported" ] (table "imported") name) "imported VM `${name}` is not marked `readonly = true`"
          else if set.readonly == true then [ ]
          else finding "VM007" (L "value" [ "imported" name ] set "readonly") "imported VM `${name}` is not marked `readonly = true`")
        (entries "imported"));

      settings = if top ? settings && isAttrs top.settings then top.settings else { };
      settingFindings = fieldsOf {
        path = [ "settings" ]; set = settings; context = "settings"; keyLoc = null;
        optional = listToAttrs (map (n: { name = n; value = types.strOrPath; })
          [ "hostsFile" "sopsConfig" "secretsDir" "hostsDir" "docsFile" "templateDir" ]);
      };
      hostsDirSetting = if settings ? hostsDir && (isString settings.hostsDir || isPath settings.hostsDir) then settings.hostsDir else "hosts";
      hostsDir =
        if hostsDirOverride != null then hostsDirOverride
        else if isPath hostsDirSetting then hostsDirSetting
        else if substring 0 1 hostsDirSetting == "/" then /. + hostsDirSetting
        else root + "/${hostsDirSetting}";
      hostsDirName = if isPath hostsDirSetting then toString hostsDirSetting else hostsDirSetting;
      hostDirs =
        if pathExists hostsDir
        then let d = readDir hostsDir; in filter (n: d.${n} == "directory") (attrNames d)
        else [ ];
      badComponent = s: s == "" || substring 0 1 s == "/" || s == "." || s == ".." || match ".*[/\n].*" s != null;
      missingHostDirs = concatLists (map
        (name:
          let
            set = (table "managed").${name};
            hasConfig = isAttrs set && set ? nixosConfig && isString set.nixosConfig;
            dir = if hasConfig then set.nixosConfig else name;
          in
          if !isAttrs set || badComponent dir || builtins.elem dir hostDirs then [ ]
          else finding "VM008"
            (if hasConfig then L "value" [ "managed" name ] set "nixosConfig" else L "key" [ "managed" ] (table "managed") name)
            "managed VM `${name}` has no `${hostsDirName}/${dir}/` directory")
        (entries "managed"));

      # pve-common's `pve-node` format, one DNS label (as vmctl's NODE arguments).
      isNodeName = s: stringLength s <= 63 && match "[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?" s != null;
      nodeFinding = what: path: set:
        if isAttrs set && set ? node && isString set.node && !(isNodeName set.node) then
          finding "VM015" (L "value" path set "node")
            "${what} `${set.node}` is not a Proxmox node name: use letters, digits and inner hyphens (one DNS label: no dots, at most 63 characters), like `pve2`"
        else [ ];
      invalidNodes =
        nodeFinding "`proxmox.node`" [ "proxmox" ] (top.proxmox or null)
        ++ nodeFinding "`node` of the template" [ "template" ] (top.template or null)
        ++ concatLists (map
          (name: nodeFinding "`node` of managed VM `${name}`" [ "managed" name ] (table "managed").${name})
          (entries "managed"));

      shapeOk = isAttrs top && builtins.any (f: top ? ${f}) (attrNames topTypes);
    in
    if !shapeOk then [ ]
    else topFindings ++ proxmox ++ template ++ vmTables ++ duplicates ++ bounds ++ rangeFindings
      ++ invalidRanges ++ outsideRanges ++ importedReadonly ++ settingFindings ++ missingHostDirs
      ++ invalidNodes;

  toLowerAscii = s:
    replaceStrings
      (map (c: c) [ "A" "B" "C" "D" "E" "F" "G" "H" "I" "J" "K" "L" "M" "N" "O" "P" "Q" "R" "S" "T" "U" "V" "W" "X" "Y" "Z" ])
      [ "a" "b" "c" "d" "e" "f" "g" "h" "i" "j" "k" "l" "m" "n" "o" "p" "q" "r" "s" "t" "u" "v" "w" "x" "y" "z" ]
      s;

  order = a: b:
    if a.file != b.file then a.file < b.file
    else if a.line != b.line then a.line < b.line
    else if a.column != b.column then a.column < b.column
    else a.code < b.code;

  # `file:line:column: severity[CODE]: message`, one line per finding.
  format = f: "${f.file}:${toString f.line}:${toString f.column}: ${f.severity}[${f.code}]: ${f.message}";
in
rec {
  inherit format;

  # The findings on the fleet at `root` (a path), sorted by file, line, column and code.
  # `definitions` defaults to root + "/vms/definitions.nix".
  validate = { root, definitions ? root + "/vms/definitions.nix" }:
    if !pathExists definitions then
      throw "vmctl: ${toString definitions} does not exist: is ${toString root} a fleet (a directory holding vms/definitions.nix)?"
    else sort order (validateDefinitions { inherit root; file = definitions; });

  # `true` when the fleet has no errors and no warnings (as `vmlint --deny-warnings`); else it
  # throws with every finding, one `file:line:column: severity[CODE]: message` a line.
  check = args:
    let
      found = filter (f: f.severity != "info") (validate args);
    in
    if found == [ ] then true
    else throw ("vmctl: the fleet has ${toString (length found)} finding(s):\n"
      + concatStringsSep "\n" (map format found)
      + "\nrun `vmlint --deny-warnings` in the fleet for the full rule set and the fixes");
}
