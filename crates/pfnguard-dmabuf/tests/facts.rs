//! Driver facts, each run on the versions either side of its change
//! ([`either_side`](pfnguard_mm::facts::either_side)) through the whole exporter model
//! (`predict`), and the check that every fact has such a test here or in
//! `crates/pfnguard-mm/tests/facts.rs`.

use std::collections::BTreeMap;

use pfnguard_dmabuf::{by_id, predict, Policy, DEFAULT_PAGES};
use pfnguard_mm::facts::either_side;
use pfnguard_mm::{resolve_kernel, Fact, KernelFacts, KernelVersion, ResolvedKernel};
use pfnguard_report::OpKey;

/// The model of the kernel `facts` were resolved at, with every exporter built.
fn kernel(facts: KernelFacts) -> ResolvedKernel {
    let mut r = resolve_kernel(&facts.version().to_string()).expect("modeled version");
    r.facts = facts;
    r
}

/// One exporter's row under policy `off`.
fn row(facts: KernelFacts, id: &str) -> BTreeMap<OpKey, String> {
    let exp = by_id(id.parse().expect("catalogue id"));
    predict(&kernel(facts), exp.as_ref(), Policy::Off, DEFAULT_PAGES)
        .ops
        .into_iter()
        .map(|(op, v)| (op, v.to_string()))
        .collect()
}

fn flags(r: &BTreeMap<OpKey, String>) -> Vec<String> {
    r[&OpKey::Vmflags]
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

fn has_flag(r: &BTreeMap<OpKey, String>, f: &str) -> bool {
    flags(r).iter().any(|x| x == f)
}

/// TTM (amdgpu): 5.13 ttm_bo_mmap_vma_setup maps VM_MIXEDMAP|VM_IO with no COW check —
/// MAP_PRIVATE copies, MADV_DONTNEED zaps and refaults; 5.14 ttm_bo_mmap_obj maps VM_PFNMAP|VM_IO
/// and refuses MAP_PRIVATE. GUP stops at VM_IO on both sides; `->access` serves /proc/PID/mem.
#[test]
fn ttm_mixedmap_to_pfnmap() {
    let (before, after) = either_side(Fact::TtmPfnmap);
    let b = row(before, "amdgpu");
    assert_eq!(b[&OpKey::MmapPrivate], "ok:cow");
    assert!(has_flag(&b, "mm") && has_flag(&b, "io") && !has_flag(&b, "pf"));
    assert_eq!(b[&OpKey::MadvDontneed], "ok:refault-ok");
    let a = row(after, "amdgpu");
    assert_eq!(a[&OpKey::MmapPrivate], "EINVAL");
    assert!(has_flag(&a, "pf") && has_flag(&a, "io") && !has_flag(&a, "mm"));
    assert_eq!(a[&OpKey::MadvDontneed], "EINVAL");
    for r in [&b, &a] {
        assert_eq!(r[&OpKey::OdirectRead], "EFAULT");
        assert_eq!(r[&OpKey::ProcMemRead], "ok");
    }
}

/// drm_gem_shmem (virtio-gpu): before, VM_MIXEDMAP|VM_DONTEXPAND and vmf_insert_page — normal
/// PTEs to shmem pages that every GUP user takes, counted in Rss, present in pagemap; io_uring
/// pins them and then refuses the non-shmem vm_file (-EOPNOTSUPP). After, VM_PFNMAP with
/// special PTEs: GUP -EFAULT, Rss zero, pagemap holes.
#[test]
fn shmem_helper_pages_to_pfns() {
    let (before, after) = either_side(Fact::DrmShmemPfnmap);
    let b = row(before, "virtio-gpu");
    assert!(has_flag(&b, "mm") && has_flag(&b, "de") && !has_flag(&b, "pf"));
    assert!(!has_flag(&b, "dd"), "5.10's helper sets no VM_DONTDUMP");
    for op in [
        OpKey::OdirectRead,
        OpKey::Vmsplice,
        OpKey::ProcessVmReadv,
        OpKey::ProcMemRead,
        OpKey::FutexWakeShared,
        OpKey::RdmaRegMr,
    ] {
        assert_eq!(b[&op], "ok", "{op:?}");
    }
    assert_eq!(b[&OpKey::IoUringRegister], "EOPNOTSUPP");
    assert_eq!(
        (b[&OpKey::Rss].as_str(), b[&OpKey::Pagemap].as_str()),
        ("counted", "present")
    );
    assert_eq!(b[&OpKey::MadvDontneed], "ok:refault-ok");
    let a = row(after, "virtio-gpu");
    assert!(has_flag(&a, "pf") && has_flag(&a, "dd") && !has_flag(&a, "mm"));
    assert_eq!(a[&OpKey::OdirectRead], "EFAULT");
    assert_eq!(
        (a[&OpKey::Rss].as_str(), a[&OpKey::Pagemap].as_str()),
        ("zero", "hole")
    );
    assert_eq!(a[&OpKey::MadvDontneed], "EINVAL");
}

/// vgem: before, vgem_prime_mmap maps the object's shmem file (a shmem VMA with VM_DONTEXPAND|
/// VM_DONTDUMP: MAP_PRIVATE copies, io_uring registers it); after, the shmem helper's VM_PFNMAP.
#[test]
fn vgem_shmem_file_to_helper() {
    let (before, after) = either_side(Fact::VgemShmemHelper);
    let b = row(before, "vgem");
    assert_eq!(flags(&b).join(" "), "rd wr sh mr mw me ms de dd sd");
    assert_eq!(b[&OpKey::MmapPrivate], "ok:cow");
    assert_eq!(b[&OpKey::IoUringRegister], "ok");
    assert_eq!(b[&OpKey::Rss], "counted");
    let a = row(after, "vgem");
    assert!(has_flag(&a, "pf"));
    assert_eq!(a[&OpKey::IoUringRegister], "EFAULT");
}

/// videobuf2-dma-sg: without VM_DONTEXPAND before, mremap may grow the VMA.
#[test]
fn vb2_dma_sg_dontexpand() {
    let (before, after) = either_side(Fact::Vb2DmaSgDontexpand);
    let b = row(before, "vb2-dma-sg");
    assert!(!has_flag(&b, "de") && !has_flag(&b, "dd") && has_flag(&b, "mm"));
    assert_ne!(b[&OpKey::MremapGrow], "EFAULT");
    let a = row(after, "vb2-dma-sg");
    assert!(has_flag(&a, "de") && has_flag(&a, "dd"));
    assert_eq!(a[&OpKey::MremapGrow], "EFAULT");
}

/// bochs has no `prime_handle_to_fd` of its own: PRIME export -ENOSYS until the generic
/// fallback.
#[test]
fn generic_prime_export() {
    let (before, after) = either_side(Fact::DrmGenericPrime);
    assert_eq!(row(before, "bochs")[&OpKey::Export], "ENOSYS");
    assert_eq!(row(before, "bochs")[&OpKey::MmapShared], "skipped");
    assert_eq!(row(after, "bochs")[&OpKey::Export], "ok");
}

/// The CMA heap: `vmf->page` (normal PTEs, no VM flags) before, VM_IO|VM_PFNMAP after.
#[test]
fn cma_heap_pfnmap() {
    let (before, after) = either_side(Fact::CmaHeapPfnmap);
    let b = row(before, "cma-heap");
    assert!(!has_flag(&b, "pf") && !has_flag(&b, "io"));
    assert_eq!(b[&OpKey::Rss], "counted");
    let a = row(after, "cma-heap");
    assert!(has_flag(&a, "pf") && has_flag(&a, "io"));
    assert_eq!(a[&OpKey::Rss], "zero");
}

/// udmabuf: `vmf->page` before (GUP takes the memfd's pages), VM_PFNMAP after.
#[test]
fn udmabuf_pfnmap() {
    let (before, after) = either_side(Fact::UdmabufPfnmap);
    let b = row(before, "udmabuf-shmem");
    assert!(!has_flag(&b, "pf"));
    assert_eq!(b[&OpKey::OdirectRead], "ok");
    let a = row(after, "udmabuf-shmem");
    assert!(has_flag(&a, "pf"));
    assert_eq!(a[&OpKey::OdirectRead], "EFAULT");
}

/// MAP_PRIVATE of a shmem-helper object: before the COW check the mapping is made, and its
/// first fault in the VM_PFNMAP VMA hits vmf_insert_pfn_prot()'s BUG_ON; after it, -EINVAL. The
/// stable backports (5.10.229, 6.1.114) apply from their point release; on 5.10, where the
/// helper still maps VM_MIXEDMAP, the unchecked mapping copies on write.
#[test]
fn shmem_helper_refuses_cow() {
    let (before, after) = either_side(Fact::DrmShmemRefusesCow);
    assert_eq!(row(before, "virtio-gpu")[&OpKey::MmapPrivate], "BUG");
    assert_eq!(row(after, "virtio-gpu")[&OpKey::MmapPrivate], "EINVAL");
    let at = |v: KernelVersion| KernelFacts::at(v);
    for (b, a, unchecked) in [
        (
            KernelVersion::new(6, 1, 113),
            KernelVersion::new(6, 1, 114),
            "BUG",
        ),
        (
            KernelVersion::new(5, 10, 228),
            KernelVersion::new(5, 10, 229),
            "ok:cow",
        ),
    ] {
        assert_eq!(
            row(at(b), "virtio-gpu")[&OpKey::MmapPrivate],
            unchecked,
            "{b}"
        );
        assert_eq!(
            row(at(a), "virtio-gpu")[&OpKey::MmapPrivate],
            "EINVAL",
            "{a}"
        );
    }
}

/// Every fact is run either side of its change by a test: its name appears in an
/// `either_side(Fact::...)` call here, in `facts_new.rs` or in the MM facts tests.
#[test]
fn every_fact_has_an_either_side_test() {
    let sources: String = [
        include_str!("facts.rs"),
        include_str!("facts_new.rs"),
        include_str!("../../pfnguard-mm/tests/facts.rs"),
    ]
    .concat()
    .split_whitespace()
    .collect();
    let missing: Vec<String> = Fact::ALL
        .iter()
        .map(|f| format!("{f:?}"))
        .filter(|name| {
            let call = format!("either_side(Fact::{name})");
            !sources.contains(&call)
        })
        .collect();
    assert!(
        missing.is_empty(),
        "facts without an either_side test: {missing:?}"
    );
}

/// `/proc/PID/mem` through `vm_ops->access = generic_access_phys` of a VM_IO|VM_PFNMAP
/// mapping: device memory is read on both sides of [`Fact::GenericAccessPhysRejectsRam`]; RAM
/// pages remapped with `remap_pfn_range()` are read before it and refused (-EINVAL, so the
/// read fails with EIO) after it.
#[test]
fn generic_access_phys_of_ram() {
    let exporter = |memory: &str| pfnguard_dmabuf::custom::CustomExporter {
        desc: pfnguard_dmabuf::custom::parse(
            std::path::Path::new("ram.toml"),
            &format!(
                "name = \"ram-{memory}\"\npages = 4\nrequires_shared = true\n\
                 set_flags = [\"DONTEXPAND\"]\ninsert = \"remap_pfn_range\"\nat = \"mmap\"\n\
                 memory = \"{memory}\"\naccess = \"generic_access_phys\"\n"
            ),
        )
        .expect("exporter file"),
    };
    let (before, after) = either_side(Fact::GenericAccessPhysRejectsRam);
    for (facts, ram) in [(before, "ok"), (after, "EIO")] {
        for (memory, want) in [("device", "ok"), ("driver-pages", ram)] {
            let e = exporter(memory);
            let r = predict(&kernel(facts), &e, Policy::Off, 4);
            assert_eq!(
                r.ops[&OpKey::ProcMemRead].to_string(),
                want,
                "{memory} {:?}",
                facts
            );
        }
    }
}

/// vgem (GEM shmem helper) mapped shared and read: before [`Fact::DrmShmemPfnMkwrite`] the PTE
/// `vmf_insert_pfn()` installs is writable at once; after it `vma_wants_writenotify()` keeps it
/// read-only until a write fault calls `drm_gem_shmem_pfn_mkwrite()`, which dirties the folio.
#[test]
fn shmem_helper_write_notify() {
    use pfnguard_dmabuf::exporters::ExportCtx;
    use pfnguard_mm::fault::user_access;
    use pfnguard_mm::mmap::do_mmap;
    use pfnguard_mm::{Kernel, MapFlags, MmapArgs, Prot};
    let (before, after) = either_side(Fact::DrmShmemPfnMkwrite);
    for facts in [before, after] {
        let mut k = Kernel::new(facts, Policy::Off.mm_config());
        let cx = ExportCtx {
            policy: Policy::Off,
            pages: 1,
        };
        let e = by_id("vgem".parse().expect("id"))
            .export(&mut k, &cx)
            .expect("export");
        let mm = Kernel::INIT_MM;
        let a = do_mmap(
            &mut k,
            mm,
            Some(e.file.clone()),
            MmapArgs::new(e.size, Prot::RW, MapFlags::SHARED),
        )
        .expect("mmap");
        user_access(&mut k, mm, a, false).expect("read");
        let notify = facts.has(Fact::DrmShmemPfnMkwrite);
        assert_eq!(k.mm(mm).pt.get(a).write(), !notify, "{facts:?}");
        user_access(&mut k, mm, a, true).expect("write");
        let pte = k.mm(mm).pt.get(a);
        assert!(pte.write() && pte.special());
        let dirty = k.frames.folio_of(pte.pfn()).is_some_and(|f| {
            k.frames
                .folio(f)
                .flags
                .contains(pfnguard_mm::frames::FolioFlags::DIRTY)
        });
        assert_eq!(dirty, notify, "{facts:?}");
    }
}
