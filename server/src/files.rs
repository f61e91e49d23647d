//! Files only their owner may read: the database (every account, session and audit entry)
//! and the key files (whoever reads them can sign tokens as the server).

use std::{fs, io, io::Write, path::Path};

/// Creates `path` with `contents`, readable and writable by its owner only (0600 on Unix),
/// and flushes it to disk. Never overwrites: an existing file is `AlreadyExists`.
///
/// The mode is given at creation, not set after, so the file is never open to others for a
/// moment, whatever the umask. The contents are written to a file of their own first and
/// then linked in under `path`, which fails if `path` exists: a process reading `path`
/// never sees it half-written, even when several start at once and race to create it.
pub fn create_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file path"))?;
    let mut draft_name = name.to_os_string();
    draft_name.push(format!(
        ".{}-{}.new",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let draft = path.with_file_name(draft_name);
    let written = write_new(&draft, contents).and_then(|()| fs::hard_link(&draft, path));
    let _ = fs::remove_file(&draft);
    written
}

fn write_new(path: &Path, contents: &[u8]) -> io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Makes an existing file that group or others may use owner-only (0600), and returns the
/// mode it had; `None` when it was owner-only already, or on systems without Unix modes.
pub fn make_private(path: &Path) -> io::Result<Option<u32>> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            fs::set_permissions(path, fs::Permissions::from_mode(0o600))?;
            return Ok(Some(mode));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(None)
}
