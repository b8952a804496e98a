//! An executable model of the x86-64 Linux memory-management paths a dma-buf mmap touches.
//!
//! One module per kernel concept, each function naming the kernel function it mirrors:
//! [`frames`] (physical memory, folios), [`pagetable`] (PTE bits, 4-level tables), [`vma`]
//! (`vm_flags`, `vm_area_struct`, `vm_operations_struct`), [`mmap`] (do_mmap/munmap and the
//! `VmaNew` handle exporters receive), [`insert`] (vm_insert_page, vmf_insert_pfn,
//! remap_pfn_range, ...), [`normal_page`] (vm_normal_page), [`fault`] (handle_mm_fault,
//! finish_fault), [`gup`] (slow and fast GUP, pins), [`zap`], [`fork`], [`madvise`] (and mlock),
//! [`mremap`] (and mprotect), [`access`] (/proc/PID/mem, process_vm_*), [`kvm`] (hva_to_pfn),
//! [`coredump`], [`proc`] (smaps, maps, pagemap, status), [`shmem`] (memfd) and [`hugetlb`]
//! (huge page reservations). What differs
//! between kernel versions is data: [`facts`] (keyed by the release that changed them, table in
//! [`fact_table`]), resolved from a kernel name by [`resolve`] ([`version`], [`debian`]); what
//! differs between builds is [`kconfig`]. The syscall-level users of GUP have a module
//! each: [`bio`] (O_DIRECT), [`splice`] (vmsplice, pipe writes), [`io_uring`] (fixed buffers),
//! [`futex`] (shared futex keys) and [`umem`] (RDMA memory registration).
//!
//! Outcomes are values: an errno, a signal, a `BUG_ON` ([`Fail::Bug`], which stops the
//! [`Kernel`]) or success; warnings are [`Event`]s. Nothing here panics on modeled input.
#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod access;
pub mod bio;
pub mod coredump;
pub mod debian;
mod debian_abi;
pub mod errno;
pub mod fact_table;
pub mod facts;
pub mod fault;
pub mod fork;
pub mod frames;
pub mod futex;
pub mod gup;
pub mod hugetlb;
pub mod insert;
pub mod io_uring;
pub mod kconfig;
pub mod kernel;
pub mod kvm;
pub mod madvise;
pub mod mmap;
pub mod mremap;
pub mod normal_page;
pub mod outcome;
pub mod page_free;
pub mod pagetable;
pub mod proc;
pub mod resolve;
pub mod shared;
pub mod shmem;
pub mod snapshot;
pub mod splice;
pub mod trace;
pub mod types;
pub mod umem;
pub mod version;
pub mod vma;
pub mod vma_tree;
pub mod zap;

pub use errno::Errno;
pub use facts::{Fact, KernelFacts};
pub use fault::FaultCtx;
pub use kconfig::{Kconfig, KernelConfig};
pub use kernel::Config;
pub use kernel::{Kernel, MmId, RssCounter};
pub use mmap::{MapFlags, MmapArgs, Prot, VmaMixedMap, VmaNew, VmaWithoutMixedMap};
pub use outcome::{Bug, Event, Fail, KResult, Signal, VmFault};
pub use resolve::{resolve_kernel, resolve_release, ResolvedKernel};
pub use types::{Pfn, VirtAddr, PAGE_SHIFT, PAGE_SIZE};
pub use version::{KernelVersion, Line, LINES};
pub use vma::{File, FileOperations, VmFlags, VmOperations, Vma, VmaId};
