//! The kernel's WARNs in `/dev/kmsg` records: a pure parser, no I/O.
//!
//! **Records.** Each `read(2)` of `/dev/kmsg` returns one record as
//! `devkmsg_read()` formats it (kernel/printk/printk.c: `info_print_ext_header` then
//! `msg_print_ext_body`):
//!
//! ```text
//! PRIO,SEQ,USEC,FLAGS[,caller=T57];TEXT\n
//!  SUBSYSTEM=pci\n
//!  DEVICE=+pci:0000:00:01.0\n
//! ```
//!
//! `PRIO` is `facility << 3 | level`; the kernel's own messages have facility 0, lines written
//! to `/dev/kmsg` by userspace get facility 1 (`LOG_USER`, `devkmsg_write`) unless they name
//! another. `FLAGS` is `c` for a record continued by `pr_cont` and `-` otherwise; `caller=`
//! (`T<pid>` for a task, `C<cpu>` otherwise) is there with `CONFIG_PRINTK_CALLER`. In `TEXT`
//! every byte below `' '`, from 127 up, and `\` is escaped as `\xNN` (`msg_add_ext_text`), so
//! a record's text is one line; the optional continuation lines start with a space and hold
//! `KEY=value` pairs (`msg_add_dict_text`). [`parse_record`] reads one record, [`split_records`]
//! cuts a concatenation of records (a saved `cat /dev/kmsg`) into records.
//!
//! **Warnings.** A `WARN()` prints several records, from several functions:
//!
//! 1. `------------[ cut here ]------------` (`CUT_HERE`, include/asm-generic/bug.h), from
//!    lib/bug.c:`__report_bug` (`pr_info`, 7.3) or kernel/panic.c:`__warn_printk` (`pr_warn`,
//!    when the message is printed before the trap, as on x86 up to 6.18);
//! 2. the message of `WARN(cond, fmt, ...)`/`WARN_ONCE`, if any: lib/bug.c:`__warn_printf`
//!    (7.3, the format and arguments travel in the bug entry and registers) or
//!    kernel/panic.c:`__warn_printk`. A `WARN_ON()` has none (with
//!    `CONFIG_DEBUG_BUGVERBOSE_DETAILED` it is the condition's text);
//! 3. the WARNING line, kernel/panic.c:`__warn`, in 7.3:
//!
//!    ```c
//!    if (file) {
//!        pr_warn("WARNING: %s:%d at %pS, CPU#%d: %s/%d\n",
//!            file, line, caller,
//!            raw_smp_processor_id(), current->comm, current->pid);
//!    } else {
//!        pr_warn("WARNING: at %pS, CPU#%d: %s/%d\n",
//!            caller,
//!            raw_smp_processor_id(), current->comm, current->pid);
//!    }
//!    ```
//!
//!    so `WARNING: drivers/dma-buf/dma-buf.c:330 at dma_buf_mmap_check+0x52/0x80, CPU#0:
//!    pfnguard/57`; kernels before that print `WARNING: CPU: %d PID: %d at %s:%d %pS`
//!    (`WARNING: CPU: 0 PID: 57 at drivers/dma-buf/dma-buf.c:330
//!    dma_buf_mmap_check+0x52/0x80`), or `WARNING: CPU: %d PID: %d at %pS` without a file;
//! 4. then `Modules linked in:`, the registers, the call trace and `---[ end trace ... ]---`,
//!    which the parser does not need.
//!
//! [`warnings`] turns a sequence of records into [`KernelWarning`]s: each WARNING line of
//! the kernel (facility 0) that [`parse_warning_line`] reads, with the message records
//! between the `cut here` before it and itself. When the records carry `caller=`, only the
//! warning task's records count as its message (another CPU's lines printed in between do
//! not). The site is `file:function` (`drivers/dma-buf/dma-buf.c:dma_buf_mmap_check`): the
//! path up to `:LINE`, and the symbol of `%pS` before `+0x`, without a compiler suffix such as
//! `.cold` or `.isra.0`; a WARNING without a file gives the function alone.
//!
//! Architectures whose `__warn` gets the message as `args` (`warn_slowpath_fmt`, without
//! `__WARN_FLAGS`) print it after the WARNING line; such a message is not captured, the site
//! is. Lines that are not a WARN site (lockdep's `WARNING: possible circular locking
//! dependency detected`, `kernel BUG at`) are not warnings here. Garbled or truncated records
//! are skipped; nothing here panics on any input.

/// The text of the `cut here` record (`CUT_HERE` without its newline).
pub const CUT_HERE: &str = "------------[ cut here ]------------";

/// Most message lines kept for one warning; a `cut here` followed by more lines than this
/// without a WARNING line is dropped (it was a `BUG()` or another report).
const MAX_MESSAGE_LINES: usize = 16;

/// One `/dev/kmsg` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Syslog facility: 0 for the kernel, 1 (`LOG_USER`) for lines written to `/dev/kmsg`.
    pub facility: u32,
    /// Log level, 0 (`KERN_EMERG`) to 7 (`KERN_DEBUG`).
    pub level: u8,
    /// Sequence number.
    pub seq: u64,
    /// Timestamp, microseconds since boot.
    pub usec: u64,
    /// `caller=` of the header (`T57`, `C0`) with `CONFIG_PRINTK_CALLER`.
    pub caller: Option<String>,
    /// The message, `\xNN` escapes decoded (may hold newlines).
    pub text: String,
    /// The `KEY=value` continuation lines (`SUBSYSTEM`, `DEVICE`), decoded.
    pub dict: Vec<(String, String)>,
}

/// Decode the `\xNN` escapes of `msg_add_ext_text`; anything else stays as it is.
pub fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'x') {
            let hex = b
                .get(i + 2..i + 4)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parse one record as `devkmsg_read` returns it (`None`: not a record: no `;`, or a header
/// that is not `PRIO,SEQ,USEC,FLAGS[,...]`).
pub fn parse_record(raw: &str) -> Option<Record> {
    let (header, body) = raw.split_once(';')?;
    let mut fields = header.split(',');
    let prio: u32 = fields.next()?.trim().parse().ok()?;
    let seq: u64 = fields.next()?.parse().ok()?;
    let usec: u64 = fields.next()?.parse().ok()?;
    let _flags = fields.next()?;
    let caller = fields
        .find_map(|f| f.strip_prefix("caller="))
        .map(str::to_owned);
    let mut lines = body.split('\n');
    let text = unescape(lines.next().unwrap_or(""));
    let dict = lines
        .filter_map(|l| l.strip_prefix(' '))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (unescape(k), unescape(v)))
        .collect();
    Some(Record {
        facility: prio >> 3,
        level: (prio & 7) as u8,
        seq,
        usec,
        caller,
        text,
        dict,
    })
}

/// Cut a concatenation of records (each `HEADER;TEXT\n` plus its ` KEY=value\n` lines) into
/// records. Every line that does not start with a space starts a record.
pub fn split_records(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    let mut pos = 0;
    for line in text.split_inclusive('\n') {
        if !line.starts_with(' ') {
            if let Some(s) = start {
                out.push(&text[s..pos]);
            }
            start = Some(pos);
        }
        pos += line.len();
    }
    if let Some(s) = start {
        out.push(&text[s..]);
    }
    out
}

/// What a WARNING line of kernel/panic.c:`__warn` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WarnLine {
    /// The source file of the WARN (`drivers/dma-buf/dma-buf.c`), when the kernel has it.
    pub file: Option<String>,
    /// Its line.
    pub line: Option<u32>,
    /// The function the WARN is in (`dma_buf_mmap_check`), from the `%pS` symbol.
    pub function: String,
    /// The module of the symbol (`vgem` for `vgem_mmap+0x1/0x2 [vgem]`).
    pub module: Option<String>,
    /// The CPU.
    pub cpu: Option<u32>,
    /// The task's pid.
    pub pid: Option<u32>,
    /// The task's `comm` (7.3 format only).
    pub comm: Option<String>,
}

impl WarnLine {
    /// `file:function`, or the function alone when the WARNING names no file.
    pub fn site(&self) -> String {
        match &self.file {
            Some(f) => format!("{f}:{}", self.function),
            None => self.function.clone(),
        }
    }
}

/// The function and module of a `%pS` symbol: `dma_buf_mmap_check+0x52/0x80`,
/// `vgem_mmap+0x10/0x40 [vgem]`, `foo.cold+0x5/0x9`, `0xffffffffc0a01234` (unresolved).
fn parse_symbol(s: &str) -> Option<(String, Option<String>)> {
    let s = s.trim();
    let (sym, rest) = s.split_once(char::is_whitespace).unwrap_or((s, ""));
    let sym = sym.strip_suffix("()").unwrap_or(sym);
    let name = sym.split('+').next().unwrap_or(sym);
    // C identifiers have no dots: `.cold`, `.isra.0`, `.constprop.0` are compiler clones.
    let name = if name.starts_with("0x") {
        name
    } else {
        name.split('.').next().unwrap_or(name)
    };
    if name.is_empty() {
        return None;
    }
    let module = rest
        .trim()
        .strip_prefix('[')
        .and_then(|m| m.split(']').next())
        .map(|m| m.split_whitespace().next().unwrap_or(m))
        .filter(|m| !m.is_empty())
        .map(str::to_owned);
    Some((name.to_owned(), module))
}

/// `FILE:LINE` (the last `:` separates them).
fn parse_location(s: &str) -> Option<(String, u32)> {
    let (file, line) = s.rsplit_once(':')?;
    let line = line.parse().ok()?;
    (!file.is_empty() && !file.contains(char::is_whitespace)).then(|| (file.to_owned(), line))
}

/// Read the WARNING line of kernel/panic.c:`__warn` in any of its formats:
///
/// - 7.3 (and 6.19 on): `WARNING: FILE:LINE at SYM, CPU#N: COMM/PID` or
///   `WARNING: at SYM, CPU#N: COMM/PID`;
/// - before: `WARNING: CPU: N PID: PID at FILE:LINE SYM` or `WARNING: CPU: N PID: PID at SYM`;
/// - long before (3.x): `WARNING: at FILE:LINE SYM()`.
///
/// `None` for any other line, lockdep's `WARNING: possible ...` included.
pub fn parse_warning_line(text: &str) -> Option<WarnLine> {
    let rest = text.trim_end().strip_prefix("WARNING: ")?;
    // 7.3: the task part starts at the first ", CPU#" (neither paths nor symbols hold one;
    // a comm could, but it comes after).
    if let Some((head, task)) = rest.split_once(", CPU#") {
        let (loc, sym) = match head.strip_prefix("at ") {
            Some(sym) => (None, sym),
            None => {
                let (loc, sym) = head.split_once(" at ")?;
                (Some(parse_location(loc)?), sym)
            }
        };
        let (function, module) = parse_symbol(sym)?;
        let (cpu, who) = task.split_once(": ").unwrap_or((task, ""));
        let (comm, pid) = match who.rsplit_once('/') {
            Some((c, p)) => (Some(c.to_owned()), p.parse().ok()),
            None => (None, None),
        };
        let (file, line) = loc.map_or((None, None), |(f, l)| (Some(f), Some(l)));
        return Some(WarnLine {
            file,
            line,
            function,
            module,
            cpu: cpu.parse().ok(),
            pid,
            comm,
        });
    }
    let (cpu, pid, at) = match rest.strip_prefix("CPU: ") {
        Some(r) => {
            let (cpu, r) = r.split_once(" PID: ")?;
            let (pid, at) = r.split_once(" at ")?;
            (cpu.parse().ok(), pid.parse().ok(), at)
        }
        None => (None, None, rest.strip_prefix("at ")?),
    };
    let (first, after) = at.split_once(' ').unwrap_or((at, ""));
    let (file, line, sym) = match parse_location(first) {
        Some((f, l)) if !after.trim().is_empty() => (Some(f), Some(l), after),
        _ => (None, None, at),
    };
    let (function, module) = parse_symbol(sym)?;
    Some(WarnLine {
        file,
        line,
        function,
        module,
        cpu,
        pid,
        comm: None,
    })
}

/// A WARN the kernel logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelWarning {
    /// `file:function` of the WARN site ([`WarnLine::site`]).
    pub site: String,
    /// The WARNING line, read.
    pub at: WarnLine,
    /// The raw lines: the message line(s) printed after `cut here`, then the WARNING line.
    pub lines: Vec<String>,
}

/// A `cut here` seen and the message lines after it.
struct Pending {
    caller: Option<String>,
    message: Vec<String>,
}

/// Whether two records come from the same task or CPU, as far as the headers tell.
fn same_caller(a: &Option<String>, b: &Option<String>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    }
}

/// The kernel's WARNs in a sequence of `/dev/kmsg` records, in log order. Records that do
/// not parse and records written by userspace (facility other than 0) are ignored.
pub fn warnings<'a>(records: impl IntoIterator<Item = &'a str>) -> Vec<KernelWarning> {
    let mut out = Vec::new();
    let mut pending: Option<Pending> = None;
    for raw in records {
        let Some(rec) = parse_record(raw) else {
            continue;
        };
        if rec.facility != 0 {
            continue;
        }
        let text = rec.text.trim_end_matches(['\n', '\r']);
        if text.trim() == CUT_HERE {
            pending = Some(Pending {
                caller: rec.caller,
                message: Vec::new(),
            });
            continue;
        }
        let mine = pending
            .as_ref()
            .is_some_and(|p| same_caller(&p.caller, &rec.caller));
        if let Some(at) = parse_warning_line(text) {
            let mut lines = if mine {
                pending.take().map(|p| p.message).unwrap_or_default()
            } else {
                Vec::new()
            };
            lines.push(text.to_owned());
            out.push(KernelWarning {
                site: at.site(),
                at,
                lines,
            });
            continue;
        }
        if !mine {
            continue;
        }
        if text.starts_with("kernel BUG at ") {
            pending = None;
            continue;
        }
        if let Some(p) = pending.as_mut() {
            p.message.extend(text.split('\n').map(str::to_owned));
            if p.message.len() > MAX_MESSAGE_LINES {
                pending = None;
            }
        }
    }
    out
}

/// The distinct sites of `warnings`, in order of first appearance.
pub fn sites(warnings: &[KernelWarning]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for w in warnings {
        if !out.contains(&w.site) {
            out.push(w.site.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 7.3 on x86-64 with `CONFIG_PRINTK_CALLER`: an unrelated line containing `WARNING`, the
    /// probe's marker, a WARN_ONCE with message (dma-buf mmap check, another CPU's line
    /// interleaved), device records with continuation lines, a WARN_ON_ONCE without message,
    /// a WARN in a module, garbage and a truncated record.
    const K73: &str = include_str!("../tests/kmsg/7.3-x86_64.kmsg");
    /// 6.1 on x86-64 (the `WARNING: CPU: N PID: N at` format), no caller ids.
    const K61: &str = include_str!("../tests/kmsg/6.1-x86_64.kmsg");

    #[test]
    fn record_header_text_and_dict() {
        let r = parse_record(
            "6,193,311362,-,caller=T1;acpi PNP0A08:00: _OSC: OS supports [ExtendedConfig]\n \
             SUBSYSTEM=acpi\n DEVICE=+acpi:PNP0A08:00\n",
        )
        .unwrap();
        assert_eq!((r.facility, r.level, r.seq, r.usec), (0, 6, 193, 311362));
        assert_eq!(r.caller.as_deref(), Some("T1"));
        assert_eq!(
            r.text,
            "acpi PNP0A08:00: _OSC: OS supports [ExtendedConfig]"
        );
        assert_eq!(
            r.dict,
            vec![
                ("SUBSYSTEM".to_owned(), "acpi".to_owned()),
                ("DEVICE".to_owned(), "+acpi:PNP0A08:00".to_owned())
            ]
        );
        let user = parse_record("12,400,5000,-;pfnguard: vgem mmap_shared\n").unwrap();
        assert_eq!((user.facility, user.level), (1, 4));
        assert_eq!(parse_record("garbage"), None);
        assert_eq!(parse_record("x,1,2,-;text"), None);
        assert_eq!(parse_record("4,1;"), None);
        assert_eq!(
            parse_record("4,1,2,-;a\\x0ab\\x5cc\\xZZ\\x4").unwrap().text,
            "a\nb\\c\\xZZ\\x4"
        );
    }

    #[test]
    fn split_concatenated_records() {
        let recs = split_records(K73);
        assert!(recs.iter().all(|r| !r.starts_with(' ')));
        let with_dict = recs
            .iter()
            .filter_map(|r| parse_record(r))
            .find(|r| r.text.starts_with("vgem vgem: "))
            .unwrap();
        assert_eq!(with_dict.dict.len(), 2);
        assert_eq!(split_records(""), Vec::<&str>::new());
        assert_eq!(split_records(" only a continuation\n"), Vec::<&str>::new());
    }

    #[test]
    fn warning_lines_of_every_format() {
        let w = parse_warning_line(
            "WARNING: drivers/dma-buf/dma-buf.c:330 at dma_buf_mmap_check+0x52/0x80, CPU#1: \
             pfn guard/x/57",
        )
        .unwrap();
        assert_eq!(w.site(), "drivers/dma-buf/dma-buf.c:dma_buf_mmap_check");
        assert_eq!((w.line, w.cpu, w.pid), (Some(330), Some(1), Some(57)));
        assert_eq!(w.comm.as_deref(), Some("pfn guard/x"));
        let w = parse_warning_line("WARNING: at insert_page.cold+0x9/0x20, CPU#0: pfnguard/58")
            .unwrap();
        assert_eq!((w.site(), w.file), ("insert_page".to_owned(), None));
        let w = parse_warning_line(
            "WARNING: CPU: 0 PID: 57 at drivers/dma-buf/dma-buf.c:330 \
             dma_buf_mmap_check+0x52/0x80",
        )
        .unwrap();
        assert_eq!(w.site(), "drivers/dma-buf/dma-buf.c:dma_buf_mmap_check");
        assert_eq!((w.cpu, w.pid, w.comm), (Some(0), Some(57), None));
        let w = parse_warning_line(
            "WARNING: CPU: 3 PID: 9 at drivers/gpu/drm/vgem/vgem_drv.c:88 \
             vgem_mmap+0x10/0x40 [vgem]",
        )
        .unwrap();
        assert_eq!(w.site(), "drivers/gpu/drm/vgem/vgem_drv.c:vgem_mmap");
        assert_eq!(w.module.as_deref(), Some("vgem"));
        let w = parse_warning_line("WARNING: CPU: 0 PID: 1 at 0xffffffffc0a01234").unwrap();
        assert_eq!(w.site(), "0xffffffffc0a01234");
        let w = parse_warning_line("WARNING: at mm/memory.c:1234 insert_page+0x1/0x2()").unwrap();
        assert_eq!(w.site(), "mm/memory.c:insert_page");
        for not in [
            "WARNING: possible circular locking dependency detected",
            "Speculative Return Stack Overflow: WARNING: See https://kernel.org/",
            "WARNING: ",
            "WARNING: CPU: 0 PID: 1",
            "WARNING: x:1 at , CPU#0: a/1",
            "WARNING: :1 at f+0x1/0x2, CPU#0: a/1",
        ] {
            assert_eq!(parse_warning_line(not), None, "{not}");
        }
    }

    #[test]
    fn warnings_of_a_7_3_log() {
        let ws = warnings(split_records(K73));
        let found: Vec<&str> = ws.iter().map(|w| w.site.as_str()).collect();
        assert_eq!(
            found,
            [
                "drivers/dma-buf/dma-buf.c:dma_buf_mmap_check",
                "mm/memory.c:vm_insert_pages",
                "drivers/media/common/videobuf2/videobuf2-core.c:vb2_buffer_done",
                "mm/memory.c:vm_pfnmap_insert_refused",
            ]
        );
        assert_eq!(
            ws[0].lines,
            [
                "dma-buf: exporter vgem set up a mapping without VM_PFNMAP or with VM_MIXEDMAP \
                 (read|write|shared|mayread|maywrite|mayshare|dontexpand|mixedmap)",
                "WARNING: drivers/dma-buf/dma-buf.c:328 at dma_buf_mmap_check+0x52/0x80, \
                 CPU#1: pfnguard/57",
            ],
            "another CPU's record between cut here and WARNING is not the message"
        );
        assert_eq!(
            (ws[0].at.line, ws[0].at.pid, ws[0].at.comm.as_deref()),
            (Some(328), Some(57), Some("pfnguard"))
        );
        assert_eq!(
            ws[1].lines,
            ["WARNING: mm/memory.c:2644 at vm_insert_pages+0x1a1/0x1c0, CPU#0: pfnguard/58"],
            "a VM_WARN_ON_ONCE has no message"
        );
        assert_eq!(ws[2].at.module.as_deref(), Some("videobuf2_common"));
        assert_eq!(ws[2].at.comm.as_deref(), Some("vivid-000-vid-c"));
        assert_eq!(ws[3].lines.len(), 2);
        assert!(ws[3].lines[0].starts_with("struct page inserted into a VM_PFNMAP"));
        let mut twice = ws.clone();
        twice.extend_from_slice(&ws);
        assert_eq!(sites(&twice), found);
    }

    #[test]
    fn warnings_of_a_6_1_log() {
        let ws = warnings(split_records(K61));
        assert_eq!(ws.len(), 2);
        assert_eq!(ws[0].site, "drivers/dma-buf/dma-buf.c:dma_buf_mmap_check");
        assert_eq!(
            ws[0].lines,
            [
                "dma-buf: exporter vgem set up a mapping without VM_PFNMAP or with VM_MIXEDMAP \
                 (read|write|shared|mayread|maywrite|mayshare|dontexpand|mixedmap)",
                "WARNING: CPU: 0 PID: 57 at drivers/dma-buf/dma-buf.c:330 \
                 dma_buf_mmap_check+0x52/0x80",
            ]
        );
        // A BUG after a cut here is no warning, and its lines are no later warning's message.
        assert_eq!(ws[1].site, "mm/gup.c:try_grab_folio");
        assert_eq!(ws[1].lines.len(), 1);
    }

    #[test]
    fn forged_and_partial_logs() {
        // A userspace line that looks like a WARNING is not one.
        let forged = "12,1,1,-;WARNING: CPU: 0 PID: 1 at mm/memory.c:1 insert_page+0x1/0x2\n";
        assert!(warnings([forged]).is_empty());
        // A WARNING whose cut here was lost still counts, with the WARNING line alone.
        let alone = "4,2,2,-;WARNING: CPU: 0 PID: 1 at mm/memory.c:1 insert_page+0x1/0x2\n";
        assert_eq!(warnings([alone])[0].lines.len(), 1);
        // A cut here followed by a flood never attaches the flood to a later WARNING.
        let mut recs = vec![format!("6,1,1,-;{CUT_HERE}\n")];
        recs.extend((0..40).map(|i| format!("6,{i},1,-;line {i}\n")));
        recs.push(alone.to_owned());
        let ws = warnings(recs.iter().map(String::as_str));
        assert_eq!(ws.len(), 1);
        assert_eq!(ws[0].lines.len(), 1);
        // A message with a newline inside is one record, the newline escaped: two lines.
        let two = [
            format!("6,1,1,-,caller=T5;{CUT_HERE}\n"),
            "4,2,1,-,caller=T5;first line\\x0asecond line\n".to_owned(),
            "4,3,1,-,caller=T5;WARNING: at f+0x1/0x2, CPU#0: a/5\n".to_owned(),
        ];
        let ws = warnings(two.iter().map(String::as_str));
        assert_eq!(
            ws[0].lines,
            [
                "first line",
                "second line",
                "WARNING: at f+0x1/0x2, CPU#0: a/5"
            ]
        );
        assert_eq!(ws[0].site, "f");
    }

    #[test]
    fn no_input_panics() {
        let inputs = [
            "",
            ";",
            ",,,;",
            "4,,,;WARNING: ",
            "99999999999999999999,1,1,-;x",
            "4,1,1,-;\\x",
            "4,1,1,-;\\xf",
            "4,1,1,-;\\xff\\xfe\\x00",
            "4,1,1,-;WARNING: :",
            "4,1,1,-;WARNING: a:b at , CPU#",
            "4,1,1,-;WARNING: at , CPU#: /",
            "4,1,1,-;WARNING: CPU:  PID:  at ",
            "4,1,1,-;WARNING: CPU: x PID: y at z",
            "4,1,1,-;WARNING: at +0x1/0x2",
            "4,1,1,-;WARNING: at .cold+0x1",
            "4,1,1,-;WARNING: at f [",
            "4,1,1,-;WARNING: at f []",
            "4,1,1,-,caller=;x\n =\n \n",
            "\u{fffd}\u{fffd};\u{fffd}",
        ];
        for i in inputs {
            let _ = parse_record(i);
            let _ = warnings([i]);
            let _ = split_records(i);
            if let Some((_, t)) = i.split_once(';') {
                let _ = parse_warning_line(t);
            }
        }
        // Every prefix of the fixtures, cut anywhere (at char boundaries).
        for text in [K73, K61] {
            for (n, _) in text.char_indices().step_by(7) {
                let _ = warnings(split_records(&text[..n]));
            }
        }
    }
}
