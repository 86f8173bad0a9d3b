//! Least privilege: once the capture handle, the input files and the `-w` file are
//! open, root is no longer needed, so switch to an unprivileged user (as tcpdump -Z
//! does, for live capture and `-r` alike).

use std::ffi::CString;

/// Whom to become: looked up before anything is opened or created, so that a bad
/// `-Z` fails the run before it touches a file.
#[derive(Debug, Clone)]
pub struct Target {
    name: String,
    uid: libc::uid_t,
    gid: libc::gid_t,
}

/// The user to drop to: `user`, or `nobody` when running as root without -Z. `None`
/// when not root (nothing to drop). A `-Z` user that does not exist is an error
/// even then: the run would do something else than asked.
pub fn target(user: Option<&str>) -> Result<Option<Target>, String> {
    // SAFETY: getuid and geteuid have no preconditions.
    let root = unsafe { libc::getuid() } == 0 || unsafe { libc::geteuid() } == 0;
    if !root && user.is_none() {
        return Ok(None);
    }
    let name = user.unwrap_or("nobody");
    let cname = CString::new(name).map_err(|_| format!("-Z: bad user name {name:?}"))?;
    // SAFETY: getpwnam returns a pointer to static storage or null; the ids are
    // copied out before any other libc call.
    let pw = unsafe { libc::getpwnam(cname.as_ptr()) };
    if pw.is_null() {
        return Err(format!("-Z: no such user {name:?}"));
    }
    // SAFETY: pw is non-null and points to getpwnam's static passwd entry.
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    Ok(root.then(|| Target {
        name: name.to_string(),
        uid,
        gid,
    }))
}

/// Becomes `target` for good (supplementary groups, group, then user).
pub fn drop_to(target: &Target) -> Result<(), String> {
    // SAFETY: plain syscalls; order matters (groups and gid before uid).
    let ok = unsafe {
        libc::setgroups(0, std::ptr::null()) == 0
            && libc::setgid(target.gid) == 0
            && libc::setuid(target.uid) == 0
    };
    if !ok {
        return Err(format!(
            "cannot drop privileges to {}: {}",
            target.name,
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}
