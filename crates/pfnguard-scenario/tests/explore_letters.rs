//! `explore`'s opt-in letters: `fork c` with the child's own steps, the page steps on page 1,
//! and an importing device.

use pfnguard_scenario::{explore_alphabet_with, Alphabet, ExploreReport, Limits};

fn explore(alphabet: Alphabet, depth: usize, threads: usize) -> ExploreReport {
    let k = pfnguard_mm::resolve_kernel("6.1").expect("6.1");
    let exp = pfnguard_dmabuf::by_id(pfnguard_report::ExporterId::UdmabufShmem);
    explore_alphabet_with(
        "6.1",
        &k,
        exp.as_ref(),
        pfnguard_dmabuf::Policy::Off,
        1,
        depth,
        Limits {
            threads,
            ..Limits::default()
        },
        alphabet,
    )
    .expect("explores")
}

#[test]
fn the_extra_letters_are_in_the_alphabet_and_reach_more_states() {
    let base = explore(
        Alphabet {
            importer: false,
            ..Alphabet::default()
        },
        3,
        1,
    );
    assert!(!base.alphabet.iter().any(|l| l.contains("fork")));
    assert!(!base.alphabet.iter().any(|l| l.ends_with(" 1")));

    let fork = explore(
        Alphabet {
            fork: true,
            importer: false,
            ..Alphabet::default()
        },
        3,
        1,
    );
    for l in ["p: fork c", "c: touch 0", "c: munmap", "c: exit"] {
        assert!(fork.alphabet.iter().any(|x| x == l), "{l}");
    }
    assert!(!fork.alphabet.iter().any(|x| x == "c: fork c"));
    assert!(fork.states > base.states, "{} {}", fork.states, base.states);

    let page = explore(
        Alphabet {
            second_page: true,
            importer: false,
            ..Alphabet::default()
        },
        3,
        1,
    );
    for l in ["p: touch 1", "p: read 1", "p: gup_pin 1", "p: kvm_map 1"] {
        assert!(page.alphabet.iter().any(|x| x == l), "{l}");
    }
    assert!(page.states > base.states, "{} {}", page.states, base.states);

    let dev = explore(Alphabet::default(), 3, 1);
    for l in [
        "dev: attach",
        "dev: attach_dynamic",
        "dev: map",
        "dev: unmap",
        "dev: detach",
    ] {
        assert!(
            dev.alphabet.iter().any(|x| x == l),
            "{l}: {:?}",
            dev.alphabet
        );
    }
    assert!(dev.states > base.states, "{} {}", dev.states, base.states);
}

/// The exploration with both extra letters is the same whatever the thread count.
#[test]
fn the_forked_alphabet_is_deterministic() {
    let a = Alphabet {
        fork: true,
        second_page: true,
        importer: true,
    };
    let one = serde_json::to_string(&explore(a, 3, 1)).expect("json");
    assert_eq!(one, serde_json::to_string(&explore(a, 3, 2)).expect("json"));
    assert_eq!(one, serde_json::to_string(&explore(a, 3, 1)).expect("json"));
}

/// A driver that calls remap_pfn_range() from its ->fault: the flags it sets (VM_IO|VM_PFNMAP)
/// are on the VMA GUP retries with (mm/gup.c:__get_user_pages re-reads the same
/// vm_area_struct after faultin_page), so a GUP that faults the page in finds a special PTE in
/// a VM_PFNMAP VMA: vm_normal_page() returns NULL quietly, never "Bad page map".
#[test]
fn gup_retries_with_the_flags_the_fault_set() {
    let t = "name = \"fault-remap\"\npages = 1\ninsert = \"remap_pfn_range\"\nat = \"fault\"\nmemory = \"driver-pages\"\n";
    let e = pfnguard_dmabuf::custom::CustomExporter {
        desc: pfnguard_dmabuf::custom::parse(std::path::Path::new("fault-remap.toml"), t)
            .expect("parse"),
    };
    for v in ["6.1", "7.3"] {
        let k = pfnguard_mm::resolve_kernel(v).expect("kernel");
        let r = explore_alphabet_with(
            v,
            &k,
            &e,
            pfnguard_dmabuf::Policy::Off,
            1,
            2,
            Limits::default(),
            Alphabet {
                importer: false,
                ..Alphabet::default()
            },
        )
        .expect("explores");
        let bad = r
            .properties
            .iter()
            .find(|p| p.property == pfnguard_scenario::Property::BadPageMap)
            .expect("bad_page_map");
        assert!(!bad.reachable, "{v}: {:?}", bad.witness);
    }
}
