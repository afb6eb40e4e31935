//! Files private by default: the read store holds petitioners' personal data, the data dir the
//! nats store, URLs and configuration, and a CLI export a whole ledger — none of it is for other
//! accounts on the machine. Every zhzj process creates files for its own account only (umask
//! 077), and the data dir is made 0700 with what an earlier version left in it closed to others.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// Files and directories this process creates are for its own account only.
pub fn private_by_default() {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
}

/// Creates the data dir if it is missing and makes it, its `nats` store and the files directly
/// in it (the SQLite read store, URLs, the nats-server configuration) private to this account.
pub fn private_data_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let mode = if kind.is_dir() {
            0o700
        } else if kind.is_file() {
            0o600
        } else {
            continue;
        };
        let path = entry.path();
        let current = entry.metadata()?.permissions().mode() & 0o777;
        if current & 0o077 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(current & mode))?;
        }
    }
    Ok(())
}
