//! Scenario files and the explorer: parser errors (one per class, each naming file, line and
//! key), determinism, deduplication, a `sometimes` verdict with its shortest witness, and the
//! verdicts of the whole library under scenarios/ (CI runs it through this test).

use std::path::{Path, PathBuf};

use pfnguard_scenario::scenario::scenario_files;
use pfnguard_scenario::{load_scenario, parse_scenario, run_scenario, Limits, ScenarioError};

fn library() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scenarios")
}

const GOOD: &str = r#"kernel = "6.12"
exporter = "vivid-vmalloc"
[[actor]]
name = "p"
steps = ["mmap", "touch 0"]
"#;

/// Parse `text` and return the error's (line, key) and message.
fn err(text: &str) -> (usize, String, String) {
    match parse_scenario(Path::new("t.toml"), text) {
        Ok(_) => panic!("accepted:\n{text}"),
        Err(e) => {
            let (path, line, key) = e.location();
            assert_eq!(path, Path::new("t.toml"));
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("t.toml:{line}:")), "{msg}");
            (line, key, msg)
        }
    }
}

#[test]
fn the_good_scenario_parses() {
    let s = parse_scenario(Path::new("t.toml"), GOOD).expect("parses");
    assert_eq!(s.name, "t");
    assert_eq!(s.actors.len(), 1);
}

#[test]
fn parser_errors_name_file_line_and_key() {
    // (scenario text, expected line, expected key, a word the message must contain)
    let cases: &[(&str, usize, &str, &str)] = &[
        // TOML syntax.
        ("kernel = \"6.12\nexporter = \"x\"\n", 1, "kernel", "string"),
        // An unknown key.
        (&format!("{GOOD}colour = 3\n"), 6, "colour", "unknown field"),
        // A value of the wrong type.
        (&GOOD.replace("kernel = \"6.12\"", "kernel = \"6.12\"\npages = \"x\""), 2, "pages", "pages"),
        // A missing key.
        ("exporter = \"vgem\"\n[[actor]]\nname = \"p\"\nsteps = []\n", 1, "kernel", "missing"),
        // A kernel the model does not resolve.
        (&GOOD.replace("6.12", "4.19"), 1, "kernel", "4.19"),
        // An unknown policy.
        (&format!("policy = \"lax\"\n{GOOD}"), 1, "policy", "lax"),
        // An unknown exporter.
        (&GOOD.replace("vivid-vmalloc", "nvidia"), 2, "exporter", "nvidia"),
        // A missing exporter file.
        (&GOOD.replace("exporter = \"vivid-vmalloc\"", "exporter_file = \"none.toml\""), 2, "exporter_file", "none.toml"),
        // An unknown step.
        (&GOOD.replace("\"touch 0\"", "\"poke 0\""), 5, "actor.steps", "poke"),
        // A bad step argument.
        (&GOOD.replace("\"touch 0\"", "\"touch x\""), 5, "actor.steps", "page number"),
        // A step of another actor kind.
        (&GOOD.replace("\"touch 0\"", "\"evict\""), 5, "actor.steps", "exporter"),
        // An unknown actor kind.
        (&GOOD.replace("name = \"p\"", "name = \"p\"\nkind = \"gpu\""), 5, "actor.kind", "gpu"),
        // A child without parent.
        (&format!("{GOOD}[[actor]]\nname = \"c\"\nkind = \"child\"\nsteps = []\n"), 7, "actor.parent", "parent"),
        // A child nobody forks.
        (&format!("{GOOD}[[actor]]\nname = \"c\"\nkind = \"child\"\nparent = \"p\"\nsteps = []\n"), 7, "actor.parent", "forked"),
        // A fork of an actor that is not this one's child.
        (&GOOD.replace("\"touch 0\"", "\"fork q\""), 5, "actor.steps", "q"),
        // An unknown property.
        (&format!("{GOOD}[expect]\nuse_after_fee = \"never\"\n"), 7, "expect", "use_after_fee"),
        // An unknown verdict.
        (&format!("{GOOD}[expect]\nleak = \"rarely\"\n"), 7, "expect.leak", "rarely"),
        // A result predicate on a step the actor does not have.
        (&format!("{GOOD}[[result]]\nactor = \"p\"\nstep = 3\noutcome = \"ok\"\nexpect = \"always\"\n"), 8, "result.step", "1 to 2"),
        // An outcome that is not one.
        (&format!("{GOOD}[[result]]\nactor = \"p\"\nstep = 1\noutcome = \"fine\"\nexpect = \"always\"\n"), 9, "result.outcome", "fine"),
        // What an `rss` step reads, asked of another step.
        (&format!("{GOOD}[[result]]\nactor = \"p\"\nstep = 2\noutcome = \"counted\"\nexpect = \"always\"\n"), 9, "result.outcome", "rss"),
        // A `when` for a kernel the scenario does not run.
        (&format!("{GOOD}[[when]]\nkernel = \"6.1\"\nexpect = {{ leak = \"never\" }}\n"), 7, "when.kernel", "6.1"),
        // No process.
        ("kernel = \"6.12\"\nexporter = \"vgem\"\n[[actor]]\nname = \"e\"\nkind = \"exporter\"\nsteps = []\n", 3, "actor", "process"),
    ];
    let mut wrong = Vec::new();
    for (text, line, key, word) in cases {
        let (l, k, msg) = err(text);
        if (l, k.as_str()) != (*line, *key) || !msg.contains(word) {
            wrong.push(format!("want {line}:{key} ({word}), got: {msg}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn no_input_makes_the_parser_panic() {
    // A deterministic mutation fuzz over the library's own files: byte flips, truncations,
    // splices. (The fuzz target with the 10M-execution budget is separate.)
    let mut texts = Vec::new();
    for f in scenario_files(&library()).expect("scenarios/") {
        texts.push(std::fs::read(&f).expect("read"));
    }
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let alphabet = b"=[]{}\"',.#\n 0123456789abcxyz-_";
    for i in 0..20_000 {
        let base = &texts[i % texts.len()];
        let mut t = base.clone();
        for _ in 0..(1 + next() % 4) {
            if t.is_empty() {
                break;
            }
            let at = (next() as usize) % t.len();
            match next() % 4 {
                0 => t[at] = alphabet[(next() as usize) % alphabet.len()],
                1 => t.truncate(at),
                2 => {
                    let other = &texts[(next() as usize) % texts.len()];
                    let from = (next() as usize) % other.len().max(1);
                    t.splice(at..at, other[from..].iter().take(40).copied());
                }
                _ => {
                    t.remove(at);
                }
            }
        }
        let s = String::from_utf8_lossy(&t);
        let _ = parse_scenario(Path::new("fuzz.toml"), &s);
    }
}

#[test]
fn exploration_is_deterministic_whatever_the_thread_count() {
    let sc = load_scenario(&library().join("symmetric-pins.toml")).expect("loads");
    let one = |threads| {
        let r = run_scenario(
            &sc,
            Limits {
                threads,
                ..Limits::default()
            },
        );
        serde_json::to_string(&r).expect("json")
    };
    let a = one(1);
    assert_eq!(a, one(1));
    assert_eq!(a, one(2));
    // The alphabet exploration has levels wide enough to be split between threads.
    let k = pfnguard_mm::resolve_kernel("6.1").expect("6.1");
    let exp = pfnguard_dmabuf::by_id(pfnguard_report::ExporterId::UdmabufShmem);
    let explore = |threads| {
        let r = pfnguard_scenario::explore_alphabet(
            "6.1",
            &k,
            exp.as_ref(),
            pfnguard_dmabuf::Policy::Off,
            1,
            4,
            Limits {
                threads,
                ..Limits::default()
            },
        )
        .expect("explores");
        assert!(r.states > 1000, "{}", r.states);
        serde_json::to_string(&r).expect("json")
    };
    let e = explore(1);
    assert_eq!(e, explore(2));
    assert_eq!(e, explore(2));
}

#[test]
fn cloned_states_agree_with_replayed_ones() {
    use pfnguard_scenario::Build;
    let run = |f: &str, build| {
        let sc = load_scenario(&library().join(f)).expect("loads");
        let r = run_scenario(
            &sc,
            Limits {
                build,
                ..Limits::default()
            },
        );
        serde_json::to_string(&r).expect("json")
    };
    // Where nothing is released, cloning and replaying agree...
    let f = "vb2-dontneed-sigbus.toml";
    assert_eq!(run(f, Build::Clone), run(f, Build::Replay));
    // ...and where the buffer is released too: its lifetime is the kernel's, cloned with it.
    let f = "odirect-in-flight-close.toml";
    assert_eq!(run(f, Build::Clone), run(f, Build::Replay));
    assert_eq!(run(f, Build::Auto), run(f, Build::Clone));
    // ...and where the exporter evicts (a TTM BO swapped out to shmem and back).
    let f = "exporter-evict-longterm-pin.toml";
    assert_eq!(run(f, Build::Clone), run(f, Build::Replay));
    const { assert!(!pfnguard_scenario::lifetime::CLONES_SHARE_STATE) };
}

#[test]
fn symmetric_interleavings_are_deduplicated() {
    let sc = load_scenario(&library().join("symmetric-pins.toml")).expect("loads");
    let r = run_scenario(&sc, Limits::default());
    let c = &r[0];
    // 15 steps of three 5-step programs: 15!/(5!^3) interleavings.
    assert_eq!(c.interleavings, 756_756);
    // Every combination of the three program counters is one state (6^3 = 216): the order in
    // which the processes allocated their pages and page tables does not tell states apart.
    assert_eq!(c.states, 216, "{c:?}");
    assert!(c.complete && c.ok());
}

#[test]
fn a_sometimes_verdict_comes_with_its_shortest_witness() {
    let sc = load_scenario(&library().join("vgem-map-private-bug.toml")).expect("loads");
    let r = run_scenario(&sc, Limits::default());
    let c = r.iter().find(|c| c.kernel == "6.9").expect("6.9 case");
    let p = c
        .properties
        .iter()
        .find(|p| p.property == "result:b#2=ok")
        .expect("predicate");
    assert_eq!(p.verdict, pfnguard_scenario::Verdict::Sometimes);
    let w = p.witness.as_ref().expect("witness");
    let steps: Vec<(&str, &str, &str)> = w
        .steps
        .iter()
        .map(|s| (s.actor.as_str(), s.step.as_str(), s.outcome.as_str()))
        .collect();
    assert_eq!(steps, [("b", "mmap", "ok"), ("b", "touch 0", "ok")]);
    assert!(w
        .trace
        .iter()
        .any(|t| t.function == "drivers/gpu/drm/drm_gem_shmem_helper.c:drm_gem_shmem_fault"));
    // And the BUG in the other process is `always`.
    let bug = c
        .properties
        .iter()
        .find(|p| p.property == "bug")
        .expect("bug");
    assert_eq!(bug.verdict, pfnguard_scenario::Verdict::Always);
}

#[test]
fn verdicts_of_library_scenarios() {
    use pfnguard_scenario::Verdict::*;
    let verdict = |file: &str, kernel: &str, prop: &str| {
        let sc = load_scenario(&library().join(file)).expect("loads");
        let r = run_scenario(&sc, Limits::default());
        let c = r.iter().find(|c| c.kernel == kernel).expect("case");
        c.properties
            .iter()
            .find(|p| p.property == prop)
            .expect("property")
            .verdict
    };
    // udmabuf hands its shmem pages to a long-term pin until its VM_PFNMAP conversion (6.11).
    assert_eq!(
        verdict(
            "udmabuf-longterm-pin-vmf-page.toml",
            "6.10",
            "gup_struct_page"
        ),
        Always
    );
    assert_eq!(
        verdict(
            "udmabuf-longterm-pin-vmf-page.toml",
            "6.12",
            "gup_struct_page"
        ),
        Never
    );
    // KVM took a page reference on VM_PFNMAP pfns until 6.13.
    assert_eq!(
        verdict("kvm-memslot-after-munmap.toml", "6.12", "gup_struct_page"),
        Always
    );
    assert_eq!(
        verdict("kvm-memslot-after-munmap.toml", "6.13", "gup_struct_page"),
        Never
    );
    // A reference never put is a leak.
    assert_eq!(verdict("gup-get-never-put.toml", "6.12", "leak"), Always);
}

#[test]
fn the_library_holds_its_expected_verdicts() {
    let files = scenario_files(&library()).expect("scenarios/");
    assert!(files.len() >= 10, "{} scenarios", files.len());
    let mut bad = Vec::new();
    for f in files {
        let sc = match load_scenario(&f) {
            Ok(s) => s,
            Err(e @ ScenarioError::Read { .. })
            | Err(e @ ScenarioError::Syntax { .. })
            | Err(e @ ScenarioError::Invalid { .. }) => panic!("{e}"),
        };
        assert!(sc.source.is_some(), "{}: no `source`", f.display());
        for c in run_scenario(&sc, Limits::default()) {
            for p in c.properties.iter().filter(|p| !p.ok()) {
                bad.push(format!(
                    "{} [{} {}] {}: {} (expected {:?})",
                    c.scenario, c.kernel, c.policy, p.property, p.verdict, p.expected
                ));
            }
            if !c.complete {
                bad.push(format!(
                    "{} [{} {}]: incomplete",
                    c.scenario, c.kernel, c.policy
                ));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
