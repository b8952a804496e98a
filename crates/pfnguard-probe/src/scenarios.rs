//! Scenarios on the running kernel: each chosen interleaving of an observable scenario
//! ([`ScenarioPlan`]) driven step by step in real processes.
//!
//! Per interleaving, inside one time-bounded worker (the coordinator): one buffer is exported
//! from the exporter ([`Source::export`], as the ops do), one process is forked per `process`
//! actor, each keeping only its dma-buf fd (the exporter's device fds and the coordinator's
//! own copy of the dma-buf fd are closed, so that the buffer lives exactly as long as the
//! actors' fds and mappings, as in the model). Each actor waits on its command pipe; the
//! coordinator sends "go" to the actor whose step is next in the interleaving and reads the
//! step's value from the actor's result pipe before sending the next one. A `fork` step forks
//! the actor for real; the child announces itself on its own pipes (created by the coordinator
//! up front and held only by its ancestors until the fork) and is driven in the same way. An
//! `exit` step is `_exit(0)`; the coordinator waits on the actor's pidfd until the kernel has
//! finished the exit (mm torn down, files closed) before the next step.
//!
//! Values use the model's vocabulary: `ok`, errno names, and for `touch`/`read` the signal the
//! access raised (a SIGBUS/SIGSEGV handler resumes after the access, so the actor goes on as
//! the model's does). `skipped` where the model's step has nothing to act on (no mapping,
//! nothing in flight, an empty pipe, nothing registered). An O_DIRECT step is one synchronous
//! `pread`/`pwrite` of the page with O_DIRECT at the submit point, where the model's
//! `bio_iov_iter_get_pages` decides (EFAULT or a pinned page): the transfer completes within
//! the system call, so `odirect_complete` only retires it (`ok`, or `skipped` with none
//! submitted). A step that does not answer within the bound is `hang`, and the run is cut
//! there. Every process, fd and mapping of a run is gone before the next run.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pfnguard_report::scenarios::{
    InterleavingRun, PlanActorKind, ScenarioPlan, StepCell, StepValue, UserStep,
};
use rustix::event::{PollFd, PollFlags};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::mm::{Advice, MprotectFlags};
use rustix::pipe::PipeFlags;

use crate::errno;
use crate::exporter::Source;
use crate::sys::{self, Child, Mapping, UringStep};
use crate::worker;

/// Bytes an O_DIRECT or vmsplice step moves: one page.
const XFER: usize = 4096;

/// What a run needs from the probe.
#[derive(Debug, Clone)]
pub(crate) struct RunEnv {
    /// `sysconf(_SC_PAGESIZE)`.
    pub page: usize,
    /// Bound of one step.
    pub step_timeout: Duration,
    /// The O_DIRECT target, or why there is none.
    pub odirect: Result<PathBuf, String>,
}

/// Run every interleaving of `plan` on buffers from `source`.
pub(crate) fn run_plan(plan: &ScenarioPlan, source: &Source, env: &RunEnv) -> Vec<InterleavingRun> {
    plan.interleavings
        .iter()
        .map(|order| {
            let bound = env.step_timeout * (order.len() as u32 + 3);
            match worker::run(bound, |_| run_one(plan, order, source, env)) {
                Ok(r) => r,
                Err(e) => InterleavingRun {
                    order: plan.describe(order),
                    steps: Vec::new(),
                    cut: Some(format!("the run's worker failed: {e}")),
                    size: None,
                },
            }
        })
        .collect()
}

/// One actor's pipe ends: the command pipe's read end and the result pipe's write end.
struct Ends {
    cmd: OwnedFd,
    res: OwnedFd,
}

/// The coordinator's side of an actor.
struct Peer {
    cmd: OwnedFd,
    res: OwnedFd,
    buf: Vec<u8>,
    pidfd: Option<OwnedFd>,
    gone: bool,
}

/// Actors whose ancestor chain includes `a` (not `a` itself).
fn descendants(plan: &ScenarioPlan, a: usize) -> Vec<usize> {
    (0..plan.actors.len())
        .filter(|&d| {
            let mut p = plan.actors[d].parent;
            let mut hops = 0;
            while let Some(x) = p {
                if usize::from(x) == a {
                    return true;
                }
                hops += 1;
                if hops > plan.actors.len() {
                    break;
                }
                p = plan.actors.get(usize::from(x)).and_then(|y| y.parent);
            }
            false
        })
        .collect()
}

/// The coordinator: export, fork the processes, drive `order`, tear down.
fn run_one(plan: &ScenarioPlan, order: &[u16], source: &Source, env: &RunEnv) -> InterleavingRun {
    let mut run = InterleavingRun {
        order: plan.describe(order),
        steps: Vec::new(),
        cut: None,
        size: None,
    };
    // Orphaned actors (a child whose parent exited) are reparented here and reaped below.
    let _ = rustix::process::set_child_subreaper(Some(rustix::process::getpid()));
    let buf = match source.export(env.page) {
        Ok(b) => b,
        Err(e) => {
            run.cut = Some(format!("export: {e}"));
            return run;
        }
    };
    let len = buf.map_len(env.page);
    run.size = Some(buf.size);
    // Every actor's pipes, created before any fork.
    let mut actor_ends: BTreeMap<usize, Ends> = BTreeMap::new();
    let mut peers: BTreeMap<usize, Peer> = BTreeMap::new();
    for a in 0..plan.actors.len() {
        let pipes = rustix::pipe::pipe_with(PipeFlags::CLOEXEC)
            .and_then(|c| rustix::pipe::pipe_with(PipeFlags::CLOEXEC).map(|r| (c, r)));
        let ((cmd_rd, cmd_wr), (res_rd, res_wr)) = match pipes {
            Ok(p) => p,
            Err(e) => {
                run.cut = Some(format!("pipe2: {}", errno::errno(e)));
                return run;
            }
        };
        actor_ends.insert(
            a,
            Ends {
                cmd: cmd_rd,
                res: res_wr,
            },
        );
        peers.insert(
            a,
            Peer {
                cmd: cmd_wr,
                res: res_rd,
                buf: Vec::new(),
                pidfd: None,
                gone: false,
            },
        );
    }
    let dma_buf_fd = buf.fd.as_fd();
    let mut processes: Vec<Child> = Vec::new();
    for (a, actor) in plan.actors.iter().enumerate() {
        if actor.kind != PlanActorKind::Process {
            continue;
        }
        let mut keep = descendants(plan, a);
        keep.push(a);
        let forked = sys::fork(false, || {
            // Only this actor's pipes and its descendants' stay open here, and the dma-buf fd:
            // the coordinator's pipe ends, the exporter's device fds and the other actors'
            // pipes are closed in this process.
            let mine: BTreeMap<usize, Ends> = std::mem::take(&mut actor_ends)
                .into_iter()
                .filter(|(i, _)| keep.contains(i))
                .collect();
            std::mem::take(&mut peers);
            let fd = match rustix::io::dup(dma_buf_fd) {
                Ok(fd) => fd,
                Err(_) => return 3,
            };
            close_all_but(&mine, &fd);
            actor_main(plan, a, mine, Some(fd), Vec::new(), len, env)
        });
        match forked {
            Ok(c) => processes.push(c),
            Err(e) => {
                run.cut = Some(format!("fork of actor {}: {}", actor.name, errno::errno(e)));
                return run;
            }
        }
    }
    // The coordinator keeps none of the buffer's fds and none of the actors' pipe ends.
    drop(buf);
    drop(actor_ends);
    for (a, actor) in plan.actors.iter().enumerate() {
        if actor.kind == PlanActorKind::Process {
            if let Err(why) = hello(&mut peers, a, env.step_timeout) {
                run.cut = Some(format!("actor {}: {why}", actor.name));
                teardown(&mut peers, processes);
                return run;
            }
        }
    }
    let mut pc = vec![0usize; plan.actors.len()];
    for &a in order {
        let i = usize::from(a);
        let Some(actor) = plan.actors.get(i) else {
            run.cut = Some(format!("no actor {a}"));
            break;
        };
        let Some(step) = actor.steps.get(pc[i]) else {
            run.cut = Some(format!("actor {} has no step {}", actor.name, pc[i] + 1));
            break;
        };
        let name = |c: u16| {
            plan.actors
                .get(usize::from(c))
                .map(|x| x.name.clone())
                .unwrap_or_default()
        };
        let mut cell = StepCell {
            actor: actor.name.clone(),
            step: u16::try_from(pc[i] + 1).unwrap_or(u16::MAX),
            text: step.render(&name),
            value: StepValue::unavailable(),
            detail: None,
        };
        pc[i] += 1;
        let outcome = drive(&mut peers, i, step, env.step_timeout);
        let cut = match outcome {
            Ok((value, detail)) => {
                cell.value = value;
                cell.detail = detail;
                None
            }
            Err(Stop::Hang(why)) => {
                cell.value = StepValue::hang();
                cell.detail = Some(why.clone());
                Some(why)
            }
            Err(Stop::Died(why)) => {
                cell.detail = Some(why.clone());
                Some(why)
            }
        };
        // A child exists once its parent's fork succeeded: it announces itself.
        if let (UserStep::Fork { child }, "ok", None) = (step, cell.value.as_str(), &cut) {
            if let Err(why) = hello(&mut peers, usize::from(*child), env.step_timeout) {
                run.steps.push(cell);
                run.cut = Some(format!("child {}: {why}", name(*child)));
                break;
            }
        }
        run.steps.push(cell);
        if cut.is_some() {
            run.cut = cut;
            break;
        }
    }
    teardown(&mut peers, processes);
    run
}

/// Close every fd of this process but the kept pipe ends, the dma-buf fd and stdio.
fn close_all_but(mine: &BTreeMap<usize, Ends>, fd: &OwnedFd) {
    use std::os::fd::AsRawFd;
    let mut keep: Vec<i32> = vec![0, 1, 2, fd.as_raw_fd()];
    for e in mine.values() {
        keep.push(e.cmd.as_raw_fd());
        keep.push(e.res.as_raw_fd());
    }
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let open: Vec<i32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    for n in open {
        if !keep.contains(&n) {
            sys::close_raw(n);
        }
    }
}

/// Why a run stopped at a step.
enum Stop {
    /// The step did not answer within the bound.
    Hang(String),
    /// The actor died without an answer.
    Died(String),
}

/// Read one line from an actor's result pipe, waiting until `deadline`.
fn read_line(p: &mut Peer, deadline: Instant) -> Result<String, Stop> {
    loop {
        if let Some(n) = p.buf.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = p.buf.drain(..=n).collect();
            return Ok(String::from_utf8_lossy(&line[..n]).into_owned());
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Stop::Hang("no answer within the bound".into()));
        }
        let left = deadline - now;
        let ts = rustix::event::Timespec {
            tv_sec: left.as_secs().min(1) as i64,
            tv_nsec: if left.as_secs() >= 1 {
                0
            } else {
                left.subsec_nanos().into()
            },
        };
        let mut fds = [PollFd::new(&p.res, PollFlags::IN)];
        let _ = rustix::event::poll(&mut fds, Some(&ts));
        let mut chunk = [0u8; 512];
        match rustix::io::read(&p.res, &mut chunk) {
            Ok(0) => {
                p.gone = true;
                return Err(Stop::Died("the actor died without an answer".into()));
            }
            Ok(n) => p.buf.extend_from_slice(&chunk[..n]),
            Err(Errno::INTR) | Err(Errno::AGAIN) => {}
            Err(e) => return Err(Stop::Died(format!("read: {}", errno::errno(e)))),
        }
    }
}

/// An actor's first line, `hello PID`: its pidfd is opened.
fn hello(peers: &mut BTreeMap<usize, Peer>, a: usize, bound: Duration) -> Result<(), String> {
    let Some(p) = peers.get_mut(&a) else {
        return Err("no pipes".into());
    };
    rustix::fs::fcntl_setfl(&p.res, OFlags::NONBLOCK).map_err(errno::errno)?;
    let line = read_line(p, worker::deadline_after(bound)).map_err(|s| match s {
        Stop::Hang(w) | Stop::Died(w) => w,
    })?;
    let pid = line
        .strip_prefix("hello ")
        .and_then(|n| n.parse::<i32>().ok())
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| format!("unexpected first line {line:?}"))?;
    let fd = rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty())
        .map_err(|e| format!("pidfd_open: {}", errno::errno(e)))?;
    p.pidfd = Some(fd);
    Ok(())
}

/// Wait until the process behind `pidfd` has exited (the pidfd is readable).
fn wait_exit(pidfd: &OwnedFd, deadline: Instant) -> bool {
    loop {
        let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        let ts = rustix::event::Timespec {
            tv_sec: 0,
            tv_nsec: (deadline - now)
                .min(Duration::from_millis(100))
                .subsec_nanos()
                .into(),
        };
        if let Ok(n) = rustix::event::poll(&mut fds, Some(&ts)) {
            if n > 0 {
                return true;
            }
        }
    }
}

/// Let actor `a` run its next step; its value.
fn drive(
    peers: &mut BTreeMap<usize, Peer>,
    a: usize,
    step: &UserStep,
    bound: Duration,
) -> Result<(StepValue, Option<String>), Stop> {
    let Some(p) = peers.get_mut(&a) else {
        return Err(Stop::Died("no pipes".into()));
    };
    if p.gone || p.pidfd.is_none() {
        return Ok((
            StepValue::skipped(),
            Some("the actor exited or never started".into()),
        ));
    }
    if let Err(e) = rustix::io::write(&p.cmd, b"g") {
        p.gone = true;
        return Err(Stop::Died(format!("command pipe: {}", errno::errno(e))));
    }
    let deadline = worker::deadline_after(bound);
    if *step == UserStep::Exit {
        let exited = p.pidfd.as_ref().is_some_and(|fd| wait_exit(fd, deadline));
        if !exited {
            return Err(Stop::Hang(
                "the exit did not finish within the bound".into(),
            ));
        }
        p.gone = true;
        return Ok((StepValue::ok(), None));
    }
    let line = read_line(p, deadline)?;
    let (v, detail) = match line.split_once('\t') {
        Some((v, d)) => (v, Some(d.to_owned())),
        None => (line.as_str(), None),
    };
    let value = v
        .parse::<StepValue>()
        .map_err(|e| Stop::Died(format!("the actor answered {line:?}: {e}")))?;
    Ok((value, detail))
}

/// Kill what is left of the actors, wait for each to be gone, reap.
fn teardown(peers: &mut BTreeMap<usize, Peer>, processes: Vec<Child>) {
    let deadline = worker::deadline_after(Duration::from_secs(5));
    for p in peers.values() {
        if let Some(fd) = &p.pidfd {
            let _ = rustix::process::pidfd_send_signal(fd, rustix::process::Signal::KILL);
        }
    }
    for p in peers.values() {
        if let Some(fd) = &p.pidfd {
            wait_exit(fd, deadline);
        }
    }
    drop(processes);
    // Children of actors that exited before them were reparented to this subreaper.
    while let Ok(Some(_)) = rustix::process::wait(rustix::process::WaitOptions::NOHANG) {}
}

/// An actor's own state: what the model's `ActorState` holds, as real objects.
struct Actor<'a> {
    plan: &'a ScenarioPlan,
    me: usize,
    env: &'a RunEnv,
    len: usize,
    /// Pipe ends of this actor and of its descendants not forked yet.
    ends: BTreeMap<usize, Ends>,
    fd: Option<OwnedFd>,
    maps: Vec<Mapping>,
    /// O_DIRECT transfers submitted and not retired by `odirect_complete`.
    in_flight: usize,
    /// The vmsplice pipe (read end, write end) and the bytes it holds.
    pipe: Option<(OwnedFd, OwnedFd)>,
    pipe_bytes: usize,
    /// io_uring rings with registered buffers.
    rings: Vec<OwnedFd>,
    /// Children forked (killed with this actor only at the end of a run).
    children: Vec<Child>,
    /// KVM VMs with a memslot over a mapping (`kvm_map`), until `kvm_unmap`.
    vms: Vec<crate::kvm::KvmVm>,
}

/// The body of an actor process: announce, then run one step per "go" until the command pipe
/// closes.
fn actor_main(
    plan: &ScenarioPlan,
    me: usize,
    ends: BTreeMap<usize, Ends>,
    fd: Option<OwnedFd>,
    maps: Vec<Mapping>,
    len: usize,
    env: &RunEnv,
) -> i32 {
    let mut a = Actor {
        plan,
        me,
        env,
        len,
        ends,
        fd,
        maps,
        in_flight: 0,
        pipe: None,
        pipe_bytes: 0,
        rings: Vec::new(),
        children: Vec::new(),
        vms: Vec::new(),
    };
    if sys::catch_access_faults().is_err() {
        return 4;
    }
    let pid = rustix::process::getpid().as_raw_nonzero().get();
    if !a.answer(&format!("hello {pid}")) {
        return 5;
    }
    let mut pc = 0usize;
    loop {
        let mut go = [0u8; 1];
        let n = match a.ends.get(&me) {
            Some(e) => loop {
                match rustix::io::read(&e.cmd, &mut go) {
                    Err(Errno::INTR) => continue,
                    r => break r,
                }
            },
            None => return 6,
        };
        if !matches!(n, Ok(1)) {
            return 0;
        }
        let Some(step) = plan.actors[me].steps.get(pc).cloned() else {
            return 7;
        };
        pc += 1;
        if step == UserStep::Exit {
            sys::exit_now(0);
        }
        let (v, detail) = a.step(&step);
        let line = match detail {
            Some(d) => format!("{v}\t{}", d.replace(['\n', '\t'], " ")),
            None => v.to_string(),
        };
        if !a.answer(&line) {
            return 8;
        }
    }
}

type Answer = (StepValue, Option<String>);

fn value_of(e: Errno) -> StepValue {
    errno::errno(e)
        .parse()
        .unwrap_or_else(|_| StepValue::unavailable())
}

fn skipped(why: &str) -> Answer {
    (StepValue::skipped(), Some(why.into()))
}

const NO_MAP: &str = "the actor has no mapping of the buffer";

fn advice(name: &str) -> Option<Advice> {
    Some(match name {
        "dontneed" => Advice::LinuxDontNeed,
        "dontfork" => Advice::LinuxDontFork,
        "dofork" => Advice::LinuxDoFork,
        "dontdump" => Advice::LinuxDontDump,
        "dodump" => Advice::LinuxDoDump,
        "wipeonfork" => Advice::LinuxWipeOnFork,
        "populate_read" => Advice::LinuxPopulateRead,
        "populate_write" => Advice::LinuxPopulateWrite,
        _ => return None,
    })
}

fn prot(name: &str) -> Option<MprotectFlags> {
    Some(match name {
        "none" => MprotectFlags::empty(),
        "r" => MprotectFlags::READ,
        "rw" => MprotectFlags::READ | MprotectFlags::WRITE,
        _ => return None,
    })
}

impl Actor<'_> {
    fn answer(&self, line: &str) -> bool {
        let Some(e) = self.ends.get(&self.me) else {
            return false;
        };
        let msg = format!("{line}\n");
        let mut rest = msg.as_bytes();
        while !rest.is_empty() {
            match rustix::io::write(&e.res, rest) {
                Ok(n) => rest = &rest[n..],
                Err(Errno::INTR) => {}
                Err(_) => return false,
            }
        }
        true
    }

    fn page_addr(&self, page: u32) -> Option<usize> {
        let m = self.maps.last()?;
        Some(m.addr() + page as usize * self.env.page)
    }

    fn step(&mut self, step: &UserStep) -> Answer {
        let ok = |r: rustix::io::Result<()>| match r {
            Ok(()) => (StepValue::ok(), None),
            Err(e) => (value_of(e), None),
        };
        match *step {
            UserStep::Mmap { private } => {
                use std::os::fd::AsRawFd;
                let raw = self.fd.as_ref().map_or(-1, |f| f.as_raw_fd());
                match Mapping::of_raw_fd(raw, self.len, private) {
                    Ok(m) => {
                        self.maps.push(m);
                        (StepValue::ok(), None)
                    }
                    Err(e) => (value_of(e), None),
                }
            }
            UserStep::Access { page, write } => match self.page_addr(page) {
                None => skipped(NO_MAP),
                Some(addr) => match sys::access(addr, write) {
                    None => (StepValue::ok(), None),
                    Some(sig) => (
                        errno::signal_name(sig)
                            .parse()
                            .unwrap_or_else(|_| StepValue::unavailable()),
                        None,
                    ),
                },
            },
            UserStep::Munmap => match self.maps.pop() {
                None => skipped(NO_MAP),
                Some(m) => ok(m.unmap()),
            },
            UserStep::Close => match self.fd.take() {
                Some(fd) => {
                    drop(fd);
                    (StepValue::ok(), None)
                }
                None => (value_of(sys::close_unopened()), None),
            },
            UserStep::Fork { child } => self.fork(usize::from(child)),
            UserStep::Exit => (StepValue::unavailable(), Some("exit has no answer".into())),
            UserStep::Odirect { page, read } => match self.page_addr(page) {
                None => skipped(NO_MAP),
                Some(addr) => self.odirect(addr, read),
            },
            UserStep::OdirectComplete => {
                if self.in_flight == 0 {
                    return skipped("no O_DIRECT transfer in flight");
                }
                self.in_flight -= 1;
                (
                    StepValue::ok(),
                    Some("the transfer completed within its system call at submit".into()),
                )
            }
            UserStep::Vmsplice { page } => match self.page_addr(page) {
                None => skipped(NO_MAP),
                Some(addr) => self.vmsplice(addr),
            },
            UserStep::PipeRead => {
                if self.pipe_bytes == 0 {
                    return skipped("the pipe is empty");
                }
                let Some((rd, _)) = &self.pipe else {
                    return skipped("the pipe is empty");
                };
                let mut scratch = vec![0u8; XFER];
                while self.pipe_bytes > 0 {
                    match rustix::io::read(rd, &mut scratch) {
                        Ok(0) => break,
                        Ok(k) => self.pipe_bytes = self.pipe_bytes.saturating_sub(k),
                        Err(Errno::INTR) => {}
                        Err(e) => return (value_of(e), None),
                    }
                }
                (StepValue::ok(), None)
            }
            UserStep::IoUringRegister => {
                let Some(m) = self.maps.last() else {
                    return skipped(NO_MAP);
                };
                match sys::io_uring_register_range(m.addr(), m.len()) {
                    Ok(ring) => {
                        self.rings.push(ring);
                        (StepValue::ok(), None)
                    }
                    Err((UringStep::Setup, e)) => (
                        StepValue::unavailable(),
                        Some(format!("io_uring_setup: {}", errno::errno(e))),
                    ),
                    Err((UringStep::Register, e)) => (value_of(e), None),
                }
            }
            UserStep::IoUringUnregister => {
                if self.rings.is_empty() {
                    return skipped("no buffers registered");
                }
                let mut out = (StepValue::ok(), None);
                for ring in std::mem::take(&mut self.rings) {
                    if let Err(e) = sys::io_uring_unregister(ring.as_fd()) {
                        out = (value_of(e), None);
                    }
                }
                out
            }
            UserStep::Madvise(name) => match (self.maps.last_mut(), advice(name)) {
                (None, _) => skipped(NO_MAP),
                (_, None) => (StepValue::unavailable(), Some(format!("advice {name}"))),
                (Some(m), Some(adv)) => ok(m.madvise(adv)),
            },
            UserStep::MremapGrow => {
                let page = self.env.page;
                match self.maps.last_mut() {
                    None => skipped(NO_MAP),
                    Some(m) => {
                        let len = m.len();
                        ok(m.mremap(len + page).map(|_| ()))
                    }
                }
            }
            UserStep::Mprotect(name) => match (self.maps.last_mut(), prot(name)) {
                (None, _) => skipped(NO_MAP),
                (_, None) => (StepValue::unavailable(), Some(format!("protection {name}"))),
                (Some(m), Some(p)) => ok(m.mprotect(p)),
            },
            UserStep::Mlock => match self.maps.last_mut() {
                None => skipped(NO_MAP),
                Some(m) => ok(m.mlock()),
            },
            UserStep::Rss => match self.maps.last() {
                None => skipped(NO_MAP),
                Some(m) => match crate::ops::own_rss_kb(m.addr()) {
                    Ok(kb) => (StepValue::rss(kb > 0), None),
                    Err(e) => (StepValue::unavailable(), Some(e)),
                },
            },
            UserStep::KvmMap { page } => {
                let Some(m) = self.maps.last() else {
                    return skipped(NO_MAP);
                };
                let (out, vm) = crate::kvm::map_page(m, page);
                self.vms.extend(vm);
                match out.outcome {
                    pfnguard_report::Outcome::Ok => (StepValue::ok(), None),
                    pfnguard_report::Outcome::Errno(e) => (
                        e.as_str()
                            .parse()
                            .unwrap_or_else(|_| StepValue::unavailable()),
                        None,
                    ),
                    pfnguard_report::Outcome::Unavailable(why) => {
                        (StepValue::unavailable(), Some(why))
                    }
                    other => (StepValue::unavailable(), Some(other.to_string())),
                }
            }
            UserStep::KvmUnmap => {
                if self.vms.is_empty() {
                    return skipped("no memslot pfn to release");
                }
                self.vms.clear();
                (StepValue::ok(), None)
            }
        }
    }

    /// `fork()`: the child runs the actor `child` with a copy of this actor's fd and mappings
    /// (dup_mmap), nothing of what its kernel-side users hold (pipes, rings: the model's child
    /// starts without holds), and only its own and its descendants' pipe ends.
    fn fork(&mut self, child: usize) -> Answer {
        if !self.ends.contains_key(&child) {
            return skipped("the child was already forked");
        }
        let mut theirs = descendants(self.plan, child);
        theirs.push(child);
        let r = sys::fork(false, || {
            // The parent's children are not this process's to kill.
            std::mem::take(&mut self.children)
                .into_iter()
                .for_each(std::mem::forget);
            let ends: BTreeMap<usize, Ends> = std::mem::take(&mut self.ends)
                .into_iter()
                .filter(|(i, _)| theirs.contains(i))
                .collect();
            self.pipe = None;
            self.rings.clear();
            self.vms.clear();
            let maps = std::mem::take(&mut self.maps);
            actor_main(
                self.plan,
                child,
                ends,
                self.fd.take(),
                maps,
                self.len,
                self.env,
            )
        });
        match r {
            Ok(c) => {
                self.children.push(c);
                // The child's pipe ends are the child's now.
                for t in theirs {
                    self.ends.remove(&t);
                }
                (StepValue::ok(), None)
            }
            Err(e) => (value_of(e), None),
        }
    }

    fn odirect(&mut self, addr: usize, read: bool) -> Answer {
        let path = match &self.env.odirect {
            Ok(p) => p.clone(),
            Err(why) => return (StepValue::unavailable(), Some(why.clone())),
        };
        let mode = if read { OFlags::RDONLY } else { OFlags::RDWR };
        let fd = match rustix::fs::open(
            &path,
            mode | OFlags::DIRECT | OFlags::CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(e) => {
                return (
                    StepValue::unavailable(),
                    Some(format!(
                        "open {} O_DIRECT: {}",
                        path.display(),
                        errno::errno(e)
                    )),
                )
            }
        };
        let r = if read {
            sys::pread_to(fd.as_fd(), addr, XFER, 0)
        } else {
            // What the write replaces is put back afterwards from a scratch buffer, so the
            // target ends as it was and the buffer is not written by the probe.
            let saved = match save_block(&path) {
                Ok(b) => b,
                Err(why) => return (StepValue::unavailable(), Some(why)),
            };
            let r = sys::pwrite_from(fd.as_fd(), addr, XFER, 0);
            if let Err(why) = restore_block(fd.as_fd(), &saved) {
                return (StepValue::unavailable(), Some(why));
            }
            r
        };
        match r {
            Ok(k) => {
                self.in_flight += 1;
                let d = (k != XFER).then(|| format!("{k} bytes"));
                (StepValue::ok(), d)
            }
            Err(e) => (value_of(e), None),
        }
    }

    fn vmsplice(&mut self, addr: usize) -> Answer {
        if self.pipe.is_none() {
            match rustix::pipe::pipe_with(PipeFlags::CLOEXEC) {
                Ok(p) => self.pipe = Some(p),
                Err(e) => {
                    return (
                        StepValue::unavailable(),
                        Some(format!("pipe2: {}", errno::errno(e))),
                    )
                }
            }
        }
        let Some((_, wr)) = &self.pipe else {
            return (StepValue::unavailable(), None);
        };
        match sys::vmsplice_at(wr.as_fd(), addr, XFER) {
            Ok(k) => {
                self.pipe_bytes += k;
                (StepValue::ok(), None)
            }
            Err(e) => (value_of(e), None),
        }
    }
}

/// The first page of `path`, read without O_DIRECT.
fn save_block(path: &Path) -> Result<Vec<u8>, String> {
    let what = |e: Errno| format!("reading {}: {}", path.display(), errno::errno(e));
    let fd =
        rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).map_err(what)?;
    let mut block = vec![0u8; XFER];
    let mut got = 0;
    while got < XFER {
        match rustix::io::pread(&fd, &mut block[got..], got as u64) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(Errno::INTR) => {}
            Err(e) => return Err(what(e)),
        }
    }
    if got < XFER {
        return Err(format!("{} is shorter than {XFER} bytes", path.display()));
    }
    Ok(block)
}

/// Write `saved` back to the start of the O_DIRECT fd from an aligned anonymous buffer.
fn restore_block(fd: std::os::fd::BorrowedFd<'_>, saved: &[u8]) -> Result<(), String> {
    let mut scratch =
        Mapping::anonymous(XFER).map_err(|e| format!("mmap scratch: {}", errno::errno(e)))?;
    scratch.write_bytes(0, saved);
    match sys::pwrite_from(fd, scratch.addr(), XFER, 0) {
        Ok(XFER) => Ok(()),
        Ok(k) => Err(format!("restoring the target wrote {k} bytes")),
        Err(e) => Err(format!("restoring the target: {}", errno::errno(e))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pfnguard_report::scenarios::PlanActor;
    use pfnguard_report::ExporterId;

    fn actor(
        name: &str,
        kind: PlanActorKind,
        parent: Option<u16>,
        steps: Vec<UserStep>,
    ) -> PlanActor {
        PlanActor {
            name: name.into(),
            kind,
            parent,
            steps,
        }
    }

    fn env() -> RunEnv {
        RunEnv {
            page: rustix::param::page_size(),
            step_timeout: Duration::from_secs(10),
            odirect: Err("no O_DIRECT target in this test".into()),
        }
    }

    /// A memfd (the control) driven through fork, a fault and munmap, in real processes.
    #[test]
    fn a_memfd_scenario_runs_in_real_processes() {
        let plan = ScenarioPlan {
            name: "t".into(),
            exporter: ExporterId::Memfd,
            actors: vec![
                actor(
                    "p",
                    PlanActorKind::Process,
                    None,
                    vec![
                        UserStep::Mmap { private: false },
                        UserStep::Access {
                            page: 0,
                            write: true,
                        },
                        UserStep::Fork { child: 2 },
                        UserStep::Mprotect("r"),
                        UserStep::Access {
                            page: 0,
                            write: true,
                        },
                        UserStep::Munmap,
                        UserStep::Access {
                            page: 0,
                            write: false,
                        },
                        UserStep::Exit,
                    ],
                ),
                actor(
                    "q",
                    PlanActorKind::Process,
                    None,
                    vec![
                        UserStep::Close,
                        UserStep::Close,
                        UserStep::Mmap { private: false },
                    ],
                ),
                actor(
                    "c",
                    PlanActorKind::Child,
                    Some(0),
                    vec![
                        UserStep::Access {
                            page: 0,
                            write: false,
                        },
                        UserStep::PipeRead,
                        UserStep::Exit,
                    ],
                ),
            ],
            total: 1,
            interleavings: vec![vec![0, 0, 0, 2, 0, 0, 1, 1, 1, 2, 0, 0, 0, 2]],
        };
        let runs = run_plan(&plan, &Source::Memfd, &env());
        assert_eq!(runs.len(), 1);
        let r = &runs[0];
        assert_eq!(r.cut, None, "{r:?}");
        let got: Vec<String> = r
            .steps
            .iter()
            .map(|c| format!("{}#{} {}={}", c.actor, c.step, c.text, c.value))
            .collect();
        assert_eq!(
            got,
            vec![
                "p#1 mmap=ok",
                "p#2 touch 0=ok",
                "p#3 fork c=ok",
                "c#1 read 0=ok",
                "p#4 mprotect r=ok",
                "p#5 touch 0=SIGSEGV",
                "q#1 close=ok",
                "q#2 close=EBADF",
                "q#3 mmap=EBADF",
                "c#2 pipe_read=skipped",
                "p#6 munmap=ok",
                "p#7 read 0=skipped",
                "p#8 exit=ok",
                "c#3 exit=ok",
            ]
        );
    }
}
