//! The `kvm_map` op: a KVM memslot over the mapping and a guest write fault.
//!
//! A VM gets two memslots: an anonymous one at guest physical 0 holding a few
//! bytes of real-mode code at 0x1000, and the mapping under test at
//! [`MAPPING_GPA`]. The code writes one byte through `DS = MAPPING_GPA >> 4`
//! and halts. The write fault makes KVM resolve the host page behind the
//! mapping (`hva_to_pfn` in virt/kvm/kvm_main.c: GUP, then
//! `hva_to_pfn_remapped` for VM_IO/VM_PFNMAP VMAs). `KVM_EXIT_HLT` → `ok`;
//! a failing `KVM_RUN` → its errno (`EFAULT`); any other exit is described.

use std::os::fd::{AsFd, OwnedFd};

use rustix::fs::{Mode, OFlags};
use serde_json::json;

use crate::errno;
use crate::ops::Measured;
use crate::sys::{self, Mapping};
use crate::uapi::{self, kvm_run};

/// Guest physical address of the memslot over the mapping under test.
pub(crate) const MAPPING_GPA: u64 = 0x1_0000;
/// Guest physical address the code starts at.
const CODE_GPA: u64 = 0x1000;
/// The byte the guest writes.
const MARKER: u8 = 0x42;

/// `mov ax, 0x1000; mov ds, ax; mov byte [0], 0x42; hlt` (16-bit real mode).
const GUEST_CODE: [u8; 11] = [
    0xB8, 0x00, 0x10, 0x8E, 0xD8, 0xC6, 0x06, 0x00, 0x00, MARKER, 0xF4,
];

fn unavailable(step: &str, e: rustix::io::Errno) -> Measured {
    Measured::unavailable(format!("{step}: {}", errno::errno(e)))
}

/// Run the `kvm_map` op on `map`.
pub(crate) fn probe(map: &mut Mapping) -> Measured {
    let (out, vm) = map_page(map, 0);
    drop(vm);
    if out.outcome.is_success() {
        let seen = map.read_byte(0);
        return out.with("kvm_guest_write_visible", json!(seen == MARKER));
    }
    out
}

/// A VM whose memslot covers a mapping, kept until dropped (the memslot goes with the VM).
#[derive(Debug)]
pub(crate) struct KvmVm {
    _run: Mapping,
    _vcpu: OwnedFd,
    _code: Mapping,
    _vm: OwnedFd,
    _kvm: OwnedFd,
}

/// A VM with a memslot over `map` whose vCPU writes one byte to page `page` of it, as the
/// scenario step `kvm_map PAGE` does: the value, and the VM when the write completed (kept
/// until dropped, as the model keeps the memslot until `kvm_unmap`).
pub(crate) fn map_page(map: &Mapping, page: u32) -> (Measured, Option<KvmVm>) {
    let gpa = MAPPING_GPA + u64::from(page) * 4096;
    // Real mode: DS holds the address >> 4 in 16 bits.
    let Ok(ds) = u16::try_from(gpa >> 4) else {
        return (
            Measured::unavailable(format!("page {page} is beyond the guest's real-mode reach")),
            None,
        );
    };
    let kvm = match rustix::fs::open("/dev/kvm", OFlags::RDWR | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(e) => return (Measured::unavailable(errno::errno(e)), None),
    };
    match sys::ioctl_int(kvm.as_fd(), uapi::KVM_GET_API_VERSION, 0) {
        Ok(uapi::KVM_API_VERSION) => {}
        Ok(v) => return (Measured::unavailable(format!("KVM API version {v}")), None),
        Err(e) => return (unavailable("KVM_GET_API_VERSION", e), None),
    }
    let vm = match sys::ioctl_int(kvm.as_fd(), uapi::KVM_CREATE_VM, 0).and_then(sys::fd_from_ioctl)
    {
        Ok(fd) => fd,
        Err(e) => return (unavailable("KVM_CREATE_VM", e), None),
    };
    // Only needed on VMX without unrestricted guest; harmless elsewhere.
    let _ = sys::ioctl_int(vm.as_fd(), uapi::KVM_SET_TSS_ADDR, 0xfffb_d000);

    let mut code = match Mapping::anonymous(0x2000) {
        Ok(m) => m,
        Err(e) => return (unavailable("mmap", e), None),
    };
    let mut guest = GUEST_CODE;
    guest[1..3].copy_from_slice(&ds.to_le_bytes());
    code.write_bytes(CODE_GPA as usize, &guest);
    if let Err(e) = sys::kvm_set_memslot(vm.as_fd(), 0, 0, &code) {
        return (
            unavailable("KVM_SET_USER_MEMORY_REGION (code slot)", e),
            None,
        );
    }
    if let Err(e) = sys::kvm_set_memslot(vm.as_fd(), 1, MAPPING_GPA, map) {
        return (
            Measured::errno(e).with("kvm_failed_step", json!("KVM_SET_USER_MEMORY_REGION")),
            None,
        );
    }
    let vcpu =
        match sys::ioctl_int(vm.as_fd(), uapi::KVM_CREATE_VCPU, 0).and_then(sys::fd_from_ioctl) {
            Ok(fd) => fd,
            Err(e) => return (unavailable("KVM_CREATE_VCPU", e), None),
        };
    let run_size = match sys::ioctl_int(kvm.as_fd(), uapi::KVM_GET_VCPU_MMAP_SIZE, 0) {
        Ok(n) if n as usize >= kvm_run::MIN_SIZE => n as usize,
        Ok(n) => {
            return (
                Measured::unavailable(format!("KVM_GET_VCPU_MMAP_SIZE {n}")),
                None,
            )
        }
        Err(e) => return (unavailable("KVM_GET_VCPU_MMAP_SIZE", e), None),
    };
    let run = match Mapping::shared(vcpu.as_fd(), run_size) {
        Ok(m) => m,
        Err(e) => return (unavailable("mmap kvm_run", e), None),
    };
    let mut sregs = uapi::KvmSregs::default();
    if let Err(e) = sys::ioctl(vcpu.as_fd(), uapi::KVM_GET_SREGS, &mut sregs) {
        return (unavailable("KVM_GET_SREGS", e), None);
    }
    sregs.cs.base = 0;
    sregs.cs.selector = 0;
    if let Err(e) = sys::ioctl(vcpu.as_fd(), uapi::KVM_SET_SREGS, &mut sregs) {
        return (unavailable("KVM_SET_SREGS", e), None);
    }
    let mut regs = uapi::KvmRegs {
        rip: CODE_GPA,
        rflags: 0x2,
        ..Default::default()
    };
    if let Err(e) = sys::ioctl(vcpu.as_fd(), uapi::KVM_SET_REGS, &mut regs) {
        return (unavailable("KVM_SET_REGS", e), None);
    }
    if let Err(e) = sys::ioctl_int(vcpu.as_fd(), uapi::KVM_RUN, 0) {
        return (
            Measured::errno(e).with("kvm_failed_step", json!("KVM_RUN")),
            None,
        );
    }
    let reason = run.read_u32(kvm_run::EXIT_REASON);
    if reason == uapi::KVM_EXIT_HLT {
        let vm = KvmVm {
            _run: run,
            _vcpu: vcpu,
            _code: code,
            _vm: vm,
            _kvm: kvm,
        };
        return (Measured::ok(), Some(vm));
    }
    // The guest's write did not complete as a write to memory: nothing the model's outcomes
    // name, so the cell is reported as not measured, with the exit.
    (
        Measured::unavailable(format!(
            "guest exit {} instead of HLT",
            describe_exit(reason, &run)
        ))
        .with("kvm_exit_reason", json!(reason)),
        None,
    )
}

/// A `KVM_EXIT_*` other than HLT, in words.
fn describe_exit(reason: u32, run: &Mapping) -> String {
    let name = uapi::kvm_exit_name(reason)
        .map_or_else(|| format!("KVM exit reason {reason}"), str::to_owned);
    match reason {
        uapi::KVM_EXIT_MMIO => format!(
            "{name} ({} gpa {:#x} len {})",
            if run.read_byte(kvm_run::MMIO_IS_WRITE) != 0 {
                "write"
            } else {
                "read"
            },
            run.read_u64(kvm_run::MMIO_PHYS_ADDR),
            run.read_u32(kvm_run::MMIO_LEN)
        ),
        uapi::KVM_EXIT_IO => format!(
            "{name} ({} port {:#x} size {})",
            if run.read_byte(kvm_run::IO_DIRECTION) != 0 {
                "out"
            } else {
                "in"
            },
            u16::from(run.read_byte(kvm_run::IO_PORT))
                | (u16::from(run.read_byte(kvm_run::IO_PORT + 1)) << 8),
            run.read_byte(kvm_run::IO_SIZE)
        ),
        uapi::KVM_EXIT_FAIL_ENTRY => {
            format!(
                "{name} (hardware reason {:#x})",
                run.read_u64(kvm_run::FAIL_ENTRY_REASON)
            )
        }
        uapi::KVM_EXIT_INTERNAL_ERROR => {
            format!(
                "{name} (suberror {})",
                run.read_u32(kvm_run::INTERNAL_SUBERROR)
            )
        }
        _ => name,
    }
}
