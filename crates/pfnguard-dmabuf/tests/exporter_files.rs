//! Exporter description files: one test per error class of `custom::parse` / `custom::load`
//! (file, 1-based line and key named in the message, no panic), and every file under
//! examples/exporters loaded and predicted on both kernels.

mod common;
use common::resolved;

use std::path::{Path, PathBuf};

use pfnguard_dmabuf::custom::{self, Access, At, CustomError, Insert, Memory};
use pfnguard_dmabuf::exporters::Exporter;
use pfnguard_dmabuf::{predict, Policy};
use pfnguard_mm::VmFlags;
use pfnguard_report::OpKey;

const GOOD: &str = r#"name = "good"
pages = 4
insert = "vm_insert_page"
at = "mmap"
memory = "driver-pages"
"#;

fn err(text: &str) -> CustomError {
    let r = std::panic::catch_unwind(|| custom::parse(Path::new("dir/exp.toml"), text));
    match r {
        Ok(Ok(d)) => panic!("accepted: {d:?}"),
        Ok(Err(e)) => e,
        Err(_) => panic!("parse panicked on {text:?}"),
    }
}

/// Replace the line that starts with `key` (or append it) in `GOOD`.
fn with(key: &str, line: &str) -> String {
    let mut found = false;
    let mut out: Vec<String> = GOOD
        .lines()
        .map(|l| {
            if l.split('=').next().is_some_and(|k| k.trim() == key) {
                found = true;
                line.to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect();
    if !found {
        out.push(line.to_owned());
    }
    out.join("\n") + "\n"
}

fn assert_syntax(e: &CustomError, line: usize, key: &str) {
    let CustomError::Syntax {
        path,
        line: l,
        message,
    } = e
    else {
        panic!("not a syntax error: {e:?}")
    };
    assert_eq!(path, Path::new("dir/exp.toml"));
    assert_eq!(*l, line, "{e}");
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("dir/exp.toml:{line}: ")),
        "{shown}"
    );
    assert!(
        message.contains(&format!("`{key}`")),
        "key `{key}` not named: {shown}"
    );
}

fn assert_invalid(e: &CustomError, line: usize, key: &str, part: &str) {
    let CustomError::Invalid {
        path,
        line: l,
        key: k,
        message,
    } = e
    else {
        panic!("not an invalid-value error: {e:?}")
    };
    assert_eq!(path, Path::new("dir/exp.toml"));
    assert_eq!((*l, *k), (line, key), "{e}");
    assert!(message.contains(part), "{e}");
    assert_eq!(
        e.to_string(),
        format!("dir/exp.toml:{line}: key `{key}`: {message}")
    );
}

#[test]
fn the_good_file_parses_with_defaults() {
    let d = custom::parse(Path::new("good.toml"), GOOD).expect("good");
    assert_eq!(d.name, "good");
    assert_eq!(d.pages, 4);
    assert!(!d.requires_shared);
    assert_eq!(
        (d.set_flags, d.clear_flags),
        (VmFlags::empty(), VmFlags::empty())
    );
    assert_eq!(
        (d.insert, d.at, d.memory, d.access),
        (
            Insert::VmInsertPage,
            At::Mmap,
            Memory::DriverPages,
            Access::None
        )
    );
    assert!(d.honours_pgoff);
}

#[test]
fn read_error_names_the_file() {
    let p = PathBuf::from("/nonexistent/pfnguard/exp.toml");
    let e = custom::load(&p).expect_err("missing file");
    let CustomError::Read { path, reason } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(path, &p);
    assert!(reason.contains("No such file"), "{reason}");
    assert!(
        e.to_string()
            .starts_with("/nonexistent/pfnguard/exp.toml: "),
        "{e}"
    );
}

#[test]
fn bad_toml_is_a_syntax_error_at_its_line() {
    let e = err(&with("at", "at = \"mmap"));
    assert_syntax(&e, 4, "at");
}

#[test]
fn a_missing_key_is_named() {
    let text: String = GOOD
        .lines()
        .filter(|l| !l.starts_with("memory"))
        .map(|l| format!("{l}\n"))
        .collect();
    let e = err(&text);
    let CustomError::Syntax { message, .. } = &e else {
        panic!("{e:?}")
    };
    assert_eq!(message, "missing field `memory`");
    assert!(e.to_string().starts_with("dir/exp.toml:1: "), "{e}");
}

#[test]
fn an_unknown_key_is_named_at_its_line() {
    let e = err(&with("colour", "colour = 3"));
    assert_syntax(&e, 6, "colour");
    assert!(e.to_string().contains("unknown field `colour`"), "{e}");
}

#[test]
fn a_wrong_type_names_the_key() {
    let e = err(&with("pages", "pages = \"four\""));
    assert_syntax(&e, 2, "pages");
    assert!(
        e.to_string()
            .contains("invalid type: string \"four\", expected i64"),
        "{e}"
    );
    let e = err(&with("requires_shared", "requires_shared = 1"));
    assert_syntax(&e, 6, "requires_shared");
}

#[test]
fn an_unknown_insert_function_names_the_key() {
    let e = err(&with("insert", "insert = \"vm_insert_pag\""));
    assert_syntax(&e, 3, "insert");
    assert!(
        e.to_string().contains("unknown variant `vm_insert_pag`"),
        "{e}"
    );
}

#[test]
fn pages_out_of_range() {
    for v in ["0", "-1", "65537"] {
        let e = err(&with("pages", &format!("pages = {v}")));
        assert_invalid(&e, 2, "pages", &format!("{v} is out of range (1 to 65536)"));
    }
    assert!(custom::parse(Path::new("x"), &with("pages", "pages = 65536")).is_ok());
}

#[test]
fn unknown_flag_name() {
    let e = err(&with(
        "set_flags",
        "set_flags = [\"PFNMAP\",\n  \"PFNMAPP\"]",
    ));
    assert_invalid(&e, 7, "set_flags", "unknown VMA flag \"PFNMAPP\"");
    let e = err(&with("clear_flags", "clear_flags = [\"IOO\"]"));
    assert_invalid(&e, 6, "clear_flags", "unknown VMA flag \"IOO\"");
    // Kernel names work with or without VM_, in any case.
    let d = custom::parse(
        Path::new("x"),
        &with("set_flags", "set_flags = [\"VM_IO\", \"pfnmap\"]"),
    )
    .expect("flags");
    assert_eq!(d.set_flags, VmFlags::IO | VmFlags::PFNMAP);
}

#[test]
fn struct_page_insert_of_device_memory() {
    for f in [
        "vm_insert_page",
        "vm_insert_pages",
        "vm_map_pages",
        "fault_page",
    ] {
        let mut t = with("insert", &format!("insert = \"{f}\""));
        if f == "fault_page" {
            t = t.replace("at = \"mmap\"", "at = \"fault\"");
        }
        let e = err(&t.replace("driver-pages", "device"));
        assert_invalid(
            &e,
            3,
            "insert",
            "needs a struct page, but memory = \"device\" has none",
        );
    }
}

#[test]
fn remap_vmalloc_range_needs_vmalloc_memory() {
    let e = err(&with("insert", "insert = \"remap_vmalloc_range\""));
    assert_invalid(&e, 5, "memory", "remap_vmalloc_range maps a vmalloc area");
}

#[test]
fn fault_page_at_mmap() {
    let e = err(&with("insert", "insert = \"fault_page\""));
    assert_invalid(&e, 4, "at", "fault_page is what ->fault returns");
}

#[test]
fn whole_vma_inserts_at_fault() {
    for f in ["vm_insert_pages", "vm_map_pages", "remap_vmalloc_range"] {
        let t = with("insert", &format!("insert = \"{f}\""))
            .replace("at = \"mmap\"", "at = \"fault\"")
            .replace("driver-pages", "vmalloc");
        let e = err(&t);
        assert_invalid(&e, 4, "at", "maps the whole VMA from ->mmap");
    }
}

#[test]
fn bad_names() {
    let long = format!("\"{}\"", "x".repeat(41));
    for n in [
        "\"\"",
        "\"two words\"",
        "\"tab\\there\"",
        "\"a|b\"",
        long.as_str(),
    ] {
        let e = err(&with("name", &format!("name = {n}")));
        assert_invalid(&e, 1, "name", "must be 1 to 40 letters, digits");
    }
    // A catalogue id would pass the user's exporter off as the real one (and its evidence).
    let e = err(&with("name", "name = \"memfd\""));
    assert_invalid(&e, 1, "name", "`memfd` is a catalogue exporter");
}

#[test]
fn endless_files_are_refused() {
    let e = custom::load(Path::new("/dev/zero")).expect_err("refused");
    assert!(e.to_string().contains("larger than 1048576 bytes"), "{e}");
}

#[test]
fn load_reports_the_path_it_was_given() {
    let dir = std::env::temp_dir().join(format!("pfnguard-exporter-files-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("tmp dir");
    let p = dir.join("broken.toml");
    std::fs::write(&p, with("pages", "pages = 0")).expect("write");
    let e = custom::load(&p).expect_err("invalid");
    assert!(
        e.to_string()
            .starts_with(&format!("{}:2: key `pages`: ", p.display())),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

// ---------------------------------------------------------------------------------------------
// examples/exporters

fn example_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/exporters");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("examples/exporters")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    v.sort();
    v
}

#[test]
fn there_is_one_example_per_insert_function() {
    let mut inserts: Vec<String> = example_files()
        .iter()
        .map(|f| {
            format!(
                "{:?}",
                custom::load(f)
                    .unwrap_or_else(|e| panic!("{e}"))
                    .desc
                    .insert
            )
        })
        .collect();
    inserts.sort();
    assert_eq!(
        inserts,
        [
            "FaultPage",
            "IoRemapPfnRange",
            "RemapPfnRange",
            "RemapVmallocRange",
            "VmInsertPage",
            "VmInsertPages",
            "VmMapPages",
            "VmfInsertMixed",
            "VmfInsertPfn",
            "VmfInsertPfnProt"
        ]
    );
    for f in example_files() {
        let text = std::fs::read_to_string(&f).expect("read");
        assert!(
            text.starts_with("# What a reviewer learns: "),
            "{}: first line must say what it teaches",
            f.display()
        );
        let stem = f.file_stem().and_then(|s| s.to_str()).expect("stem");
        let d = custom::load(&f).expect("load").desc;
        assert_eq!(
            d.name,
            format!("example-{}", stem.replace('_', "-")),
            "{}",
            f.display()
        );
    }
}

#[test]
fn every_example_predicts_on_both_kernels_under_every_policy() {
    for f in example_files() {
        let e = custom::load(&f).unwrap_or_else(|e| panic!("{e}"));
        for k in ["6.1", "6.12"] {
            for p in Policy::ALL {
                let r = predict(&resolved(k), &e, p, e.fixed_pages().expect("pages"));
                assert_eq!(r.ops.len(), OpKey::ALL.len());
                assert_eq!(r.ops[&OpKey::Export], "ok", "{} {k} {p}", f.display());
                assert!(
                    !r.ops.values().any(|v| v == "BUG"),
                    "{} {k} {p}: {:?}",
                    f.display(),
                    r.ops
                );
                if p == Policy::Off {
                    assert_eq!(r.ops[&OpKey::MmapShared], "ok", "{} {k}", f.display());
                }
            }
        }
    }
}

#[test]
fn examples_show_their_insert_function_in_vmflags() {
    let flags = |stem: &str, k: &str| {
        let e = custom::load(
            &Path::new(env!("CARGO_MANIFEST_DIR"))
                .join(format!("../../examples/exporters/{stem}.toml")),
        )
        .expect("load");
        predict(&resolved(k), &e, Policy::Off, e.desc.pages).ops[&OpKey::Vmflags].to_string()
    };
    for k in ["6.1", "6.12"] {
        assert_eq!(
            flags("remap_pfn_range", k),
            "rd wr sh mr mw me ms pf io de dd sd"
        );
        assert_eq!(
            flags("io_remap_pfn_range", k),
            "rd wr sh mr mw me ms pf io de dd sd"
        );
        assert_eq!(
            flags("vmf_insert_pfn", k),
            "rd wr sh mr mw me ms pf de dd sd"
        );
        assert_eq!(
            flags("vmf_insert_pfn_prot", k),
            "rd wr sh mr mw me ms pf io de dd sd"
        );
        assert_eq!(
            flags("vmf_insert_mixed", k),
            "rd wr sh mr mw me ms de dd sd mm"
        );
        assert_eq!(
            flags("vm_insert_page", k),
            "rd wr sh mr mw me ms de dd sd mm"
        );
        assert_eq!(flags("vm_insert_pages", k), "rd wr sh mr mw me ms de sd mm");
        assert_eq!(flags("vm_map_pages", k), "rd wr sh mr mw me ms de dd sd mm");
        assert_eq!(
            flags("remap_vmalloc_range", k),
            "rd wr sh mr mw me ms de dd sd mm"
        );
        assert_eq!(flags("fault_page", k), "rd wr sh mr mw me ms sd");
    }
}

#[test]
fn large_buffers_follow_the_allocator() {
    let run = |memory: &str, pages: u32, insert: &str| {
        let t = format!("name = \"big\"\npages = {pages}\ninsert = \"{insert}\"\nat = \"mmap\"\nmemory = \"{memory}\"\n");
        let e = custom::CustomExporter {
            desc: custom::parse(Path::new("big.toml"), &t).expect("parse"),
        };
        let r = predict(&resolved("6.12"), &e, Policy::Off, e.desc.pages);
        (
            r.ops[&OpKey::Export].to_string(),
            r.ops[&OpKey::MmapShared].to_string(),
        )
    };
    // A hugetlb buffer beyond 2 MiB spans several huge folios (one per 512 pages).
    assert_eq!(
        run("hugetlb", 600, "remap_pfn_range"),
        ("ok".to_owned(), "ok".to_owned())
    );
    // 6.12: a hugetlb head page carries PGTY_hugetlb, so validate_page_before_insert()
    // refuses it through page_has_type() (include/linux/page-flags.h).
    assert_eq!(
        run("hugetlb", 600, "vm_insert_page"),
        ("ok".to_owned(), "EINVAL".to_owned())
    );
    // One __GFP_COMP allocation above MAX_PAGE_ORDER (order 11 for 2000 pages) fails.
    assert_eq!(
        run("compound", 2000, "vm_insert_page"),
        ("ENOMEM".to_owned(), "skipped".to_owned())
    );
    assert_eq!(
        run("compound", 1024, "vm_insert_page"),
        ("ok".to_owned(), "ok".to_owned())
    );
}
