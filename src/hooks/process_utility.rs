//! `ProcessUtility_hook`: one thin wrapper per PostgreSQL signature (13 has no `readOnlyTree`),
//! each packing its arguments into [`Utility`] for the version-independent `ddl::process_utility`.

use crate::ddl;
use pgrx::prelude::*;

static mut PREVIOUS: pg_sys::ProcessUtility_hook_type = None;

pub fn init() {
    // SAFETY: _PG_init, single-threaded; the previous hook is saved before ours replaces it.
    unsafe {
        PREVIOUS = pg_sys::ProcessUtility_hook;
        pg_sys::ProcessUtility_hook = Some(process_utility);
    }
}

/// The arguments of one `ProcessUtility` call, whatever the server version.
pub struct Utility {
    pub pstmt: *mut pg_sys::PlannedStmt,
    pub query_string: *const std::ffi::c_char,
    #[cfg(not(feature = "pg13"))]
    pub read_only_tree: bool,
    pub context: pg_sys::ProcessUtilityContext::Type,
    pub params: pg_sys::ParamListInfo,
    pub query_env: *mut pg_sys::QueryEnvironment,
    pub dest: *mut pg_sys::DestReceiver,
    pub qc: *mut pg_sys::QueryCompletion,
}

impl Utility {
    /// Runs the command: the previous hook if there is one, else standard_ProcessUtility.
    pub fn run(&self) {
        // SAFETY: passes PostgreSQL's own arguments on unchanged; the previous hook (another
        // library's) is called through the FFI boundary guard, standard_ProcessUtility through
        // pgrx's guarded binding.
        unsafe {
            match PREVIOUS {
                Some(previous) => pg_sys::submodules::ffi::pg_guard_ffi_boundary(|| {
                    previous(
                        self.pstmt,
                        self.query_string,
                        #[cfg(not(feature = "pg13"))]
                        self.read_only_tree,
                        self.context,
                        self.params,
                        self.query_env,
                        self.dest,
                        self.qc,
                    )
                }),
                None => pg_sys::standard_ProcessUtility(
                    self.pstmt,
                    self.query_string,
                    #[cfg(not(feature = "pg13"))]
                    self.read_only_tree,
                    self.context,
                    self.params,
                    self.query_env,
                    self.dest,
                    self.qc,
                ),
            }
        }
    }
}

#[cfg(feature = "pg13")]
#[pg_guard]
unsafe extern "C-unwind" fn process_utility(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const std::ffi::c_char,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    ddl::process_utility(&Utility { pstmt, query_string, context, params, query_env, dest, qc });
}

#[cfg(not(feature = "pg13"))]
#[pg_guard]
#[allow(clippy::too_many_arguments)]
unsafe extern "C-unwind" fn process_utility(
    pstmt: *mut pg_sys::PlannedStmt,
    query_string: *const std::ffi::c_char,
    read_only_tree: bool,
    context: pg_sys::ProcessUtilityContext::Type,
    params: pg_sys::ParamListInfo,
    query_env: *mut pg_sys::QueryEnvironment,
    dest: *mut pg_sys::DestReceiver,
    qc: *mut pg_sys::QueryCompletion,
) {
    ddl::process_utility(&Utility { pstmt, query_string, read_only_tree, context, params, query_env, dest, qc });
}
