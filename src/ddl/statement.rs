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
    text: Rc<OwnText>,
    started: Instant,
}

/// A statement's own text, cut out and converted only when asked for (by a trigger's context
/// or a failure): most statements are asked for neither.
struct OwnText {
    statement: Statement,
    text: OnceCell<String>,
}

impl OwnText {
    fn get(&self) -> &str {
        self.text.get_or_init(|| own_text(&self.statement))
    }
}

thread_local! {
    static RUNNING: RefCell<Vec<Entry>> = const { RefCell::new(Vec::new()) };
}

/// A statement on the stack while it runs. Its query string outlives it: it is popped before the
/// ProcessUtility hook that pushed it returns.
pub struct Running {
    text: Rc<OwnText>,
}

impl Running {
    pub fn start(statement: &Statement) -> Running {
        let text = Rc::new(OwnText { statement: *statement, text: OnceCell::new() });
        RUNNING.with_borrow_mut(|running| running.push(Entry { text: Rc::clone(&text), started: Instant::now() }));
        Running { text }
    }

    pub fn text(&self) -> &str {
        self.text.get()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.with_borrow_mut(Vec::pop);
    }
}

/// The innermost running statement's text and how long it has run, in milliseconds.
pub fn innermost() -> Option<(String, f64)> {
    RUNNING.with_borrow(|running| {
        running.last().map(|entry| (entry.text.get().to_owned(), entry.started.elapsed().as_secs_f64() * 1000.0))
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
