//! One function per message: decoded parameters in, the result (or the diagnostics to push)
//! out. Errors are `(code, message)` pairs that become the response's error.

use lsp_server::{ErrorCode, Message};
use lsp_types::{
    CodeActionParams, CompletionParams, DidChangeTextDocumentParams, DidCloseTextDocumentParams,
    DidOpenTextDocumentParams, DocumentSymbolParams, GotoDefinitionParams, HoverParams,
    PublishDiagnosticsParams, TextDocumentPositionParams,
};
use serde_json::Value;

use super::convert::{path_of, Lines};
use super::state::{Buffer, State};
use super::{features, log, publish};

type Answer = Result<Value, (ErrorCode, String)>;

fn failed(message: String) -> (ErrorCode, String) {
    (ErrorCode::RequestFailed, message)
}

/// Re-lints the fleet of `path` and publishes the diagnostics of its open buffers; a file in no
/// fleet gets an empty list (and the reason in the log when `say_why`).
fn refresh(state: &mut State, path: &std::path::Path, say_why: bool) -> Vec<Message> {
    let Some(root) = State::root_of(path) else {
        let mut out = Vec::new();
        if let Some(uri) = super::convert::uri_of(path) {
            out = publish(vec![PublishDiagnosticsParams {
                uri,
                diagnostics: Vec::new(),
                version: None,
            }]);
        }
        if say_why {
            out.push(log(format!(
                "`{}` is in no fleet (no vms/definitions.nix above it): no diagnostics",
                path.display()
            )));
        }
        return out;
    };
    match state.relint(&root) {
        Ok(_) => publish(state.publications(&root)),
        Err(e) => {
            state.runs.remove(&root);
            let mut out = publish(state.publications(&root));
            out.push(log(e));
            out
        }
    }
}

pub fn did_open(state: &mut State, p: DidOpenTextDocumentParams) -> Vec<Message> {
    let Some(path) = path_of(&p.text_document.uri) else {
        return vec![log(format!(
            "`{}` is not a file: ignored",
            p.text_document.uri
        ))];
    };
    state.buffers.insert(
        path.clone(),
        Buffer {
            text: p.text_document.text,
            version: p.text_document.version,
        },
    );
    refresh(state, &path, true)
}

pub fn did_change(state: &mut State, p: DidChangeTextDocumentParams) -> Vec<Message> {
    let Some(path) = path_of(&p.text_document.uri) else {
        return Vec::new();
    };
    if let Err(e) = state.change(&path, p.text_document.version, p.content_changes) {
        return vec![log(e)];
    }
    refresh(state, &path, false)
}

pub fn did_close(state: &mut State, p: DidCloseTextDocumentParams) -> Vec<Message> {
    let Some(path) = path_of(&p.text_document.uri) else {
        return Vec::new();
    };
    state.buffers.remove(&path);
    let mut out = publish(vec![PublishDiagnosticsParams {
        uri: p.text_document.uri,
        diagnostics: Vec::new(),
        version: None,
    }]);
    // The others of its fleet now see the file as it is on disk.
    if let Some(root) = State::root_of(&path) {
        if state.buffers.keys().any(|p| p.starts_with(&root)) {
            out.extend(refresh(state, &path, false).into_iter().filter(|m| {
                !matches!(m, Message::Notification(n) if n.params.get("uri").and_then(Value::as_str) == Some(path_uri(&path).as_str()))
            }));
        } else {
            state.runs.remove(&root);
        }
    }
    out
}

fn path_uri(path: &std::path::Path) -> String {
    super::convert::uri_of(path)
        .map(|u| u.to_string())
        .unwrap_or_default()
}

/// The run, root, file and byte offset a position request is about.
fn locate(
    state: &mut State,
    p: &TextDocumentPositionParams,
) -> Result<(std::path::PathBuf, crate::syntax::FileId, usize), (ErrorCode, String)> {
    let (root, file) = state.run_for(&p.text_document.uri).map_err(failed)?;
    let text = state.runs[&root].fleet.db.text(file);
    let offset = Lines::new(text)
        .offset(p.position)
        .map_err(|e| (ErrorCode::InvalidParams, e.to_string()))?;
    Ok((root, file, offset))
}

fn json<T: serde::Serialize>(v: T) -> Answer {
    Ok(serde_json::to_value(v).expect("results serialize"))
}

pub fn hover(state: &mut State, p: HoverParams) -> Answer {
    let (root, file, offset) = locate(state, &p.text_document_position_params)?;
    let run = &state.runs[&root];
    let in_defs = run
        .fleet
        .definitions_file()
        .is_some_and(|(f, _)| f.file == file);
    json(
        in_defs
            .then(|| features::vm_at(run, offset))
            .flatten()
            .map(|vm| features::hover(run, vm)),
    )
}

pub fn definition(state: &mut State, p: GotoDefinitionParams) -> Answer {
    let (root, file, offset) = locate(state, &p.text_document_position_params)?;
    let found = features::definition(&state.runs[&root], &root, file, offset);
    json((!found.is_empty()).then_some(found))
}

pub fn completion(state: &mut State, p: CompletionParams) -> Answer {
    let (root, file, offset) = locate(state, &p.text_document_position)?;
    json(features::completion(&state.runs[&root], file, offset))
}

pub fn symbols(state: &mut State, p: DocumentSymbolParams) -> Answer {
    let (root, file) = state.run_for(&p.text_document.uri).map_err(failed)?;
    json(features::symbols(&state.runs[&root], file))
}

pub fn code_actions(state: &mut State, p: CodeActionParams) -> Answer {
    let (root, file) = state.run_for(&p.text_document.uri).map_err(failed)?;
    let run = &state.runs[&root];
    let lines = Lines::new(run.fleet.db.text(file));
    let bad = |e: super::OutOfRange| (ErrorCode::InvalidParams, e.to_string());
    let start = lines.offset(p.range.start).map_err(bad)?;
    let end = lines.offset(p.range.end).map_err(bad)?;
    let range = (start, end.max(start));
    let mut actions = features::code_actions(run, &p.text_document.uri, file, range);
    actions.extend(super::actions::sops_actions(run, &root, file, range));
    json(actions)
}
