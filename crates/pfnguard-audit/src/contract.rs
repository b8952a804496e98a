//! The contract per mapping: what the VMA says (smaps `VmFlags`), what its PTEs say (pagemap),
//! and what the model of this kernel and this exporter says GUP users get from it.

use std::collections::BTreeMap;

use pfnguard_dmabuf::Policy;
use pfnguard_mm::ResolvedKernel;
use pfnguard_report::{ExporterId, OpKey};
use serde::Serialize;

/// The GUP users the audit reports on, in table order.
pub const GUP_OPS: [OpKey; 8] = [
    OpKey::OdirectRead,
    OpKey::OdirectWrite,
    OpKey::IoUringRegister,
    OpKey::RdmaRegMr,
    OpKey::KvmMap,
    OpKey::Vmsplice,
    OpKey::ProcessVmReadv,
    OpKey::ProcMemRead,
];

/// The VmFlags mnemonics the contract is about
/// (fs/proc/task_mmu.c:show_smap_vma_flags): `pf` VM_PFNMAP, `io` VM_IO, `mm` VM_MIXEDMAP,
/// `de` VM_DONTEXPAND, `dd` VM_DONTDUMP.
pub const CONTRACT_FLAGS: [&str; 5] = ["pf", "io", "mm", "de", "dd"];

/// The catalogue exporters a dma-buf `exp_name` can come from.
///
/// `exp_name` is what the exporter passed to `dma_buf_export()`: the heap's name for dma-heaps
/// (drivers/dma-buf/dma-heap.c: `dma_heap_get_name()`; the CMA heap is named after its CMA area,
/// `reserved` for the default one, or `linux,cma`), `KBUILD_MODNAME` of the module that calls
/// `DEFINE_DMA_BUF_EXPORT_INFO` otherwise: `drm` for every driver exporting through
/// drivers/gpu/drm/drm_prime.c:drm_gem_prime_export, `udmabuf`, `videobuf2_vmalloc`,
/// `videobuf2_dma_contig`, `videobuf2_dma_sg` (drivers/media/common/videobuf2/). The names are
/// those of the exporter models in pfnguard-dmabuf's `exporters/`.
///
/// `drm` stays ambiguous: drivers/gpu/drm/drm_prime.c:drm_gem_prime_export passes
/// `.exp_name = KBUILD_MODNAME` ("white lie for debug") and the driver only as `.owner`, which
/// neither fdinfo (drivers/dma-buf/dma-buf.c:dma_buf_show_fdinfo) nor bufinfo
/// (dma_buf_debug_show) prints; bufinfo's "Attached Devices" are the importers, not the
/// exporter, and the maps line is the dma-buf's `/dmabuf:` file whatever the driver. The DRM
/// nodes a holder has open are no answer either (a compositor holds buffers other processes'
/// GPUs exported, received over SCM_RIGHTS). So a `drm` buffer keeps every GEM-PRIME driver of
/// the catalogue as candidate, narrowed to those whose DRM driver is bound on the system when
/// debugfs says ([`Predictor::candidates`], [`crate::drm`]), and the prediction is their union
/// ([`Prediction::agreed`] says whether they agree); no bound candidate: not modeled.
pub fn exporters_for(exp_name: &str) -> &'static [ExporterId] {
    use ExporterId::*;
    match exp_name {
        "system" => &[SystemHeap],
        "cma" | "reserved" | "linux,cma" => &[CmaHeap],
        "udmabuf" => &[UdmabufShmem, UdmabufHugetlb],
        "drm" => &[Vgem, Cirrus, Bochs, Qxl, GemDma],
        "virtio_gpu" => &[VirtioGpu, VirtioGpuBlob],
        "amdgpu" => &[Amdgpu],
        "i915" => &[I915],
        "rockchip" => &[Rockchip],
        "tegra" => &[Tegra],
        "videobuf2_vmalloc" => &[VividVmalloc],
        "videobuf2_dma_contig" => &[VividDmaContig],
        "videobuf2_dma_sg" => &[Vb2DmaSg],
        _ => &[],
    }
}

/// What the model says about one exporter name on this kernel (policy `off`: the stock kernel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Prediction {
    /// The catalogue exporters the name can come from.
    pub exporters: Vec<ExporterId>,
    /// The GUP users that get the buffer's struct pages from at least one of them.
    pub gup_struct_page: Vec<OpKey>,
    /// Whether every candidate agrees on `gup_struct_page`.
    pub agreed: bool,
    /// The model's `vmflags` per candidate (the mnemonics its mmap leaves).
    pub vmflags: BTreeMap<ExporterId, String>,
    /// The model's one-line account of each candidate's mmap path.
    pub why: BTreeMap<ExporterId, String>,
}

/// The model's predictions, run once per exporter name.
#[derive(Debug)]
pub struct Predictor {
    kernel: Option<ResolvedKernel>,
    drm_drivers: Option<Vec<String>>,
    cache: BTreeMap<String, Option<Prediction>>,
}

impl Predictor {
    /// A predictor for `kernel` (`None`: the kernel is not modeled, nothing is predicted).
    pub fn new(kernel: Option<ResolvedKernel>) -> Predictor {
        Predictor {
            kernel,
            drm_drivers: None,
            cache: BTreeMap::new(),
        }
    }

    /// Narrow `drm` to the GEM-PRIME exporters whose DRM driver is bound (debugfs
    /// `dri/*/name`, [`crate::drm`]); `None` keeps every one.
    pub fn with_drm_drivers(mut self, drivers: Option<Vec<String>>) -> Predictor {
        self.drm_drivers = drivers;
        self.cache.clear();
        self
    }

    /// The catalogue exporters `exp_name` can come from on this system: [`exporters_for`],
    /// and for `drm` only those whose driver is bound, when the drivers are known.
    pub fn candidates(&self, exp_name: &str) -> Vec<ExporterId> {
        let all = exporters_for(exp_name);
        match (&self.drm_drivers, exp_name) {
            (Some(drivers), "drm") => all
                .iter()
                .copied()
                .filter(|id| {
                    drivers
                        .iter()
                        .any(|d| pfnguard_probe::drm_driver_exporter(d) == Some(*id))
                })
                .collect(),
            _ => all.to_vec(),
        }
    }

    /// The prediction for `exp_name`, `None` when the exporter or the kernel is not modeled.
    pub fn predict(&mut self, exp_name: &str) -> Option<Prediction> {
        if let Some(p) = self.cache.get(exp_name) {
            return p.clone();
        }
        let p = self.run(exp_name);
        self.cache.insert(exp_name.to_owned(), p.clone());
        p
    }

    fn run(&self, exp_name: &str) -> Option<Prediction> {
        let kernel = self.kernel.as_ref()?;
        let ids = self.candidates(exp_name);
        if ids.is_empty() {
            return None;
        }
        let mut union: Vec<OpKey> = Vec::new();
        let mut sets: Vec<Vec<OpKey>> = Vec::new();
        let mut vmflags = BTreeMap::new();
        let mut why = BTreeMap::new();
        for &id in &ids {
            let one = predict_exporter(kernel, id);
            for op in &one.gup_struct_page {
                if !union.contains(op) {
                    union.push(*op);
                }
            }
            sets.push(one.gup_struct_page);
            if let Some(v) = one.vmflags {
                vmflags.insert(id, v);
            }
            why.insert(id, one.why);
        }
        union.sort();
        let agreed = sets.windows(2).all(|w| w[0] == w[1]);
        Some(Prediction {
            exporters: ids,
            gup_struct_page: union,
            agreed,
            vmflags,
            why,
        })
    }
}

/// What the model says about one catalogue exporter on one kernel (policy `off`), as
/// `pfnguard predict --kernel K --exporter ID` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExporterPrediction {
    /// The GUP users of [`GUP_OPS`] that get the buffer's struct pages, in `OpKey` order.
    pub gup_struct_page: Vec<OpKey>,
    /// The mnemonics the model's mmap leaves (the `vmflags` op), when it maps.
    pub vmflags: Option<String>,
    /// The model's one-line account of the exporter's mmap path.
    pub why: String,
}

impl ExporterPrediction {
    /// Whether the audit flags such a mapping: without `pf`, or with `mm`
    /// ([`judge`]'s VmFlags test), by the model's own VmFlags.
    pub fn flagged(&self) -> Option<bool> {
        let v = self.vmflags.as_deref()?;
        let has = |f: &str| v.split_whitespace().any(|x| x == f);
        Some(!has("pf") || has("mm"))
    }
}

/// The model's prediction for exporter `id` on `kernel`.
pub fn predict_exporter(kernel: &ResolvedKernel, id: ExporterId) -> ExporterPrediction {
    let exp = pfnguard_dmabuf::by_id(id);
    let pages = exp.fixed_pages().unwrap_or(pfnguard_dmabuf::DEFAULT_PAGES);
    let r = pfnguard_dmabuf::predict(kernel, exp.as_ref(), Policy::Off, pages);
    let mut gup_struct_page: Vec<OpKey> = GUP_OPS
        .iter()
        .copied()
        .filter(|op| r.gup_struct_pages.as_ref().is_some_and(|g| g.contains(op)))
        .collect();
    // In OpKey order, as the union over candidates is.
    gup_struct_page.sort();
    ExporterPrediction {
        gup_struct_page,
        vmflags: r.ops.get(&OpKey::Vmflags).map(|v| v.to_string()),
        why: exp.summary().to_owned(),
    }
}

/// What `/proc/PID/pagemap` says about a mapping's pages.
///
/// fs/proc/task_mmu.c:pte_to_pagemap_entry sets bit 63 (present) for every present PTE, the
/// PFN only for readers with `CAP_SYS_ADMIN` (`pm->show_pfn`), and bit 61 (file page or
/// shared anon) or bit 56 (exclusively mapped) only when `vm_normal_page()` found a
/// `struct page`: a special PTE (`vmf_insert_pfn()`, `remap_pfn_range()`) is present with
/// neither.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PagemapSummary {
    /// Pages of the mapping read.
    pub pages: u64,
    /// Present PTEs.
    pub present: u64,
    /// Present PTEs with a `struct page` behind them (bit 61 or 56): pages GUP can take.
    pub normal: u64,
    /// Present PTEs whose PFN the reader saw (non-zero PFN: root only).
    pub with_pfn: u64,
}

impl PagemapSummary {
    /// Add one pagemap entry.
    pub fn add(&mut self, raw: u64) {
        let e = pfnguard_probe::procfs::PagemapEntry(raw);
        self.pages += 1;
        if e.present() {
            self.present += 1;
            if e.file_or_shared() || e.exclusive() {
                self.normal += 1;
            }
            if e.pfn().is_some_and(|p| p != 0) {
                self.with_pfn += 1;
            }
        }
    }
}

/// The contract of one mapping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Contract {
    /// The contract's VmFlags mnemonics present on the VMA, in [`CONTRACT_FLAGS`] order.
    pub flags: Vec<String>,
    /// `VM_PFNMAP` (`pf`) and not `VM_MIXEDMAP` (`mm`): the shape the proposal requires.
    pub pfnmap: bool,
    /// The pagemap summary, when pagemap could be read.
    pub pagemap: Option<PagemapSummary>,
    /// The GUP users the model says get struct pages on this kernel; `None`: not modeled.
    pub gup_struct_page: Option<Vec<OpKey>>,
    /// `ok`, `breaks` or `not modeled`.
    pub verdict: String,
    /// Why, for a mapping that breaks the contract or is not modeled.
    pub reason: Option<String>,
}

/// Judge one mapping from its VmFlags, its pagemap summary and the model's prediction.
pub fn judge(
    vmflags: &[String],
    pagemap: Option<PagemapSummary>,
    prediction: Option<&Prediction>,
    exp_name: &str,
    kernel_modeled: bool,
) -> Contract {
    let flags: Vec<String> = CONTRACT_FLAGS
        .iter()
        .filter(|f| vmflags.iter().any(|v| v == *f))
        .map(|f| (*f).to_owned())
        .collect();
    let has = |f: &str| flags.iter().any(|x| x == f);
    let pfnmap = has("pf") && !has("mm");
    let normal_ptes = pagemap.is_some_and(|p| p.normal > 0);
    let model_why = || {
        prediction.map(|p| {
            p.why
                .iter()
                .map(|(id, w)| format!("{id}: {w}"))
                .collect::<Vec<_>>()
                .join("; ")
        })
    };
    let (verdict, reason) = if !pfnmap {
        let what = if has("mm") {
            "VM_MIXEDMAP"
        } else {
            "not VM_PFNMAP"
        };
        let why = model_why().unwrap_or_else(|| {
            if kernel_modeled {
                format!("exporter `{exp_name}` not modeled")
            } else {
                "kernel not modeled".to_owned()
            }
        });
        ("breaks", Some(format!("{what}: {why}")))
    } else if normal_ptes {
        (
            "breaks",
            Some("VM_PFNMAP but pagemap shows struct pages behind its PTEs".to_owned()),
        )
    } else if prediction.is_none() {
        let r = if kernel_modeled {
            format!("exporter `{exp_name}` not modeled")
        } else {
            "kernel not modeled".to_owned()
        };
        ("ok", Some(r))
    } else {
        ("ok", None)
    };
    Contract {
        flags,
        pfnmap,
        pagemap,
        gup_struct_page: prediction.map(|p| p.gup_struct_page.clone()),
        verdict: verdict.to_owned(),
        reason,
    }
}
