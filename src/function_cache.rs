//! Trigger functions' call information, kept across firings.
//!
//! Native `EventTriggerInvoke` runs `fmgr_info` every time a trigger fires: for a PL/pgSQL
//! function that is about 20,000 instructions of catalog and language-handler lookups (measured
//! with callgrind, PostgreSQL 15), more than the rest of a firing's overhead together, and the
//! compiled function must then be found again in PL/pgSQL's hash table. Here each function's
//! `FmgrInfo` lives in a memory context of its own under `CacheMemoryContext`, as the relcache
//! keeps index support functions, so what its language handler caches in `fn_extra` (PL/pgSQL's
//! compiled function, `SECURITY DEFINER`'s saved settings) is kept as well. Every change to
//! `pg_proc` forgets the cache: `CREATE OR REPLACE`, `ALTER FUNCTION … SECURITY DEFINER | SET |
//! OWNER TO`, and a dropped function all invalidate its syscache entry.
//!
//! An entry is reference-counted: an invalidation that arrives while the function runs (it may
//! replace itself) takes the entry out of the cache, and its memory is freed when that firing
//! drops the last reference.

use pgrx::prelude::*;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

/// One function's `FmgrInfo`, in a memory context owned by this value.
pub struct CachedFunction {
    context: pg_sys::MemoryContext,
    flinfo: *mut pg_sys::FmgrInfo,
}

impl CachedFunction {
    /// The call information, for `FunctionCallInfo::flinfo`; valid while `self` lives.
    pub fn flinfo(&self) -> *mut pg_sys::FmgrInfo {
        self.flinfo
    }
}

impl Drop for CachedFunction {
    fn drop(&mut self) {
        // SAFETY: the context was created by `lookup`, is owned by this value alone, and nothing
        // of it is used once the last reference is gone.
        unsafe { pg_sys::MemoryContextDelete(self.context) };
    }
}

thread_local! {
    static FUNCTIONS: RefCell<HashMap<pg_sys::Oid, Rc<CachedFunction>>> = RefCell::new(HashMap::new());
    static CALLBACK_REGISTERED: Cell<bool> = const { Cell::new(false) };
    /// Bumped by every invalidation, so that a lookup overtaken by one is not kept.
    static GENERATION: Cell<u64> = const { Cell::new(0) };
}

/// The call information of `function`, looked up once until `pg_proc` changes. Raises as
/// `fmgr_info` does for a function that does not exist. Needs a transaction.
pub fn lookup(function: pg_sys::Oid) -> Rc<CachedFunction> {
    if let Some(cached) = FUNCTIONS.with_borrow(|functions| functions.get(&function).cloned()) {
        return cached;
    }
    register_callback_once();
    let generation = GENERATION.get();
    // SAFETY: the context starts as a child of the current one, so that an error in fmgr_info_cxt
    // frees it with that context; only once filled is it moved under CacheMemoryContext, which
    // lives as long as the backend. The FmgrInfo is zeroed memory of that context, filled by
    // fmgr_info_cxt with fn_mcxt set to it.
    let cached = unsafe {
        let context = pg_sys::AllocSetContextCreateExtended(
            pg_sys::CurrentMemoryContext,
            c"login_trigger function".as_ptr(),
            pg_sys::ALLOCSET_SMALL_MINSIZE as usize,
            pg_sys::ALLOCSET_SMALL_INITSIZE as usize,
            pg_sys::ALLOCSET_SMALL_MAXSIZE as usize,
        );
        let flinfo = pg_sys::MemoryContextAllocZero(context, std::mem::size_of::<pg_sys::FmgrInfo>())
            .cast::<pg_sys::FmgrInfo>();
        pg_sys::fmgr_info_cxt(function, flinfo, context);
        pg_sys::MemoryContextSetParent(context, pg_sys::CacheMemoryContext);
        Rc::new(CachedFunction { context, flinfo })
    };
    if GENERATION.get() == generation {
        FUNCTIONS.with_borrow_mut(|functions| functions.insert(function, Rc::clone(&cached)));
    }
    cached
}

fn register_callback_once() {
    if CALLBACK_REGISTERED.replace(true) {
        return;
    }
    // SAFETY: stores a function pointer in a backend-local array; the callback only touches
    // thread-local state.
    unsafe {
        pg_sys::CacheRegisterSyscacheCallback(
            pg_sys::SysCacheIdentifier::PROCOID as i32,
            Some(on_function_invalidation),
            pg_sys::Datum::from(0),
        );
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_function_invalidation(_arg: pg_sys::Datum, _cache_id: i32, _hash: u32) {
    GENERATION.set(GENERATION.get().wrapping_add(1));
    // Taken out before dropping, so that no borrow is held while memory contexts are deleted.
    let forgotten = FUNCTIONS.with_borrow_mut(std::mem::take);
    drop(forgotten);
}
