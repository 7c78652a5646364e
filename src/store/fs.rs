//! File-system rules of the data directory: it holds access-key secrets, password hashes and
//! every config value, so it is owner-only (directories 0700, files 0600), and a directory
//! Cairn cannot write is refused with a message naming it.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::StoreError;

/// Mode of every directory Cairn creates.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file Cairn creates.
pub const FILE_MODE: u32 = 0o600;

/// Makes every file and directory this process creates from now on owner-only (umask 077),
/// covering the files sled creates itself (db, conf, snapshots, blobs). Safe: a plain
/// syscall with no memory effects.
pub fn restrict_umask() {
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
}

/// Opens a new file for writing, owner-only whatever the umask.
pub fn create_private(path: &Path) -> std::io::Result<fs::File> {
    fs::OpenOptions::new().write(true).create(true).truncate(true).mode(FILE_MODE).open(path)
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io { path: path.to_path_buf(), source }
}

/// Creates the data directory (0700) or tightens an existing one that others may read:
/// directories inside to 0700, files to 0600. Returns what it tightened (logged by the
/// caller). A directory Cairn cannot write is refused with [`StoreError::ReadOnly`].
pub fn prepare_data_dir(path: &Path) -> Result<Vec<PathBuf>, StoreError> {
    if !path.exists() {
        fs::DirBuilder::new().recursive(true).mode(DIR_MODE).create(path).map_err(|e| refusal(path, e))?;
        return Ok(Vec::new());
    }
    let mut tightened = Vec::new();
    tighten(path, &mut tightened).map_err(|e| refusal(path, e))?;
    writable(path)?;
    Ok(tightened)
}

/// Whether the directory accepts a new file (the permission bits alone do not tell: root
/// ignores them, a read-only mount refuses everyone).
fn writable(dir: &Path) -> Result<(), StoreError> {
    let probe = dir.join(format!(".cairn-write-test-{}", std::process::id()));
    match fs::OpenOptions::new().write(true).create_new(true).mode(FILE_MODE).open(&probe) {
        Ok(_) => fs::remove_file(&probe).map_err(io(&probe)),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            fs::remove_file(&probe).map_err(io(&probe))?;
            writable(dir)
        }
        Err(e) => Err(refusal(dir, e)),
    }
}

/// Sets owner-only modes below `path` where group or others have any access.
fn tighten(path: &Path, tightened: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.file_type().is_symlink() {
        return Ok(());
    }
    let want = if meta.is_dir() { DIR_MODE } else { FILE_MODE };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        match fs::set_permissions(path, fs::Permissions::from_mode(mode & want)) {
            Ok(()) => tightened.push(path.to_path_buf()),
            // On a read-only mount nothing can change; `writable` explains that next.
            Err(e) if is_read_only(&e) => return Ok(()),
            Err(e) => return Err(e),
        }
    }
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            tighten(&entry?.path(), tightened)?;
        }
    }
    Ok(())
}

fn is_read_only(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied)
}

/// The error for a directory Cairn may not write: read-only ones get their own message.
pub fn refusal(path: &Path, source: std::io::Error) -> StoreError {
    if is_read_only(&source) {
        StoreError::ReadOnly { path: path.to_path_buf(), source }
    } else {
        StoreError::Io { path: path.to_path_buf(), source }
    }
}

/// Maps a failure of sled's open: a file it may not write means a read-only data directory.
pub fn open_error(e: sled::Error, path: &Path) -> StoreError {
    match e {
        sled::Error::Io(io) if is_read_only(&io) => StoreError::ReadOnly { path: path.to_path_buf(), source: io },
        other => StoreError::from_open(other, path),
    }
}

/// Copies `from` into the new directory `to` (owner-only), files and subdirectories.
pub fn copy_dir(from: &Path, to: &Path) -> Result<(), StoreError> {
    fs::DirBuilder::new().mode(DIR_MODE).create(to).map_err(io(to))?;
    for entry in fs::read_dir(from).map_err(io(from))? {
        let entry = entry.map_err(io(from))?;
        let (src, dst) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().map_err(io(&src))?;
        if kind.is_dir() {
            copy_dir(&src, &dst)?;
        } else if kind.is_file() {
            let mut input = fs::File::open(&src).map_err(io(&src))?;
            let mut output = create_private(&dst).map_err(io(&dst))?;
            std::io::copy(&mut input, &mut output).map_err(io(&dst))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_data_dir_is_made_owner_only() {
        let dir = std::env::temp_dir().join(format!("cairn-fs-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("db")).unwrap();
        fs::write(dir.join("db/conf"), "x").unwrap();
        for (p, m) in [(dir.clone(), 0o755), (dir.join("db"), 0o755), (dir.join("db/conf"), 0o644)] {
            fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
        }
        let tightened = prepare_data_dir(&dir).unwrap();
        assert_eq!(tightened.len(), 3, "{tightened:?}");
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!((mode(&dir), mode(&dir.join("db")), mode(&dir.join("db/conf"))), (0o700, 0o700, 0o600));
        assert!(prepare_data_dir(&dir).unwrap().is_empty(), "nothing left to tighten");
        fs::remove_dir_all(&dir).unwrap();
    }
}
