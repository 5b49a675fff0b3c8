//! User-facing errors in PostgreSQL's style: an SQLSTATE, a lower-case message without a trailing
//! period, and a detail or hint where they help. Every refusal the extension makes goes through
//! [`Refusal::raise`], so the catalog API, the catalog triggers and the hooks report alike.

use pgrx::PgSqlErrorCode;
use pgrx::pg_sys::panic::ErrorReport;
use pgrx::prelude::PgLogLevel;

/// An error to report to the client, built up before it is raised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub code: PgSqlErrorCode,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl Refusal {
    pub fn new(code: PgSqlErrorCode, message: impl Into<String>) -> Self {
        Refusal { code, message: message.into(), detail: None, hint: None }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    fn report(self, level: PgLogLevel) {
        let mut report = ErrorReport::new(self.code, self.message, "login_trigger");
        if let Some(detail) = self.detail {
            report = report.set_detail(detail);
        }
        if let Some(hint) = self.hint {
            report = report.set_hint(hint);
        }
        report.report(level);
    }

    /// Raises the error: the current transaction (or, during connection start, the connection) is
    /// aborted and control never returns.
    pub fn raise(self) -> ! {
        self.report(PgLogLevel::ERROR);
        unreachable!("ereport(ERROR) returned")
    }
}

/// Writes a LOG line to the server log, leaving PostgreSQL alone to decide whether it is
/// emitted (pgrx's `log!` asks a pre-check first that drops it during authentication on 13).
pub fn log_line(message: impl Into<String>) {
    ErrorReport::new(PgSqlErrorCode::ERRCODE_SUCCESSFUL_COMPLETION, message.into(), "login_trigger")
        .report(PgLogLevel::LOG);
}

/// Shorthand for the common `Result` of validation code.
pub type Checked<T> = Result<T, Refusal>;

/// Raises the refusal of a failed check.
pub trait OrRaise<T> {
    fn or_raise(self) -> T;
}

impl<T> OrRaise<T> for Checked<T> {
    fn or_raise(self) -> T {
        match self {
            Ok(value) => value,
            Err(refusal) => refusal.raise(),
        }
    }
}
