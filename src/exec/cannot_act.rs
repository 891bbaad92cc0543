//! The error of a command vmctl cannot act on: a file or directory it cannot read or write, no
//! fleet where one is needed. Its own type so the CLI tells it (exit 2) from a refusal (exit 1).

/// vmctl could not act at all (as opposed to refusing or failing an action): the message says
/// what it could not read, write or find, the help what to do next.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[error("{message}")]
pub struct CannotAct {
    pub message: String,
    #[help]
    pub help: Option<String>,
}

impl CannotAct {
    pub fn new(message: impl Into<String>) -> Self {
        CannotAct {
            message: message.into(),
            help: None,
        }
    }

    /// The same error with what to do next.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}
