//! Checks every hand-written uapi layout and ioctl number of
//! `pfnguard_probe::uapi` against the kernel headers in `/usr/include`
//! (linux-libc-dev; the DRM headers come from linux-libc-dev or libdrm-dev, the
//! RDMA ones from linux-libc-dev).
//!
//! A small C program prints `sizeof`, `offsetof` and the macro values; the
//! test compiles it with `$CC` (default `cc`), runs it and compares.
//!
//! Without a C compiler, or without the base, DRM or RDMA headers, the test
//! fails: an unchecked layout is not a passing one. A developer who cannot
//! install them opts out with `PFNGUARD_SKIP_UAPI=1`; the test then prints
//! what it did not check and why. Under CI (`CI` set to anything but `false`
//! or `0`) the opt-out is ignored and the test always fails when it cannot
//! check. `scripts/test` installs gcc, linux-libc-dev and libdrm-dev when run
//! as root on Debian.

use std::mem::{offset_of, size_of};
use std::path::PathBuf;
use std::process::Command;

/// The environment variable a developer sets to `1` to skip the checks that
/// need a C compiler or headers this machine lacks.
const SKIP_VAR: &str = "PFNGUARD_SKIP_UAPI";

/// Whether a `CI` value means the test runs under CI (set, and not `false`/`0`).
fn is_ci(ci: Option<&str>) -> bool {
    ci.is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// What to do when a check cannot run: `Err` with the failure message, or
/// `Ok` with the skip message.
fn unchecked(
    what: &str,
    why: &str,
    ci: Option<&str>,
    skip: Option<&str>,
) -> Result<String, String> {
    if is_ci(ci) {
        return Err(format!("{what} cannot be checked under CI: {why}"));
    }
    if skip != Some("1") {
        return Err(format!(
            "{what} cannot be checked: {why}\n\
             install them (scripts/test does as root), or set {SKIP_VAR}=1 to skip this check"
        ));
    }
    Ok(format!("SKIPPED ({SKIP_VAR}=1): {what}: {why}"))
}

/// The checks named by `what` cannot run because of `why`: fail, unless the
/// developer opted out outside CI, in which case say what was skipped.
fn cannot_check(what: &str, why: &str) {
    let ci = std::env::var("CI").ok();
    let skip = std::env::var(SKIP_VAR).ok();
    match unchecked(what, why, ci.as_deref(), skip.as_deref()) {
        Ok(msg) => eprintln!("{msg}"),
        Err(msg) => panic!("{msg}"),
    }
}

#[test]
fn unchecked_layouts_fail_unless_opted_out_outside_ci() {
    let why = "no C compiler";
    assert!(unchecked("x", why, None, None).is_err());
    assert!(unchecked("x", why, None, Some("0")).is_err());
    assert!(unchecked("x", why, Some("false"), Some("yes")).is_err());
    let skipped = unchecked("x", why, None, Some("1")).unwrap();
    assert!(skipped.contains("PFNGUARD_SKIP_UAPI=1") && skipped.contains(why));
    assert!(unchecked("x", why, Some("0"), Some("1")).is_ok());
    for ci in ["true", "1", "yes"] {
        let err = unchecked("x", why, Some(ci), Some("1")).unwrap_err();
        assert!(err.contains("under CI"), "{err}");
    }
    assert!(missing_header(
        "uapi.c:4:10: fatal error: linux/dma-heap.h: No such file or directory"
    ));
    assert!(!missing_header("uapi.c:9: error: 'FOO' undeclared"));
}

/// Whether the compiler's error output says an `#include`d header is missing.
fn missing_header(stderr: &str) -> bool {
    stderr.contains(".h: No such file or directory") || stderr.contains("file not found")
}

use pfnguard_probe::uapi::{self, *};

/// Which headers a check needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Group {
    /// linux-libc-dev's <linux/*.h>, always required.
    Base,
    /// <drm/*.h> or <libdrm/*.h>.
    Drm,
    /// <rdma/ib_user_verbs.h> and friends.
    Rdma,
}

impl From<bool> for Group {
    /// `false`: [`Group::Base`], `true`: [`Group::Drm`].
    fn from(drm: bool) -> Self {
        if drm {
            Group::Drm
        } else {
            Group::Base
        }
    }
}

/// One comparison: a C expression and the Rust value it must equal.
struct Check {
    group: Group,
    c: String,
    rust: u64,
}

macro_rules! size {
    ($v:ident, $drm:expr, $cty:expr, $rty:ty) => {
        $v.push(Check {
            group: Group::from($drm),
            c: format!("sizeof({})", $cty),
            rust: size_of::<$rty>() as u64,
        })
    };
}
macro_rules! off {
    ($v:ident, $drm:expr, $cty:expr, $rty:ty, $rf:ident, $cf:expr) => {
        $v.push(Check {
            group: Group::from($drm),
            c: format!("offsetof({}, {})", $cty, $cf),
            rust: offset_of!($rty, $rf) as u64,
        })
    };
}
macro_rules! val {
    ($v:ident, $drm:expr, $c:expr, $r:expr) => {
        $v.push(Check {
            group: Group::from($drm),
            c: $c.to_string(),
            rust: $r as u64,
        })
    };
}

fn checks() -> Vec<Check> {
    let mut v = Vec::new();

    // <linux/dma-heap.h>
    let t = "struct dma_heap_allocation_data";
    size!(v, false, t, DmaHeapAllocationData);
    off!(v, false, t, DmaHeapAllocationData, len, "len");
    off!(v, false, t, DmaHeapAllocationData, fd, "fd");
    off!(v, false, t, DmaHeapAllocationData, fd_flags, "fd_flags");
    off!(v, false, t, DmaHeapAllocationData, heap_flags, "heap_flags");
    val!(
        v,
        false,
        "DMA_HEAP_IOCTL_ALLOC",
        DMA_HEAP_IOCTL_ALLOC.opcode
    );

    // <linux/udmabuf.h>
    let t = "struct udmabuf_create";
    size!(v, false, t, UdmabufCreate);
    off!(v, false, t, UdmabufCreate, memfd, "memfd");
    off!(v, false, t, UdmabufCreate, flags, "flags");
    off!(v, false, t, UdmabufCreate, offset, "offset");
    off!(v, false, t, UdmabufCreate, size, "size");
    val!(v, false, "UDMABUF_CREATE", UDMABUF_CREATE.opcode);
    val!(v, false, "UDMABUF_FLAGS_CLOEXEC", UDMABUF_FLAGS_CLOEXEC);

    // <linux/dma-buf.h>
    size!(v, false, "struct dma_buf_sync", DmaBufSync);
    val!(v, false, "DMA_BUF_IOCTL_SYNC", DMA_BUF_IOCTL_SYNC.opcode);
    val!(v, false, "DMA_BUF_SYNC_READ", DMA_BUF_SYNC_READ);
    val!(v, false, "DMA_BUF_SYNC_WRITE", DMA_BUF_SYNC_WRITE);
    val!(v, false, "DMA_BUF_SYNC_RW", DMA_BUF_SYNC_RW);
    val!(v, false, "DMA_BUF_SYNC_START", DMA_BUF_SYNC_START);
    val!(v, false, "DMA_BUF_SYNC_END", DMA_BUF_SYNC_END);
    val!(v, false, "DMA_BUF_NAME_LEN", DMA_BUF_NAME_LEN);
    val!(v, false, "DMA_BUF_SET_NAME_B", DMA_BUF_SET_NAME_B.opcode);

    // <linux/videodev2.h>
    let t = "struct v4l2_capability";
    size!(v, false, t, V4l2Capability);
    off!(v, false, t, V4l2Capability, card, "card");
    off!(v, false, t, V4l2Capability, bus_info, "bus_info");
    off!(v, false, t, V4l2Capability, version, "version");
    off!(v, false, t, V4l2Capability, capabilities, "capabilities");
    off!(v, false, t, V4l2Capability, device_caps, "device_caps");
    let t = "struct v4l2_requestbuffers";
    size!(v, false, t, V4l2Requestbuffers);
    off!(v, false, t, V4l2Requestbuffers, type_, "type");
    off!(v, false, t, V4l2Requestbuffers, memory, "memory");
    off!(
        v,
        false,
        t,
        V4l2Requestbuffers,
        capabilities,
        "capabilities"
    );
    off!(v, false, t, V4l2Requestbuffers, flags, "flags");
    let t = "struct v4l2_exportbuffer";
    size!(v, false, t, V4l2Exportbuffer);
    off!(v, false, t, V4l2Exportbuffer, index, "index");
    off!(v, false, t, V4l2Exportbuffer, plane, "plane");
    off!(v, false, t, V4l2Exportbuffer, flags, "flags");
    off!(v, false, t, V4l2Exportbuffer, fd, "fd");
    val!(v, false, "VIDIOC_QUERYCAP", VIDIOC_QUERYCAP.opcode);
    val!(v, false, "VIDIOC_REQBUFS", VIDIOC_REQBUFS.opcode);
    val!(v, false, "VIDIOC_EXPBUF", VIDIOC_EXPBUF.opcode);
    val!(v, false, "V4L2_CAP_VIDEO_CAPTURE", V4L2_CAP_VIDEO_CAPTURE);
    val!(
        v,
        false,
        "V4L2_CAP_VIDEO_CAPTURE_MPLANE",
        V4L2_CAP_VIDEO_CAPTURE_MPLANE
    );
    val!(v, false, "V4L2_CAP_STREAMING", V4L2_CAP_STREAMING);
    val!(v, false, "V4L2_CAP_DEVICE_CAPS", V4L2_CAP_DEVICE_CAPS);
    val!(
        v,
        false,
        "V4L2_BUF_TYPE_VIDEO_CAPTURE",
        V4L2_BUF_TYPE_VIDEO_CAPTURE
    );
    val!(
        v,
        false,
        "V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE",
        V4L2_BUF_TYPE_VIDEO_CAPTURE_MPLANE
    );
    val!(v, false, "V4L2_MEMORY_MMAP", V4L2_MEMORY_MMAP);
    val!(
        v,
        false,
        "V4L2_BUF_CAP_SUPPORTS_MMAP",
        V4L2_BUF_CAP_SUPPORTS_MMAP
    );
    val!(
        v,
        false,
        "V4L2_BUF_CAP_SUPPORTS_USERPTR",
        V4L2_BUF_CAP_SUPPORTS_USERPTR
    );
    val!(
        v,
        false,
        "V4L2_BUF_CAP_SUPPORTS_DMABUF",
        V4L2_BUF_CAP_SUPPORTS_DMABUF
    );

    // <linux/io_uring.h>
    let t = "struct io_uring_params";
    size!(v, false, t, IoUringParams);
    off!(v, false, t, IoUringParams, features, "features");
    off!(v, false, t, IoUringParams, wq_fd, "wq_fd");
    off!(v, false, t, IoUringParams, resv, "resv");
    off!(v, false, t, IoUringParams, sq_off, "sq_off");
    off!(v, false, t, IoUringParams, cq_off, "cq_off");
    size!(v, false, "struct io_sqring_offsets", IoSqringOffsets);
    off!(
        v,
        false,
        "struct io_sqring_offsets",
        IoSqringOffsets,
        array,
        "array"
    );
    size!(v, false, "struct io_cqring_offsets", IoCqringOffsets);
    off!(
        v,
        false,
        "struct io_cqring_offsets",
        IoCqringOffsets,
        cqes,
        "cqes"
    );
    off!(
        v,
        false,
        "struct io_cqring_offsets",
        IoCqringOffsets,
        flags,
        "flags"
    );
    val!(v, false, "IORING_REGISTER_BUFFERS", IORING_REGISTER_BUFFERS);

    // <linux/kvm.h>
    val!(v, false, "KVMIO", KVMIO);
    val!(v, false, "KVM_API_VERSION", KVM_API_VERSION);
    val!(v, false, "KVM_GET_API_VERSION", KVM_GET_API_VERSION.opcode);
    val!(v, false, "KVM_CREATE_VM", KVM_CREATE_VM.opcode);
    val!(
        v,
        false,
        "KVM_GET_VCPU_MMAP_SIZE",
        KVM_GET_VCPU_MMAP_SIZE.opcode
    );
    val!(v, false, "KVM_CREATE_VCPU", KVM_CREATE_VCPU.opcode);
    val!(v, false, "KVM_SET_TSS_ADDR", KVM_SET_TSS_ADDR.opcode);
    val!(v, false, "KVM_RUN", KVM_RUN.opcode);
    val!(
        v,
        false,
        "KVM_SET_USER_MEMORY_REGION",
        KVM_SET_USER_MEMORY_REGION.opcode
    );
    val!(v, false, "KVM_GET_REGS", KVM_GET_REGS.opcode);
    val!(v, false, "KVM_SET_REGS", KVM_SET_REGS.opcode);
    val!(v, false, "KVM_GET_SREGS", KVM_GET_SREGS.opcode);
    val!(v, false, "KVM_SET_SREGS", KVM_SET_SREGS.opcode);
    let t = "struct kvm_userspace_memory_region";
    size!(v, false, t, KvmUserspaceMemoryRegion);
    off!(
        v,
        false,
        t,
        KvmUserspaceMemoryRegion,
        guest_phys_addr,
        "guest_phys_addr"
    );
    off!(
        v,
        false,
        t,
        KvmUserspaceMemoryRegion,
        memory_size,
        "memory_size"
    );
    off!(
        v,
        false,
        t,
        KvmUserspaceMemoryRegion,
        userspace_addr,
        "userspace_addr"
    );
    size!(v, false, "struct kvm_regs", KvmRegs);
    off!(v, false, "struct kvm_regs", KvmRegs, rip, "rip");
    off!(v, false, "struct kvm_regs", KvmRegs, rflags, "rflags");
    size!(v, false, "struct kvm_segment", KvmSegment);
    off!(
        v,
        false,
        "struct kvm_segment",
        KvmSegment,
        selector,
        "selector"
    );
    off!(
        v,
        false,
        "struct kvm_segment",
        KvmSegment,
        unusable,
        "unusable"
    );
    size!(v, false, "struct kvm_dtable", KvmDtable);
    let t = "struct kvm_sregs";
    size!(v, false, t, KvmSregs);
    off!(v, false, t, KvmSregs, ds, "ds");
    off!(v, false, t, KvmSregs, gdt, "gdt");
    off!(v, false, t, KvmSregs, cr0, "cr0");
    off!(v, false, t, KvmSregs, apic_base, "apic_base");
    off!(v, false, t, KvmSregs, interrupt_bitmap, "interrupt_bitmap");
    let t = "struct kvm_run";
    val!(
        v,
        false,
        format!("offsetof({t}, exit_reason)"),
        kvm_run::EXIT_REASON
    );
    val!(
        v,
        false,
        format!("offsetof({t}, io.direction)"),
        kvm_run::IO_DIRECTION
    );
    val!(
        v,
        false,
        format!("offsetof({t}, io.size)"),
        kvm_run::IO_SIZE
    );
    val!(
        v,
        false,
        format!("offsetof({t}, io.port)"),
        kvm_run::IO_PORT
    );
    val!(
        v,
        false,
        format!("offsetof({t}, mmio.phys_addr)"),
        kvm_run::MMIO_PHYS_ADDR
    );
    val!(
        v,
        false,
        format!("offsetof({t}, mmio.len)"),
        kvm_run::MMIO_LEN
    );
    val!(
        v,
        false,
        format!("offsetof({t}, mmio.is_write)"),
        kvm_run::MMIO_IS_WRITE
    );
    val!(
        v,
        false,
        format!("offsetof({t}, fail_entry.hardware_entry_failure_reason)"),
        kvm_run::FAIL_ENTRY_REASON
    );
    val!(
        v,
        false,
        format!("offsetof({t}, internal.suberror)"),
        kvm_run::INTERNAL_SUBERROR
    );
    for (name, value) in [
        ("KVM_EXIT_UNKNOWN", KVM_EXIT_UNKNOWN),
        ("KVM_EXIT_EXCEPTION", KVM_EXIT_EXCEPTION),
        ("KVM_EXIT_IO", KVM_EXIT_IO),
        ("KVM_EXIT_HLT", KVM_EXIT_HLT),
        ("KVM_EXIT_MMIO", KVM_EXIT_MMIO),
        ("KVM_EXIT_SHUTDOWN", KVM_EXIT_SHUTDOWN),
        ("KVM_EXIT_FAIL_ENTRY", KVM_EXIT_FAIL_ENTRY),
        ("KVM_EXIT_INTR", KVM_EXIT_INTR),
        ("KVM_EXIT_INTERNAL_ERROR", KVM_EXIT_INTERNAL_ERROR),
    ] {
        val!(v, false, name, value);
        assert_eq!(uapi::kvm_exit_name(value), Some(name));
    }

    // <drm/drm.h>, <drm/drm_mode.h>
    val!(v, true, "DRM_IOCTL_BASE", DRM_IOCTL_BASE);
    val!(v, true, "DRM_CLOEXEC", DRM_CLOEXEC);
    val!(v, true, "DRM_RDWR", DRM_RDWR);
    let t = "struct drm_version";
    size!(v, true, t, DrmVersion);
    off!(v, true, t, DrmVersion, name_len, "name_len");
    off!(v, true, t, DrmVersion, name, "name");
    off!(v, true, t, DrmVersion, date_len, "date_len");
    off!(v, true, t, DrmVersion, date, "date");
    off!(v, true, t, DrmVersion, desc_len, "desc_len");
    off!(v, true, t, DrmVersion, desc, "desc");
    val!(v, true, "DRM_IOCTL_VERSION", DRM_IOCTL_VERSION.opcode);
    size!(v, true, "struct drm_gem_close", DrmGemClose);
    val!(v, true, "DRM_IOCTL_GEM_CLOSE", DRM_IOCTL_GEM_CLOSE.opcode);
    let t = "struct drm_prime_handle";
    size!(v, true, t, DrmPrimeHandle);
    off!(v, true, t, DrmPrimeHandle, flags, "flags");
    off!(v, true, t, DrmPrimeHandle, fd, "fd");
    val!(
        v,
        true,
        "DRM_IOCTL_PRIME_HANDLE_TO_FD",
        DRM_IOCTL_PRIME_HANDLE_TO_FD.opcode
    );
    val!(
        v,
        true,
        "DRM_IOCTL_PRIME_FD_TO_HANDLE",
        DRM_IOCTL_PRIME_FD_TO_HANDLE.opcode
    );
    let t = "struct drm_mode_create_dumb";
    size!(v, true, t, DrmModeCreateDumb);
    off!(v, true, t, DrmModeCreateDumb, width, "width");
    off!(v, true, t, DrmModeCreateDumb, bpp, "bpp");
    off!(v, true, t, DrmModeCreateDumb, handle, "handle");
    off!(v, true, t, DrmModeCreateDumb, pitch, "pitch");
    off!(v, true, t, DrmModeCreateDumb, size, "size");
    val!(
        v,
        true,
        "DRM_IOCTL_MODE_CREATE_DUMB",
        DRM_IOCTL_MODE_CREATE_DUMB.opcode
    );
    size!(v, true, "struct drm_mode_destroy_dumb", DrmModeDestroyDumb);
    val!(
        v,
        true,
        "DRM_IOCTL_MODE_DESTROY_DUMB",
        DRM_IOCTL_MODE_DESTROY_DUMB.opcode
    );

    // <rdma/ib_user_verbs.h>, <rdma/ib_user_ioctl_verbs.h>
    let r = Group::Rdma;
    for (name, value) in [
        (
            "IB_USER_VERBS_CMD_GET_CONTEXT",
            IB_USER_VERBS_CMD_GET_CONTEXT,
        ),
        ("IB_USER_VERBS_CMD_ALLOC_PD", IB_USER_VERBS_CMD_ALLOC_PD),
        ("IB_USER_VERBS_CMD_DEALLOC_PD", IB_USER_VERBS_CMD_DEALLOC_PD),
        ("IB_USER_VERBS_CMD_REG_MR", IB_USER_VERBS_CMD_REG_MR),
        ("IB_USER_VERBS_CMD_DEREG_MR", IB_USER_VERBS_CMD_DEREG_MR),
        ("IB_UVERBS_ACCESS_LOCAL_WRITE", IB_UVERBS_ACCESS_LOCAL_WRITE),
    ] {
        val!(v, r, name, value);
    }
    let t = "struct ib_uverbs_cmd_hdr";
    size!(v, r, t, IbUverbsCmdHdr);
    off!(v, r, t, IbUverbsCmdHdr, in_words, "in_words");
    off!(v, r, t, IbUverbsCmdHdr, out_words, "out_words");
    size!(v, r, "struct ib_uverbs_get_context", IbUverbsGetContext);
    let t = "struct ib_uverbs_get_context_resp";
    size!(v, r, t, IbUverbsGetContextResp);
    off!(
        v,
        r,
        t,
        IbUverbsGetContextResp,
        num_comp_vectors,
        "num_comp_vectors"
    );
    size!(v, r, "struct ib_uverbs_alloc_pd", IbUverbsAllocPd);
    size!(v, r, "struct ib_uverbs_alloc_pd_resp", IbUverbsAllocPdResp);
    size!(v, r, "struct ib_uverbs_dealloc_pd", IbUverbsDeallocPd);
    let t = "struct ib_uverbs_reg_mr";
    size!(v, r, t, IbUverbsRegMr);
    off!(v, r, t, IbUverbsRegMr, start, "start");
    off!(v, r, t, IbUverbsRegMr, length, "length");
    off!(v, r, t, IbUverbsRegMr, hca_va, "hca_va");
    off!(v, r, t, IbUverbsRegMr, pd_handle, "pd_handle");
    off!(v, r, t, IbUverbsRegMr, access_flags, "access_flags");
    let t = "struct ib_uverbs_reg_mr_resp";
    size!(v, r, t, IbUverbsRegMrResp);
    off!(v, r, t, IbUverbsRegMrResp, lkey, "lkey");
    off!(v, r, t, IbUverbsRegMrResp, rkey, "rkey");
    size!(v, r, "struct ib_uverbs_dereg_mr", IbUverbsDeregMr);

    // <linux/netlink.h>, <rdma/rdma_netlink.h>
    val!(v, false, "NETLINK_RDMA", NETLINK_RDMA);
    val!(v, false, "NLM_F_REQUEST", NLM_F_REQUEST);
    val!(v, false, "NLM_F_ACK", NLM_F_ACK);
    val!(v, false, "NLMSG_ERROR", NLMSG_ERROR);
    val!(v, false, "NLM_F_DUMP", NLM_F_DUMP);
    val!(v, false, "NLMSG_DONE", NLMSG_DONE);
    size!(v, false, "struct nlmsghdr", Nlmsghdr);
    off!(
        v,
        false,
        "struct nlmsghdr",
        Nlmsghdr,
        nlmsg_type,
        "nlmsg_type"
    );
    off!(
        v,
        false,
        "struct nlmsghdr",
        Nlmsghdr,
        nlmsg_seq,
        "nlmsg_seq"
    );
    size!(v, false, "struct nlattr", Nlattr);
    val!(v, r, "RDMA_NL_NLDEV", RDMA_NL_NLDEV);
    val!(v, r, "RDMA_NLDEV_CMD_NEWLINK", RDMA_NLDEV_CMD_NEWLINK);
    val!(
        v,
        r,
        "RDMA_NL_GET_TYPE(RDMA_NL_NLDEV, RDMA_NLDEV_CMD_NEWLINK)",
        uapi::rdma_nl_get_type(RDMA_NL_NLDEV, RDMA_NLDEV_CMD_NEWLINK)
    );
    val!(v, r, "RDMA_NLDEV_CMD_GET", RDMA_NLDEV_CMD_GET);
    val!(v, r, "RDMA_NLDEV_CMD_DELLINK", RDMA_NLDEV_CMD_DELLINK);
    val!(v, r, "RDMA_NLDEV_ATTR_DEV_INDEX", RDMA_NLDEV_ATTR_DEV_INDEX);
    val!(v, r, "RDMA_NLDEV_ATTR_DEV_NAME", RDMA_NLDEV_ATTR_DEV_NAME);
    val!(v, r, "RDMA_NLDEV_ATTR_NDEV_NAME", RDMA_NLDEV_ATTR_NDEV_NAME);
    val!(v, r, "RDMA_NLDEV_ATTR_LINK_TYPE", RDMA_NLDEV_ATTR_LINK_TYPE);
    v
}

const PRELUDE: &str = r#"#include <stdio.h>
#include <stddef.h>
#include <fcntl.h>
#include <linux/dma-heap.h>
#include <linux/udmabuf.h>
#include <linux/dma-buf.h>
#include <linux/videodev2.h>
#include <linux/io_uring.h>
#include <linux/kvm.h>
#if __has_include(<drm/drm.h>)
#include <drm/drm.h>
#include <drm/drm_mode.h>
#define HAVE_DRM 1
#elif __has_include(<libdrm/drm.h>)
#include <libdrm/drm.h>
#include <libdrm/drm_mode.h>
#define HAVE_DRM 1
#else
#define HAVE_DRM 0
#endif
#include <linux/netlink.h>
#if __has_include(<rdma/ib_user_verbs.h>) && __has_include(<rdma/ib_user_ioctl_verbs.h>) && __has_include(<rdma/rdma_netlink.h>)
#include <rdma/ib_user_verbs.h>
#include <rdma/ib_user_ioctl_verbs.h>
#include <rdma/rdma_netlink.h>
#define HAVE_RDMA 1
#else
#define HAVE_RDMA 0
#endif
#define P(i, e) printf("%d %llu\n", i, (unsigned long long)(e))
int main(void) {
"#;

fn c_program(checks: &[Check]) -> String {
    let mut src = PRELUDE.to_owned();
    for (i, c) in checks.iter().enumerate() {
        let line = format!("    P({i}, {});\n", c.c);
        match c.group {
            Group::Base => src.push_str(&line),
            Group::Drm => src.push_str(&format!("#if HAVE_DRM\n{line}#endif\n")),
            Group::Rdma => src.push_str(&format!("#if HAVE_RDMA\n{line}#endif\n")),
        }
    }
    src.push_str("#if !HAVE_DRM\n    puts(\"no-drm-headers\");\n#endif\n");
    src.push_str("#if !HAVE_RDMA\n    puts(\"no-rdma-headers\");\n#endif\n    return 0;\n}\n");
    src
}

#[test]
fn uapi_matches_kernel_headers() {
    let checks = checks();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("uapi_headers");
    std::fs::create_dir_all(&dir).expect("create the scratch directory");
    let src = dir.join("uapi.c");
    let bin = dir.join("uapi");
    std::fs::write(&src, c_program(&checks)).expect("write the C program");

    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_owned());
    let out = match Command::new(&cc).arg("-o").arg(&bin).arg(&src).output() {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            cannot_check(
                "the uapi layouts",
                &format!("no C compiler `{cc}` found (install gcc and linux-libc-dev)"),
            );
            return;
        }
        Err(e) => panic!("running {cc}: {e}"),
    };
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if missing_header(&stderr) {
            cannot_check(
                "the uapi layouts",
                &format!("{cc} lacks kernel headers (install linux-libc-dev):\n{stderr}"),
            );
            return;
        }
        panic!("{cc} failed:\n{stderr}");
    }
    let run = Command::new(&bin).output().expect("run the C program");
    assert!(run.status.success());
    let stdout = String::from_utf8_lossy(&run.stdout);

    let mut seen = vec![false; checks.len()];
    let mut mismatches = Vec::new();
    let mut no_drm = false;
    let mut no_rdma = false;
    for line in stdout.lines() {
        if line == "no-drm-headers" {
            no_drm = true;
            continue;
        }
        if line == "no-rdma-headers" {
            no_rdma = true;
            continue;
        }
        let (i, val) = line.split_once(' ').expect("`index value` line");
        let i: usize = i.parse().expect("index");
        let val: u64 = val.parse().expect("value");
        seen[i] = true;
        if checks[i].rust != val {
            mismatches.push(format!(
                "{}: C {val:#x}, Rust {:#x}",
                checks[i].c, checks[i].rust
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "uapi mismatches:\n{}",
        mismatches.join("\n")
    );
    for (c, seen) in checks.iter().zip(&seen) {
        let skipped = match c.group {
            Group::Base => false,
            Group::Drm => no_drm,
            Group::Rdma => no_rdma,
        };
        assert!(*seen || skipped, "{} was not checked", c.c);
    }
    if no_drm {
        cannot_check(
            "the DRM layouts",
            "no <drm/drm.h> or <libdrm/drm.h> (install libdrm-dev)",
        );
    }
    if no_rdma {
        cannot_check(
            "the RDMA layouts",
            "no <rdma/ib_user_verbs.h>, <rdma/ib_user_ioctl_verbs.h> or <rdma/rdma_netlink.h> \
             (install linux-libc-dev)",
        );
    }
    let checked = seen.iter().filter(|s| **s).count();
    eprintln!("checked {checked} uapi sizes, offsets and constants against /usr/include");
}
