//! Jason Gunthorpe's point in the 2021 dri-devel thread, executed: a VMA flagged
//! VM_PFNMAP|VM_MIXEDMAP, filled by `vm_insert_page()` with a page of a compound (`__GFP_COMP`)
//! allocation. The slow path sees VM_PFNMAP and refuses (-EFAULT); the fast path never looks at
//! the VMA, finds a normal PTE and hands out the `struct page`.
//!
//! Run: `cargo run -p pfnguard-mm --example fast_gup_hole`

use std::sync::Arc;

use pfnguard_mm::frames::AllocSpec;
use pfnguard_mm::gup::{get_user_pages, get_user_pages_fast, Foll};
use pfnguard_mm::vma::AddressSpace;
use pfnguard_mm::{
    Config, FileOperations, KResult, Kernel, MapFlags, MmapArgs, Prot, VmFlags, VmaNew,
};

/// A driver whose `->mmap` marks the VMA VM_PFNMAP|VM_MIXEDMAP and inserts one page of a
/// compound allocation with `vm_insert_page()`.
#[derive(Debug)]
struct CompoundPageDriver;

impl FileOperations for CompoundPageDriver {
    fn name(&self) -> &'static str {
        "example_driver_fops"
    }
    fn mmap(&self, vma: &mut VmaNew<'_>) -> KResult<()> {
        vma.set_flags(VmFlags::PFNMAP | VmFlags::DONTEXPAND);
        let page = vma
            .kernel()
            .frames
            .alloc(AllocSpec::compound(4))
            .ok_or(pfnguard_mm::Fail::Errno(pfnguard_mm::Errno::ENOMEM))?;
        let start = vma.vma().start;
        vma.set_mixedmap().vm_insert_page(start, page)
    }
}

fn main() {
    for facts in pfnguard_mm::facts::every_line() {
        let mut k = Kernel::new(facts, Config::default());
        k.trace.enable();
        let file = Arc::new(pfnguard_mm::File {
            path: "/dev/example".into(),
            ino: 42,
            dev: (0, 6),
            readable: true,
            writable: true,
            noexec: false,
            nlink: 1,
            mapping: AddressSpace::PSEUDO,
            fops: Arc::new(CompoundPageDriver),
            is_dma_buf: false,
        });
        let mm = Kernel::INIT_MM;
        let addr = match pfnguard_mm::mmap::do_mmap(
            &mut k,
            mm,
            Some(file),
            MmapArgs::new(4096, Prot::RW, MapFlags::SHARED),
        ) {
            Ok(a) => a,
            Err(e) => {
                println!("linux {}: mmap failed: {e}", facts.version());
                continue;
            }
        };
        let flags = k.mm(mm).vma_at(addr).map(|v| v.flags).unwrap_or_default();
        let pte = k.mm(mm).pt.get(addr);
        println!("== Linux {} ==", facts.version());
        println!(
            "VMA flags: {}   PTE special: {}",
            flags.names(),
            pte.special()
        );

        let mut pages = Vec::new();
        let slow = get_user_pages(&mut k, mm, addr, 1, Foll::empty(), &mut pages);
        println!(
            "get_user_pages      -> {}",
            match &slow {
                Ok(n) => format!("{n} page(s)"),
                Err(e) => format!("-{e}"),
            }
        );
        k.put_pages(&pages);

        let mut pages = Vec::new();
        let fast = get_user_pages_fast(&mut k, mm, addr, 1, Foll::empty(), &mut pages);
        println!(
            "get_user_pages_fast -> {}{}",
            match &fast {
                Ok(n) => format!("{n} page(s)"),
                Err(e) => format!("-{e}"),
            },
            match pages.first() {
                Some(p) =>
                    format!(": struct page of pfn {p} handed out although the VMA is VM_PFNMAP"),
                None => String::new(),
            }
        );
        k.put_pages(&pages);
        println!("\nkernel path taken:\n{}", k.trace);
    }
}
