//! Private files in the data directory (generated TLS keys, the management key, the logout signing
//! key): one way to write them. A file is created new (never truncating one another process may be
//! reading), readable by its owner only (0600), synced with its directory, and put in place by a
//! hard link, so that a crash leaves either no file or a whole one, and two processes starting at
//! once agree on the first one written.

use std::io::Write;
use std::path::Path;

use ring::rand::{SecureRandom, SystemRandom};

/// What [`create_private`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The file is ours.
    New,
    /// Another writer created it first; its contents stay.
    Existing,
}

/// Creates `path` holding `bytes` unless it exists. The directory is created (0700) if needed.
pub fn create_private(path: &Path, bytes: &[u8]) -> std::io::Result<Created> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    let mut suffix = [0u8; 8];
    SystemRandom::new().fill(&mut suffix).map_err(|_| std::io::Error::other("no system randomness"))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let temporary = dir.join(format!(".{name}.{}.tmp", hex::encode(suffix)));
    let written = write_new(&temporary, bytes);
    let linked = written.and_then(|()| match std::fs::hard_link(&temporary, path) {
        Ok(()) => Ok(Created::New),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(Created::Existing),
        Err(e) => Err(e),
    });
    let _ = std::fs::remove_file(&temporary);
    let created = linked?;
    sync_dir(dir)?;
    Ok(created)
}

/// A directory readable by its owner only, with its parents.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

fn write_new(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// The directory entry itself reaches the disk (a new file's name is in its directory).
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_private_and_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/secret.pem");
        assert_eq!(create_private(&path, b"first").unwrap(), Created::New);
        assert_eq!(create_private(&path, b"second").unwrap(), Created::Existing);
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            assert_eq!(std::fs::metadata(path.parent().unwrap()).unwrap().permissions().mode() & 0o777, 0o700);
        }
        let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temporary file left behind");
    }
}
