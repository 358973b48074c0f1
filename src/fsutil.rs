//! Atomic file writes: temp file in the same directory, fsync, rename, fsync
//! the directory. A crash leaves either the old file or the new one, never a
//! torn one.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically with mode 0600, or the old file's
/// mode where it was stricter (a 0400 file stays 0400). When the file
/// already exists its owner and group are kept (best effort: only root may
/// change them).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = replace(path, bytes)?;
    sync_dir(&dir)
}

/// [`write_atomic`] but for the last step: the new file's data is on disk
/// before it takes the old one's place, and the rename is made durable by
/// the caller's `sync_dir` of the returned folder — one for many files.
pub fn replace(path: &Path, bytes: &[u8]) -> io::Result<PathBuf> {
    put_in_place(path, bytes, true)
}

/// [`replace`] without any sync: whole for every reader and after a killed
/// process, but a machine that crashes may lose it. For a file written
/// again durably soon after (a batch's last write), and whose loss only
/// costs redoing work.
pub fn replace_unsynced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    put_in_place(path, bytes, false).map(drop)
}

fn put_in_place(path: &Path, bytes: &[u8], sync: bool) -> io::Result<PathBuf> {
    let dir = parent_dir(path);
    let file_name =
        path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let file_name = file_name.to_string_lossy();
    remove_stale_temps(&dir);
    let tmp = temp_path(&dir, &file_name);
    let result = (|| {
        let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        file.write_all(bytes)?;
        // An old file could have been group-readable: our copy is at most
        // 0600 whatever the umask or the old mode says, never wider.
        let mut mode = 0o600;
        if let Ok(old) = fs::metadata(path) {
            mode &= old.mode();
            let _ = std::os::unix::fs::fchown(&file, Some(old.uid()), Some(old.gid()));
        }
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        if sync {
            file.sync_all()?;
        }
        drop(file);
        fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| dir)
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `NAME.chitty-tmp-XXXXXXXXXXXX`, beside the file: it starts with the
/// file's own name, so an ignore pattern that covers the file (`.env*`,
/// `.dev.vars*`) covers its temp file too.
fn temp_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}{TEMP_MARK}{}", random_hex(6)))
}

/// `bytes` random bytes as hex: names that must not collide (temp files,
/// mint tags, multipart boundaries), never secrets.
pub fn random_hex(bytes: usize) -> String {
    let mut rnd = vec![0u8; bytes];
    let _ = getrandom::getrandom(&mut rnd);
    rnd.iter().map(|b| format!("{b:02x}")).collect()
}

const TEMP_MARK: &str = ".chitty-tmp-";

/// Removes temp files a killed run left in `dir` (they may hold values):
/// `NAME.chitty-tmp-` and 12 hex digits, beside any file. Other processes
/// are kept out by the registry lock; within this one, the folder is
/// cleaned under a mutex before any of its writes makes a temp file, so a
/// temp file found here is never one in use (threads saving side by side
/// wait for the cleaning instead of having their temp file taken). Each
/// folder is listed once a run: listing a folder of thousands of token
/// files on every write would make a large rotation quadratic.
fn remove_stale_temps(dir: &Path) {
    static CLEANED: std::sync::Mutex<Option<std::collections::HashSet<PathBuf>>> = std::sync::Mutex::new(None);
    let mut cleaned = CLEANED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let key = fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    if !cleaned.get_or_insert_with(Default::default).insert(key) {
        return;
    }
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let file = entry.file_name();
        let is_temp = file.to_string_lossy().rsplit_once(TEMP_MARK).is_some_and(|(stem, suffix)| {
            !stem.is_empty() && suffix.len() == 12 && suffix.bytes().all(|b| b.is_ascii_hexdigit())
        });
        if is_temp {
            let _ = fs::remove_file(entry.path());
        }
    }
}

/// Folders holding files put in place by [`replace_synced_later`], whose
/// entries [`sync_later_folders`] makes durable: one sync per folder for
/// many files (five .env files in one folder are one folder sync, not five).
static UNSYNCED: std::sync::Mutex<std::collections::BTreeSet<PathBuf>> =
    std::sync::Mutex::new(std::collections::BTreeSet::new());

/// [`write_atomic`] whose folder sync is left to [`sync_later_folders`]:
/// the new file's data is on disk before it takes the old one's place, so
/// a crash leaves the old file or the new one, never a torn one.
pub fn replace_synced_later(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = replace(path, bytes)?;
    UNSYNCED.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(dir);
    Ok(())
}

/// Syncs every folder [`replace_synced_later`] wrote into; the folders
/// that failed, with why. Under the lock: a caller that finds nothing to
/// sync knows that every folder written before is synced.
pub fn sync_later_folders() -> Vec<(PathBuf, io::Error)> {
    let mut unsynced = UNSYNCED.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    std::mem::take(&mut *unsynced).into_iter().filter_map(|dir| sync_dir(&dir).err().map(|e| (dir, e))).collect()
}

pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates a directory (and parents) with mode 0700 for the last component.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    fs::create_dir_all(dir)?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_content_with_mode_0600_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.env");
        fs::write(&path, "old").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        write_atomic(&path, b"new").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "new");
        assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn temp_files_share_the_files_name_and_stale_ones_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".env");
        let tmp = temp_path(dir.path(), ".env");
        let tmp_name = tmp.file_name().unwrap().to_string_lossy().into_owned();
        assert!(tmp_name.starts_with(".env.chitty-tmp-"), "{tmp_name} is covered by `.env*`");
        // What a SIGKILL between write and rename leaves behind.
        fs::write(&tmp, "SECRET=left-behind").unwrap();
        fs::write(dir.path().join("..env.chitty-tmp-0a0b0c0d0e0f"), "SECRET=old-style").unwrap();
        fs::write(dir.path().join(".envrc"), "keep").unwrap();
        write_atomic(&path, b"A=1\n").unwrap();
        let mut left: Vec<String> =
            fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        left.sort();
        assert_eq!(left, [".env", ".envrc"]);
    }

    #[test]
    fn threads_writing_side_by_side_never_lose_a_temp_file_to_the_cleaning() {
        // Saves of many tokens run on several threads; the first write in a
        // folder cleans it (here of many stale temp files, so the cleaning
        // takes a while), and must not take another thread's temp file: its
        // rename would fail with "No such file or directory".
        for _ in 0..3 {
            let dir = tempfile::tempdir().unwrap();
            for i in 0..3000 {
                fs::write(dir.path().join(format!("old{i}.toml.chitty-tmp-0a0b0c0d0e{:02x}", i % 256)), "x").unwrap();
            }
            std::thread::scope(|scope| {
                for t in 0..4 {
                    let dir = dir.path();
                    scope.spawn(move || {
                        for i in 0..25 {
                            write_atomic(&dir.join(format!("T{t}-{i}.toml")), b"generation = 1\n").unwrap();
                        }
                    });
                }
            });
            let left = fs::read_dir(dir.path()).unwrap().count();
            assert_eq!(left, 100, "the files written, no temp file");
        }
    }
}
