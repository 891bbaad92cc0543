//! `vmctl lsp`: the language server on stdin/stdout (see docs/editors.md).

use super::Global;

/// Run the language server for editors, on stdin and stdout.
///
/// Serves a fleet's vms/definitions.nix, hosts.nix and .sops.yaml: diagnostics as you type
/// (with every open buffer's unsaved text), the rules' fixes as code actions, hover on a VM,
/// go to definition between a VM, its hosts.nix entry, hosts/NAME/ and its .sops.yaml
/// recipient, completion of field names and values, and the VMs as document symbols. It never
/// writes a file. Setups for Neovim, Helix, Emacs and VS Code are in docs/editors.md.
#[derive(Debug, clap::Args)]
pub struct LspArgs {
    /// Accepted for editors that pass it (VS Code's generic clients do); stdio is the only
    /// transport.
    #[arg(long)]
    pub stdio: bool,
}

pub fn run(_args: LspArgs, g: &Global) -> miette::Result<u8> {
    let nix = if g.ui.no_nix {
        crate::exec::lint::NixFallback::Off
    } else {
        crate::exec::lint::NixFallback::from_env()
    };
    let (conn, io) = lsp_server::Connection::stdio();
    let served = crate::lsp::serve(conn, nix);
    // The reader thread ends with stdin; the writer once every response is out.
    let joined = io.join();
    match (served, joined) {
        (Ok(()), Ok(())) => Ok(0),
        (Err(e), _) => Err(miette::miette!(
            help = "check the editor's LSP log; restart the server from the editor",
            "{e}"
        )),
        (_, Err(e)) => Err(miette::miette!(
            help = "check the editor's LSP log; restart the server from the editor",
            "the connection to the language client failed: {e}"
        )),
    }
}
