//! The importing device's steps (`attach`, `attach_dynamic`, `map`, `unmap`, `detach`) run the
//! modeled dma-buf core paths, and what the device maps is seen by the properties.

use pfnguard_dmabuf::Policy;
use pfnguard_report::ExporterId;
use pfnguard_scenario::property::{stale_mapping, use_after_free};
use pfnguard_scenario::step::ActorKind;
use pfnguard_scenario::world::{Hold, StepOutcome};
use pfnguard_scenario::{Step, World};

const P: usize = 0;
const DEV: usize = 1;
const EXP: usize = 2;

fn world(id: ExporterId) -> World {
    let k = pfnguard_mm::resolve_kernel("6.12").expect("6.12");
    let exp = pfnguard_dmabuf::by_id(id);
    World::new(
        &k,
        Policy::Off,
        exp.as_ref(),
        1,
        vec![ActorKind::Process, ActorKind::Device, ActorKind::Exporter],
        vec!["p".into(), "gpu".into(), "exporter".into()],
    )
    .expect("world")
}

fn mapped(w: &World) -> Option<Vec<pfnguard_mm::Pfn>> {
    w.actors[DEV].holds.iter().find_map(|h| match h {
        Hold::Import(p) => Some(p.clone()),
        _ => None,
    })
}

fn is_released(w: &World) -> bool {
    let b = w.setup.exported.buf.as_ref().expect("a dma-buf");
    b.is_released(&w.k)
}

/// `map` hands the device the frames backing the buffer; `unmap` takes them back.
#[test]
fn map_gives_the_device_the_buffer_frames() {
    for id in [
        ExporterId::SystemHeap,
        ExporterId::UdmabufShmem,
        ExporterId::Qxl,
    ] {
        let mut w = world(id);
        assert_eq!(
            w.apply(DEV, Step::MapAttachment),
            StepOutcome::Skipped("the device is not attached"),
            "{id}"
        );
        assert_eq!(
            w.apply(DEV, Step::Attach { dynamic: false }),
            StepOutcome::Ok,
            "{id}"
        );
        assert_eq!(w.apply(DEV, Step::MapAttachment), StepOutcome::Ok, "{id}");
        assert_eq!(
            mapped(&w),
            Some(w.setup.buffer_frames.clone()),
            "{id}: the sg table's frames"
        );
        assert_eq!(w.apply(DEV, Step::UnmapAttachment), StepOutcome::Ok, "{id}");
        assert_eq!(mapped(&w), None, "{id}");
    }
}

/// The device's reference to the dma-buf keeps the ordinary release away: p's close does not
/// release the buffer while the device is attached; the detach does.
#[test]
fn the_attachment_holds_the_buffer_until_detach() {
    let mut w = world(ExporterId::SystemHeap);
    assert_eq!(
        w.apply(DEV, Step::Attach { dynamic: false }),
        StepOutcome::Ok
    );
    assert_eq!(w.apply(DEV, Step::MapAttachment), StepOutcome::Ok);
    assert_eq!(w.apply(P, Step::Close), StepOutcome::Ok);
    assert!(!is_released(&w), "released under an attached importer");
    assert!(!use_after_free(&w));
    assert_eq!(w.apply(DEV, Step::Detach), StepOutcome::Ok);
    assert!(is_released(&w), "the detach dropped the last reference");
    assert!(w.actors[DEV].holds.is_empty(), "detach unmaps");
    // Nobody has an fd left: a new attach cannot get the buffer.
    assert_eq!(
        w.apply(DEV, Step::Attach { dynamic: false }),
        StepOutcome::Fail(pfnguard_mm::Errno::EBADF.into())
    );
}

/// A forced release (device removal) under a device mapping: the frames are freed while the
/// device may still DMA to them.
#[test]
fn a_device_mapping_across_a_forced_release_is_a_use_after_free() {
    for id in [ExporterId::SystemHeap, ExporterId::VividDmaContig] {
        let mut w = world(id);
        assert_eq!(
            w.apply(DEV, Step::Attach { dynamic: true }),
            StepOutcome::Ok
        );
        assert_eq!(w.apply(DEV, Step::MapAttachment), StepOutcome::Ok);
        assert!(!use_after_free(&w), "{id}");
        assert_eq!(w.apply(EXP, Step::Release), StepOutcome::Ok, "{id}");
        assert!(use_after_free(&w), "{id}: the device maps freed frames");
        assert_eq!(w.apply(DEV, Step::UnmapAttachment), StepOutcome::Ok);
        assert!(!use_after_free(&w), "{id}");
        assert!(matches!(
            w.apply(DEV, Step::MapAttachment),
            StepOutcome::Unavailable(_)
        ));
    }
}

/// A static importer pins: a TTM exporter cannot evict (-EBUSY) until it detaches; an exporter
/// that never moves still says -EOPNOTSUPP.
#[test]
fn a_static_attachment_pins_the_buffer() {
    for (id, dynamic) in [
        (ExporterId::Qxl, false),
        (ExporterId::Qxl, true),
        (ExporterId::Amdgpu, false),
    ] {
        let mut w = world(id);
        assert_eq!(w.apply(DEV, Step::Attach { dynamic }), StepOutcome::Ok);
        assert_eq!(w.apply(DEV, Step::MapAttachment), StepOutcome::Ok);
        assert_eq!(
            w.apply(EXP, Step::Evict),
            StepOutcome::Fail(pfnguard_mm::Errno::EBUSY.into()),
            "{id} dynamic={dynamic}"
        );
        assert_eq!(w.apply(DEV, Step::Detach), StepOutcome::Ok);
        assert_eq!(w.apply(EXP, Step::Evict), StepOutcome::Ok, "{id}");
    }
    let mut w = world(ExporterId::SystemHeap);
    assert_eq!(
        w.apply(DEV, Step::Attach { dynamic: false }),
        StepOutcome::Ok
    );
    assert_eq!(
        w.apply(EXP, Step::Evict),
        StepOutcome::Fail(pfnguard_mm::Errno::EOPNOTSUPP.into())
    );
}

/// A dynamic importer of a dynamic exporter (amdgpu) is not pinned: the eviction goes ahead
/// and move_notify drops its mapping, so nothing reaches the old VRAM. `move_notify` alone
/// drops a dynamic importer's mapping and leaves a static one's.
#[test]
fn a_dynamic_attachment_is_told_of_the_move() {
    let mut w = world(ExporterId::Amdgpu);
    assert_eq!(
        w.apply(DEV, Step::Attach { dynamic: true }),
        StepOutcome::Ok
    );
    assert_eq!(w.apply(DEV, Step::MapAttachment), StepOutcome::Ok);
    assert!(mapped(&w).is_some());
    assert_eq!(w.apply(EXP, Step::Evict), StepOutcome::Ok);
    assert_eq!(mapped(&w), None, "move_notify invalidated the mapping");
    assert!(!stale_mapping(&w));
    assert!(!use_after_free(&w));

    for (dynamic, kept) in [(true, false), (false, true)] {
        let mut w = world(ExporterId::SystemHeap);
        assert_eq!(w.apply(DEV, Step::Attach { dynamic }), StepOutcome::Ok);
        assert_eq!(w.apply(DEV, Step::MapAttachment), StepOutcome::Ok);
        assert_eq!(w.apply(EXP, Step::MoveNotify), StepOutcome::Ok);
        assert_eq!(mapped(&w).is_some(), kept, "dynamic={dynamic}");
    }
}

/// A device mapping that the exporter moved away from is stale: were the eviction to go ahead
/// under a mapping nobody dropped (the property, not the kernel), stale_mapping sees it.
#[test]
fn stale_mapping_sees_a_device_mapping() {
    let mut w = world(ExporterId::Amdgpu);
    assert_eq!(
        w.apply(DEV, Step::Attach { dynamic: true }),
        StepOutcome::Ok
    );
    assert_eq!(w.apply(DEV, Step::MapAttachment), StepOutcome::Ok);
    let held = mapped(&w).expect("mapped");
    assert_eq!(w.apply(EXP, Step::Evict), StepOutcome::Ok);
    // Put back what move_notify dropped: a device that ignored it.
    w.actors[DEV].holds.push(Hold::Import(held));
    assert!(stale_mapping(&w) || use_after_free(&w));
}

#[test]
fn importer_steps_parse_and_render() {
    let none = |_: &str| None;
    for text in ["attach", "attach_dynamic", "map", "unmap", "detach"] {
        let s = Step::parse(text, ActorKind::Device, &none).expect(text);
        assert_eq!(s.render(&|_| String::new()), text);
        assert!(
            Step::parse(text, ActorKind::Process, &none).is_err(),
            "{text}"
        );
    }
}
