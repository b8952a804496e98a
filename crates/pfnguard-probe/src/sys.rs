//! Every `unsafe` operation of the probe, behind safe RAII types.
//!
//! - [`ioctl`]/[`ioctl_int`]/[`drm_version`]: ioctls through `rustix::ioctl`;
//! - [`fd_from_ioctl`]: adopting an fd number a driver returned;
//! - [`Mapping`]: an `mmap(2)` region that is `munmap`ped on drop, with the
//!   raw accesses (touching pages, `mlock`, `madvise`, `mremap`, futex) the ops need;
//! - [`fork`] and [`Child`]: a forked process that is killed and reaped on drop;
//! - [`vmsplice`], [`process_vm_readv`], [`process_vm_writev`],
//!   [`io_uring_register_buffers`]: syscalls whose arguments are raw addresses;
//! - [`kvm_set_memslot`]: hands a mapping to a KVM VM;
//! - [`uverbs_get_context`], [`uverbs_alloc_pd`], [`uverbs_reg_mr`],
//!   [`uverbs_dereg_mr`], [`uverbs_dealloc_pd`]: legacy `write()` commands on
//!   `/dev/infiniband/uverbsN`, whose requests carry response addresses;
//! - [`KmsgReader`], [`kmsg_write`], [`write_existing`]: the kernel log and the debugfs
//!   switch `probe --kmsg` uses (no `unsafe`; here so that every syscall the probe makes on
//!   host state is in one place).
//!
//! Processes are forked with `libc::fork` (so glibc's atfork handlers keep
//! malloc usable in the child), everything else goes through rustix where it
//! has the call, and through `libc` for `process_vm_readv`/`writev`, the
//! io_uring syscalls and the uverbs `write()`s.
//!
//! This is the only module of the crate allowed to use `unsafe`.
#![allow(unsafe_code)]

use std::ffi::c_void;
use std::os::fd::{AsFd, BorrowedFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicI32, AtomicU32, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use rustix::io::{self, Errno};
use rustix::ioctl::{Ioctl, IoctlOutput, Opcode};
use rustix::mm::{Advice, MapFlags, MremapFlags, ProtFlags};
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions, WaitOptions};

use crate::uapi::{self, Ioc, IocInt};

// ---------------------------------------------------------------------------
// ioctl
// ---------------------------------------------------------------------------

/// A uapi argument struct that holds no pointers, so a driver that honours the
/// size in the opcode only touches the struct itself.
///
/// # Safety
///
/// Implementors must be `#[repr(C)]` plain data (any bit pattern valid) without
/// pointers the kernel would follow.
pub(crate) unsafe trait PlainArg: Sized {}

// SAFETY: all of these are #[repr(C)] structs of integers and integer arrays
// (see uapi.rs), valid for every bit pattern, with no pointer fields.
unsafe impl PlainArg for uapi::DmaHeapAllocationData {}
// SAFETY: as above.
unsafe impl PlainArg for uapi::UdmabufCreate {}
// SAFETY: as above.
unsafe impl PlainArg for uapi::DmaBufSync {}
// SAFETY: as above.
unsafe impl PlainArg for uapi::DrmGemClose {}
// SAFETY: as above.
unsafe impl PlainArg for uapi::DrmPrimeHandle {}
// SAFETY: as above.
unsafe impl PlainArg for uapi::DrmModeCreateDumb {}
// SAFETY: as above.
unsafe impl PlainArg for uapi::DrmModeDestroyDumb {}
// SAFETY: as above.
unsafe impl PlainArg for uapi::V4l2Capability {}
// SAFETY: as above.
unsafe impl PlainArg for uapi::V4l2Requestbuffers {}
// SAFETY: as above.
unsafe impl PlainArg for uapi::V4l2Exportbuffer {}
// SAFETY: as above.
unsafe impl PlainArg for uapi::KvmRegs {}
// SAFETY: as above (kvm_segment/kvm_dtable are integers only).
unsafe impl PlainArg for uapi::KvmSregs {}

/// An ioctl whose argument is a pointer to `T` and whose result is the raw
/// return value (some ioctls return an fd, e.g. `UDMABUF_CREATE`).
struct PtrIoctl<'a, T> {
    opcode: Opcode,
    arg: &'a mut T,
}

// SAFETY: `as_ptr` returns a pointer to a live, exclusively borrowed `T`; the
// output is the syscall's return value and reads nothing through the pointer.
unsafe impl<T> Ioctl for PtrIoctl<'_, T> {
    type Output = IoctlOutput;
    const IS_MUTATING: bool = true;
    fn opcode(&self) -> Opcode {
        self.opcode
    }
    fn as_ptr(&mut self) -> *mut c_void {
        (self.arg as *mut T).cast()
    }
    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> io::Result<IoctlOutput> {
        Ok(out)
    }
}

/// An ioctl whose argument is an integer passed by value.
struct IntIoctl {
    opcode: Opcode,
    arg: usize,
}

// SAFETY: the argument is an integer, never dereferenced by us; the output is
// the syscall's return value.
unsafe impl Ioctl for IntIoctl {
    type Output = IoctlOutput;
    const IS_MUTATING: bool = false;
    fn opcode(&self) -> Opcode {
        self.opcode
    }
    fn as_ptr(&mut self) -> *mut c_void {
        self.arg as *mut c_void
    }
    unsafe fn output_from_ptr(out: IoctlOutput, _: *mut c_void) -> io::Result<IoctlOutput> {
        Ok(out)
    }
}

/// `ioctl(fd, cmd, &mut arg)`; returns the ioctl's return value.
pub(crate) fn ioctl<T: PlainArg>(fd: BorrowedFd<'_>, cmd: Ioc<T>, arg: &mut T) -> io::Result<i32> {
    // SAFETY: `cmd` encodes size_of::<T>() (see uapi::Ioc), `arg` is a valid
    // exclusive reference to a pointer-free plain-data T (PlainArg).
    unsafe {
        rustix::ioctl::ioctl(
            fd,
            PtrIoctl {
                opcode: cmd.opcode,
                arg,
            },
        )
    }
}

/// `ioctl(fd, cmd, arg)` with an integer argument (`_IO` requests).
pub(crate) fn ioctl_int(fd: BorrowedFd<'_>, cmd: IocInt, arg: usize) -> io::Result<i32> {
    // SAFETY: `_IO` requests take their argument by value; the kernel does not
    // dereference it for the KVM requests in uapi.rs.
    unsafe {
        rustix::ioctl::ioctl(
            fd,
            IntIoctl {
                opcode: cmd.opcode,
                arg,
            },
        )
    }
}

/// `DMA_BUF_SET_NAME` (drivers/dma-buf/dma-buf.c:dma_buf_set_name): the name fdinfo's `name:`,
/// debugfs bufinfo and the `/dmabuf:NAME` of maps show.
pub(crate) fn dma_buf_set_name(fd: BorrowedFd<'_>, name: &std::ffi::CStr) -> io::Result<()> {
    // SAFETY: the argument is the address of a NUL-terminated string that lives until the
    // call returns; the kernel only reads it (strndup_user, at most DMA_BUF_NAME_LEN bytes).
    unsafe {
        rustix::ioctl::ioctl(
            fd,
            IntIoctl {
                opcode: uapi::DMA_BUF_SET_NAME_B.opcode,
                arg: name.as_ptr() as usize,
            },
        )
    }?;
    Ok(())
}

/// Adopt an fd number that an ioctl returned (or wrote into its argument).
pub(crate) fn fd_from_ioctl(raw: i32) -> io::Result<OwnedFd> {
    if raw < 0 {
        return Err(Errno::BADF);
    }
    // SAFETY: the kernel has just installed `raw` in our fd table for this
    // call, and nothing else in the process knows the number, so we own it.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// What `DRM_IOCTL_VERSION` says about a DRM device.
#[derive(Debug, Clone)]
pub(crate) struct DrmVersionInfo {
    /// `major.minor.patchlevel`.
    pub version: (i32, i32, i32),
    /// Driver name (`vgem`, `virtio_gpu`, `bochs-drm`).
    pub name: String,
    /// Driver description.
    pub desc: String,
}

/// `DRM_IOCTL_VERSION` (`drm_version`, drivers/gpu/drm/drm_ioctl.c).
pub(crate) fn drm_version(fd: BorrowedFd<'_>) -> io::Result<DrmVersionInfo> {
    let mut name = vec![0u8; 128];
    let mut date = vec![0u8; 128];
    let mut desc = vec![0u8; 256];
    let mut v = uapi::DrmVersion {
        version_major: 0,
        version_minor: 0,
        version_patchlevel: 0,
        name_len: name.len(),
        name: name.as_mut_ptr(),
        date_len: date.len(),
        date: date.as_mut_ptr(),
        desc_len: desc.len(),
        desc: desc.as_mut_ptr(),
    };
    // SAFETY: the three pointers point to live buffers of the lengths given in
    // the `*_len` fields; `drm_copy_field` writes at most that many bytes.
    unsafe {
        rustix::ioctl::ioctl(
            fd,
            PtrIoctl {
                opcode: uapi::DRM_IOCTL_VERSION.opcode,
                arg: &mut v,
            },
        )?;
    }
    let text = |buf: &[u8], len: usize| {
        String::from_utf8_lossy(&buf[..len.min(buf.len())])
            .trim_end_matches('\0')
            .to_owned()
    };
    Ok(DrmVersionInfo {
        version: (v.version_major, v.version_minor, v.version_patchlevel),
        name: text(&name, v.name_len),
        desc: text(&desc, v.desc_len),
    })
}

// ---------------------------------------------------------------------------
// Mappings
// ---------------------------------------------------------------------------

/// An `mmap(2)` region owned by this value and unmapped on drop.
///
/// Rust code only reaches the memory through volatile accesses or through the
/// short-lived slices handed to syscalls, so a kernel or a forked process
/// writing the pages (a shared mapping, a KVM guest) never races with a Rust
/// reference.
#[derive(Debug)]
pub(crate) struct Mapping {
    ptr: NonNull<c_void>,
    len: usize,
}

impl Mapping {
    fn map(fd: Option<BorrowedFd<'_>>, len: usize, flags: MapFlags) -> io::Result<Self> {
        let prot = ProtFlags::READ | ProtFlags::WRITE;
        // SAFETY: a fresh mapping at an address the kernel chooses (no
        // MAP_FIXED) cannot alias any existing Rust object.
        let ptr = unsafe {
            match fd {
                Some(fd) => rustix::mm::mmap(std::ptr::null_mut(), len, prot, flags, fd, 0)?,
                None => rustix::mm::mmap_anonymous(std::ptr::null_mut(), len, prot, flags)?,
            }
        };
        let ptr = NonNull::new(ptr).ok_or(Errno::FAULT)?;
        Ok(Self { ptr, len })
    }

    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED, fd, 0)`.
    pub(crate) fn shared(fd: BorrowedFd<'_>, len: usize) -> io::Result<Self> {
        Self::map(Some(fd), len, MapFlags::SHARED)
    }

    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_PRIVATE, fd, 0)`.
    pub(crate) fn private(fd: BorrowedFd<'_>, len: usize) -> io::Result<Self> {
        Self::map(Some(fd), len, MapFlags::PRIVATE)
    }

    /// An anonymous private read-write mapping.
    pub(crate) fn anonymous(len: usize) -> io::Result<Self> {
        Self::map(None, len, MapFlags::PRIVATE)
    }

    /// Start address.
    pub(crate) fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// Length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn check(&self, off: usize, n: usize) {
        assert!(
            off.checked_add(n).is_some_and(|end| end <= self.len),
            "offset outside the mapping"
        );
    }

    /// Volatile write of one byte at `off`. A fault (SIGBUS) kills the process.
    pub(crate) fn write_byte(&mut self, off: usize, v: u8) {
        self.check(off, 1);
        // SAFETY: `off < len` (checked), so the address is inside our mapping.
        unsafe { self.ptr.as_ptr().cast::<u8>().add(off).write_volatile(v) }
    }

    /// Volatile read of one byte at `off`.
    pub(crate) fn read_byte(&self, off: usize) -> u8 {
        self.check(off, 1);
        // SAFETY: `off < len` (checked), so the address is inside our mapping.
        unsafe { self.ptr.as_ptr().cast::<u8>().add(off).read_volatile() }
    }

    /// Volatile read of a native-endian u32 at `off`.
    pub(crate) fn read_u32(&self, off: usize) -> u32 {
        let mut b = [0u8; 4];
        for (i, x) in b.iter_mut().enumerate() {
            *x = self.read_byte(off + i);
        }
        u32::from_ne_bytes(b)
    }

    /// Volatile read of a native-endian u64 at `off`.
    pub(crate) fn read_u64(&self, off: usize) -> u64 {
        let mut b = [0u8; 8];
        for (i, x) in b.iter_mut().enumerate() {
            *x = self.read_byte(off + i);
        }
        u64::from_ne_bytes(b)
    }

    /// Volatile copy of `data` to `off`.
    pub(crate) fn write_bytes(&mut self, off: usize, data: &[u8]) {
        for (i, b) in data.iter().enumerate() {
            self.write_byte(off + i, *b);
        }
    }

    /// Write one byte to every page (the contract's "touch").
    pub(crate) fn touch_pages(&mut self, page: usize) {
        let mut off = 0;
        while off < self.len {
            self.write_byte(off, 1);
            off += page;
        }
    }

    /// Read one byte of every page; returns their xor so the reads are used.
    pub(crate) fn read_pages(&self, page: usize) -> u8 {
        let mut acc = 0u8;
        let mut off = 0;
        while off < self.len {
            acc ^= self.read_byte(off);
            off += page;
        }
        acc
    }

    /// The first `n` bytes, for a syscall that reads user memory.
    pub(crate) fn bytes(&self, n: usize) -> &[u8] {
        self.check(0, n);
        // SAFETY: the range is inside the mapping, which lives as long as the
        // borrow of `self`; no `&mut` to it exists while `&self` is borrowed.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr().cast::<u8>(), n) }
    }

    /// The first `n` bytes, for a syscall that writes user memory.
    pub(crate) fn bytes_mut(&mut self, n: usize) -> &mut [u8] {
        self.check(0, n);
        // SAFETY: the range is inside the mapping, exclusively borrowed through
        // `&mut self` for the lifetime of the slice.
        unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr().cast::<u8>(), n) }
    }

    /// `madvise(addr, len, advice)`.
    pub(crate) fn madvise(&mut self, advice: Advice) -> io::Result<()> {
        // SAFETY: the range is exactly our mapping; MADV_DONTNEED may drop its
        // contents, which Rust never holds references into.
        unsafe { rustix::mm::madvise(self.ptr.as_ptr(), self.len, advice) }
    }

    /// `mlock(addr, len)`.
    pub(crate) fn mlock(&mut self) -> io::Result<()> {
        // SAFETY: the range is exactly our mapping; mlock does not change its contents.
        unsafe { rustix::mm::mlock(self.ptr.as_ptr(), self.len) }
    }

    /// `mremap(addr, len, new_len, MREMAP_MAYMOVE)`; on success the mapping
    /// owns the new range. Returns whether it moved.
    pub(crate) fn mremap(&mut self, new_len: usize) -> io::Result<bool> {
        // SAFETY: the old range is exactly our mapping; on success the old range
        // is gone and we take ownership of the returned one, on failure nothing changed.
        let new = unsafe {
            rustix::mm::mremap(self.ptr.as_ptr(), self.len, new_len, MremapFlags::MAYMOVE)?
        };
        let new = NonNull::new(new).ok_or(Errno::FAULT)?;
        let moved = new != self.ptr;
        self.ptr = new;
        self.len = new_len;
        Ok(moved)
    }

    /// `mmap(NULL, len, PROT_READ|PROT_WRITE, MAP_SHARED or MAP_PRIVATE, fd, 0)` with an fd
    /// number that may be closed or invalid (`-1`): the kernel answers `EBADF` then.
    pub(crate) fn of_raw_fd(fd: i32, len: usize, private: bool) -> io::Result<Self> {
        let flags = if private {
            libc::MAP_PRIVATE
        } else {
            libc::MAP_SHARED
        };
        // SAFETY: a fresh mapping at an address the kernel chooses (no MAP_FIXED) cannot alias
        // any existing Rust object; an fd that is not open fails with EBADF and maps nothing.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                flags,
                fd,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(last_errno());
        }
        let ptr = NonNull::new(ptr).ok_or(Errno::FAULT)?;
        Ok(Self { ptr, len })
    }

    /// `munmap()` of the whole mapping, with its result.
    pub(crate) fn unmap(self) -> io::Result<()> {
        let (ptr, len) = (self.ptr, self.len);
        std::mem::forget(self);
        // SAFETY: we owned exactly this range and gave up the value that owned it.
        unsafe { rustix::mm::munmap(ptr.as_ptr(), len) }
    }

    /// `mprotect(addr, len, prot)` of the whole mapping.
    pub(crate) fn mprotect(&mut self, prot: rustix::mm::MprotectFlags) -> io::Result<()> {
        // SAFETY: the range is exactly our mapping; Rust code reaches it only through the
        // guarded accesses of [`access`] and volatile accesses, never through references.
        unsafe { rustix::mm::mprotect(self.ptr.as_ptr(), self.len, prot) }
    }

    /// `futex(addr, FUTEX_WAKE, 1)` without `FUTEX_PRIVATE_FLAG`.
    pub(crate) fn futex_wake_shared(&mut self) -> io::Result<usize> {
        self.check(0, 4);
        // SAFETY: the mapping is page aligned (so 4-byte aligned) and at least
        // 4 bytes long; the atomic reference lives only for this call, during
        // which Rust holds no other reference into the mapping (`&mut self`).
        let word = unsafe { &*self.ptr.as_ptr().cast::<AtomicU32>() };
        rustix::thread::futex::wake(word, rustix::thread::futex::Flags::empty(), 1)
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: we own exactly this range (from mmap/mremap) and nothing
        // borrows it once `self` is being dropped.
        let _ = unsafe { rustix::mm::munmap(self.ptr.as_ptr(), self.len) };
    }
}

// ---------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------

/// How a child process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Exit {
    /// `_exit(code)`.
    Code(i32),
    /// Killed by this signal.
    Signal(i32),
}

/// A forked child, killed (with its process group when it leads one) and
/// reaped on drop.
#[derive(Debug)]
pub(crate) struct Child {
    pid: Pid,
    leads_group: bool,
    exit: Option<Exit>,
}

/// Fork; the child runs `f` and `_exit`s with its return value (101 if it
/// panics). With `new_group`, the child leads a new process group, so that
/// killing it also kills whatever it forked.
///
/// The child starts with the default dispositions for SIGBUS and SIGSEGV, so a
/// fault kills it with that signal.
pub(crate) fn fork<F: FnOnce() -> i32>(new_group: bool, f: F) -> io::Result<Child> {
    // SAFETY: the child only runs `f` and `_exit`s; it never returns into the
    // caller's stack frames. `f` runs in a copy of this process with only the
    // calling thread; glibc's fork keeps malloc usable in the child.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(last_errno());
    }
    if pid == 0 {
        if new_group {
            let _ = rustix::process::setpgid(None, None);
        }
        // SAFETY: restoring the default disposition of two signals is always
        // valid; SIG_DFL is not a function pointer that could dangle.
        unsafe {
            libc::signal(libc::SIGBUS, libc::SIG_DFL);
            libc::signal(libc::SIGSEGV, libc::SIG_DFL);
        }
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or(101);
        // SAFETY: `_exit` ends the child without running the parent's atexit
        // handlers or destructors of frames it shares with the parent.
        unsafe { libc::_exit(code) }
    }
    let pid = Pid::from_raw(pid).ok_or(Errno::SRCH)?;
    if new_group {
        // Also from the parent, so that a kill of the group right after fork
        // cannot miss the child (it is a no-op once the child did it).
        let _ = rustix::process::setpgid(Some(pid), Some(pid));
    }
    Ok(Child {
        pid,
        leads_group: new_group,
        exit: None,
    })
}

impl Child {
    /// The child's pid.
    pub(crate) fn pid(&self) -> u32 {
        self.pid.as_raw_nonzero().get().unsigned_abs()
    }

    /// Whether the child has exited, without reaping it.
    fn has_exited(&self) -> io::Result<bool> {
        let st = rustix::process::waitid(
            WaitId::Pid(self.pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOHANG | WaitIdOptions::NOWAIT,
        )?;
        Ok(st.is_some())
    }

    /// Reap an exited child: first kill what is left of its group, then collect it.
    fn reap(&mut self) -> io::Result<Exit> {
        if self.leads_group {
            // The zombie leader keeps the group id reserved, so this cannot hit
            // an unrelated group.
            let _ = rustix::process::kill_process_group(self.pid, Signal::KILL);
        }
        let status = loop {
            match rustix::process::waitpid(Some(self.pid), WaitOptions::empty()) {
                Ok(Some((_, st))) => break st,
                Ok(None) => return Err(Errno::CHILD),
                Err(Errno::INTR) => continue,
                Err(e) => return Err(e),
            }
        };
        let exit = match (status.terminating_signal(), status.exit_status()) {
            (Some(sig), _) => Exit::Signal(sig),
            (None, Some(code)) => Exit::Code(code),
            (None, None) => Exit::Code(-1),
        };
        self.exit = Some(exit);
        if self.leads_group {
            self.reap_orphans();
        }
        Ok(exit)
    }

    /// Reap members of the child's group that were reparented to us (when this
    /// process is init or a subreaper, as in a one-process initramfs).
    fn reap_orphans(&self) {
        let until = Instant::now() + Duration::from_millis(200);
        loop {
            match rustix::process::waitpgid(self.pid, WaitOptions::NOHANG) {
                Ok(Some(_)) => continue,
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(1)),
                _ => break,
            }
        }
    }

    /// Wait until the child exits or `deadline` passes (`Ok(None)`: still running).
    pub(crate) fn wait_until(&mut self, deadline: Instant) -> io::Result<Option<Exit>> {
        if let Some(exit) = self.exit {
            return Ok(Some(exit));
        }
        let mut nap = Duration::from_micros(50);
        loop {
            if self.has_exited()? {
                return self.reap().map(Some);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            std::thread::sleep(nap.min(deadline - now));
            nap = (nap * 2).min(Duration::from_millis(5));
        }
    }

    /// Whether the child has exited (reaping it if so).
    pub(crate) fn try_wait(&mut self) -> io::Result<Option<Exit>> {
        self.wait_until(Instant::now())
    }

    /// SIGKILL the child (and its group) and reap it, waiting at most `grace`
    /// (a task stuck in uninterruptible sleep cannot be reaped; it is left).
    pub(crate) fn kill(&mut self, grace: Duration) -> Option<Exit> {
        if self.exit.is_some() {
            return self.exit;
        }
        let _ = if self.leads_group {
            rustix::process::kill_process_group(self.pid, Signal::KILL)
        } else {
            rustix::process::kill_process(self.pid, Signal::KILL)
        };
        self.wait_until(Instant::now() + grace).ok().flatten()
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.exit.is_none() {
            self.kill(Duration::from_secs(2));
        }
    }
}

/// `_exit(code)`: leave a forked child immediately.
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` is always safe to call; it does not return.
    unsafe { libc::_exit(code) }
}

// ---------------------------------------------------------------------------
// Accesses that survive a fault (the scenario steps `touch` and `read`)
// ---------------------------------------------------------------------------

/// The address of the access instruction of [`access`] while it runs (0 otherwise).
static RECOVER_FROM: AtomicUsize = AtomicUsize::new(0);
/// Where [`on_fault`] resumes the access: the instruction after it.
static RECOVER_TO: AtomicUsize = AtomicUsize::new(0);
/// The signal the access raised, 0 for none.
static FAULT_SIGNAL: AtomicI32 = AtomicI32::new(0);

/// The SIGBUS/SIGSEGV handler of [`catch_access_faults`]: a fault at the access instruction of
/// [`access`] is recorded and the instruction skipped; any other fault restores the default
/// action, so that returning re-raises it and the process dies of it as without a handler.
extern "C" fn on_fault(sig: libc::c_int, _info: *mut libc::siginfo_t, ctx: *mut c_void) {
    let from = RECOVER_FROM.load(Ordering::Relaxed);
    // SAFETY: with SA_SIGINFO the kernel passes a valid `ucontext_t` of the interrupted
    // thread as the third argument; on x86-64 its `gregs[REG_RIP]` is the faulting
    // instruction's address, and writing it makes sigreturn resume there. Resetting a signal
    // to SIG_DFL is async-signal-safe.
    unsafe {
        let uc = ctx.cast::<libc::ucontext_t>();
        let rip = &mut (*uc).uc_mcontext.gregs[libc::REG_RIP as usize];
        if from != 0 && *rip as usize == from {
            FAULT_SIGNAL.store(sig, Ordering::Relaxed);
            *rip = RECOVER_TO.load(Ordering::Relaxed) as i64;
        } else {
            libc::signal(sig, libc::SIG_DFL);
        }
    }
}

/// Install [`on_fault`] for SIGBUS and SIGSEGV in this process, so that [`access`] reports a
/// fault instead of dying of it.
pub(crate) fn catch_access_faults() -> io::Result<()> {
    for sig in [libc::SIGBUS, libc::SIGSEGV] {
        // SAFETY: a zeroed sigaction is a valid starting point; the handler has the
        // SA_SIGINFO signature and only touches atomics and the signal's context.
        let rc = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_fault as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(last_errno());
        }
    }
    Ok(())
}

/// A one-byte user write (`write`) or read of `addr`, as a program's store or load: the page
/// fault path decides. Returns the signal the access raised (SIGBUS, SIGSEGV), caught by the
/// handler [`catch_access_faults`] installed, or `None` when it completed.
pub(crate) fn access(addr: usize, write: bool) -> Option<i32> {
    FAULT_SIGNAL.store(0, Ordering::Relaxed);
    // SAFETY: the access targets an address of a mapping Rust holds no reference into (or no
    // mapping at all); a fault there is caught by `on_fault`, which resumes at label 3, and
    // the labels' addresses are published before the access. Nothing else is touched.
    unsafe {
        if write {
            core::arch::asm!(
                "lea {tmp}, [rip + 2f]",
                "mov qword ptr [{from}], {tmp}",
                "lea {tmp}, [rip + 3f]",
                "mov qword ptr [{to}], {tmp}",
                "2:",
                "mov byte ptr [{addr}], {val}",
                "3:",
                from = in(reg) RECOVER_FROM.as_ptr(),
                to = in(reg) RECOVER_TO.as_ptr(),
                addr = in(reg) addr,
                val = in(reg_byte) 1u8,
                tmp = out(reg) _,
                options(nostack, preserves_flags),
            );
        } else {
            core::arch::asm!(
                "lea {tmp}, [rip + 2f]",
                "mov qword ptr [{from}], {tmp}",
                "lea {tmp}, [rip + 3f]",
                "mov qword ptr [{to}], {tmp}",
                "2:",
                "mov {val}, byte ptr [{addr}]",
                "3:",
                from = in(reg) RECOVER_FROM.as_ptr(),
                to = in(reg) RECOVER_TO.as_ptr(),
                addr = in(reg) addr,
                val = out(reg_byte) _,
                tmp = out(reg) _,
                options(nostack, preserves_flags),
            );
        }
    }
    RECOVER_FROM.store(0, Ordering::Relaxed);
    match FAULT_SIGNAL.load(Ordering::Relaxed) {
        0 => None,
        s => Some(s),
    }
}

// ---------------------------------------------------------------------------
// Syscalls on raw addresses
// ---------------------------------------------------------------------------

/// `close(fd)` of a descriptor number no live object owns any more in this process (a forked
/// actor closing what it inherited but must not hold).
pub(crate) fn close_raw(fd: i32) {
    // SAFETY: the caller closes numbers whose owners are never dropped in this process (the
    // frames that own them belong to the parent and are never unwound here).
    unsafe {
        libc::close(fd);
    }
}

/// `close(-1)`: what `close()` of a descriptor that is no longer open answers (`EBADF`).
pub(crate) fn close_unopened() -> Errno {
    // SAFETY: -1 is never an open descriptor; the call changes nothing.
    let rc = unsafe { libc::close(-1) };
    if rc < 0 {
        last_errno()
    } else {
        Errno::BADF
    }
}

/// `pread(fd, addr, n, off)` into user memory at `addr` (the kernel checks the range: EFAULT).
pub(crate) fn pread_to(fd: BorrowedFd<'_>, addr: usize, n: usize, off: i64) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: the kernel writes at most `n` bytes at `addr`, a range of a mapping Rust holds
    // no reference into; an address outside any mapping fails with EFAULT.
    let r = unsafe { libc::pread(fd.as_raw_fd(), addr as *mut c_void, n, off) };
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(r as usize)
    }
}

/// `pwrite(fd, addr, n, off)` from user memory at `addr`.
pub(crate) fn pwrite_from(
    fd: BorrowedFd<'_>,
    addr: usize,
    n: usize,
    off: i64,
) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    // SAFETY: the kernel only reads the range; an address outside any mapping fails with
    // EFAULT.
    let r = unsafe { libc::pwrite(fd.as_raw_fd(), addr as *const c_void, n, off) };
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(r as usize)
    }
}

/// `vmsplice(pipe, {addr, n}, 1, 0)`: the pipe references the user pages.
pub(crate) fn vmsplice_at(pipe_write: BorrowedFd<'_>, addr: usize, n: usize) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let iov = libc::iovec {
        iov_base: addr as *mut c_void,
        iov_len: n,
    };
    // SAFETY: vmsplice on the write end of a pipe only reads the described range (taking page
    // references); `iov` is live for the call.
    let r = unsafe { libc::vmsplice(pipe_write.as_raw_fd(), &iov, 1, 0) };
    if r < 0 {
        Err(last_errno())
    } else {
        Ok(r as usize)
    }
}

/// `io_uring_setup(1)` then `IORING_REGISTER_BUFFERS` of `[addr, addr + len)`; the ring (with
/// its registered buffer) is returned and stays until [`io_uring_unregister`] or its close.
pub(crate) fn io_uring_register_range(
    addr: usize,
    len: usize,
) -> Result<OwnedFd, (UringStep, Errno)> {
    let mut params = uapi::IoUringParams::default();
    // SAFETY: io_uring_setup reads and writes a live `io_uring_params`.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_io_uring_setup,
            1u32,
            &mut params as *mut uapi::IoUringParams,
        )
    };
    if fd < 0 {
        return Err((UringStep::Setup, last_errno()));
    }
    let ring = fd_from_ioctl(fd as i32).map_err(|e| (UringStep::Setup, e))?;
    let iov = libc::iovec {
        iov_base: addr as *mut c_void,
        iov_len: len,
    };
    // SAFETY: `iov` is a live array of one iovec the kernel only reads; it pins the pages of
    // the described range (a mapping Rust holds no reference into) until unregistered.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            ring.as_fd(),
            uapi::IORING_REGISTER_BUFFERS,
            &iov as *const libc::iovec,
            1u32,
        )
    };
    if rc < 0 {
        return Err((UringStep::Register, last_errno()));
    }
    Ok(ring)
}

/// `IORING_UNREGISTER_BUFFERS` on a ring.
pub(crate) fn io_uring_unregister(ring: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: the opcode takes no argument (NULL, 0).
    let rc = unsafe {
        libc::syscall(
            libc::SYS_io_uring_register,
            std::os::fd::AsRawFd::as_raw_fd(&ring),
            uapi::IORING_UNREGISTER_BUFFERS,
            std::ptr::null::<c_void>(),
            0u32,
        )
    };
    if rc < 0 {
        Err(last_errno())
    } else {
        Ok(())
    }
}

/// `vmsplice(pipe, {data}, 1, 0)`: the pipe references the user pages.
pub(crate) fn vmsplice(pipe_write: BorrowedFd<'_>, data: &[u8]) -> io::Result<usize> {
    let iov = [rustix::pipe::IoSliceRaw::from_slice(data)];
    // SAFETY: vmsplice on the write end of a pipe only reads the buffer
    // (it is the read-end direction that writes user memory).
    unsafe { rustix::pipe::vmsplice(pipe_write, &iov, rustix::pipe::SpliceFlags::empty()) }
}

fn last_errno() -> Errno {
    Errno::from_raw_os_error(std::io::Error::last_os_error().raw_os_error().unwrap_or(0))
}

/// `process_vm_readv(getpid(), {local}, 1, {remote}, 1, 0)`: copy from the
/// first `local.len()` bytes of `remote` into `local`.
pub(crate) fn process_vm_readv(local: &mut [u8], remote: &Mapping) -> io::Result<usize> {
    remote.check(0, local.len());
    let l = libc::iovec {
        iov_base: local.as_mut_ptr().cast(),
        iov_len: local.len(),
    };
    let r = libc::iovec {
        iov_base: remote.ptr.as_ptr(),
        iov_len: local.len(),
    };
    // SAFETY: `l` describes a live exclusive buffer, `r` a range inside a live
    // mapping; the kernel only writes `l`.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &l, 1, &r, 1, 0) };
    if n < 0 {
        Err(last_errno())
    } else {
        Ok(n as usize)
    }
}

/// `process_vm_writev(getpid(), {local}, 1, {remote}, 1, 0)`: copy `local`
/// into the first bytes of `remote`.
pub(crate) fn process_vm_writev(local: &[u8], remote: &mut Mapping) -> io::Result<usize> {
    remote.check(0, local.len());
    let l = libc::iovec {
        iov_base: local.as_ptr() as *mut c_void,
        iov_len: local.len(),
    };
    let r = libc::iovec {
        iov_base: remote.ptr.as_ptr(),
        iov_len: local.len(),
    };
    // SAFETY: `l` describes a live buffer the kernel only reads, `r` a range
    // inside a mapping we borrow exclusively, which no Rust reference covers.
    let n = unsafe { libc::process_vm_writev(libc::getpid(), &l, 1, &r, 1, 0) };
    if n < 0 {
        Err(last_errno())
    } else {
        Ok(n as usize)
    }
}

/// Which step of [`io_uring_register_buffers`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UringStep {
    /// `io_uring_setup(2)`.
    Setup,
    /// `io_uring_register(IORING_REGISTER_BUFFERS)`.
    Register,
}

/// `io_uring_setup(1)` then `IORING_REGISTER_BUFFERS` with one iovec covering
/// the whole mapping (a FOLL_LONGTERM pin, `io_sqe_buffers_register`). The
/// ring is closed (and the buffer unregistered) before returning.
pub(crate) fn io_uring_register_buffers(map: &Mapping) -> Result<(), (UringStep, Errno)> {
    io_uring_register_range(map.ptr.as_ptr() as usize, map.len).map(drop)
}

/// `KVM_SET_USER_MEMORY_REGION`: back guest memory `[gpa, gpa + map.len())`
/// with `map`.
///
/// The VM may write the mapping while it runs; Rust only reads it with
/// volatile accesses afterwards. If the mapping goes away first, the kernel
/// sees an unmapped range (guest accesses fail), which is not unsafe for us.
pub(crate) fn kvm_set_memslot(
    vm: BorrowedFd<'_>,
    slot: u32,
    gpa: u64,
    map: &Mapping,
) -> io::Result<()> {
    let mut region = uapi::KvmUserspaceMemoryRegion {
        slot,
        flags: 0,
        guest_phys_addr: gpa,
        memory_size: map.len as u64,
        userspace_addr: map.addr() as u64,
    };
    // SAFETY: the opcode matches the struct (uapi::KVM_SET_USER_MEMORY_REGION),
    // and `userspace_addr` is a live mapping of `memory_size` bytes.
    unsafe {
        rustix::ioctl::ioctl(
            vm,
            PtrIoctl {
                opcode: uapi::KVM_SET_USER_MEMORY_REGION.opcode,
                arg: &mut region,
            },
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// The kernel log
// ---------------------------------------------------------------------------

/// `/dev/kmsg` opened `O_RDONLY|O_NONBLOCK|O_CLOEXEC`: each read returns one record
/// (kernel/printk/printk.c:`devkmsg_read`), `EAGAIN` when there is none left, `EPIPE` once when
/// records were overwritten before they were read (the position then moves to the oldest
/// record still there).
#[derive(Debug)]
pub(crate) struct KmsgReader {
    fd: OwnedFd,
}

impl KmsgReader {
    /// Open `/dev/kmsg` for reading (needs `CAP_SYSLOG` when `kernel.dmesg_restrict` is set).
    pub(crate) fn open() -> io::Result<Self> {
        let fd = rustix::fs::open(
            "/dev/kmsg",
            rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC,
            rustix::fs::Mode::empty(),
        )?;
        Ok(Self { fd })
    }

    /// `lseek(fd, 0, SEEK_END)`: the next read returns the first record logged after this
    /// call (`devkmsg_llseek`).
    pub(crate) fn seek_end(&self) -> io::Result<()> {
        rustix::fs::seek(&self.fd, rustix::fs::SeekFrom::End(0)).map(|_| ())
    }

    /// Read one record into `buf`; returns its length.
    pub(crate) fn read_record(&self, buf: &mut [u8]) -> io::Result<usize> {
        rustix::io::read(&self.fd, buf)
    }
}

/// Write one line into the kernel log through a fresh `O_WRONLY` open of `/dev/kmsg`
/// (`devkmsg_write`; a fresh open gets a fresh rate limit). Logged with facility `LOG_USER`.
pub(crate) fn kmsg_write(line: &str) -> io::Result<()> {
    let fd = rustix::fs::open(
        "/dev/kmsg",
        rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let n = rustix::io::write(&fd, line.as_bytes())?;
    if n == line.len() {
        Ok(())
    } else {
        Err(Errno::IO)
    }
}

/// Write `data` to an existing file (no `O_CREAT`, no `O_TRUNC`): a sysfs or debugfs
/// attribute.
pub(crate) fn write_existing(path: &std::path::Path, data: &[u8]) -> io::Result<()> {
    let fd = rustix::fs::open(
        path,
        rustix::fs::OFlags::WRONLY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?;
    let n = rustix::io::write(&fd, data)?;
    if n == data.len() {
        Ok(())
    } else {
        Err(Errno::IO)
    }
}

// ---------------------------------------------------------------------------
// uverbs: the legacy write() ABI of /dev/infiniband/uverbsN
// ---------------------------------------------------------------------------

/// One legacy uverbs command as `write()` takes it: the header, then the
/// command struct (include/uapi/rdma/ib_user_verbs.h). Every command struct is
/// 4-byte aligned with a size that is a multiple of 4, and the header is 8
/// bytes, so there is no padding and `in_words` is the whole message.
#[repr(C)]
struct UverbsMsg<C> {
    hdr: uapi::IbUverbsCmdHdr,
    cmd: C,
}

/// `write(fd, {hdr, cmd})` with `out_words` words of response space.
///
/// # Safety
///
/// `C` must be a uverbs command struct of the command `command`; if the
/// command has a response, its `response` field must hold the address of a
/// live, exclusively borrowed buffer of at least `out_words * 4` bytes, which
/// the kernel writes (`ib_uverbs_write`, drivers/infiniband/core/uverbs_main.c).
unsafe fn uverbs_write<C>(
    fd: BorrowedFd<'_>,
    command: u32,
    cmd: C,
    out_words: u16,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    const { assert!(std::mem::size_of::<UverbsMsg<C>>() % 4 == 0) };
    let len = std::mem::size_of::<UverbsMsg<C>>();
    let msg = UverbsMsg {
        hdr: uapi::IbUverbsCmdHdr {
            command,
            in_words: (len / 4) as u16,
            out_words,
        },
        cmd,
    };
    // SAFETY: `msg` is live for the call and `len` bytes long; the kernel
    // only reads it, and writes only where the caller's contract allows.
    let n = unsafe { libc::write(fd.as_raw_fd(), (&msg as *const UverbsMsg<C>).cast(), len) };
    if n < 0 {
        Err(last_errno())
    } else {
        Ok(())
    }
}

/// Response words of a response struct.
const fn words<R>() -> u16 {
    (std::mem::size_of::<R>() / 4) as u16
}

/// `IB_USER_VERBS_CMD_GET_CONTEXT` without driver data: the device context
/// of this file. Returns the async event fd the kernel installed and the
/// number of completion vectors.
pub(crate) fn uverbs_get_context(fd: BorrowedFd<'_>) -> io::Result<(OwnedFd, u32)> {
    let mut resp = uapi::IbUverbsGetContextResp::default();
    let cmd = uapi::IbUverbsGetContext {
        response: &mut resp as *mut uapi::IbUverbsGetContextResp as u64,
    };
    // SAFETY: `response` points to `resp`, live and exclusively borrowed for
    // the call, and exactly `words::<IbUverbsGetContextResp>() * 4` bytes long.
    unsafe {
        uverbs_write(
            fd,
            uapi::IB_USER_VERBS_CMD_GET_CONTEXT,
            cmd,
            words::<uapi::IbUverbsGetContextResp>(),
        )?;
    }
    Ok((fd_from_ioctl(resp.async_fd as i32)?, resp.num_comp_vectors))
}

/// `IB_USER_VERBS_CMD_ALLOC_PD` without driver data; returns the PD handle.
pub(crate) fn uverbs_alloc_pd(fd: BorrowedFd<'_>) -> io::Result<u32> {
    let mut resp = uapi::IbUverbsAllocPdResp::default();
    let cmd = uapi::IbUverbsAllocPd {
        response: &mut resp as *mut uapi::IbUverbsAllocPdResp as u64,
    };
    // SAFETY: `response` points to `resp`, live and exclusively borrowed for
    // the call, and exactly `words::<IbUverbsAllocPdResp>() * 4` bytes long.
    unsafe {
        uverbs_write(
            fd,
            uapi::IB_USER_VERBS_CMD_ALLOC_PD,
            cmd,
            words::<uapi::IbUverbsAllocPdResp>(),
        )?;
    }
    Ok(resp.pd_handle)
}

/// `IB_USER_VERBS_CMD_REG_MR` over the whole of `map` (`hca_va` = its
/// address), without driver data: what `ibv_reg_mr` sends. Returns the
/// handle and keys of the memory region.
pub(crate) fn uverbs_reg_mr(
    fd: BorrowedFd<'_>,
    pd_handle: u32,
    map: &mut Mapping,
    access_flags: u32,
) -> io::Result<uapi::IbUverbsRegMrResp> {
    let mut resp = uapi::IbUverbsRegMrResp::default();
    let cmd = uapi::IbUverbsRegMr {
        response: &mut resp as *mut uapi::IbUverbsRegMrResp as u64,
        start: map.addr() as u64,
        length: map.len as u64,
        hca_va: map.addr() as u64,
        pd_handle,
        access_flags,
    };
    // SAFETY: `response` points to `resp`, live and exclusively borrowed for
    // the call, and exactly `words::<IbUverbsRegMrResp>() * 4` bytes long.
    // `start`/`length` are our mapping, exclusively borrowed: the kernel pins
    // its pages; with no queue pair nothing can access them through the MR,
    // and the caller deregisters it before the borrow ends (dropping the fd
    // would too).
    unsafe {
        uverbs_write(
            fd,
            uapi::IB_USER_VERBS_CMD_REG_MR,
            cmd,
            words::<uapi::IbUverbsRegMrResp>(),
        )?;
    }
    Ok(resp)
}

/// `IB_USER_VERBS_CMD_DEREG_MR`.
pub(crate) fn uverbs_dereg_mr(fd: BorrowedFd<'_>, mr_handle: u32) -> io::Result<()> {
    // SAFETY: the command has no response and holds no address.
    unsafe {
        uverbs_write(
            fd,
            uapi::IB_USER_VERBS_CMD_DEREG_MR,
            uapi::IbUverbsDeregMr { mr_handle },
            0,
        )
    }
}

/// `IB_USER_VERBS_CMD_DEALLOC_PD`.
pub(crate) fn uverbs_dealloc_pd(fd: BorrowedFd<'_>, pd_handle: u32) -> io::Result<()> {
    // SAFETY: the command has no response and holds no address.
    unsafe {
        uverbs_write(
            fd,
            uapi::IB_USER_VERBS_CMD_DEALLOC_PD,
            uapi::IbUverbsDeallocPd { pd_handle },
            0,
        )
    }
}
