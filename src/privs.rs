//! Least privilege for live capture: once the capture handle is open, root is no
//! longer needed, so switch to an unprivileged user (as tcpdump -Z does).

use std::ffi::CString;

/// Drops to `user`, or to `nobody` when running as root without -Z. Not root: nothing to do.
pub fn drop_privileges(user: Option<&str>) -> Result<(), String> {
    // SAFETY: getuid has no preconditions.
    if unsafe { libc::getuid() } != 0 && unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let name = user.unwrap_or("nobody");
    let cname = CString::new(name).map_err(|_| format!("bad user name {name:?}"))?;
    // SAFETY: getpwnam returns a pointer to static storage or null; we copy the ids out
    // before any other libc call.
    let pw = unsafe { libc::getpwnam(cname.as_ptr()) };
    if pw.is_null() {
        return Err(format!("-Z: no such user {name:?}"));
    }
    let (uid, gid) = unsafe { ((*pw).pw_uid, (*pw).pw_gid) };
    // SAFETY: plain syscalls; order matters (groups and gid before uid).
    let ok = unsafe {
        libc::setgroups(0, std::ptr::null()) == 0
            && libc::setgid(gid) == 0
            && libc::setuid(uid) == 0
    };
    if !ok {
        return Err(format!(
            "cannot drop privileges to {name}: {}",
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}
