//! The classes a cell's value falls in, their colours, and the contrast those colours keep
//! (WCAG 2.x relative luminance; AA asks 4.5:1 for text, 3:1 for a focus indicator).

use pfnguard_report::{Effect, Outcome, Refault};

/// What happened to the user of a cell, as the heatmap colours it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// GUP handed a struct page of the buffer to the op's kernel path.
    Gup,
    /// The kernel refused: an errno (EFAULT, EIO, EINVAL, ...).
    Refused,
    /// The task or the kernel faulted: a signal, a BUG, a path that never returns (also on the
    /// refault after MADV_DONTNEED).
    Fault,
    /// Plain success, no struct page to GUP.
    Success,
    /// Not measured: a step the op needs failed, or the build lacks the exporter.
    NotRun,
}

impl Class {
    /// Every class, in legend order.
    pub const ALL: [Class; 5] = [
        Class::Gup,
        Class::Refused,
        Class::Fault,
        Class::Success,
        Class::NotRun,
    ];

    /// The class of `value`, `gup` when GUP got struct pages during the op.
    pub fn of(value: &Outcome, gup: bool) -> Class {
        if gup {
            return Class::Gup;
        }
        match value {
            Outcome::Errno(_) => Class::Refused,
            Outcome::Signal(_) | Outcome::Bug | Outcome::Timeout => Class::Fault,
            Outcome::Effect(Effect::Refault(r)) if *r != Refault::Ok => Class::Fault,
            Outcome::Skipped(_) | Outcome::Unavailable(_) => Class::NotRun,
            Outcome::Ok | Outcome::Effect(_) | Outcome::Observed(_) => Class::Success,
        }
    }

    /// The CSS class name (one letter: the page has tens of thousands of cells).
    pub fn css(self) -> &'static str {
        match self {
            Class::Gup => "g",
            Class::Refused => "r",
            Class::Fault => "f",
            Class::Success => "s",
            Class::NotRun => "n",
        }
    }

    /// A cell of the class as the legend shows it.
    pub fn example(self) -> &'static str {
        match self {
            Class::Gup => "ok^",
            Class::Refused => "EFAULT",
            Class::Fault => "SIGBUS",
            Class::Success => "ok",
            Class::NotRun => "skip",
        }
    }

    /// The legend's words.
    pub fn meaning(self) -> &'static str {
        match self {
            Class::Gup => "GUP user got a struct page of the buffer (marked ^)",
            Class::Refused => "refused: an errno (EFAULT, EIO, EINVAL, ...)",
            Class::Fault => "fault: a signal (SIGBUS, SIGSEGV), BUG or hang, also on refault",
            Class::Success => "plain success, no struct page to GUP",
            Class::NotRun => "not run: skipped (a step it needs failed) or n/a",
        }
    }

    /// `(background, text)` colours, `#rrggbb`.
    pub fn colours(self) -> (&'static str, &'static str) {
        match self {
            Class::Gup => ("#9b1c1c", "#ffffff"),
            Class::Refused => ("#fbe3a1", "#1f1f1f"),
            Class::Fault => ("#ddc8f5", "#1f1f1f"),
            Class::Success => ("#d5eedb", "#1f1f1f"),
            Class::NotRun => ("#ececec", "#3d3d3d"),
        }
    }
}

/// The page's other colours: `(name, background, text)` pairs the CSS uses.
pub const PAGE: [(&str, &str, &str); 4] = [
    ("body", "#ffffff", "#1f1f1f"),
    ("muted", "#ffffff", "#555555"),
    ("link", "#ffffff", "#0b57a4"),
    ("code", "#f3f3f3", "#1f1f1f"),
];

/// The focus ring, drawn outside the focused element on the page background.
pub const FOCUS: &str = "#0b57a4";
/// The ring inside a cell a policy changed (the page colour on [`Class::Gup`]'s dark red).
pub const CHANGED: &str = "#000000";

#[cfg(test)]
fn channel(c: u8) -> f64 {
    let c = f64::from(c) / 255.0;
    if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    }
}

/// WCAG relative luminance of `#rrggbb` (`None` for anything else).
#[cfg(test)]
pub fn luminance(hex: &str) -> Option<f64> {
    let h = hex.strip_prefix('#')?;
    if h.len() != 6 {
        return None;
    }
    let byte = |i: usize| u8::from_str_radix(h.get(i..i + 2)?, 16).ok();
    Some(0.2126 * channel(byte(0)?) + 0.7152 * channel(byte(2)?) + 0.0722 * channel(byte(4)?))
}

/// WCAG contrast ratio of two colours, from 1 to 21.
#[cfg(test)]
pub fn contrast(a: &str, b: &str) -> Option<f64> {
    let (la, lb) = (luminance(a)?, luminance(b)?);
    let (hi, lo) = if la > lb { (la, lb) } else { (lb, la) };
    Some((hi + 0.05) / (lo + 0.05))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contrast_formula_gives_the_known_ratios() {
        let ratio = |a, b| contrast(a, b).expect("colours");
        assert!((ratio("#000000", "#ffffff") - 21.0).abs() < 1e-9);
        assert!((ratio("#777777", "#ffffff") - 4.48).abs() < 0.01);
        assert_eq!(contrast("#fff", "#000000"), None);
    }

    #[test]
    fn every_text_colour_meets_wcag_aa_and_the_outlines_are_visible() {
        for c in Class::ALL {
            let (bg, fg) = c.colours();
            let r = contrast(bg, fg).expect("colours");
            assert!(r >= 4.5, "{c:?}: {fg} on {bg} is {r:.2}:1");
        }
        for (name, bg, fg) in PAGE {
            let r = contrast(bg, fg).expect("colours");
            assert!(r >= 4.5, "{name}: {fg} on {bg} is {r:.2}:1");
        }
        // The focus ring is drawn outside the element, on the page; the changed-cell ring
        // inside the cell, in CHANGED on the light classes and in the page colour on the dark
        // one (WCAG 1.4.11: 3:1). A changed cell also carries `*` in its text.
        assert!(contrast(FOCUS, PAGE[0].1).expect("colours") >= 3.0);
        for c in Class::ALL {
            let (bg, _) = c.colours();
            let ring = if c == Class::Gup { PAGE[0].1 } else { CHANGED };
            let r = contrast(ring, bg).expect("colours");
            assert!(r >= 3.0, "changed ring {ring} on {c:?} is {r:.2}:1");
        }
    }
}
