# The entry `vmctl hosts add NAME` writes into hosts.nix as `NAME = { … };`.
# Comments above and below the attribute set are documentation and are not copied.
# Placeholders go inside "…" strings (their values are escaped for Nix); see README.md.
{
  hostname = "@hostname@";
  sshAlias = "@ssh_alias@";
  publicKey = "@public_key@";
}
