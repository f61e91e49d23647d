//! Files only their owner may read: the database (every account, session and audit entry)
//! and the key files (whoever reads them can sign tokens as the server).

use std::{fs, io, io::Write, path::Path};

/// Creates `path` with `contents`, readable and writable by its owner only (0600 on Unix),
/// and flushes it to disk. Never overwrites: an existing file is `AlreadyExists`.
///
/// The mode is given at creation, not set after, so the file is never open to others for a
/// moment, whatever the umask.
pub fn create_private(path: &Path, contents: &[u8]) -> io::Result<()> {
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

/// [`create_private`], but `path` appears whole or not at all: the contents are written to
/// a draft of their own beside it, then linked in under `path`, which fails if `path`
/// exists. Processes that start at once and race to create a key file thus all read the
/// first one's, never a half-written one. Where the file system has no hard links, the
/// file is created in place, as [`create_private`] does.
pub fn publish_private(path: &Path, contents: &[u8]) -> io::Result<()> {
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file path"))?;
    let mut draft_name = std::ffi::OsString::from(".");
    draft_name.push(name);
    draft_name.push(format!(
        ".{}-{}.draft",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let draft = path.with_file_name(draft_name);
    create_private(&draft, contents)?;
    let linked = fs::hard_link(&draft, path);
    let _ = fs::remove_file(&draft);
    // The new name on disk too: a crash right after a first start must not lose the
    // secret the database's sealed keys depend on.
    #[cfg(unix)]
    if linked.is_ok() {
        if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            fs::File::open(folder)?.sync_all()?;
        }
    }
    match linked {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists && !path.exists() => {
            tracing::warn!(
                path = %path.display(),
                error = %e,
                "no hard links here: the file is created in place (instances starting at once \
                 could read it half-written; create it before starting several)"
            );
            create_private(path, contents)
        }
        other => other,
    }
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
