//! Linux uapi structures and ioctl numbers the probe needs, defined by hand.
//!
//! `linux-raw-sys` has no dma-buf, DRM, udmabuf, V4L2 or KVM modules, so the
//! layouts are transcribed here from the kernel's uapi headers. Every struct is
//! `#[repr(C)]` with the header's field order; every opcode is built with the
//! `_IO`/`_IOR`/`_IOW`/`_IOWR` equivalents of [`rustix::ioctl::opcode`] from the
//! Rust type, so the size encoded in the opcode is the size of the Rust struct.
//! The integration test `tests/uapi_headers.rs` compiles a C program against
//! `/usr/include` and compares every `sizeof`, `offsetof` and opcode below.

use std::marker::PhantomData;

use rustix::ioctl::{opcode, Opcode};

/// An ioctl request number tied to the type of its argument.
///
/// The constructors derive the size field of the opcode from `T`, so a
/// well-behaved driver reads or writes at most `size_of::<T>()` bytes.
#[derive(Debug)]
pub struct Ioc<T> {
    /// The raw request number.
    pub opcode: Opcode,
    _arg: PhantomData<fn() -> T>,
}

impl<T> Clone for Ioc<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Ioc<T> {}

impl<T> Ioc<T> {
    /// `_IOR(group, nr, T)`: the kernel writes a `T`.
    pub const fn read(group: u8, nr: u8) -> Self {
        Self {
            opcode: opcode::read::<T>(group, nr),
            _arg: PhantomData,
        }
    }
    /// `_IOW(group, nr, T)`: the kernel reads a `T`.
    pub const fn write(group: u8, nr: u8) -> Self {
        Self {
            opcode: opcode::write::<T>(group, nr),
            _arg: PhantomData,
        }
    }
    /// `_IOWR(group, nr, T)`: the kernel reads and writes a `T`.
    pub const fn read_write(group: u8, nr: u8) -> Self {
        Self {
            opcode: opcode::read_write::<T>(group, nr),
            _arg: PhantomData,
        }
    }
}

/// An `_IO(group, nr)` request whose argument is an integer, not a pointer.
#[derive(Debug, Clone, Copy)]
pub struct IocInt {
    /// The raw request number.
    pub opcode: Opcode,
}

impl IocInt {
    /// `_IO(group, nr)`.
    pub const fn none(group: u8, nr: u8) -> Self {
        Self {
            opcode: opcode::none(group, nr),
        }
    }
}

// ---------------------------------------------------------------------------
// <linux/dma-heap.h>
// ---------------------------------------------------------------------------

/// `struct dma_heap_allocation_data` (include/uapi/linux/dma-heap.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DmaHeapAllocationData {
    /// Size of the allocation in bytes (rounded up to pages by the heap).
    pub len: u64,
    /// Output: the dma-buf fd. Must be 0 on input.
    pub fd: u32,
    /// `O_RDWR`/`O_CLOEXEC` for the new fd (`DMA_HEAP_VALID_FD_FLAGS`).
    pub fd_flags: u32,
    /// Heap-specific flags; must be 0 (`DMA_HEAP_VALID_HEAP_FLAGS`).
    pub heap_flags: u64,
}

/// `DMA_HEAP_IOCTL_ALLOC = _IOWR('H', 0x0, struct dma_heap_allocation_data)`,
/// handled by `dma_heap_ioctl_allocate` (drivers/dma-buf/dma-heap.c).
pub const DMA_HEAP_IOCTL_ALLOC: Ioc<DmaHeapAllocationData> = Ioc::read_write(b'H', 0);

// ---------------------------------------------------------------------------
// <linux/udmabuf.h>
// ---------------------------------------------------------------------------

/// `UDMABUF_FLAGS_CLOEXEC`: the returned dma-buf fd is close-on-exec.
pub const UDMABUF_FLAGS_CLOEXEC: u32 = 0x01;

/// `struct udmabuf_create` (include/uapi/linux/udmabuf.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct UdmabufCreate {
    /// The sealed memfd (shmem or hugetlbfs) providing the pages.
    pub memfd: u32,
    /// `UDMABUF_FLAGS_CLOEXEC`.
    pub flags: u32,
    /// Page-aligned offset into the memfd.
    pub offset: u64,
    /// Page-aligned size.
    pub size: u64,
}

/// `UDMABUF_CREATE = _IOW('u', 0x42, struct udmabuf_create)`; the ioctl's
/// return value is the dma-buf fd (`udmabuf_ioctl_create`, drivers/dma-buf/udmabuf.c).
pub const UDMABUF_CREATE: Ioc<UdmabufCreate> = Ioc::write(b'u', 0x42);

// ---------------------------------------------------------------------------
// <linux/dma-buf.h>
// ---------------------------------------------------------------------------

/// `struct dma_buf_sync` (include/uapi/linux/dma-buf.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DmaBufSync {
    /// `DMA_BUF_SYNC_{READ,WRITE,RW}` | `DMA_BUF_SYNC_{START,END}`.
    pub flags: u64,
}

/// `DMA_BUF_SYNC_READ`.
pub const DMA_BUF_SYNC_READ: u64 = 1;
/// `DMA_BUF_SYNC_WRITE`.
pub const DMA_BUF_SYNC_WRITE: u64 = 2;
/// `DMA_BUF_SYNC_RW`.
pub const DMA_BUF_SYNC_RW: u64 = DMA_BUF_SYNC_READ | DMA_BUF_SYNC_WRITE;
/// `DMA_BUF_SYNC_START`.
pub const DMA_BUF_SYNC_START: u64 = 0;
/// `DMA_BUF_SYNC_END`.
pub const DMA_BUF_SYNC_END: u64 = 1 << 2;

/// `DMA_BUF_IOCTL_SYNC = _IOW('b', 0, struct dma_buf_sync)` (`dma_buf_ioctl`,
/// drivers/dma-buf/dma-buf.c).
pub const DMA_BUF_IOCTL_SYNC: Ioc<DmaBufSync> = Ioc::write(b'b', 0);

/// `DMA_BUF_NAME_LEN`: the longest name `DMA_BUF_SET_NAME` accepts, with its NUL.
pub const DMA_BUF_NAME_LEN: usize = 32;

/// `DMA_BUF_SET_NAME_B = _IOW('b', 1, __u64)`, the number `DMA_BUF_SET_NAME` (`const char *`)
/// has on 64-bit: the argument is a pointer to the NUL-terminated name, which
/// drivers/dma-buf/dma-buf.c:dma_buf_set_name copies with `strndup_user(.., DMA_BUF_NAME_LEN)`.
pub const DMA_BUF_SET_NAME_B: IocInt = IocInt {
    opcode: opcode::write::<u64>(b'b', 1),
};

// ---------------------------------------------------------------------------
// <drm/drm.h>, <drm/drm_mode.h>
// ---------------------------------------------------------------------------

/// `DRM_IOCTL_BASE`.
pub const DRM_IOCTL_BASE: u8 = b'd';

/// `DRM_CLOEXEC` (= `O_CLOEXEC`), a `drm_prime_handle.flags` bit.
pub const DRM_CLOEXEC: u32 = 0o2_000_000;
/// `DRM_RDWR` (= `O_RDWR`), a `drm_prime_handle.flags` bit.
pub const DRM_RDWR: u32 = 0o2;

/// `struct drm_version` (include/uapi/drm/drm.h). The three strings are
/// written by the kernel into caller-provided buffers (`drm_version` in
/// drivers/gpu/drm/drm_ioctl.c copies at most `*_len` bytes and sets `*_len`
/// to the full length).
#[repr(C)]
#[derive(Debug)]
pub struct DrmVersion {
    /// Major version.
    pub version_major: i32,
    /// Minor version.
    pub version_minor: i32,
    /// Patch level.
    pub version_patchlevel: i32,
    /// In: capacity of `name`; out: length of the driver name.
    pub name_len: usize,
    /// Buffer for the driver name (not NUL-terminated).
    pub name: *mut u8,
    /// In: capacity of `date`; out: its length.
    pub date_len: usize,
    /// Buffer for the driver date.
    pub date: *mut u8,
    /// In: capacity of `desc`; out: its length.
    pub desc_len: usize,
    /// Buffer for the driver description.
    pub desc: *mut u8,
}

/// `DRM_IOCTL_VERSION = DRM_IOWR(0x00, struct drm_version)`.
pub const DRM_IOCTL_VERSION: Ioc<DrmVersion> = Ioc::read_write(DRM_IOCTL_BASE, 0x00);

/// `struct drm_gem_close` (include/uapi/drm/drm.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DrmGemClose {
    /// GEM handle to release.
    pub handle: u32,
    /// Padding.
    pub pad: u32,
}

/// `DRM_IOCTL_GEM_CLOSE = DRM_IOW(0x09, struct drm_gem_close)`.
pub const DRM_IOCTL_GEM_CLOSE: Ioc<DrmGemClose> = Ioc::write(DRM_IOCTL_BASE, 0x09);

/// `struct drm_prime_handle` (include/uapi/drm/drm.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DrmPrimeHandle {
    /// GEM handle to export.
    pub handle: u32,
    /// `DRM_CLOEXEC | DRM_RDWR`.
    pub flags: u32,
    /// Output: the dma-buf fd.
    pub fd: i32,
}

/// `DRM_IOCTL_PRIME_HANDLE_TO_FD = DRM_IOWR(0x2d, struct drm_prime_handle)`
/// (`drm_prime_handle_to_fd_ioctl`, drivers/gpu/drm/drm_prime.c).
pub const DRM_IOCTL_PRIME_HANDLE_TO_FD: Ioc<DrmPrimeHandle> = Ioc::read_write(DRM_IOCTL_BASE, 0x2d);

/// `DRM_IOCTL_PRIME_FD_TO_HANDLE = DRM_IOWR(0x2e, struct drm_prime_handle)`
/// (drivers/gpu/drm/drm_prime.c:drm_prime_fd_to_handle_ioctl): imports a dma-buf into the
/// device, attaching it (`dma_buf_attach`) unless the device exported it itself.
pub const DRM_IOCTL_PRIME_FD_TO_HANDLE: Ioc<DrmPrimeHandle> = Ioc::read_write(DRM_IOCTL_BASE, 0x2e);

/// `struct drm_mode_create_dumb` (include/uapi/drm/drm_mode.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DrmModeCreateDumb {
    /// Height in pixels.
    pub height: u32,
    /// Width in pixels.
    pub width: u32,
    /// Bits per pixel.
    pub bpp: u32,
    /// Must be 0.
    pub flags: u32,
    /// Output: GEM handle.
    pub handle: u32,
    /// Output: bytes per line.
    pub pitch: u32,
    /// Output: size of the buffer in bytes.
    pub size: u64,
}

/// `DRM_IOCTL_MODE_CREATE_DUMB = DRM_IOWR(0xB2, struct drm_mode_create_dumb)`
/// (`drm_mode_create_dumb_ioctl`, drivers/gpu/drm/drm_dumb_buffers.c).
pub const DRM_IOCTL_MODE_CREATE_DUMB: Ioc<DrmModeCreateDumb> =
    Ioc::read_write(DRM_IOCTL_BASE, 0xB2);

/// `struct drm_mode_destroy_dumb` (include/uapi/drm/drm_mode.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct DrmModeDestroyDumb {
    /// GEM handle.
    pub handle: u32,
}

/// `DRM_IOCTL_MODE_DESTROY_DUMB = DRM_IOWR(0xB4, struct drm_mode_destroy_dumb)`.
pub const DRM_IOCTL_MODE_DESTROY_DUMB: Ioc<DrmModeDestroyDumb> =
    Ioc::read_write(DRM_IOCTL_BASE, 0xB4);

// ---------------------------------------------------------------------------
// <linux/videodev2.h>
// ---------------------------------------------------------------------------

/// `struct v4l2_capability` (include/uapi/linux/videodev2.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct V4l2Capability {
    /// Driver name, NUL-terminated (`"vivid"`).
    pub driver: [u8; 16],
    /// Card name.
    pub card: [u8; 32],
    /// Bus info (`"platform:vivid-000"`), distinguishes instances.
    pub bus_info: [u8; 32],
    /// `KERNEL_VERSION` of the driver.
    pub version: u32,
    /// Capabilities of the physical device as a whole.
    pub capabilities: u32,
    /// Capabilities of this node (valid with `V4L2_CAP_DEVICE_CAPS`).
    pub device_caps: u32,
    /// Reserved.
    pub reserved: [u32; 3],
}

/// `V4L2_CAP_VIDEO_CAPTURE`.
pub const V4L2_CAP_VIDEO_CAPTURE: u32 = 0x0000_0001;
/// `V4L2_CAP_VIDEO_CAPTURE_MPLANE`.
pub const V4L2_CAP_VIDEO_CAPTURE_MPLANE: u32 = 0x0000_1000;
/// `V4L2_CAP_STREAMING`.
pub const V4L2_CAP_STREAMING: u32 = 0x0400_0000;
/// `V4L2_CAP_DEVICE_CAPS`: `device_caps` is valid.
pub const V4L2_CAP_DEVICE_CAPS: u32 = 0x8000_0000;

/// `V4L2_BUF_TYPE_VIDEO_CAPTURE`.
pub const V4L2_BUF_TYPE_VIDEO_CAPTURE: u32 = 1;
/// `V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE`.
pub const V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE: u32 = 9;
/// `V4L2_MEMORY_MMAP`.
pub const V4L2_MEMORY_MMAP: u32 = 1;

/// `V4L2_BUF_CAP_SUPPORTS_MMAP`.
pub const V4L2_BUF_CAP_SUPPORTS_MMAP: u32 = 1 << 0;
/// `V4L2_BUF_CAP_SUPPORTS_USERPTR`: vivid drops it with `allocators=1`
/// (`vivid_create_queue`, drivers/media/test-drivers/vivid/vivid-core.c).
pub const V4L2_BUF_CAP_SUPPORTS_USERPTR: u32 = 1 << 1;
/// `V4L2_BUF_CAP_SUPPORTS_DMABUF`.
pub const V4L2_BUF_CAP_SUPPORTS_DMABUF: u32 = 1 << 2;

/// `struct v4l2_requestbuffers` (include/uapi/linux/videodev2.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct V4l2Requestbuffers {
    /// Number of buffers; 0 frees them and only reports `capabilities`.
    pub count: u32,
    /// `enum v4l2_buf_type`.
    pub type_: u32,
    /// `enum v4l2_memory`.
    pub memory: u32,
    /// Output: `V4L2_BUF_CAP_*` of the queue.
    pub capabilities: u32,
    /// `V4L2_MEMORY_FLAG_*`.
    pub flags: u8,
    /// Reserved.
    pub reserved: [u8; 3],
}

/// `VIDIOC_QUERYCAP = _IOR('V', 0, struct v4l2_capability)`.
pub const VIDIOC_QUERYCAP: Ioc<V4l2Capability> = Ioc::read(b'V', 0);
/// `VIDIOC_REQBUFS = _IOWR('V', 8, struct v4l2_requestbuffers)` (`vb2_core_reqbufs`,
/// drivers/media/common/videobuf2/videobuf2-core.c).
pub const VIDIOC_REQBUFS: Ioc<V4l2Requestbuffers> = Ioc::read_write(b'V', 8);

/// `struct v4l2_exportbuffer` (include/uapi/linux/videodev2.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct V4l2Exportbuffer {
    /// `enum v4l2_buf_type`.
    pub type_: u32,
    /// Buffer index.
    pub index: u32,
    /// Plane index (0 for single-planar).
    pub plane: u32,
    /// `O_CLOEXEC` and the access mode of the new fd.
    pub flags: u32,
    /// Output: the dma-buf fd.
    pub fd: i32,
    /// Reserved.
    pub reserved: [u32; 11],
}

/// `VIDIOC_EXPBUF = _IOWR('V', 16, struct v4l2_exportbuffer)` (`vb2_core_expbuf`).
pub const VIDIOC_EXPBUF: Ioc<V4l2Exportbuffer> = Ioc::read_write(b'V', 16);

// ---------------------------------------------------------------------------
// <linux/io_uring.h>
// ---------------------------------------------------------------------------

/// `struct io_sqring_offsets` (include/uapi/linux/io_uring.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct IoSqringOffsets {
    /// Offset of the head index.
    pub head: u32,
    /// Offset of the tail index.
    pub tail: u32,
    /// Offset of the ring mask.
    pub ring_mask: u32,
    /// Offset of the entry count.
    pub ring_entries: u32,
    /// Offset of the flags.
    pub flags: u32,
    /// Offset of the dropped counter.
    pub dropped: u32,
    /// Offset of the index array.
    pub array: u32,
    /// Reserved.
    pub resv1: u32,
    /// `user_addr` (`resv2` in older headers).
    pub user_addr: u64,
}

/// `struct io_cqring_offsets` (include/uapi/linux/io_uring.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct IoCqringOffsets {
    /// Offset of the head index.
    pub head: u32,
    /// Offset of the tail index.
    pub tail: u32,
    /// Offset of the ring mask.
    pub ring_mask: u32,
    /// Offset of the entry count.
    pub ring_entries: u32,
    /// Offset of the overflow counter.
    pub overflow: u32,
    /// Offset of the CQE array.
    pub cqes: u32,
    /// Offset of the flags.
    pub flags: u32,
    /// Reserved.
    pub resv1: u32,
    /// `user_addr` (`resv2` in older headers).
    pub user_addr: u64,
}

/// `struct io_uring_params` (include/uapi/linux/io_uring.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct IoUringParams {
    /// Output: SQ size.
    pub sq_entries: u32,
    /// CQ size.
    pub cq_entries: u32,
    /// `IORING_SETUP_*`.
    pub flags: u32,
    /// SQPOLL CPU.
    pub sq_thread_cpu: u32,
    /// SQPOLL idle time.
    pub sq_thread_idle: u32,
    /// Output: `IORING_FEAT_*`.
    pub features: u32,
    /// `IORING_SETUP_ATTACH_WQ` fd.
    pub wq_fd: u32,
    /// Reserved.
    pub resv: [u32; 3],
    /// Output: SQ ring offsets.
    pub sq_off: IoSqringOffsets,
    /// Output: CQ ring offsets.
    pub cq_off: IoCqringOffsets,
}

/// `IORING_REGISTER_BUFFERS`, an `io_uring_register(2)` opcode
/// (`io_sqe_buffers_register`, io_uring/rsrc.c).
pub const IORING_REGISTER_BUFFERS: u32 = 0;
/// `IORING_UNREGISTER_BUFFERS`, an `io_uring_register(2)` opcode.
pub const IORING_UNREGISTER_BUFFERS: u32 = 1;

// ---------------------------------------------------------------------------
// <linux/kvm.h> (x86-64)
// ---------------------------------------------------------------------------

/// `KVMIO`.
pub const KVMIO: u8 = 0xAE;
/// `KVM_API_VERSION`.
pub const KVM_API_VERSION: i32 = 12;

/// `KVM_GET_API_VERSION = _IO(KVMIO, 0x00)`.
pub const KVM_GET_API_VERSION: IocInt = IocInt::none(KVMIO, 0x00);
/// `KVM_CREATE_VM = _IO(KVMIO, 0x01)`; the argument is the machine type (0).
pub const KVM_CREATE_VM: IocInt = IocInt::none(KVMIO, 0x01);
/// `KVM_GET_VCPU_MMAP_SIZE = _IO(KVMIO, 0x04)`.
pub const KVM_GET_VCPU_MMAP_SIZE: IocInt = IocInt::none(KVMIO, 0x04);
/// `KVM_CREATE_VCPU = _IO(KVMIO, 0x41)`; the argument is the vCPU id.
pub const KVM_CREATE_VCPU: IocInt = IocInt::none(KVMIO, 0x41);
/// `KVM_SET_TSS_ADDR = _IO(KVMIO, 0x47)` (needed for real mode on VMX
/// without unrestricted guest).
pub const KVM_SET_TSS_ADDR: IocInt = IocInt::none(KVMIO, 0x47);
/// `KVM_RUN = _IO(KVMIO, 0x80)`.
pub const KVM_RUN: IocInt = IocInt::none(KVMIO, 0x80);

/// `struct kvm_userspace_memory_region` (include/uapi/linux/kvm.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct KvmUserspaceMemoryRegion {
    /// Slot id.
    pub slot: u32,
    /// `KVM_MEM_*`.
    pub flags: u32,
    /// Guest physical address.
    pub guest_phys_addr: u64,
    /// Size in bytes (0 deletes the slot).
    pub memory_size: u64,
    /// Start of the backing userspace range.
    pub userspace_addr: u64,
}

/// `KVM_SET_USER_MEMORY_REGION = _IOW(KVMIO, 0x46, struct kvm_userspace_memory_region)`.
pub const KVM_SET_USER_MEMORY_REGION: Ioc<KvmUserspaceMemoryRegion> = Ioc::write(KVMIO, 0x46);

/// `struct kvm_regs` (arch/x86/include/uapi/asm/kvm.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct KvmRegs {
    /// rax.
    pub rax: u64,
    /// rbx.
    pub rbx: u64,
    /// rcx.
    pub rcx: u64,
    /// rdx.
    pub rdx: u64,
    /// rsi.
    pub rsi: u64,
    /// rdi.
    pub rdi: u64,
    /// rsp.
    pub rsp: u64,
    /// rbp.
    pub rbp: u64,
    /// r8.
    pub r8: u64,
    /// r9.
    pub r9: u64,
    /// r10.
    pub r10: u64,
    /// r11.
    pub r11: u64,
    /// r12.
    pub r12: u64,
    /// r13.
    pub r13: u64,
    /// r14.
    pub r14: u64,
    /// r15.
    pub r15: u64,
    /// rip.
    pub rip: u64,
    /// rflags.
    pub rflags: u64,
}

/// `struct kvm_segment` (arch/x86/include/uapi/asm/kvm.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct KvmSegment {
    /// Base address.
    pub base: u64,
    /// Limit.
    pub limit: u32,
    /// Selector.
    pub selector: u16,
    /// Descriptor type.
    pub type_: u8,
    /// Present bit.
    pub present: u8,
    /// Privilege level.
    pub dpl: u8,
    /// Default operand size.
    pub db: u8,
    /// Code/data (1) or system (0).
    pub s: u8,
    /// 64-bit code.
    pub l: u8,
    /// Granularity.
    pub g: u8,
    /// Available bit.
    pub avl: u8,
    /// Unusable segment.
    pub unusable: u8,
    /// Padding.
    pub padding: u8,
}

/// `struct kvm_dtable` (arch/x86/include/uapi/asm/kvm.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct KvmDtable {
    /// Base address.
    pub base: u64,
    /// Limit.
    pub limit: u16,
    /// Padding.
    pub padding: [u16; 3],
}

/// `struct kvm_sregs` (arch/x86/include/uapi/asm/kvm.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct KvmSregs {
    /// cs.
    pub cs: KvmSegment,
    /// ds.
    pub ds: KvmSegment,
    /// es.
    pub es: KvmSegment,
    /// fs.
    pub fs: KvmSegment,
    /// gs.
    pub gs: KvmSegment,
    /// ss.
    pub ss: KvmSegment,
    /// tr.
    pub tr: KvmSegment,
    /// ldt.
    pub ldt: KvmSegment,
    /// gdt.
    pub gdt: KvmDtable,
    /// idt.
    pub idt: KvmDtable,
    /// cr0.
    pub cr0: u64,
    /// cr2.
    pub cr2: u64,
    /// cr3.
    pub cr3: u64,
    /// cr4.
    pub cr4: u64,
    /// cr8.
    pub cr8: u64,
    /// efer.
    pub efer: u64,
    /// apic_base.
    pub apic_base: u64,
    /// `(KVM_NR_INTERRUPTS + 63) / 64` words.
    pub interrupt_bitmap: [u64; 4],
}

/// `KVM_GET_REGS = _IOR(KVMIO, 0x81, struct kvm_regs)`.
pub const KVM_GET_REGS: Ioc<KvmRegs> = Ioc::read(KVMIO, 0x81);
/// `KVM_SET_REGS = _IOW(KVMIO, 0x82, struct kvm_regs)`.
pub const KVM_SET_REGS: Ioc<KvmRegs> = Ioc::write(KVMIO, 0x82);
/// `KVM_GET_SREGS = _IOR(KVMIO, 0x83, struct kvm_sregs)`.
pub const KVM_GET_SREGS: Ioc<KvmSregs> = Ioc::read(KVMIO, 0x83);
/// `KVM_SET_SREGS = _IOW(KVMIO, 0x84, struct kvm_sregs)`.
pub const KVM_SET_SREGS: Ioc<KvmSregs> = Ioc::write(KVMIO, 0x84);

/// Offsets into the `struct kvm_run` page shared with each vCPU.
pub mod kvm_run {
    /// `offsetof(struct kvm_run, exit_reason)` (u32).
    pub const EXIT_REASON: usize = 8;
    /// `offsetof(struct kvm_run, io.direction)` (u8).
    pub const IO_DIRECTION: usize = 32;
    /// `offsetof(struct kvm_run, io.size)` (u8).
    pub const IO_SIZE: usize = 33;
    /// `offsetof(struct kvm_run, io.port)` (u16).
    pub const IO_PORT: usize = 34;
    /// `offsetof(struct kvm_run, mmio.phys_addr)` (u64).
    pub const MMIO_PHYS_ADDR: usize = 32;
    /// `offsetof(struct kvm_run, mmio.len)` (u32).
    pub const MMIO_LEN: usize = 48;
    /// `offsetof(struct kvm_run, mmio.is_write)` (u8).
    pub const MMIO_IS_WRITE: usize = 52;
    /// `offsetof(struct kvm_run, fail_entry.hardware_entry_failure_reason)` (u64).
    pub const FAIL_ENTRY_REASON: usize = 32;
    /// `offsetof(struct kvm_run, internal.suberror)` (u32).
    pub const INTERNAL_SUBERROR: usize = 32;
    /// Bytes of `struct kvm_run` the probe reads (header plus the union's start).
    pub const MIN_SIZE: usize = 64;
}

/// `KVM_EXIT_UNKNOWN`.
pub const KVM_EXIT_UNKNOWN: u32 = 0;
/// `KVM_EXIT_EXCEPTION`.
pub const KVM_EXIT_EXCEPTION: u32 = 1;
/// `KVM_EXIT_IO`.
pub const KVM_EXIT_IO: u32 = 2;
/// `KVM_EXIT_HLT`.
pub const KVM_EXIT_HLT: u32 = 5;
/// `KVM_EXIT_MMIO`.
pub const KVM_EXIT_MMIO: u32 = 6;
/// `KVM_EXIT_SHUTDOWN`.
pub const KVM_EXIT_SHUTDOWN: u32 = 8;
/// `KVM_EXIT_FAIL_ENTRY`.
pub const KVM_EXIT_FAIL_ENTRY: u32 = 9;
/// `KVM_EXIT_INTR`.
pub const KVM_EXIT_INTR: u32 = 10;
/// `KVM_EXIT_INTERNAL_ERROR`.
pub const KVM_EXIT_INTERNAL_ERROR: u32 = 17;

/// The name of a `KVM_EXIT_*` reason, as in include/uapi/linux/kvm.h.
pub fn kvm_exit_name(reason: u32) -> Option<&'static str> {
    Some(match reason {
        0 => "KVM_EXIT_UNKNOWN",
        1 => "KVM_EXIT_EXCEPTION",
        2 => "KVM_EXIT_IO",
        3 => "KVM_EXIT_HYPERCALL",
        4 => "KVM_EXIT_DEBUG",
        5 => "KVM_EXIT_HLT",
        6 => "KVM_EXIT_MMIO",
        7 => "KVM_EXIT_IRQ_WINDOW_OPEN",
        8 => "KVM_EXIT_SHUTDOWN",
        9 => "KVM_EXIT_FAIL_ENTRY",
        10 => "KVM_EXIT_INTR",
        11 => "KVM_EXIT_SET_TPR",
        12 => "KVM_EXIT_TPR_ACCESS",
        17 => "KVM_EXIT_INTERNAL_ERROR",
        24 => "KVM_EXIT_SYSTEM_EVENT",
        39 => "KVM_EXIT_MEMORY_FAULT",
        _ => return None,
    })
}

// ---------------------------------------------------------------------------
// <rdma/ib_user_verbs.h>, <rdma/ib_user_ioctl_verbs.h>: the legacy write() ABI
// ---------------------------------------------------------------------------

/// `IB_USER_VERBS_CMD_GET_CONTEXT`.
pub const IB_USER_VERBS_CMD_GET_CONTEXT: u32 = 0;
/// `IB_USER_VERBS_CMD_ALLOC_PD`.
pub const IB_USER_VERBS_CMD_ALLOC_PD: u32 = 3;
/// `IB_USER_VERBS_CMD_DEALLOC_PD`.
pub const IB_USER_VERBS_CMD_DEALLOC_PD: u32 = 4;
/// `IB_USER_VERBS_CMD_REG_MR`.
pub const IB_USER_VERBS_CMD_REG_MR: u32 = 9;
/// `IB_USER_VERBS_CMD_DEREG_MR`.
pub const IB_USER_VERBS_CMD_DEREG_MR: u32 = 13;
/// `IB_UVERBS_ACCESS_LOCAL_WRITE` (the kernel's `IB_ACCESS_LOCAL_WRITE`).
pub const IB_UVERBS_ACCESS_LOCAL_WRITE: u32 = 1;

/// `struct ib_uverbs_cmd_hdr`: precedes every legacy command written to
/// `/dev/infiniband/uverbsN`; both word counts are in units of 4 bytes, and
/// `in_words` includes this header.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct IbUverbsCmdHdr {
    /// `IB_USER_VERBS_CMD_*`.
    pub command: u32,
    /// Length of header plus command, in 4-byte words.
    pub in_words: u16,
    /// Length of the response buffer, in 4-byte words.
    pub out_words: u16,
}

/// `struct ib_uverbs_get_context` (no driver data).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct IbUverbsGetContext {
    /// User address of the `IbUverbsGetContextResp`.
    pub response: u64,
}

/// `struct ib_uverbs_get_context_resp` (no driver data).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct IbUverbsGetContextResp {
    /// The async event fd the kernel installed.
    pub async_fd: u32,
    /// Completion vectors of the device.
    pub num_comp_vectors: u32,
}

/// `struct ib_uverbs_alloc_pd` (no driver data).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct IbUverbsAllocPd {
    /// User address of the `IbUverbsAllocPdResp`.
    pub response: u64,
}

/// `struct ib_uverbs_alloc_pd_resp` (no driver data).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct IbUverbsAllocPdResp {
    /// Handle of the new protection domain.
    pub pd_handle: u32,
}

/// `struct ib_uverbs_dealloc_pd`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct IbUverbsDeallocPd {
    /// The protection domain.
    pub pd_handle: u32,
}

/// `struct ib_uverbs_reg_mr` (no driver data).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct IbUverbsRegMr {
    /// User address of the `IbUverbsRegMrResp`.
    pub response: u64,
    /// First byte of the user memory to register.
    pub start: u64,
    /// Bytes to register.
    pub length: u64,
    /// The IO virtual address the HCA uses for `start`.
    pub hca_va: u64,
    /// The protection domain.
    pub pd_handle: u32,
    /// `IB_UVERBS_ACCESS_*`.
    pub access_flags: u32,
}

/// `struct ib_uverbs_reg_mr_resp` (no driver data).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct IbUverbsRegMrResp {
    /// Handle of the new memory region.
    pub mr_handle: u32,
    /// Local key.
    pub lkey: u32,
    /// Remote key.
    pub rkey: u32,
}

/// `struct ib_uverbs_dereg_mr`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct IbUverbsDeregMr {
    /// The memory region.
    pub mr_handle: u32,
}

// ---------------------------------------------------------------------------
// <linux/netlink.h>, <rdma/rdma_netlink.h>: creating and removing a soft-RoCE link
// ---------------------------------------------------------------------------

/// `NETLINK_RDMA`.
pub const NETLINK_RDMA: u32 = 20;
/// `RDMA_NL_NLDEV`, the netlink client of the RDMA device interface.
pub const RDMA_NL_NLDEV: u16 = 5;
/// `RDMA_NLDEV_CMD_GET` (with `NLM_F_DUMP`: every RDMA device).
pub const RDMA_NLDEV_CMD_GET: u16 = 1;
/// `RDMA_NLDEV_CMD_NEWLINK`.
pub const RDMA_NLDEV_CMD_NEWLINK: u16 = 3;
/// `RDMA_NLDEV_CMD_DELLINK`.
pub const RDMA_NLDEV_CMD_DELLINK: u16 = 4;
/// `RDMA_NLDEV_ATTR_DEV_INDEX` (u32).
pub const RDMA_NLDEV_ATTR_DEV_INDEX: u16 = 1;
/// `RDMA_NLDEV_ATTR_DEV_NAME` (string).
pub const RDMA_NLDEV_ATTR_DEV_NAME: u16 = 2;
/// `RDMA_NLDEV_ATTR_NDEV_NAME` (string).
pub const RDMA_NLDEV_ATTR_NDEV_NAME: u16 = 51;
/// `RDMA_NLDEV_ATTR_LINK_TYPE` (string).
pub const RDMA_NLDEV_ATTR_LINK_TYPE: u16 = 65;

/// `RDMA_NL_GET_TYPE(client, op)`: the netlink message type of an RDMA command.
pub const fn rdma_nl_get_type(client: u16, op: u16) -> u16 {
    (client << 10) + op
}

/// `struct nlmsghdr`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Nlmsghdr {
    /// Length of the message including this header.
    pub nlmsg_len: u32,
    /// Message type.
    pub nlmsg_type: u16,
    /// `NLM_F_*`.
    pub nlmsg_flags: u16,
    /// Sequence number.
    pub nlmsg_seq: u32,
    /// Sending port id.
    pub nlmsg_pid: u32,
}

/// `struct nlattr`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct Nlattr {
    /// Length of the attribute including this header (without padding).
    pub nla_len: u16,
    /// `RDMA_NLDEV_ATTR_*`.
    pub nla_type: u16,
}

/// `NLM_F_REQUEST`.
pub const NLM_F_REQUEST: u16 = 1;
/// `NLM_F_ACK`.
pub const NLM_F_ACK: u16 = 4;
/// `NLMSG_ERROR`: the kernel's answer, an errno (0 for an acknowledgement).
pub const NLMSG_ERROR: u16 = 2;
/// `NLM_F_DUMP`.
pub const NLM_F_DUMP: u16 = 0x300;
/// `NLMSG_DONE`: the end of a dump.
pub const NLMSG_DONE: u16 = 3;
