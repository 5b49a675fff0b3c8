//! Fault injection for the refusal tests, in debug builds only (the build `scripts/test`
//! installs): a superuser sets `login_trigger.fault_point` to a point's name and the next pass
//! through that point panics, as a bug in our own code would. Release builds have neither the
//! setting nor the check.

/// Panics when `login_trigger.fault_point` names this point (debug builds).
#[cfg(debug_assertions)]
pub fn point(name: &str) {
    if crate::gucs::fault_point().as_deref() == Some(name) {
        panic!("fault injected at {name}");
    }
}

/// Release builds: nothing.
#[cfg(not(debug_assertions))]
#[inline(always)]
pub fn point(_name: &str) {}
