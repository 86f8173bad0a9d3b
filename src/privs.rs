//! Least privilege: once the capture handle, the input files and the `-w` file are
//! open, root is no longer needed, so switch to an unprivileged user (as tcpdump -Z
//! does, for live capture and `-r` alike).

use nix::unistd::{Gid, Uid, User, geteuid, getuid, setgid, setgroups, setuid};

/// Whom to become: looked up before anything is opened or created, so that a bad
/// `-Z` fails the run before it touches a file.
#[derive(Debug, Clone)]
pub struct Target {
    name: String,
    uid: Uid,
    gid: Gid,
}

/// The user to drop to: `user`, or `nobody` when running as root without -Z. `None`
/// when not root (nothing to drop). A `-Z` user that does not exist is an error
/// even then: the run would do something else than asked.
pub fn target(user: Option<&str>) -> Result<Option<Target>, String> {
    let root = getuid().is_root() || geteuid().is_root();
    if !root && user.is_none() {
        return Ok(None);
    }
    let name = user.unwrap_or("nobody");
    if name.contains('\0') {
        return Err(format!("-Z: bad user name {name:?}"));
    }
    let pw = User::from_name(name)
        .map_err(|e| format!("-Z: cannot look up user {name:?}: {e}"))?
        .ok_or_else(|| format!("-Z: no such user {name:?}"))?;
    Ok(root.then(|| Target {
        name: name.to_string(),
        uid: pw.uid,
        gid: pw.gid,
    }))
}

/// Becomes `target` for good (supplementary groups, group, then user: the ids last,
/// as a process that is no longer root could not change its groups).
pub(crate) fn drop_to(target: &Target) -> Result<(), String> {
    setgroups(&[])
        .and_then(|()| setgid(target.gid))
        .and_then(|()| setuid(target.uid))
        .map_err(|e| {
            let e = std::io::Error::from(e);
            format!("cannot drop privileges to {}: {e}", target.name)
        })
}
