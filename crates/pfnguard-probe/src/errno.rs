//! Errno and signal names, as the values of the probe report them.

use rustix::io::Errno;

macro_rules! errno_names {
    ($($name:ident)*) => {
        /// The symbolic name of a Linux errno value (`EFAULT`), from
        /// include/uapi/asm-generic/errno-base.h and errno.h, or `errno N`.
        pub fn errno_name(raw: i32) -> String {
            match raw {
                $(libc::$name => stringify!($name).to_owned(),)*
                // Kernel-internal values that can reach userspace (include/linux/errno.h).
                524 => "ENOTSUPP".to_owned(),
                512 => "ERESTARTSYS".to_owned(),
                _ => format!("errno {raw}"),
            }
        }
    };
}

errno_names! {
    EPERM ENOENT ESRCH EINTR EIO ENXIO E2BIG ENOEXEC EBADF ECHILD EAGAIN ENOMEM EACCES EFAULT
    ENOTBLK EBUSY EEXIST EXDEV ENODEV ENOTDIR EISDIR EINVAL ENFILE EMFILE ENOTTY ETXTBSY
    EFBIG ENOSPC ESPIPE EROFS EMLINK EPIPE EDOM ERANGE EDEADLK ENAMETOOLONG ENOLCK ENOSYS
    ENOTEMPTY ELOOP ENOMSG EIDRM ECHRNG EL2NSYNC EL3HLT EL3RST ELNRNG EUNATCH ENOCSI EL2HLT
    EBADE EBADR EXFULL ENOANO EBADRQC EBADSLT EBFONT ENOSTR ENODATA ETIME ENOSR ENONET
    ENOPKG EREMOTE ENOLINK EADV ESRMNT ECOMM EPROTO EMULTIHOP EDOTDOT EBADMSG EOVERFLOW
    ENOTUNIQ EBADFD EREMCHG ELIBACC ELIBBAD ELIBSCN ELIBMAX ELIBEXEC EILSEQ ERESTART
    ESTRPIPE EUSERS ENOTSOCK EDESTADDRREQ EMSGSIZE EPROTOTYPE ENOPROTOOPT EPROTONOSUPPORT
    ESOCKTNOSUPPORT EOPNOTSUPP EPFNOSUPPORT EAFNOSUPPORT EADDRINUSE EADDRNOTAVAIL ENETDOWN
    ENETUNREACH ENETRESET ECONNABORTED ECONNRESET ENOBUFS EISCONN ENOTCONN ESHUTDOWN
    ETOOMANYREFS ETIMEDOUT ECONNREFUSED EHOSTDOWN EHOSTUNREACH EALREADY EINPROGRESS ESTALE
    EUCLEAN ENOTNAM ENAVAIL EISNAM EREMOTEIO EDQUOT ENOMEDIUM EMEDIUMTYPE ECANCELED ENOKEY
    EKEYEXPIRED EKEYREVOKED EKEYREJECTED EOWNERDEAD ENOTRECOVERABLE ERFKILL EHWPOISON
}

/// The outcome of a syscall that failed with `e`.
pub fn errno_outcome(e: Errno) -> pfnguard_report::Outcome {
    pfnguard_report::Outcome::errno(&errno(e))
}

/// The outcome of a child killed by `sig`: the signal, or, for a number without a name, an
/// unavailable cell that says so.
pub fn signal_outcome(sig: i32) -> pfnguard_report::Outcome {
    let name = signal_name(sig);
    match pfnguard_report::SignalName::new(&name) {
        Ok(s) => pfnguard_report::Outcome::Signal(s),
        Err(_) => pfnguard_report::Outcome::unavailable(format!("killed by {name}")),
    }
}

/// The name of a rustix [`Errno`].
pub fn errno(e: Errno) -> String {
    errno_name(e.raw_os_error())
}

/// The name of an [`std::io::Error`]: its errno name when it has one, else its text.
pub fn io_error(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(raw) => errno_name(raw),
        None => e.to_string(),
    }
}

/// The name of a signal number (`SIGBUS`).
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGSYS => "SIGSYS",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        _ => return format!("signal {sig}"),
    };
    name.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(errno_name(libc::EFAULT), "EFAULT");
        assert_eq!(errno_name(libc::EOPNOTSUPP), "EOPNOTSUPP");
        assert_eq!(errno_name(524), "ENOTSUPP");
        assert_eq!(errno_name(9999), "errno 9999");
        assert_eq!(errno(Errno::NOENT), "ENOENT");
        assert_eq!(signal_name(libc::SIGBUS), "SIGBUS");
        assert_eq!(signal_name(libc::SIGSEGV), "SIGSEGV");
    }
}
