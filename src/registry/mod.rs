//! The trigger registry: the catalog table `login_trigger.event_trigger`, the rules a row must
//! satisfy, the bookkeeping that keeps `pg_depend` and every backend's cache in step with it, and
//! the per-backend cache the hooks read.
//!
//! Accept/reject contract: a row is accepted only when its name is 1 to 63 bytes, its event is one
//! of [`Event::ALL`], its function exists, is a plain function owned by a superuser, takes no
//! arguments and returns `event_trigger` or `void`, its state is O/D/R/A, and its tag filter is
//! NULL or a non-empty list of command tags the event supports. The same check runs for the SQL
//! API, for direct writes by a superuser and for rows restored by pg_restore.
//!
//! [`Event::ALL`]: crate::event::Event::ALL

pub mod cache;
pub mod maintain;
pub mod validate;

/// Schema, table and carrier names, in one place for Rust and for messages.
pub const SCHEMA: &std::ffi::CStr = c"login_trigger";
pub const TABLE: &std::ffi::CStr = c"event_trigger";
pub const CARRIER_TABLE: &std::ffi::CStr = c"registered_function";
