//! The registry's exclusive lock: one writer at a time, across processes.

use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::RegistryError;

/// Held for as long as a command may write; released on drop (and by the
/// kernel if the process dies, so a killed run never leaves a stale lock).
#[derive(Debug)]
pub struct RegistryLock {
    _file: File,
}

impl RegistryLock {
    pub fn acquire(path: &Path, timeout: Duration) -> Result<Self, RegistryError> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| RegistryError::io(path, e))?;
        let started = Instant::now();
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(RegistryLock { _file: file }),
                Err(TryLockError::WouldBlock) => {}
                Err(TryLockError::Error(e)) => return Err(RegistryError::io(path, e)),
            }
            if started.elapsed() >= timeout {
                return Err(RegistryError::Locked { path: path.to_path_buf(), waited: timeout });
            }
            if !told {
                eprintln!(
                    "waiting for another chitty-secrets to finish with the registry (up to {}s)…",
                    timeout.as_secs()
                );
                told = true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
