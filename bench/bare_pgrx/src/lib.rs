//! A pgrx library that does nothing when loaded (see Cargo.toml).
pgrx::pg_module_magic!();
