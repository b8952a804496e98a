//! The properties a scenario asserts, evaluated on a [`World`], and their verdicts.
//!
//! A property *happens in a run* when it holds in some state of it; the explorer keeps, per
//! state, the properties that held on the way there ([`World::seen`]), so the verdict over
//! the complete runs (the states where no actor can move) is herd7's: `never` (in no run),
//! `always` (in every run), `sometimes` (in some). `leak` is judged on the end of each run.

use std::fmt;
use std::str::FromStr;

use pfnguard_mm::frames::FolioFlags;
use pfnguard_mm::{Event, Pfn};

use crate::lifetime;
use crate::world::World;

/// A property.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Property {
    /// A GUP user (a reference, a pin, a bio, a pipe buffer, io_uring, an MR) holds a
    /// `struct page` of the buffer, or KVM's lookup took a reference on one (dropped at the end
    /// of its fault).
    GupStructPage,
    /// A freed frame is reachable from a PTE, a pin, a pipe buffer, a KVM or RDMA mapping, or
    /// the kernel reported one ([`Event::UseAfterFree`]).
    UseAfterFree,
    /// A PTE or a pin still reaches memory the exporter has moved away from (evicted; not yet
    /// released, and not freed: that is a use-after-free).
    StaleMapping,
    /// A `BUG_ON` fired (the kernel oopsed).
    Bug,
    /// A `WARN` fired.
    Warn,
    /// `print_bad_pte()`: "BUG: Bad page map" (mapcount underflow, a bad PTE).
    BadPageMap,
    /// After every actor ended (every process exited: fds closed, mappings and file-held
    /// pages released), memory is still referenced: a reference or pin never dropped, a page
    /// of a process never freed, or the buffer's backing not freed after its release.
    Leak,
}

impl Property {
    /// Every property, in report order.
    pub const ALL: [Property; 7] = [
        Property::GupStructPage,
        Property::UseAfterFree,
        Property::StaleMapping,
        Property::Bug,
        Property::Warn,
        Property::BadPageMap,
        Property::Leak,
    ];

    /// The name in scenario files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Property::GupStructPage => "gup_struct_page",
            Property::UseAfterFree => "use_after_free",
            Property::StaleMapping => "stale_mapping",
            Property::Bug => "bug",
            Property::Warn => "warn",
            Property::BadPageMap => "bad_page_map",
            Property::Leak => "leak",
        }
    }

    /// Its bit in [`World::seen`].
    pub fn bit(self) -> u16 {
        1 << (self as u16)
    }

    /// Whether it holds in `w` now (for [`Property::Leak`]: whether ending every actor from
    /// `w` leaves memory referenced).
    pub fn holds(self, w: &World) -> bool {
        match self {
            Property::GupStructPage => gup_struct_page(w),
            Property::UseAfterFree => use_after_free(w),
            Property::StaleMapping => stale_mapping(w),
            Property::Bug => w.k.oops.is_some(),
            Property::Warn => w.k.events.iter().any(|e| matches!(e, Event::Warn { .. })),
            Property::BadPageMap => {
                w.k.events
                    .iter()
                    .any(|e| matches!(e, Event::BadPageMap { .. }))
            }
            Property::Leak => leak(w),
        }
    }

    /// Why the model cannot make this property true on this tree, if it cannot.
    pub fn unavailable(self) -> Option<&'static str> {
        (self == Property::StaleMapping && !lifetime::AVAILABLE).then_some(lifetime::NOT_YET)
    }
}

impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Property {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Property::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Property::ALL.iter().map(|p| p.name()).collect();
                format!("unknown property `{s}` (known: {})", names.join(", "))
            })
    }
}

/// The seen bits of every non-terminal property that holds in `w`.
pub fn state_bits(w: &World) -> u16 {
    new_state_bits(w, 0)
}

/// The seen bits of the non-terminal properties that hold in `w`, among those not in `seen`
/// (`seen | new_state_bits(w, seen)` is `seen | state_bits(w)`, without evaluating what is
/// already there).
pub fn new_state_bits(w: &World, seen: u16) -> u16 {
    let mut bits = 0;
    for p in Property::ALL {
        if p != Property::Leak && seen & p.bit() == 0 && p.holds(w) {
            bits |= p.bit();
        }
    }
    bits
}

/// herd7's verdicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// In no complete run.
    Never,
    /// In some complete runs, not all.
    Sometimes,
    /// In every complete run.
    Always,
}

impl Verdict {
    /// The name in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Never => "never",
            Verdict::Sometimes => "sometimes",
            Verdict::Always => "always",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Verdict {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "never" => Ok(Verdict::Never),
            "sometimes" => Ok(Verdict::Sometimes),
            "always" => Ok(Verdict::Always),
            _ => Err(format!(
                "unknown verdict `{s}` (expected never, sometimes or always)"
            )),
        }
    }
}

/// Whether `pfn` has a `struct page` that is a folio of the model.
fn has_page(w: &World, pfn: Pfn) -> bool {
    w.k.frames.pfn_valid(pfn) && w.k.frames.folio_of(pfn).is_some()
}

fn freed(w: &World, pfn: Pfn) -> bool {
    w.k.frames
        .folio_of(pfn)
        .is_some_and(|f| w.k.frames.folio(f).is_freed())
}

/// `gup_struct_page`: a held GUP reference or pin on a `struct page` of the buffer.
pub fn gup_struct_page(w: &World) -> bool {
    // [`World::is_buffer_frame`], with the backing asked of the exporter once per state.
    let mut now: Option<Vec<Pfn>> = None;
    let moves = lifetime::backing_moves(&w.setup.exported);
    let mut is_buffer_frame = |p: Pfn| {
        w.setup.buffer_frames.contains(&p)
            || w.retired.binary_search(&p).is_ok()
            || moves
                && now
                    .get_or_insert_with(|| {
                        lifetime::backing(&w.setup.exported, &w.k).unwrap_or_default()
                    })
                    .contains(&p)
    };
    w.actors.iter().flat_map(|s| &s.holds).any(|h| {
        let (frames, counted) = h.frames();
        counted && frames.iter().any(|&p| has_page(w, p) && is_buffer_frame(p))
    })
}

/// `use_after_free`: a reported use-after-free, or a freed frame reachable from a PTE of an
/// actor's address space or from anything an actor's kernel-side users hold.
pub fn use_after_free(w: &World) -> bool {
    if w.k.use_after_free_reported() {
        return true;
    }
    // Nothing reaches a freed frame when no folio is freed.
    if !w.k.frames.folios().any(|(_, f)| f.is_freed()) {
        return false;
    }
    let held = w
        .actors
        .iter()
        .flat_map(|s| &s.holds)
        .any(|h| h.frames().0.iter().any(|&p| freed(w, p)));
    if held {
        return true;
    }
    w.actors.iter().filter_map(|s| s.mm).any(|mm| {
        let m = w.k.mm(mm);
        m.vmas.values().any(|v| {
            let mut bad = false;
            m.pt.for_each_in(v.start, v.end, |_, pte| {
                bad |= pte.present() && freed(w, pte.pfn());
            });
            bad
        })
    })
}

/// `stale_mapping`: before the buffer is released, a PTE or a hold reaches a frame (not freed)
/// that was the buffer's and is no longer its backing: the exporter moved away from it.
pub fn stale_mapping(w: &World) -> bool {
    // After the release the buffer has no backing: what still reaches its frames is a
    // use-after-free (freed) or a reference that kept the page (not the exporter's any more).
    if w.released {
        return false;
    }
    // Nothing was retired and the backing is still the frames at export: none is stale.
    if w.retired.is_empty() && !lifetime::backing_moves(&w.setup.exported) {
        return false;
    }
    let Some(now) = lifetime::backing(&w.setup.exported, &w.k) else {
        return false;
    };
    // Every frame of the buffer still backs it and none was retired: none is stale.
    if w.retired.is_empty() && now == w.setup.buffer_frames {
        return false;
    }
    // `now` is the backing, so of what [`World::is_buffer_frame`] counts only the frames the
    // buffer had at export or retired can be stale.
    let was_buffer =
        |p: Pfn| w.setup.buffer_frames.contains(&p) || w.retired.binary_search(&p).is_ok();
    let stale = |p: Pfn| was_buffer(p) && !now.contains(&p) && !freed(w, p);
    let held = w
        .actors
        .iter()
        .flat_map(|s| &s.holds)
        .any(|h| h.frames().0.iter().any(|&p| stale(p)));
    held || w.actors.iter().filter_map(|s| s.mm).any(|mm| {
        let m = w.k.mm(mm);
        m.vmas.values().any(|v| {
            let mut bad = false;
            m.pt.for_each_in(v.start, v.end, |_, pte| {
                bad |= pte.present() && stale(pte.pfn());
            });
            bad
        })
    })
}

/// `leak`: end every actor from `w`, then look for memory still referenced: a hold left, a
/// folio allocated after export (the processes' own pages) not freed, a buffer frame with
/// more references than it had after export, or (once the exporter released the buffer) a
/// buffer frame not freed.
pub fn leak(w: &World) -> bool {
    if w.k.oops.is_some() {
        return false;
    }
    // A hold the ends do not release is left whatever else they do.
    if w.holds_outlive_end() {
        return true;
    }
    let mut end = w.clone();
    end.end_all();
    if end.actors.iter().any(|s| !s.holds.is_empty()) {
        return true;
    }
    let fr = &end.k.frames;
    let own = fr
        .folios()
        .skip(end.setup.setup_folios)
        .any(|(_, f)| !f.is_freed() && !f.flags.contains(FolioFlags::ZERO) && f.refcount > 0);
    if own {
        return true;
    }
    end.setup.baseline_refs.iter().any(|&(p, base)| {
        fr.folio_of(p).is_some_and(|id| {
            let f = fr.folio(id);
            if end.released {
                !f.is_freed()
            } else {
                !f.is_freed() && f.refcount > base
            }
        })
    })
}
