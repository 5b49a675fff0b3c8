//! The DDL statements running in this backend, innermost last: what the hook saw of each (its own
//! text, cut out of a multi-statement string, and when it started), for the context the
//! dispatcher builds from inside PostgreSQL's firing, where only the whole query string is known.
//! An entry is popped when its [`Running`] is dropped, which always happens: errors come back to
//! the hook as values (`boundary::catching`), never by a longjmp over it.

use super::Statement;
use std::cell::{OnceCell, RefCell};
use std::ffi::CStr;
use std::rc::Rc;
use std::time::Instant;

struct Entry {
    text: Text,
    started: Instant,
}

/// A statement's own text, cut out and converted only when asked for (by a trigger's context
/// or a failure): most statements are asked for neither. Valid while its statement runs.
#[derive(Clone)]
pub struct Text(Rc<OwnText>);

struct OwnText {
    statement: Statement,
    text: OnceCell<String>,
}

impl Text {
    fn of(statement: Statement) -> Text {
        Text(Rc::new(OwnText { statement, text: OnceCell::new() }))
    }

    /// All of a query string (a statement that did not pass through the hook).
    ///
    /// The string must outlive the value: it is read when the text is first asked for.
    pub fn whole(query_string: *const std::ffi::c_char) -> Text {
        let node = std::ptr::null_mut();
        Text::of(Statement { node, query_string, location: 0, length: 0, subcommand: false })
    }

    pub fn get(&self) -> &str {
        self.0.text.get_or_init(|| own_text(&self.0.statement))
    }
}

impl std::fmt::Debug for Text {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_tuple("Text").field(&self.0.text.get()).finish()
    }
}

thread_local! {
    static RUNNING: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// A statement on the stack while it runs. Its query string outlives it: it is popped before the
/// ProcessUtility hook that pushed it returns.
pub struct Running {
    text: Text,
}

impl Running {
    pub fn start(statement: &Statement) -> Running {
        let text = Text::of(*statement);
        RUNNING.with_borrow_mut(|running| running.push(Entry { text: text.clone(), started: Instant::now() }));
        Running { text }
    }

    pub fn text(&self) -> &Text {
        &self.text
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.with_borrow_mut(Vec::pop);
    }
}

/// The innermost running statement's text and how long it has run, in milliseconds.
pub fn innermost() -> Option<(Text, f64)> {
    RUNNING.with_borrow(|running| {
        running.last().map(|entry| (entry.text.clone(), entry.started.elapsed().as_secs_f64() * 1000.0))
    })
}

/// This statement's own text: `stmt_location`/`stmt_len` cut it out of a multi-statement string
/// (a restore script sends many at once), and only that part is converted.
fn own_text(statement: &Statement) -> String {
    if statement.query_string.is_null() {
        return String::new();
    }
    // SAFETY: the query string is NUL-terminated and outlives the call; the offsets come from the
    // parser and are byte offsets into it.
    let full = unsafe { CStr::from_ptr(statement.query_string) }.to_bytes();
    let start = usize::try_from(statement.location).unwrap_or(0).min(full.len());
    let end = if statement.length > 0 { (start + statement.length as usize).min(full.len()) } else { full.len() };
    let text = String::from_utf8_lossy(&full[start..end]);
    text.trim().trim_end_matches(';').trim_end().to_owned()
}
