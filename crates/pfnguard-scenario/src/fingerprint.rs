//! The canonical 128-bit fingerprint of a [`World`]: two worlds the kernel could not tell apart
//! get the same one, so the explorer visits each such state once.
//!
//! What goes in: every actor's state in actor order (its step counter, fd, exit, mappings, and
//! what its kernel-side users hold), its address space (VMAs by address: range, flags, pgoff,
//! page protection, file identity, anon_vma, PAT reservation; every PTE's bits; RSS counters,
//! `locked_vm`, `pinned_vm`, MMF_HAS_PINNED, the next mmap address), the folios (refcount,
//! mapcount, pincount, order, flags, mapping kind), the kernel log (as a multiset: the order
//! two actors made the kernel print in does not change what happens next), the oops, and the
//! buffer's lifetime (file released, backing released, importer) and the properties seen.
//!
//! Physical memory is renamed canonically: a frame's number depends on the order of the
//! allocations, which interleavings change and nothing observes. Folios are numbered in the
//! order a fixed walk meets them (the buffer's frames, then each actor's PTEs and holds); a
//! frame becomes (folio number, page in the folio), and folios nothing reaches are hashed as a
//! multiset. Frames without `struct page` (device apertures) keep their numbers: they are the
//! exporter's, allocated once at export. Left out: traces, [`Kernel::gup_returned`] (a
//! counter of history no path reads) and the mm ids (actors are hashed in actor order).
//!
//! [`Kernel::gup_returned`]: pfnguard_mm::Kernel::gup_returned

use pfnguard_mm::frames::{FolioId, Mapping};
use pfnguard_mm::pagetable::Pte;
use pfnguard_mm::{Event, Pfn};

use crate::world::World;

/// A 128-bit state hash of two independent multiply-rotate lanes over 64-bit words.
#[derive(Debug, Clone, Copy)]
struct Lanes {
    a: u64,
    b: u64,
}

impl Lanes {
    const fn new(seed: u64) -> Lanes {
        Lanes {
            a: 0x243F_6A88_85A3_08D3 ^ seed,
            b: 0x1319_8A2E_0370_7344 ^ seed.rotate_left(32),
        }
    }
    #[inline]
    fn word(&mut self, x: u64) {
        self.a = (self.a ^ x)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
        self.b = (self.b.rotate_left(17) ^ x).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    }
    fn bytes(&mut self, s: &[u8]) {
        self.word(s.len() as u64);
        for c in s.chunks(8) {
            let mut w = [0u8; 8];
            w[..c.len()].copy_from_slice(c);
            self.word(u64::from_le_bytes(w));
        }
    }
    fn finish(self) -> u128 {
        let mix = |mut x: u64| {
            x ^= x >> 33;
            x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
            x ^= x >> 33;
            x = x.wrapping_mul(0xC4CE_B9FE_1A85_EC53);
            x ^ (x >> 33)
        };
        (u128::from(mix(self.a ^ self.b.rotate_left(7))) << 64) | u128::from(mix(self.b ^ self.a))
    }
}

/// Folios labelled without a heap allocation (the common case).
const INLINE_LABELS: usize = 32;

/// Canonical folio numbers, in the order of first meeting: folio `seen[l]` has label `l`.
struct Labels {
    inline: [FolioId; INLINE_LABELS],
    len: usize,
    more: Vec<FolioId>,
}

impl Labels {
    fn new() -> Labels {
        Labels {
            inline: [FolioId(0); INLINE_LABELS],
            len: 0,
            more: Vec::new(),
        }
    }
    fn folio(&mut self, id: FolioId) -> u32 {
        if let Some(l) = self.iter().position(|f| f == id) {
            return l as u32;
        }
        let l = self.len;
        if l < INLINE_LABELS {
            self.inline[l] = id;
        } else {
            self.more.push(id);
        }
        self.len += 1;
        l as u32
    }
    /// The folios met, in label order.
    fn iter(&self) -> impl Iterator<Item = FolioId> + '_ {
        self.inline[..self.len.min(INLINE_LABELS)]
            .iter()
            .chain(&self.more)
            .copied()
    }
}

fn frame(w: &World, labels: &mut Labels, h: &mut Lanes, p: Pfn) {
    match w.k.frames.folio_of(p) {
        Some(id) => {
            let head = w.k.frames.folio(id).head;
            h.word(1 | (u64::from(labels.folio(id)) << 8));
            h.word(p.0.wrapping_sub(head.0));
        }
        None => {
            h.word(2);
            h.word(p.0);
        }
    }
}

/// A set of folio indices, on the stack up to 256.
struct Bits {
    inline: [u64; 4],
    more: Vec<u64>,
}

impl Bits {
    fn new(n: usize) -> Bits {
        Bits {
            inline: [0; 4],
            more: if n > 256 {
                vec![0; n.div_ceil(64)]
            } else {
                Vec::new()
            },
        }
    }
    fn words(&mut self) -> &mut [u64] {
        if self.more.is_empty() {
            &mut self.inline
        } else {
            &mut self.more
        }
    }
    fn set(&mut self, i: usize) {
        if let Some(w) = self.words().get_mut(i / 64) {
            *w |= 1 << (i % 64);
        }
    }
    fn get(&self, i: usize) -> bool {
        let words: &[u64] = if self.more.is_empty() {
            &self.inline
        } else {
            &self.more
        };
        words.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }
}

fn mapping_kind(m: Mapping) -> u64 {
    match m {
        Mapping::None => 0,
        Mapping::Anon => 1,
        Mapping::Shmem => 2,
        Mapping::File { can_writeback } => 3 + u64::from(can_writeback),
        Mapping::Secretmem => 5,
    }
}

/// The fingerprint of `w`; `with_pc` includes the actors' step counters (scenarios) or not
/// (`explore` over the whole alphabet, where no actor has a program).
pub fn fingerprint(w: &World, with_pc: bool) -> u128 {
    let mut h = Lanes::new(0);
    let mut labels = Labels::new();
    for &p in &w.setup.buffer_frames {
        frame(w, &mut labels, &mut h, p);
    }
    h.word(0x5E7 | (w.retired.len() as u64) << 12);
    for &p in &w.retired {
        frame(w, &mut labels, &mut h, p);
    }
    let file = &w.setup.exported.file;
    for s in &w.actors {
        h.word(0xA5);
        if with_pc {
            h.word(u64::from(s.pc));
        }
        let at = s.attachment.map_or(0, |at| {
            1 | u64::from(at.dynamic) << 1 | u64::from(at.pinned) << 2
        });
        h.word(
            u64::from(s.mm.is_some())
                | u64::from(s.has_fd) << 1
                | u64::from(s.exited) << 2
                | at << 3,
        );
        for &(addr, len) in &s.maps {
            h.word(addr.0);
            h.word(len);
        }
        for hold in &s.holds {
            h.word(0x100 | hold.tag());
            for &p in hold.frames().0 {
                frame(w, &mut labels, &mut h, p);
            }
        }
        let Some(mm) = s.mm else { continue };
        let m = w.k.mm(mm);
        for c in m.rss {
            h.word(c as u64);
        }
        h.word(m.locked_vm);
        h.word(m.pinned_vm);
        h.word(u64::from(m.has_pinned));
        h.word(m.next_addr().0);
        for v in m.vmas.values() {
            h.word(v.start.0);
            h.word(v.end.0);
            h.word(v.flags.bits());
            h.word(v.pgoff);
            h.word(v.page_prot.val());
            h.word(match &v.file {
                None => 0,
                Some(f) if std::sync::Arc::ptr_eq(f, file) => 1,
                Some(f) => 2 ^ f.ino << 8,
            });
            h.word(u64::from(v.anon_vma) | u64::from(v.pat_reserved) << 1);
            m.pt.for_each_in(v.start, v.end, |addr, pte| {
                h.word(addr.0);
                h.word(pte.0 & !Pte::PFN_MASK);
                if pte.present() {
                    frame(w, &mut labels, &mut h, pte.pfn());
                }
            });
        }
    }
    // The folios met, in label order; the others as a multiset.
    let mut labelled = Bits::new(w.k.frames.len());
    for id in labels.iter() {
        let f = w.k.frames.folio(id);
        labelled.set(id.0 as usize);
        h.word(f.refcount as u32 as u64 | (f.mapcount as u32 as u64) << 32);
        h.word(f.pincount as u32 as u64 | u64::from(f.order) << 32 | mapping_kind(f.mapping) << 40);
        h.word(u64::from(f.flags.bits()));
    }
    let mut rest: u128 = 0;
    for (id, f) in w.k.frames.folios() {
        if labelled.get(id.0 as usize) {
            continue;
        }
        let mut g = Lanes::new(1);
        g.word(f.refcount as u32 as u64 | (f.mapcount as u32 as u64) << 32);
        g.word(f.pincount as u32 as u64 | u64::from(f.order) << 32 | mapping_kind(f.mapping) << 40);
        g.word(u64::from(f.flags.bits()));
        rest = rest.wrapping_add(g.finish());
    }
    h.word(rest as u64);
    h.word((rest >> 64) as u64);
    let mut log: u128 = 0;
    for e in &w.k.events {
        let mut g = Lanes::new(2);
        match e {
            Event::Warn { site, condition } => {
                g.word(1);
                g.bytes(site.as_bytes());
                g.bytes(condition.as_bytes());
            }
            Event::BadPageMap { addr, site } => {
                g.word(2);
                g.word(addr.0);
                g.bytes(site.as_bytes());
            }
            Event::UseAfterFree { pfn, holder } => {
                g.word(3);
                g.word(pfn.0);
                g.bytes(holder.as_bytes());
            }
            Event::Livelock { site } => {
                g.word(4);
                g.bytes(site.as_bytes());
            }
        }
        log = log.wrapping_add(g.finish());
    }
    h.word(log as u64);
    h.word((log >> 64) as u64);
    h.word(u64::from(w.k.oops.is_some()));
    h.word(w.k.nr_file_mapped as u64);
    h.word(u64::from(w.file_released) | u64::from(w.released) << 1 | u64::from(w.seen) << 16);
    h.finish()
}
