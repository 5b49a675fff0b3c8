//! Trigger functions' call information, kept across firings.
//!
//! Native `EventTriggerInvoke` runs `fmgr_info` every time a trigger fires: for a PL/pgSQL
//! function that is a syscache lookup of the function and its language, and the compiled function
//! must then be found again in PL/pgSQL's hash table. Here each function's `FmgrInfo` lives in a
//! memory context of its own under `CacheMemoryContext`, as the relcache keeps index support
//! functions, so what its language handler caches in `fn_extra` (PL/pgSQL's compiled function,
//! `SECURITY DEFINER`'s saved settings, an SQL function's plans) is kept as well, beside what a
//! firing asks of the function's `pg_proc` row (its owner, its result type). Every change to
//! `pg_proc` or `pg_language` forgets the cache: `CREATE OR REPLACE`, `ALTER FUNCTION … SECURITY
//! DEFINER | SET | OWNER TO`, a dropped function, a new language handler all invalidate a syscache
//! entry, in this backend or, through shared invalidation, in every other one.
//!
//! The `FmgrInfo` is filled at the first call (`boundary::call_function`) rather than at the
//! lookup, so that an error of `fmgr_info` (a C function whose library is gone) is raised inside
//! the firing, with the CONTEXT line naming the trigger, and caught as the call's own errors are.
//!
//! Where native's fresh lookup matters, there is one here too:
//! - a firing of a function that is already running (nested DDL in a trigger) gets call
//!   information of its own, since an SQL function keeps its running state in `fn_extra`;
//! - after a firing fails, the entry is forgotten ([`forget`]): what the language kept may
//!   describe the failed call (an SQL function's unfinished query);
//! - with an fmgr hook installed (sepgsql), nothing is cached: such a hook decides per lookup.
//!
//! An entry is reference-counted: an invalidation that arrives while the function runs (it may
//! replace itself) takes the entry out of the cache, and its memory is freed when that firing
//! drops the last reference.

use pgrx::prelude::*;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::rc::Rc;

/// One function's `FmgrInfo`, in a memory context owned by this value, and the facts of its
/// `pg_proc` row a firing needs.
pub struct CachedFunction {
    function: pg_sys::Oid,
    context: pg_sys::MemoryContext,
    flinfo: *mut pg_sys::FmgrInfo,
    owner: pg_sys::Oid,
    returns_event_trigger: bool,
}

impl CachedFunction {
    pub fn function(&self) -> pg_sys::Oid {
        self.function
    }

    /// The call information, for `FunctionCallInfo::flinfo`: zeroed (`fn_oid` invalid) until the
    /// first call fills it in [`CachedFunction::context`]; valid while `self` lives.
    pub fn flinfo(&self) -> *mut pg_sys::FmgrInfo {
        self.flinfo
    }

    /// The memory context `flinfo` and what the function's language keeps in it live in.
    pub fn context(&self) -> pg_sys::MemoryContext {
        self.context
    }

    /// The function's owner.
    pub fn owner(&self) -> pg_sys::Oid {
        self.owner
    }

    /// Whether the function is declared `RETURNS event_trigger` (rather than `void`).
    pub fn returns_event_trigger(&self) -> bool {
        self.returns_event_trigger
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
    /// Never dropped: a thread-local destructor would run inside `exit()`, after `proc_exit`,
    /// when calling into PostgreSQL is no longer safe; the memory goes with the process.
    static FUNCTIONS: ManuallyDrop<RefCell<HashMap<pg_sys::Oid, Rc<CachedFunction>>>> =
        ManuallyDrop::new(RefCell::new(HashMap::new()));
    static CALLBACK_REGISTERED: Cell<bool> = const { Cell::new(false) };
    /// Bumped by every invalidation, so that a lookup overtaken by one is not kept.
    static GENERATION: Cell<u64> = const { Cell::new(0) };
}

/// The call information of `function`, looked up once until `pg_proc` or `pg_language` changes;
/// `None` for a function that no longer exists. Needs a transaction.
pub fn lookup(function: pg_sys::Oid) -> Option<Rc<CachedFunction>> {
    if let Some(cached) = FUNCTIONS.with(|functions| functions.borrow().get(&function).cloned()) {
        // Held by the cache and by us alone: no firing of it is running.
        if Rc::strong_count(&cached) == 2 {
            return Some(cached);
        }
        return build(function).map(Rc::new);
    }
    register_callback_once();
    let generation = GENERATION.get();
    let built = Rc::new(build(function)?);
    // SAFETY: reads a hook variable, copying the function pointer out.
    let fmgr_hooked = unsafe { (&raw const pg_sys::needs_fmgr_hook).read().is_some() };
    if !fmgr_hooked && GENERATION.get() == generation {
        FUNCTIONS.with(|functions| functions.borrow_mut().insert(function, Rc::clone(&built)));
    }
    Some(built)
}

/// Forgets `cached` after a firing of it failed, so that the next firing looks the function up
/// afresh, as native does at every firing.
pub fn forget(cached: &Rc<CachedFunction>) {
    FUNCTIONS.with(|functions| functions.borrow_mut().retain(|_, entry| !Rc::ptr_eq(entry, cached)));
}

fn build(function: pg_sys::Oid) -> Option<CachedFunction> {
    // SAFETY: a syscache lookup of the function's pg_proc row, read and released at once; a NULL
    // tuple is a function that no longer exists. The context lives under CacheMemoryContext (as
    // long as the backend) until this value drops; the FmgrInfo is zeroed memory of it.
    unsafe {
        let tuple = pg_sys::SearchSysCache1(pg_sys::SysCacheIdentifier::PROCOID as i32, function.into());
        if tuple.is_null() {
            return None;
        }
        let row = &*pg_sys::heap_tuple_get_struct::<pg_sys::FormData_pg_proc>(tuple);
        let (owner, returns_event_trigger) = (row.proowner, row.prorettype == crate::pg_ext::EVENT_TRIGGER_TYPE);
        pg_sys::ReleaseSysCache(tuple);
        let context = pg_sys::AllocSetContextCreateExtended(
            pg_sys::CacheMemoryContext,
            c"login_trigger function".as_ptr(),
            pg_sys::ALLOCSET_SMALL_MINSIZE as usize,
            pg_sys::ALLOCSET_SMALL_INITSIZE as usize,
            pg_sys::ALLOCSET_SMALL_MAXSIZE as usize,
        );
        let flinfo =
            pg_sys::MemoryContextAllocZero(context, std::mem::size_of::<pg_sys::FmgrInfo>()).cast::<pg_sys::FmgrInfo>();
        Some(CachedFunction { function, context, flinfo, owner, returns_event_trigger })
    }
}

fn register_callback_once() {
    if CALLBACK_REGISTERED.replace(true) {
        return;
    }
    // SAFETY: stores a function pointer in a backend-local array, once per cache; the callback
    // touches thread-local state and deletes the contexts of entries no firing holds.
    unsafe {
        for cache in [pg_sys::SysCacheIdentifier::PROCOID, pg_sys::SysCacheIdentifier::LANGOID] {
            pg_sys::CacheRegisterSyscacheCallback(cache as i32, Some(on_invalidation), pg_sys::Datum::from(0));
        }
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn on_invalidation(_arg: pg_sys::Datum, _cache_id: i32, _hash: u32) {
    GENERATION.set(GENERATION.get().wrapping_add(1));
    // Taken out before dropping, so that no borrow is held while memory contexts are deleted.
    let forgotten = FUNCTIONS.with(|functions| std::mem::take(&mut *functions.borrow_mut()));
    drop(forgotten);
}
