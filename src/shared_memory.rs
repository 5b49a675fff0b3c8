//! What the structures in shared memory sized by a setting have in common (`trigger_stats`,
//! `refused_logins`): they exist only with `shared_preload_libraries`, are requested and created
//! in the postmaster the way PostgreSQL wants add-in memory requested and created, and are guarded
//! by one named LWLock each. Reading one without them is a clear error, never an empty answer.

use crate::error::Refusal;
use pgrx::PgSqlErrorCode;
use pgrx::prelude::*;
use std::ffi::CStr;

/// Whether this process has the library's shared memory.
pub fn available() -> bool {
    crate::loading::shared_preload()
}

/// Raises 55000 unless the library's shared memory exists.
pub fn require() {
    if !available() {
        Refusal::new(
            PgSqlErrorCode::ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE,
            "login_trigger statistics need shared_preload_libraries",
        )
        .detail("They are kept in shared memory, which only a library in shared_preload_libraries has.")
        .hint("Add login_trigger to shared_preload_libraries and restart the server.")
        .raise();
    }
}

/// Reserves `size` bytes and a named lock. Call from the shared-memory request hook (15+) or
/// `_PG_init` (13/14) of the postmaster.
pub fn request(size: usize, tranche: &'static CStr) {
    // SAFETY: called while the postmaster computes the shared memory size, as the API requires.
    unsafe {
        pg_sys::RequestAddinShmemSpace(size);
        pg_sys::RequestNamedLWLockTranche(tranche.as_ptr(), 1);
    }
}

/// Creates (in the postmaster) or finds the structure `name` of `size` bytes and, while
/// PostgreSQL's AddinShmemInitLock is held, runs `create(pointer, lock)` if it is new and
/// `attach(pointer)` in every case. Call from the shared-memory startup hook.
pub fn attach<T>(
    name: &'static CStr,
    size: usize,
    tranche: &'static CStr,
    create: impl FnOnce(*mut T, *mut pg_sys::LWLock),
    attach: impl FnOnce(*mut T),
) -> bool {
    // SAFETY: the startup hook runs with shared memory set up; AddinShmemInitLock (lock 21 of the
    // main array on every supported version) serialises the creation of add-in structures.
    unsafe {
        let init_lock = &raw mut (*pg_sys::MainLWLockArray.add(21)).lock;
        pg_sys::LWLockAcquire(init_lock, pg_sys::LWLockMode::LW_EXCLUSIVE);
        let mut found = false;
        let pointer = pg_sys::ShmemInitStruct(name.as_ptr(), size, &mut found).cast::<T>();
        if !found {
            create(pointer, &raw mut (*pg_sys::GetNamedLWLockTranche(tranche.as_ptr())).lock);
        }
        attach(pointer);
        pg_sys::LWLockRelease(init_lock);
        found
    }
}

/// Runs `work` under `lock`; `work` must not raise (the lock would stay held until the
/// transaction's abort releases it).
pub fn locked<R>(lock: *mut pg_sys::LWLock, mode: pg_sys::LWLockMode::Type, work: impl FnOnce() -> R) -> R {
    // SAFETY: a lock in shared memory, acquired and released around code that cannot raise.
    unsafe { pg_sys::LWLockAcquire(lock, mode) };
    let result = work();
    // SAFETY: as above.
    unsafe { pg_sys::LWLockRelease(lock) };
    result
}

/// A file in the data directory in which the postmaster keeps a shared structure across a clean
/// restart: written when it exits after a clean shutdown, read back (and removed, so that a later
/// crash does not bring back older figures) when it creates shared memory again. Its format: a
/// magic number naming the structure and its layout version, the sizes of the header and of a
/// record, the record count, the header, the records — all of this build's plain-data layout.
pub struct SavedFile {
    pub path: &'static CStr,
    pub temporary: &'static CStr,
    pub magic: u32,
}

#[derive(Clone, Copy)]
#[repr(C)]
struct FilePrefix {
    magic: u32,
    header_size: u32,
    record_size: u32,
    padding: u32,
    records: u64,
}

fn as_bytes<T: Copy>(value: &T) -> &[u8] {
    // SAFETY: `T` is a plain-data struct of this crate (integers, byte arrays, explicit padding),
    // every byte of which is initialised.
    unsafe { std::slice::from_raw_parts((value as *const T).cast::<u8>(), std::mem::size_of::<T>()) }
}

/// Reads a `T` at `offset` of `bytes`, which holds at least that many bytes.
fn read_at<T: Copy>(bytes: &[u8], offset: usize) -> T {
    assert!(offset + std::mem::size_of::<T>() <= bytes.len());
    // SAFETY: in bounds (checked); `T` is plain data for which the saved bytes are a valid value
    // (written by `save` from a `T` of the same layout, which the prefix's sizes and magic check).
    unsafe { bytes.as_ptr().add(offset).cast::<T>().read_unaligned() }
}

/// Whether the cluster has just shut down cleanly: its control file says so once the shutdown
/// checkpoint is written (not after an immediate shutdown, whose exit code is 0 too, and whose
/// backends were killed wherever they were — possibly inside a shared structure).
fn shut_down_cleanly() -> bool {
    let mut crc_ok = false;
    // SAFETY: DataDir is the postmaster's data directory; get_controlfile pallocs a copy of
    // pg_control (the postmaster is exiting; nothing to free).
    let state = unsafe { (*pg_sys::get_controlfile(pg_sys::DataDir, &mut crc_ok)).state };
    crc_ok && (state == pg_sys::DBState::DB_SHUTDOWNED || state == pg_sys::DBState::DB_SHUTDOWNED_IN_RECOVERY)
}

impl SavedFile {
    /// Called from the shared-memory startup hook with whether the structure existed already:
    /// in the postmaster, arranges for `save_at_exit` to run when it exits (once per creation of
    /// shared memory: a crash's re-creation runs the exit callbacks first, which removes it), and
    /// runs `restore` where the structure is new.
    pub fn keep_across_clean_restart(
        &self,
        found: bool,
        save_at_exit: unsafe extern "C-unwind" fn(i32, pg_sys::Datum),
        restore: impl FnOnce(),
    ) {
        // SAFETY: reads a process flag; registers a callback of the signature PostgreSQL calls.
        if unsafe { !pg_sys::IsUnderPostmaster } {
            unsafe { pg_sys::on_shmem_exit(Some(save_at_exit), pg_sys::Datum::from(0)) };
        }
        if !found {
            restore();
        }
    }

    /// Called from the postmaster's exit callback with its exit code: if the cluster shut down
    /// cleanly, writes the header and records `contents` reads. Only then is the structure read
    /// at all (after a crash or an immediate shutdown it may be torn). No lock is taken: no other
    /// process is left, and the postmaster has no PGPROC to wait with.
    pub fn save<H: Copy, T: Copy>(&self, code: i32, contents: impl FnOnce() -> (H, Vec<T>)) {
        if code != 0 || !shut_down_cleanly() {
            return;
        }
        let (header, records) = contents();
        let header = &header;
        let prefix = FilePrefix {
            magic: self.magic,
            header_size: std::mem::size_of::<H>() as u32,
            record_size: std::mem::size_of::<T>() as u32,
            padding: 0,
            records: records.len() as u64,
        };
        let mut bytes = as_bytes(&prefix).to_vec();
        bytes.extend_from_slice(as_bytes(header));
        for record in &records {
            bytes.extend_from_slice(as_bytes(record));
        }
        let temporary = self.temporary.to_str().unwrap_or_default();
        let written = std::fs::File::create(temporary)
            .and_then(|mut file| std::io::Write::write_all(&mut file, &bytes).and_then(|()| file.sync_all()));
        if let Err(error) = written {
            crate::error::log_line(format!("login_trigger: could not write \"{temporary}\": {error}"));
            let _ = std::fs::remove_file(temporary);
            return;
        }
        // SAFETY: both names are NUL-terminated paths; durable_rename reports a failure at LOG.
        unsafe { pg_sys::durable_rename(self.temporary.as_ptr(), self.path.as_ptr(), pg_sys::LOG as i32) };
    }

    /// Called by the postmaster while it creates shared memory: what the last clean shutdown
    /// saved, if anything (a file of another layout is ignored, with a LOG line); the file is
    /// removed.
    pub fn take<H: Copy, T: Copy>(&self) -> Option<(H, Vec<T>)> {
        let path = self.path.to_str().unwrap_or_default();
        let bytes = std::fs::read(path).ok()?;
        let _ = std::fs::remove_file(path);
        let prefix_size = std::mem::size_of::<FilePrefix>();
        let (header_size, record_size) = (std::mem::size_of::<H>(), std::mem::size_of::<T>());
        let consistent = bytes.len() >= prefix_size + header_size && {
            let prefix: FilePrefix = read_at(&bytes, 0);
            prefix.magic == self.magic
                && prefix.header_size as usize == header_size
                && prefix.record_size as usize == record_size
                && (bytes.len() - prefix_size - header_size) as u64 == prefix.records * record_size as u64
        };
        if !consistent {
            crate::error::log_line(format!("login_trigger: ignoring \"{path}\": not written by this version"));
            return None;
        }
        let header = read_at(&bytes, prefix_size);
        let records =
            bytes[prefix_size + header_size..].chunks_exact(record_size).map(|chunk| read_at(chunk, 0)).collect();
        Some((header, records))
    }
}
