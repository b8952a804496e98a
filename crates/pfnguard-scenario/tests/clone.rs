//! A cloned `World` is independent of its original: the explorer clones each state's parent,
//! so a release or an eviction on one branch must not be seen on another.

use pfnguard_dmabuf::Policy;
use pfnguard_report::ExporterId;
use pfnguard_scenario::step::ActorKind;
use pfnguard_scenario::world::StepOutcome;
use pfnguard_scenario::{Step, World};

fn world(id: ExporterId) -> World {
    let k = pfnguard_mm::resolve_kernel("6.12").expect("6.12");
    let exp = pfnguard_dmabuf::by_id(id);
    World::new(
        &k,
        Policy::Off,
        exp.as_ref(),
        2,
        vec![ActorKind::Process, ActorKind::Exporter],
        vec!["p".into(), "exporter".into()],
    )
    .expect("world")
}

fn backing(w: &World) -> Vec<pfnguard_mm::Pfn> {
    w.setup.exported.backing(&w.k)
}

fn is_released(w: &World) -> bool {
    let b = w.setup.exported.buf.as_ref().expect("a dma-buf");
    b.is_released(&w.k)
}

/// Mapped, touched and unmapped; then released on a clone: the clone's frames are freed, its
/// buffer released with no backing; the original's frames, released flag and backing are those
/// it had. Evicted on a clone: the original keeps its backing.
#[test]
fn release_or_evict_on_a_clone_leaves_the_original_alone() {
    for id in [
        ExporterId::VividVmalloc,
        ExporterId::UdmabufShmem,
        ExporterId::Qxl,
        ExporterId::Amdgpu,
    ] {
        let mut w = world(id);
        for s in [
            Step::Mmap { private: false },
            Step::Access {
                page: 0,
                write: true,
            },
            Step::Munmap,
        ] {
            assert_eq!(w.apply(0, s), StepOutcome::Ok, "{id} {s:?}");
        }
        let frames = backing(&w);
        assert!(!frames.is_empty(), "{id}");
        let free: Vec<bool> = frames.iter().map(|&p| w.k.frames.is_freed(p)).collect();

        let mut c = w.clone();
        assert_eq!(c.apply(1, Step::Release), StepOutcome::Ok, "{id}");
        assert!(c.released && is_released(&c), "{id}");
        assert!(backing(&c).is_empty(), "{id}");
        assert!(frames.iter().all(|&p| c.k.frames.is_freed(p)), "{id}");
        assert!(
            !w.released && !is_released(&w),
            "{id}: released in the original"
        );
        assert_eq!(backing(&w), frames, "{id}: the original's backing");
        let now: Vec<bool> = frames.iter().map(|&p| w.k.frames.is_freed(p)).collect();
        assert_eq!(now, free, "{id}: the original's frames");

        let mut c = w.clone();
        if c.apply(1, Step::Evict) == StepOutcome::Ok {
            assert_ne!(backing(&c), frames, "{id}: evicted");
            assert_eq!(backing(&w), frames, "{id}: the original's backing");
            let now: Vec<bool> = frames.iter().map(|&p| w.k.frames.is_freed(p)).collect();
            assert_eq!(now, free, "{id}: the original's frames");
        }
        // The original runs on as if no clone had been made.
        assert_eq!(w.apply(1, Step::Release), StepOutcome::Ok, "{id}");
        assert!(backing(&w).is_empty(), "{id}");
        assert!(!is_released(&c), "{id}: the evicted clone was released");
    }
}
