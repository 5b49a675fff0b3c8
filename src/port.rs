//! Facts about a client connection (PostgreSQL's `Port`), read through the C shim in
//! src/shim/port.c: the struct's layout depends on the server version and build options, and
//! pgrx's hand-written copy of it is not exact on every version (on 17 its name fields are off).

use pgrx::pg_sys::libpq::be::Port;
use std::ffi::{CStr, c_char};

unsafe extern "C" {
    fn login_trigger_port_auth_method(port: *const Port) -> *const c_char;
    fn login_trigger_port_authn_id(port: *const Port) -> *const c_char;
    fn login_trigger_port_ssl_in_use(port: *const Port) -> bool;
    fn login_trigger_port_user_name(port: *const Port) -> *const c_char;
    fn login_trigger_port_database_name(port: *const Port) -> *const c_char;
    fn login_trigger_port_remote_host(port: *const Port) -> *const c_char;
    fn login_trigger_port_remote_port(port: *const Port) -> *const c_char;
    fn login_trigger_port_remote_hostname(port: *const Port) -> *const c_char;
}

/// The outcomes of an authentication PostgreSQL passes to the ClientAuthentication hook
/// (`STATUS_EOF`, the client hanging up mid-handshake, is any other value).
pub const STATUS_OK: i32 = 0;
pub const STATUS_ERROR: i32 = -1;

/// A client connection: the live `Port` PostgreSQL passed to a hook, or this backend's own.
#[derive(Clone, Copy)]
pub struct Connection(*const Port);

impl Connection {
    /// This backend's client connection (none outside client backends).
    pub fn current() -> Option<Connection> {
        // SAFETY: reads a backend-local pointer.
        let port = unsafe { pgrx::pg_sys::libpq::be::MyProcPort };
        Connection::from_port(port)
    }

    /// The connection a hook was given.
    pub fn from_port(port: *const Port) -> Option<Connection> {
        (!port.is_null()).then_some(Connection(port))
    }

    fn text(&self, read: unsafe extern "C" fn(*const Port) -> *const c_char) -> Option<String> {
        // SAFETY: the Port is live (checked non-NULL at construction) and the shim returns NULL or
        // a NUL-terminated string owned by PostgreSQL, copied at once.
        unsafe {
            let text = read(self.0);
            (!text.is_null()).then(|| CStr::from_ptr(text).to_string_lossy().into_owned())
        }
    }

    /// The pg_hba.conf method that matched (valid during authentication only).
    pub fn auth_method(&self) -> Option<String> {
        self.text(login_trigger_port_auth_method)
    }

    /// The identity authentication established (14+; NULL for trust).
    pub fn auth_identity(&self) -> Option<String> {
        self.text(login_trigger_port_authn_id)
    }

    pub fn ssl(&self) -> bool {
        // SAFETY: reads one field of the live Port.
        unsafe { login_trigger_port_ssl_in_use(self.0) }
    }

    pub fn user_name(&self) -> Option<String> {
        self.text(login_trigger_port_user_name)
    }

    pub fn database_name(&self) -> Option<String> {
        self.text(login_trigger_port_database_name)
    }

    /// The client's address as text, `[local]` for a Unix socket.
    pub fn remote_host(&self) -> Option<String> {
        self.text(login_trigger_port_remote_host)
    }

    pub fn remote_port(&self) -> Option<String> {
        self.text(login_trigger_port_remote_port)
    }

    /// The client's host name, when `log_hostname` resolved it.
    pub fn remote_hostname(&self) -> Option<String> {
        self.text(login_trigger_port_remote_hostname)
    }
}
