//! Step-by-step record of the kernel path the model took, for `pfnguard explain`.

use std::collections::VecDeque;
use std::fmt;

/// Steps kept from the start of a trace.
const HEAD_STEPS: usize = 800;
/// Steps kept from the end of a trace.
const TAIL_STEPS: usize = 200;

/// One modeled step: the function, what decided, and the source it mirrors.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Step {
    /// Call depth at the time of the step (for indentation).
    pub depth: u16,
    /// `file:function` of the kernel code.
    pub function: &'static str,
    /// What happened: the flag or PTE bit that decided, the result.
    pub note: String,
}

/// A trace of steps, recorded only while enabled so the hot paths pay one branch.
///
/// A trace keeps its first 800 and last 200 steps and counts the ones between, so explaining
/// an op over a large buffer (a step per page) stays readable and bounded.
#[derive(Debug, Default)]
pub struct Trace {
    enabled: bool,
    depth: u16,
    steps: Vec<Step>,
    tail: VecDeque<Step>,
    omitted: u64,
}

impl Clone for Trace {
    /// An empty trace (the explorer's, whose kernels are cloned at every step) is copied
    /// without touching its buffers.
    fn clone(&self) -> Self {
        if self.steps.is_empty() && self.tail.is_empty() {
            return Trace {
                enabled: self.enabled,
                depth: self.depth,
                steps: Vec::new(),
                tail: VecDeque::new(),
                omitted: self.omitted,
            };
        }
        Trace {
            enabled: self.enabled,
            depth: self.depth,
            steps: self.steps.clone(),
            tail: self.tail.clone(),
            omitted: self.omitted,
        }
    }
}

impl Trace {
    /// Start recording.
    pub fn enable(&mut self) {
        self.enabled = true;
    }
    /// Whether steps are recorded.
    #[inline]
    pub fn enabled(&self) -> bool {
        self.enabled
    }
    /// Record a step (callers check [`Trace::enabled`] first to avoid formatting).
    pub fn push(&mut self, function: &'static str, note: String) {
        let step = Step {
            depth: self.depth,
            function,
            note,
        };
        if self.steps.len() < HEAD_STEPS {
            self.steps.push(step);
            return;
        }
        self.tail.push_back(step);
        if self.tail.len() > TAIL_STEPS {
            self.tail.pop_front();
            self.omitted += 1;
        }
    }
    /// Enter a nested call.
    pub fn enter(&mut self) {
        self.depth = self.depth.saturating_add(1);
    }
    /// Leave a nested call.
    pub fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }
    /// The recorded steps; where steps were left out, one `pfnguard:trace` step says how many.
    pub fn steps(&self) -> Vec<Step> {
        let mut out = self.steps.clone();
        if self.omitted > 0 {
            out.push(Step {
                depth: 0,
                function: "pfnguard:trace",
                note: format!("... {} step(s) left out ...", self.omitted),
            });
        }
        out.extend(self.tail.iter().cloned());
        out
    }
    /// How many steps were left out of the middle.
    pub fn omitted(&self) -> u64 {
        self.omitted
    }
    /// Drop the recorded steps.
    pub fn take(&mut self) -> Vec<Step> {
        let out = self.steps();
        self.steps.clear();
        self.tail.clear();
        self.omitted = 0;
        out
    }
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.steps() {
            writeln!(
                f,
                "{:indent$}{}: {}",
                "",
                s.function,
                s.note,
                indent = 2 * s.depth as usize
            )?;
        }
        Ok(())
    }
}

/// Record a step on a [`Kernel`](crate::Kernel) if tracing is on:
/// `trace!(k, "mm/gup.c:check_vma_flags", "VM_PFNMAP set -> -EFAULT")`.
#[macro_export]
macro_rules! trace {
    ($k:expr, $func:expr, $($arg:tt)*) => {
        if $k.trace.enabled() {
            $k.trace.push($func, format!($($arg)*));
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_traces_keep_head_and_tail() {
        let mut t = Trace::default();
        t.enable();
        for i in 0..10_000 {
            t.push("f", format!("step {i}"));
        }
        let steps = t.steps();
        assert_eq!(steps.len(), HEAD_STEPS + 1 + TAIL_STEPS);
        assert_eq!(t.omitted(), 10_000 - (HEAD_STEPS + TAIL_STEPS) as u64);
        assert_eq!(steps[0].note, "step 0");
        assert_eq!(steps[HEAD_STEPS].function, "pfnguard:trace");
        assert_eq!(steps.last().map(|s| s.note.as_str()), Some("step 9999"));
    }
}
