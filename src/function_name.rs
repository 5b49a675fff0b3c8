//! How registered functions and the session_exec-style settings name functions: `schema.name`,
//! parsed with PostgreSQL's identifier rules and resolved in the named schema only, never through
//! the client's `search_path`. The registry stores this form (not an OID), so that pg_dump,
//! pg_restore and pg_upgrade carry a registration by name, as they carry native event triggers.

use pgrx::pg_sys;
use std::ffi::{CStr, CString};

/// The function `name` (`schema.function` or `schema.function()`) names, if it exists and takes
/// no arguments.
pub fn resolve(name: &str) -> Option<pg_sys::Oid> {
    let (schema, function) = split(name)?;
    without_arguments(&schema, &function)
}

/// The canonical `schema.function` of an existing function, each part quoted only where
/// PostgreSQL's identifier rules need it (`quote_qualified_identifier`), so that [`resolve`]
/// finds it again.
pub fn qualified(function: pg_sys::Oid) -> Option<String> {
    // SAFETY: syscache lookups inside the caller's transaction; a missing function or schema
    // gives NULL, checked before use; the returned strings are palloc'd and copied at once.
    unsafe {
        let name = pg_sys::get_func_name(function);
        if name.is_null() {
            return None;
        }
        let schema = pg_sys::get_namespace_name(pg_sys::get_func_namespace(function));
        if schema.is_null() {
            return None;
        }
        let qualified = pg_sys::quote_qualified_identifier(schema, name);
        Some(CStr::from_ptr(qualified).to_string_lossy().into_owned())
    }
}

/// `(schema, function)` of a `schema.function[()]` name, by PostgreSQL's own identifier parser.
pub fn split(name: &str) -> Option<(CString, CString)> {
    let name = name.trim();
    let name = name.strip_suffix("()").unwrap_or(name);
    let parts = identifiers(name, b'.')?;
    let [schema, function]: [CString; 2] = parts.try_into().ok()?;
    (!schema.is_empty() && !function.is_empty()).then_some((schema, function))
}

/// The identifiers of a `separator`-separated list, by PostgreSQL's own parser
/// (`SplitIdentifierString`: unquoted names fold to lower case, double quotes keep them); `None`
/// if the list is malformed. An empty text is an empty list.
pub fn identifiers(text: &str, separator: u8) -> Option<Vec<CString>> {
    let raw = CString::new(text).ok()?;
    // SAFETY: SplitIdentifierString parses a palloc'd copy in place (it never raises) and
    // returns a list of pointers into that copy, which lives in the current memory context; the
    // names are copied out at once.
    unsafe {
        let copy = pg_sys::pstrdup(raw.as_ptr());
        let mut parts: *mut pg_sys::List = std::ptr::null_mut();
        if !pg_sys::SplitIdentifierString(copy, separator as std::ffi::c_char, &mut parts) {
            return None;
        }
        let length = if parts.is_null() { 0 } else { (*parts).length as usize };
        Some(
            (0..length)
                .map(|index| CStr::from_ptr((*(*parts).elements.add(index)).ptr_value.cast()).to_owned())
                .collect(),
        )
    }
}

/// The function `schema.name()` taking no arguments: syscache lookups in that schema only, with
/// no privilege check on the schema (a superuser named it, and triggers fire for every user).
pub fn without_arguments(schema: &CStr, name: &CStr) -> Option<pg_sys::Oid> {
    // SAFETY: syscache lookups inside the caller's transaction with NUL-terminated names; a missing
    // schema gives InvalidOid (missing_ok), and the empty argument vector is palloc'd.
    unsafe {
        let namespace = pg_sys::get_namespace_oid(schema.as_ptr(), true);
        if namespace == pg_sys::Oid::INVALID {
            return None;
        }
        let no_arguments = pg_sys::buildoidvector(std::ptr::null(), 0);
        let function = pg_sys::GetSysCacheOid(
            pg_sys::SysCacheIdentifier::PROCNAMEARGSNSP as i32,
            pg_sys::Anum_pg_proc_oid as pg_sys::AttrNumber,
            pg_sys::Datum::from(name.as_ptr()),
            pg_sys::Datum::from(no_arguments),
            pg_sys::Datum::from(namespace),
            pg_sys::Datum::from(0),
        );
        (function != pg_sys::Oid::INVALID).then_some(function)
    }
}
