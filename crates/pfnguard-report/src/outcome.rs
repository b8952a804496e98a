//! The value of one cell: what the kernel (or the model of it) did when an op ran.
//!
//! [`Outcome`] is the one type the model, the probe and `check` use. Its [`Display`] and
//! [`FromStr`] give the strings of the JSON documents (`ok`, `EFAULT`, `SIGBUS`, `BUG`,
//! `timeout`, `skipped`, `unavailable: REASON`, `ok:cow`, `counted`, `rd wr sh mr mw me ms pf`),
//! so a report written by one side is read by the other without loss.

use std::fmt;
use std::str::FromStr;

use crate::OpKey;

/// Whether `name` is `prefix` followed by at least one capital or digit, as the kernel's
/// symbolic errno and signal names are.
fn is_symbol(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix).is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    })
}

/// An errno name as userspace sees it: `EFAULT`, `EOPNOTSUPP`, or `errno N` for a value
/// without a name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ErrnoName(String);

impl ErrnoName {
    /// The name, checked: `E` followed by capitals and digits, or `errno N`.
    pub fn new(name: &str) -> Result<Self, BadOutcome> {
        let named = is_symbol(name, "E");
        let numbered = name
            .strip_prefix("errno ")
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        if named || numbered {
            Ok(Self(name.to_owned()))
        } else {
            Err(BadOutcome(name.to_owned()))
        }
    }
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A signal name: `SIGBUS`, `SIGSEGV`, ...
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SignalName(String);

impl SignalName {
    /// `SIGBUS`: VM_FAULT_SIGBUS, or an access beyond the object.
    pub fn bus() -> Self {
        Self("SIGBUS".into())
    }
    /// `SIGSEGV`: no VMA, access not permitted, VM_FAULT_SIGSEGV.
    pub fn segv() -> Self {
        Self("SIGSEGV".into())
    }
    /// The name, checked: `SIG` followed by capitals and digits.
    pub fn new(name: &str) -> Result<Self, BadOutcome> {
        if is_symbol(name, "SIG") {
            Ok(Self(name.to_owned()))
        } else {
            Err(BadOutcome(name.to_owned()))
        }
    }
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// How a page read again after `MADV_DONTNEED` ended (`ok:refault-*`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Refault {
    /// The page faulted back in.
    Ok,
    /// The reader got a signal (`ok:refault-sigbus`).
    Signal(SignalName),
    /// The reader never returned (`ok:refault-timeout`).
    Timeout,
    /// The kernel oopsed on the refault (`ok:refault-bug`, model only).
    Bug,
}

/// What a successful op did, where success alone hides the difference that matters.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Effect {
    /// `mmap_private`: the write went to a private anonymous copy (`ok:cow`).
    Cow,
    /// `mmap_private`: the write reached the buffer itself (`ok:shared`).
    Shared,
    /// `mlock`: VmFlags shows `lo` (`ok:locked`).
    Locked,
    /// `mlock`: it succeeded but the VMA is not locked (`ok:not-locked`, VM_SPECIAL).
    NotLocked,
    /// `madv_dontneed`: what reading the page again did.
    Refault(Refault),
}

/// Smaps `Rss:` of the mapping after every page was touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rss {
    /// `Rss: 0 kB`.
    Zero,
    /// Some pages counted.
    Counted,
}

/// The `/proc/self/pagemap` entry of page 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pagemap {
    /// PM_PRESENT set.
    Present,
    /// No entry (a hole: not present, not swapped).
    Hole,
}

/// What a reading op observed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Observation {
    /// The smaps `VmFlags:` mnemonics, in kernel order.
    VmFlags(Vec<String>),
    /// Smaps `Rss:`.
    Rss(Rss),
    /// The pagemap entry.
    Pagemap(Pagemap),
}

/// The value of one cell.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Outcome {
    /// The op succeeded (`ok`).
    Ok,
    /// The op succeeded, with the effect that tells kernels apart (`ok:<effect>`).
    Effect(Effect),
    /// A reading op's result (`vmflags`, `rss`, `pagemap`).
    Observed(Observation),
    /// The syscall failed with this errno.
    Errno(ErrnoName),
    /// The task got this signal.
    Signal(SignalName),
    /// A kernel `BUG_ON` fired (model only; a real kernel oopses).
    Bug,
    /// The op did not return within its time bound (the model: a path that never returns).
    Timeout,
    /// The op did not run because a step it needs failed: that step (`skipped`). A value read
    /// from JSON names no step until [`crate::ExporterReport::resolve_skips`] derives it from the
    /// row by the skip rule.
    Skipped(Option<OpKey>),
    /// The cell could not be measured on this system, and why (`unavailable: REASON`).
    Unavailable(String),
}

/// A value that is none of the strings [`Outcome`] reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not an op value (expected ok, ok:<effect>, an errno name such as EFAULT, a signal such as SIGBUS, BUG, timeout, skipped, unavailable: REASON, zero, counted, present, hole, or smaps VmFlags mnemonics)")]
pub struct BadOutcome(pub String);

const UNAVAILABLE_PREFIX: &str = "unavailable: ";

impl Outcome {
    /// `EFAULT` and friends from a known-good name.
    pub fn errno(name: &str) -> Self {
        match ErrnoName::new(name) {
            Ok(e) => Outcome::Errno(e),
            Err(_) => Outcome::Unavailable(format!("unknown errno {name}")),
        }
    }
    /// `unavailable: REASON`.
    pub fn unavailable(reason: impl fmt::Display) -> Self {
        Outcome::Unavailable(reason.to_string())
    }
    /// Whether the op ran and succeeded (with or without an effect or observation): the ops
    /// that need it may run.
    pub fn is_success(&self) -> bool {
        matches!(
            self,
            Outcome::Ok | Outcome::Effect(_) | Outcome::Observed(_)
        )
    }
    /// Whether the cell holds no measurement of the op: skipped or unavailable.
    pub fn is_measured(&self) -> bool {
        !matches!(self, Outcome::Skipped(_) | Outcome::Unavailable(_))
    }
    /// The outcome of a `madv_dontneed` whose `MADV_DONTNEED` succeeded, from the outcome of
    /// reading the page again; `None` when that reading failed for another reason (an errno of
    /// `fork`, say), which is then the op's outcome.
    pub fn refault(read: &Outcome) -> Option<Self> {
        let r = match read {
            Outcome::Ok => Refault::Ok,
            Outcome::Signal(s) => Refault::Signal(s.clone()),
            Outcome::Timeout => Refault::Timeout,
            Outcome::Bug => Refault::Bug,
            _ => return None,
        };
        Some(Outcome::Effect(Effect::Refault(r)))
    }
    /// Whether this value can be the outcome of `op`: an observation only of the op that makes
    /// it, an effect only of the op that has it.
    pub fn fits(&self, op: OpKey) -> bool {
        match self {
            Outcome::Observed(Observation::VmFlags(_)) => op == OpKey::Vmflags,
            Outcome::Observed(Observation::Rss(_)) => op == OpKey::Rss,
            Outcome::Observed(Observation::Pagemap(_)) => op == OpKey::Pagemap,
            Outcome::Effect(Effect::Cow | Effect::Shared) => op == OpKey::MmapPrivate,
            Outcome::Effect(Effect::Locked | Effect::NotLocked) => op == OpKey::Mlock,
            Outcome::Effect(Effect::Refault(_)) => op == OpKey::MadvDontneed,
            Outcome::Ok => !matches!(op, OpKey::Vmflags | OpKey::Rss | OpKey::Pagemap),
            Outcome::Skipped(Some(step)) => op.prerequisites().contains(step),
            Outcome::Skipped(None) => op.prerequisite().is_some(),
            _ => true,
        }
    }
    /// The value for people: like [`Display`], but a skipped cell names the step that failed.
    pub fn describe(&self) -> String {
        match self {
            Outcome::Skipped(Some(step)) => format!("skipped ({step} failed)"),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Effect::Cow => f.write_str("cow"),
            Effect::Shared => f.write_str("shared"),
            Effect::Locked => f.write_str("locked"),
            Effect::NotLocked => f.write_str("not-locked"),
            Effect::Refault(Refault::Ok) => f.write_str("refault-ok"),
            Effect::Refault(Refault::Timeout) => f.write_str("refault-timeout"),
            Effect::Refault(Refault::Bug) => f.write_str("refault-bug"),
            Effect::Refault(Refault::Signal(s)) => {
                write!(f, "refault-{}", s.as_str().to_ascii_lowercase())
            }
        }
    }
}

impl FromStr for Effect {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Ok(match s {
            "cow" => Effect::Cow,
            "shared" => Effect::Shared,
            "locked" => Effect::Locked,
            "not-locked" => Effect::NotLocked,
            "refault-ok" => Effect::Refault(Refault::Ok),
            "refault-timeout" => Effect::Refault(Refault::Timeout),
            "refault-bug" => Effect::Refault(Refault::Bug),
            other => {
                let sig = other.strip_prefix("refault-").ok_or(())?;
                let name = SignalName::new(&sig.to_ascii_uppercase()).map_err(|_| ())?;
                Effect::Refault(Refault::Signal(name))
            }
        })
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Ok => f.write_str("ok"),
            Outcome::Effect(e) => write!(f, "ok:{e}"),
            Outcome::Observed(Observation::VmFlags(v)) => f.write_str(&v.join(" ")),
            Outcome::Observed(Observation::Rss(Rss::Zero)) => f.write_str("zero"),
            Outcome::Observed(Observation::Rss(Rss::Counted)) => f.write_str("counted"),
            Outcome::Observed(Observation::Pagemap(Pagemap::Present)) => f.write_str("present"),
            Outcome::Observed(Observation::Pagemap(Pagemap::Hole)) => f.write_str("hole"),
            Outcome::Errno(e) => f.write_str(e.as_str()),
            Outcome::Signal(s) => f.write_str(s.as_str()),
            Outcome::Bug => f.write_str("BUG"),
            Outcome::Timeout => f.write_str("timeout"),
            Outcome::Skipped(_) => f.write_str("skipped"),
            Outcome::Unavailable(why) => write!(f, "{UNAVAILABLE_PREFIX}{why}"),
        }
    }
}

/// Whether `s` is a smaps `VmFlags:` mnemonic: two lowercase letters or digits
/// (fs/proc/task_mmu.c:show_smap_vma_flags).
fn is_mnemonic(s: &str) -> bool {
    s.len() == 2
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
}

impl FromStr for Outcome {
    type Err = BadOutcome;
    fn from_str(s: &str) -> Result<Self, BadOutcome> {
        let bad = || BadOutcome(s.to_owned());
        Ok(match s {
            "ok" => Outcome::Ok,
            "BUG" => Outcome::Bug,
            "timeout" => Outcome::Timeout,
            "skipped" => Outcome::Skipped(None),
            "zero" => Outcome::Observed(Observation::Rss(Rss::Zero)),
            "counted" => Outcome::Observed(Observation::Rss(Rss::Counted)),
            "present" => Outcome::Observed(Observation::Pagemap(Pagemap::Present)),
            "hole" => Outcome::Observed(Observation::Pagemap(Pagemap::Hole)),
            _ => {
                if let Some(why) = s.strip_prefix(UNAVAILABLE_PREFIX) {
                    if why.trim().is_empty() {
                        return Err(bad());
                    }
                    Outcome::Unavailable(why.to_owned())
                } else if let Some(e) = s.strip_prefix("ok:") {
                    Outcome::Effect(e.parse().map_err(|()| bad())?)
                } else if s.starts_with("SIG") {
                    Outcome::Signal(SignalName::new(s)?)
                } else if s.starts_with('E') || s.starts_with("errno ") {
                    Outcome::Errno(ErrnoName::new(s)?)
                } else if !s.is_empty() && s.split(' ').all(is_mnemonic) {
                    Outcome::Observed(Observation::VmFlags(
                        s.split(' ').map(str::to_owned).collect(),
                    ))
                } else {
                    return Err(bad());
                }
            }
        })
    }
}

/// An outcome equals the string it is written as (`Outcome::Ok == "ok"`).
impl PartialEq<str> for Outcome {
    fn eq(&self, other: &str) -> bool {
        other.parse::<Outcome>().is_ok_and(|o| match (self, &o) {
            // Written out, a skipped cell does not name its cause.
            (Outcome::Skipped(_), Outcome::Skipped(_)) => true,
            _ => *self == o,
        })
    }
}

impl PartialEq<&str> for Outcome {
    fn eq(&self, other: &&str) -> bool {
        *self == **other
    }
}

serde_as_string!(Outcome);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_string_round_trips() {
        for s in [
            "ok",
            "ok:cow",
            "ok:shared",
            "ok:locked",
            "ok:not-locked",
            "ok:refault-ok",
            "ok:refault-sigbus",
            "ok:refault-sigsegv",
            "ok:refault-timeout",
            "ok:refault-bug",
            "EFAULT",
            "EOPNOTSUPP",
            "errno 524",
            "SIGBUS",
            "BUG",
            "timeout",
            "skipped",
            "unavailable: ENODEV (no RDMA device)",
            "zero",
            "counted",
            "present",
            "hole",
            "rd wr sh mr mw me ms pf io de dd",
        ] {
            let o: Outcome = s.parse().unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(o.to_string(), s);
        }
    }

    #[test]
    fn garbage_is_refused() {
        for s in [
            "",
            "Ok",
            "ok:",
            "ok:frobbed",
            "E",
            "Efault",
            "SIG",
            "sigbus",
            "unavailable: ",
            "timeout ",
            "rd  wr",
            "rdx wr",
            "errno",
            "errno x",
        ] {
            assert!(s.parse::<Outcome>().is_err(), "{s:?} parsed");
        }
    }

    #[test]
    fn values_fit_their_ops_only() {
        let vmflags: Outcome = "rd wr sh".parse().unwrap();
        assert!(vmflags.fits(OpKey::Vmflags));
        assert!(!vmflags.fits(OpKey::Rss));
        assert!(!Outcome::Ok.fits(OpKey::Pagemap));
        assert!(Outcome::Effect(Effect::Cow).fits(OpKey::MmapPrivate));
        assert!(!Outcome::Effect(Effect::Cow).fits(OpKey::Mlock));
        assert!(!Outcome::Skipped(None).fits(OpKey::Export));
        assert!(Outcome::Skipped(Some(OpKey::Export)).fits(OpKey::Vmsplice));
        assert!(!Outcome::Skipped(Some(OpKey::Vmsplice)).fits(OpKey::Rss));
    }

    #[test]
    fn refault_of_a_child_outcome() {
        assert_eq!(
            Outcome::refault(&Outcome::Signal(SignalName::bus())).map(|o| o.to_string()),
            Some("ok:refault-sigbus".to_owned())
        );
        assert_eq!(
            Outcome::refault(&Outcome::Timeout).map(|o| o.to_string()),
            Some("ok:refault-timeout".to_owned())
        );
        assert_eq!(Outcome::refault(&Outcome::errno("ENOMEM")), None);
    }
}
