//! `vmctl lsp`: a language server (over lsp-server and lsp-types, as rust-analyzer) for a
//! fleet's definitions.nix, hosts.nix and .sops.yaml. It pushes the linter's diagnostics on
//! open and change, linted with the unsaved text of every open buffer, offers the rules' fixes
//! as code actions, and answers hover, go to definition, completion and document symbols. It
//! never writes a file: edits reach disk only through the editor, when the user accepts them.

mod actions;
mod convert;
mod features;
mod state;

use lsp_server::{Connection, ErrorCode, Message, Notification, Request, RequestId, Response};
use lsp_types::notification::{
    DidChangeTextDocument, DidCloseTextDocument, DidOpenTextDocument, Notification as _,
    PublishDiagnostics,
};
use lsp_types::request::{
    CodeActionRequest, Completion, DocumentSymbolRequest, GotoDefinition, HoverRequest,
    Request as _,
};
use lsp_types::{
    CodeActionProviderCapability, CompletionOptions, HoverProviderCapability, OneOf,
    ServerCapabilities, TextDocumentSyncCapability, TextDocumentSyncKind,
};
use serde::de::DeserializeOwned;

pub use convert::{Lines, OutOfRange};
use state::State;

use crate::exec::lint::NixFallback;

/// What the server offers.
pub fn capabilities() -> ServerCapabilities {
    ServerCapabilities {
        text_document_sync: Some(TextDocumentSyncCapability::Kind(
            TextDocumentSyncKind::INCREMENTAL,
        )),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![".".into()]),
            ..Default::default()
        }),
        document_symbol_provider: Some(OneOf::Left(true)),
        code_action_provider: Some(CodeActionProviderCapability::Simple(true)),
        ..Default::default()
    }
}

/// Why the server stopped other than by `shutdown` and `exit`.
#[derive(Debug, thiserror::Error)]
pub enum LspError {
    #[error("the language client broke the protocol: {0}")]
    Protocol(lsp_server::ProtocolError),
    #[error("the connection to the language client closed before it shut the server down")]
    Closed,
    #[error("the language client sent `exit` without `shutdown` first")]
    NoShutdown,
}

impl From<lsp_server::ProtocolError> for LspError {
    fn from(e: lsp_server::ProtocolError) -> Self {
        if e.channel_is_disconnected() {
            LspError::Closed
        } else {
            LspError::Protocol(e)
        }
    }
}

/// Runs the server on `conn` until the client shuts it down: the `initialize` handshake, then
/// every message. Nothing a client sends makes it panic: a bad request gets an error response,
/// a bad notification a log message.
pub fn serve(conn: Connection, nix: NixFallback) -> Result<(), LspError> {
    let caps = serde_json::to_value(capabilities()).expect("capabilities serialize");
    let (id, _) = conn.initialize_start()?;
    conn.initialize_finish(
        id,
        serde_json::json!({
            "capabilities": caps,
            "serverInfo": { "name": "vmctl", "version": env!("VMCTL_VERSION") },
        }),
    )?;
    let mut state = State::new(nix);
    for msg in &conn.receiver {
        match msg {
            Message::Request(req) => {
                if conn.handle_shutdown(&req)? {
                    return Ok(());
                }
                let resp = request(&mut state, req);
                send(&conn, Message::Response(resp))?;
            }
            // `exit` without `shutdown` first: stop, and say so (the protocol's exit code 1).
            Message::Notification(n) if n.method == "exit" => return Err(LspError::NoShutdown),
            Message::Notification(n) => {
                for out in notification(&mut state, n) {
                    send(&conn, out)?;
                }
            }
            Message::Response(_) => {}
        }
    }
    Ok(())
}

fn send(conn: &Connection, msg: Message) -> Result<(), LspError> {
    conn.sender.send(msg).map_err(|_| LspError::Closed)
}

fn params<P: DeserializeOwned>(value: serde_json::Value) -> Result<P, (ErrorCode, String)> {
    serde_json::from_value(value).map_err(|e| {
        (
            ErrorCode::InvalidParams,
            format!("malformed parameters: {e}"),
        )
    })
}

/// The answer to one request.
fn request(state: &mut State, req: Request) -> Response {
    let id: RequestId = req.id.clone();
    let result = match req.method.as_str() {
        HoverRequest::METHOD => params(req.params).and_then(|p| handlers::hover(state, p)),
        GotoDefinition::METHOD => params(req.params).and_then(|p| handlers::definition(state, p)),
        Completion::METHOD => params(req.params).and_then(|p| handlers::completion(state, p)),
        DocumentSymbolRequest::METHOD => {
            params(req.params).and_then(|p| handlers::symbols(state, p))
        }
        CodeActionRequest::METHOD => {
            params(req.params).and_then(|p| handlers::code_actions(state, p))
        }
        other => Err((
            ErrorCode::MethodNotFound,
            format!("vmctl lsp does not handle `{other}`"),
        )),
    };
    match result {
        Ok(value) => Response::new_ok(id, value),
        Err((code, message)) => Response::new_err(id, code as i32, message),
    }
}

/// A `window/logMessage` of an error the client should see in its log.
fn log(message: String) -> Message {
    Message::Notification(Notification::new(
        "window/logMessage".into(),
        serde_json::json!({ "type": 1, "message": format!("vmctl: {message}") }),
    ))
}

/// Handles one notification; returns what to send (diagnostics, log messages).
fn notification(state: &mut State, n: Notification) -> Vec<Message> {
    let result = match n.method.as_str() {
        DidOpenTextDocument::METHOD => params(n.params).map(|p| handlers::did_open(state, p)),
        DidChangeTextDocument::METHOD => params(n.params).map(|p| handlers::did_change(state, p)),
        DidCloseTextDocument::METHOD => params(n.params).map(|p| handlers::did_close(state, p)),
        // Everything else a client may send (didSave, $/cancelRequest, …) needs nothing.
        _ => Ok(Vec::new()),
    };
    match result {
        Ok(out) => out,
        Err((_, message)) => vec![log(format!("{}: {message}", n.method))],
    }
}

/// Diagnostics to publish, as messages.
fn publish(list: Vec<lsp_types::PublishDiagnosticsParams>) -> Vec<Message> {
    list.into_iter()
        .map(|p| {
            Message::Notification(Notification::new(
                PublishDiagnostics::METHOD.into(),
                serde_json::to_value(p).expect("diagnostics serialize"),
            ))
        })
        .collect()
}

mod handlers;
