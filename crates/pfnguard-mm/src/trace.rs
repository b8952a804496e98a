//! Step-by-step record of the kernel path the model took, for `pfnguard explain`.

use std::fmt;

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
#[derive(Debug, Clone, Default)]
pub struct Trace {
    enabled: bool,
    depth: u16,
    steps: Vec<Step>,
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
        self.steps.push(Step {
            depth: self.depth,
            function,
            note,
        });
    }
    /// Enter a nested call.
    pub fn enter(&mut self) {
        self.depth = self.depth.saturating_add(1);
    }
    /// Leave a nested call.
    pub fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }
    /// The recorded steps.
    pub fn steps(&self) -> &[Step] {
        &self.steps
    }
    /// Drop the recorded steps.
    pub fn take(&mut self) -> Vec<Step> {
        std::mem::take(&mut self.steps)
    }
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for s in &self.steps {
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
