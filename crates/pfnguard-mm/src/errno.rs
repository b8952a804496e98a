//! Linux errno values as the model returns them (include/uapi/asm-generic/errno-base.h, errno.h,
//! include/linux/errno.h).

use std::fmt;

/// An errno the modeled kernel paths can return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[allow(missing_docs)]
pub enum Errno {
    EPERM,
    ENOENT,
    EINTR,
    EIO,
    ENXIO,
    EBADF,
    EAGAIN,
    ENOMEM,
    EACCES,
    EFAULT,
    EBUSY,
    EEXIST,
    ENODEV,
    EINVAL,
    ENOSPC,
    EMLINK,
    ENOSYS,
    EOVERFLOW,
    EBADFD,
    EOPNOTSUPP,
    EREMOTEIO,
    EHWPOISON,
}

impl Errno {
    /// The symbolic name (`"EFAULT"`).
    pub fn name(self) -> &'static str {
        match self {
            Errno::EPERM => "EPERM",
            Errno::ENOENT => "ENOENT",
            Errno::EINTR => "EINTR",
            Errno::EIO => "EIO",
            Errno::ENXIO => "ENXIO",
            Errno::EBADF => "EBADF",
            Errno::EAGAIN => "EAGAIN",
            Errno::ENOMEM => "ENOMEM",
            Errno::EACCES => "EACCES",
            Errno::EFAULT => "EFAULT",
            Errno::EBUSY => "EBUSY",
            Errno::EEXIST => "EEXIST",
            Errno::ENODEV => "ENODEV",
            Errno::EINVAL => "EINVAL",
            Errno::ENOSPC => "ENOSPC",
            Errno::EMLINK => "EMLINK",
            Errno::ENOSYS => "ENOSYS",
            Errno::EOVERFLOW => "EOVERFLOW",
            Errno::EBADFD => "EBADFD",
            Errno::EOPNOTSUPP => "EOPNOTSUPP",
            Errno::EREMOTEIO => "EREMOTEIO",
            Errno::EHWPOISON => "EHWPOISON",
        }
    }

    /// The positive errno number on x86-64.
    pub fn number(self) -> i32 {
        match self {
            Errno::EPERM => 1,
            Errno::ENOENT => 2,
            Errno::EINTR => 4,
            Errno::EIO => 5,
            Errno::ENXIO => 6,
            Errno::EBADF => 9,
            Errno::EAGAIN => 11,
            Errno::ENOMEM => 12,
            Errno::EACCES => 13,
            Errno::EFAULT => 14,
            Errno::EBUSY => 16,
            Errno::EEXIST => 17,
            Errno::ENODEV => 19,
            Errno::EINVAL => 22,
            Errno::ENOSPC => 28,
            Errno::EMLINK => 31,
            Errno::ENOSYS => 38,
            Errno::EOVERFLOW => 75,
            Errno::EBADFD => 77,
            Errno::EOPNOTSUPP => 95,
            Errno::EREMOTEIO => 121,
            Errno::EHWPOISON => 133,
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
