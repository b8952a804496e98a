//! Kernel versions and the names users give kernels: a line (`6.12`), an upstream version
//! (`6.12.117`) or a `uname -r` release (`6.12.117+deb13-amd64`, `5.10.0-32-amd64`).
//!
//! The model covers every mainline line from [`FIRST_LINE`] to [`LAST_LINE`] ([`LINES`]); what
//! a version does is decided by the [`facts`](crate::facts) in force at it, never by comparing
//! versions anywhere else.

use std::fmt;

/// An upstream kernel version, as the top-level Makefile's VERSION, PATCHLEVEL and SUBLEVEL
/// give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelVersion {
    /// VERSION.
    pub major: u16,
    /// PATCHLEVEL.
    pub minor: u16,
    /// SUBLEVEL, or [`KernelVersion::NEWEST`] for "the newest point release of the line".
    pub patch: u32,
}

impl KernelVersion {
    /// The SUBLEVEL that stands for the newest stable point release of a line: every stable
    /// backport of the line applies to it.
    pub const NEWEST: u32 = u32::MAX;

    /// `major.minor.patch`.
    pub const fn new(major: u16, minor: u16, patch: u32) -> Self {
        KernelVersion {
            major,
            minor,
            patch,
        }
    }

    /// The mainline release `major.minor` (`.0`).
    pub const fn release(major: u16, minor: u16) -> Self {
        Self::new(major, minor, 0)
    }

    /// The newest point release of the line `major.minor`.
    pub const fn newest(major: u16, minor: u16) -> Self {
        Self::new(major, minor, Self::NEWEST)
    }

    /// The line (`major.minor`).
    pub const fn line(self) -> Line {
        Line {
            major: self.major,
            minor: self.minor,
        }
    }

    /// Whether this names "the newest point release of its line" rather than a point release.
    pub const fn is_newest(self) -> bool {
        self.patch == Self::NEWEST
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_newest() {
            write!(f, "{}.{}.y", self.major, self.minor)
        } else {
            write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
        }
    }
}

impl std::str::FromStr for KernelVersion {
    type Err = KernelNameError;
    /// `major.minor.patch`, or `major.minor` for the line's newest point release.
    fn from_str(s: &str) -> Result<Self, KernelNameError> {
        let n: KernelName = s.parse()?;
        if n.suffix.is_some() {
            return Err(KernelNameError::Malformed(s.to_owned()));
        }
        Ok(match n.patch {
            Some(p) => KernelVersion::new(n.line.major, n.line.minor, p),
            None => n.line.newest(),
        })
    }
}

/// A mainline line (`6.12`): a merge window's release and its stable point releases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Line {
    /// VERSION.
    pub major: u16,
    /// PATCHLEVEL.
    pub minor: u16,
}

impl Line {
    /// The line's mainline release (`6.12.0`).
    pub const fn release(self) -> KernelVersion {
        KernelVersion::release(self.major, self.minor)
    }
    /// The line's newest point release.
    pub const fn newest(self) -> KernelVersion {
        KernelVersion::newest(self.major, self.minor)
    }
}

impl fmt::Display for Line {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// The oldest modeled line.
pub const FIRST_LINE: Line = Line {
    major: 5,
    minor: 10,
};
/// The newest modeled line.
pub const LAST_LINE: Line = Line { major: 7, minor: 3 };

/// The last PATCHLEVEL of each major version in the modeled range: 5.19 was followed by 6.0,
/// 6.19 by 7.0 (Makefile VERSION bumps).
const LAST_MINOR: [(u16, u16); 2] = [(5, 19), (6, 19)];

/// Every modeled mainline line, oldest first: 5.10 … 5.19, 6.0 … 6.19, 7.0 … 7.3.
pub const LINES: [Line; 34] = {
    let mut out = [FIRST_LINE; 34];
    let mut cur = FIRST_LINE;
    let mut i = 0;
    while i < 34 {
        out[i] = cur;
        let mut last = u16::MAX;
        let mut j = 0;
        while j < LAST_MINOR.len() {
            if LAST_MINOR[j].0 == cur.major {
                last = LAST_MINOR[j].1;
            }
            j += 1;
        }
        cur = if cur.minor == last {
            Line {
                major: cur.major + 1,
                minor: 0,
            }
        } else {
            Line {
                major: cur.major,
                minor: cur.minor + 1,
            }
        };
        i += 1;
    }
    out
};

/// Whether `line` is a modeled line.
pub fn is_modeled(line: Line) -> bool {
    LINES.contains(&line)
}

/// The line before `line` in [`LINES`].
pub fn previous_line(line: Line) -> Option<Line> {
    let i = LINES.iter().position(|l| *l == line)?;
    i.checked_sub(1).map(|i| LINES[i])
}

/// A kernel named by a line (`6.12`), an upstream version (`6.12.117`) or a `uname -r`
/// release (`6.12.117+deb12-amd64`, `6.1.0-56-amd64`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelName {
    /// Major and minor: the line.
    pub line: Line,
    /// The SUBLEVEL the name carries (`0` in Debian's `6.1.0-56-amd64` ABI names).
    pub patch: Option<u32>,
    /// What followed the version (`-56-amd64`, `+deb12-amd64`), if anything.
    pub suffix: Option<String>,
}

/// Why a kernel name does not resolve to a model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KernelNameError {
    /// Not a line, a version or a release.
    #[error("`{0}` is not a kernel (expected a line such as 6.12, a version such as 6.12.117, or a `uname -r` release such as 6.12.117+deb12-amd64; modeled: {FIRST_LINE} to {LAST_LINE})")]
    Malformed(String),
    /// A well-formed kernel outside the modeled range or architecture.
    #[error(
        "Linux {0} is not modeled (modeled: every line from {FIRST_LINE} to {LAST_LINE}, x86-64)"
    )]
    NotModeled(String),
}

/// A version number as the kernel's Makefile writes it: digits, no leading zero.
fn number(s: &str) -> Option<u32> {
    let digits = !s.is_empty() && s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit());
    (digits && (s == "0" || !s.starts_with('0')))
        .then(|| s.parse().ok())
        .flatten()
}

/// Debian kernel flavours of architectures other than x86-64, the one the model covers.
const OTHER_ARCH_FLAVOURS: [&str; 13] = [
    "arm64",
    "armmp",
    "686",
    "686-pae",
    "i386",
    "ppc64",
    "ppc64el",
    "powerpc64le",
    "s390x",
    "riscv64",
    "loong64",
    "mips",
    "aarch64",
];

impl std::str::FromStr for KernelName {
    type Err = KernelNameError;
    fn from_str(s: &str) -> Result<Self, KernelNameError> {
        let bad = || KernelNameError::Malformed(s.to_owned());
        let (version, suffix) = match s.find(['-', '+', '~']) {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        };
        if let Some(sfx) = suffix {
            // scripts/setlocalversion: a tree that is not at a release tag builds as `7.3.4+`.
            let plus = sfx.is_empty() && s.ends_with('+');
            let ok = plus
                || !sfx.is_empty()
                    && sfx
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"._+~-".contains(&b));
            if !ok {
                return Err(bad());
            }
            let arch = sfx
                .split(['-', '+', '.', '~', '_'])
                .find(|w| OTHER_ARCH_FLAVOURS.contains(w) || w.starts_with("rpi"));
            if let Some(a) = arch {
                return Err(KernelNameError::NotModeled(format!(
                    "{version} for {a} (the model is of x86-64)"
                )));
            }
        }
        let parts: Vec<&str> = version.split('.').collect();
        let nums: Vec<u32> = parts
            .iter()
            .map(|p| number(p))
            .collect::<Option<_>>()
            .ok_or_else(bad)?;
        let (major, minor, patch) = match (nums.as_slice(), suffix) {
            ([major, minor], None) => (*major, *minor, None),
            ([major, minor, patch], _) => (*major, *minor, Some(*patch)),
            _ => return Err(bad()),
        };
        let (Ok(major), Ok(minor)) = (u16::try_from(major), u16::try_from(minor)) else {
            return Err(bad());
        };
        let line = Line { major, minor };
        if !is_modeled(line) {
            return Err(KernelNameError::NotModeled(version.to_owned()));
        }
        Ok(KernelName {
            line,
            patch,
            suffix: suffix.map(str::to_owned),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_run_from_5_10_to_7_3_across_the_major_bumps() {
        assert_eq!(LINES[0], FIRST_LINE);
        assert_eq!(LINES[33], LAST_LINE);
        let names: Vec<String> = LINES.iter().map(|l| l.to_string()).collect();
        assert_eq!(names[9], "5.19");
        assert_eq!(names[10], "6.0");
        assert_eq!(names[29], "6.19");
        assert_eq!(names[30], "7.0");
        assert!(LINES.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(previous_line(FIRST_LINE), None);
        assert_eq!(
            previous_line(Line { major: 6, minor: 0 }),
            Some(Line {
                major: 5,
                minor: 19
            })
        );
    }

    #[test]
    fn names_parse_and_bad_ones_are_refused() {
        let n: KernelName = "6.12.117+deb13-amd64".parse().unwrap();
        assert_eq!(
            n.line,
            Line {
                major: 6,
                minor: 12
            }
        );
        assert_eq!(n.patch, Some(117));
        assert_eq!(n.suffix.as_deref(), Some("deb13-amd64"));
        let n: KernelName = "6.18.44-fc-v1045".parse().unwrap();
        assert_eq!(n.patch, Some(44));
        let n: KernelName = "6.14".parse().unwrap();
        assert_eq!((n.line.minor, n.patch), (14, None));
        // A build from a git tree past its release tag (scripts/setlocalversion).
        let n: KernelName = "7.3.4+".parse().unwrap();
        assert_eq!((n.line.major, n.line.minor, n.patch), (7, 3, Some(4)));
        assert_eq!(n.suffix.as_deref(), Some(""));
        for bad in [
            "6.1foo", "6.1x", "6.1 ", " 6.1", "6.1.", "6", "", "6.1.0-", "garbage", "6..1", "06.1",
            "6.01", "6.1.07", "6.1.0~", "7.3+",
        ] {
            assert!(
                matches!(
                    bad.parse::<KernelName>(),
                    Err(KernelNameError::Malformed(_))
                ),
                "{bad:?}"
            );
        }
        for outside in [
            "5.9",
            "5.4.280",
            "7.4",
            "8.0",
            "6.20",
            "6.12.117+deb12-arm64",
        ] {
            assert!(
                matches!(
                    outside.parse::<KernelName>(),
                    Err(KernelNameError::NotModeled(_))
                ),
                "{outside}"
            );
        }
        let e = "4.19".parse::<KernelName>().unwrap_err().to_string();
        assert!(e.contains("5.10 to 7.3"), "{e}");
    }
}
