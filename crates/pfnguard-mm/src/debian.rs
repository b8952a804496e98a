//! Debian's kernel builds: ABI names (`5.10.0-32-amd64`) and the amd64 configs.
//!
//! Debian's stable kernels of 5.10 (bullseye) and 6.1 (bookworm) are released as
//! `<line>.0-<abi>-amd64`; the upstream SUBLEVEL is in the package version only. The table in
//! [`crate::debian_abi`] (generated from Debian's changelogs by `scripts/debian-abi-table`)
//! maps an ABI number back to the upstream version. Later packages carry the upstream version
//! in the release itself (`6.12.117+deb13-amd64`).

use crate::debian_abi::DEBIAN_ABI;
use crate::kconfig::{ConfigSource, Kconfig, KernelConfig};
use crate::version::{KernelVersion, Line};

/// The options of Debian's amd64 configs that every modeled Debian build has: the DRM and V4L2
/// drivers QEMU and real machines reach (`=m`), hugetlbfs and x86 PAT (`=y`). From the
/// linux-config-5.10, -6.1, -6.12, -7.2 and -7.3 packages and the 6.16–6.18 images' `/boot`
/// configs (`config.amd64_none_amd64`).
const DEBIAN_COMMON: [Kconfig; 11] = [
    Kconfig::Hugetlbfs,
    Kconfig::X86Pat,
    Kconfig::DrmVgem,
    Kconfig::DrmVirtioGpu,
    Kconfig::DrmBochs,
    Kconfig::DrmCirrusQemu,
    Kconfig::DrmQxl,
    Kconfig::DrmAmdgpu,
    Kconfig::DrmI915,
    Kconfig::VideoVivid,
    Kconfig::Videobuf2DmaSg,
];

/// A Debian build: suite and the options it adds to [`DEBIAN_COMMON`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DebianBuild {
    /// The suite(s) that ship it.
    pub suite: &'static str,
    /// Options on beyond the common ones.
    pub extra: &'static [Kconfig],
}

/// bullseye (5.10): no SECRETMEM (5.14+), no udmabuf, no heaps.
pub const BULLSEYE: DebianBuild = DebianBuild {
    suite: "bullseye",
    extra: &[],
};
/// bookworm (6.1): SECRETMEM; `# CONFIG_UDMABUF is not set`, `# CONFIG_DMABUF_HEAPS is not set`.
pub const BOOKWORM: DebianBuild = DebianBuild {
    suite: "bookworm",
    extra: &[Kconfig::Secretmem],
};
/// trixie and later builds (6.12 `+deb12`/`+deb13`, backports, sid): udmabuf and the system
/// heap; the CMA heap never (`# CONFIG_DMABUF_HEAPS_CMA is not set` or absent).
pub const TRIXIE: DebianBuild = DebianBuild {
    suite: "trixie and later",
    extra: &[
        Kconfig::Secretmem,
        Kconfig::Udmabuf,
        Kconfig::DmabufHeaps,
        Kconfig::DmabufHeapsSystem,
    ],
};

impl DebianBuild {
    /// The config.
    pub fn config(&self) -> KernelConfig {
        let mut opts: Vec<Kconfig> = DEBIAN_COMMON.to_vec();
        opts.extend_from_slice(self.extra);
        KernelConfig::from_options(&opts, ConfigSource::Debian(self.suite))
    }
}

/// The Debian build of a line released under `<line>.0-<abi>-amd64` names (5.10: bullseye,
/// 6.1: bookworm).
pub fn abi_build(line: Line) -> Option<DebianBuild> {
    match (line.major, line.minor) {
        (5, 10) => Some(BULLSEYE),
        (6, 1) => Some(BOOKWORM),
        _ => None,
    }
}

/// What a Debian release string says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DebianRelease {
    /// The upstream version (the newest one uploaded with the ABI when the release names only
    /// an ABI).
    pub version: KernelVersion,
    /// Upstream versions that share the ABI name, when more than one did.
    pub abi_range: Option<(KernelVersion, KernelVersion)>,
    /// The build.
    pub build: DebianBuild,
}

/// Recognise Debian's amd64 release strings: `5.10.0-<abi>-amd64`, `6.1.0-<abi>-amd64`
/// (optionally `-cloud-amd64`, `-rt-amd64`), and `<version>+deb<N>-amd64`. `line` and `patch`
/// come from the parsed name. Returns `Ok(None)` for releases that are not Debian's, and an
/// error for a Debian ABI name the table does not know.
pub fn recognise(
    line: Line,
    patch: Option<u32>,
    suffix: &str,
) -> Result<Option<DebianRelease>, String> {
    let words: Vec<&str> = suffix.split('-').collect();
    if words.last().is_none_or(|w| *w != "amd64") {
        return Ok(None);
    }
    // `<version>+deb12-amd64`, `+deb13-cloud-amd64`, ...
    if let Some(deb) = words[0].strip_prefix("deb") {
        if deb.parse::<u32>().is_ok_and(|n| (12..=14).contains(&n)) {
            if let Some(p) = patch {
                return Ok(Some(DebianRelease {
                    version: KernelVersion::new(line.major, line.minor, p),
                    abi_range: None,
                    build: TRIXIE,
                }));
            }
        }
        return Ok(None);
    }
    // `<line>.0-<abi>-amd64`
    let Ok(abi) = words[0].parse::<u32>() else {
        return Ok(None);
    };
    if patch != Some(0) || words.len() < 2 {
        return Ok(None);
    }
    let Some(build) = abi_build(line) else {
        return Ok(None);
    };
    let rows: Vec<_> = DEBIAN_ABI
        .iter()
        .filter(|(l, a, _, _)| *l == (line.major, line.minor) && *a == abi)
        .collect();
    let (Some(first), Some(last)) = (
        rows.iter().map(|r| r.2).min(),
        rows.iter().map(|r| r.3).max(),
    ) else {
        let known = DEBIAN_ABI
            .iter()
            .filter(|(l, ..)| *l == (line.major, line.minor))
            .map(|r| r.1);
        let (lo, hi) = (known.clone().min().unwrap_or(0), known.max().unwrap_or(0));
        return Err(format!(
            "Debian {line}.0-{abi}-amd64: ABI {abi} is not in the table of Debian's {line} \
             uploads (known: {lo} to {hi}); name the upstream version instead (the package \
             version, e.g. `dpkg -s linux-image-$(uname -r)`)"
        ));
    };
    let v = |p| KernelVersion::new(line.major, line.minor, p);
    Ok(Some(DebianRelease {
        version: v(last),
        abi_range: (first != last).then(|| (v(first), v(last))),
        build,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(major: u16, minor: u16) -> Line {
        Line { major, minor }
    }

    #[test]
    fn abi_names_map_to_upstream_versions() {
        let r = recognise(l(5, 10), Some(0), "46-amd64").unwrap().unwrap();
        assert_eq!(r.version, KernelVersion::new(5, 10, 262));
        assert_eq!(r.build, BULLSEYE);
        let r = recognise(l(6, 1), Some(0), "57-amd64").unwrap().unwrap();
        assert_eq!(r.version, KernelVersion::new(6, 1, 192));
        assert_eq!(r.build, BOOKWORM);
        let r = recognise(l(6, 1), Some(0), "10-cloud-amd64")
            .unwrap()
            .unwrap();
        assert_eq!(r.abi_range.map(|(a, b)| (a.patch, b.patch)), Some((37, 38)));
        assert!(recognise(l(6, 1), Some(0), "999-amd64")
            .unwrap_err()
            .contains("ABI 999"));
    }

    #[test]
    fn versioned_releases_and_others() {
        let r = recognise(l(6, 12), Some(117), "deb13-amd64")
            .unwrap()
            .unwrap();
        assert_eq!(r.version, KernelVersion::new(6, 12, 117));
        assert_eq!(r.build, TRIXIE);
        assert!(recognise(l(7, 3), Some(4), "deb13-amd64")
            .unwrap()
            .is_some());
        assert_eq!(recognise(l(6, 18), Some(44), "fc-v1045"), Ok(None));
        assert_eq!(recognise(l(6, 12), Some(0), "trunk-amd64"), Ok(None));
        assert_eq!(recognise(l(6, 8), Some(0), "45-generic"), Ok(None));
    }

    #[test]
    fn debian_builds_differ_where_the_configs_do() {
        assert!(!BULLSEYE.config().has(Kconfig::Secretmem));
        assert!(BOOKWORM.config().has(Kconfig::Secretmem));
        assert!(!BOOKWORM.config().has(Kconfig::Udmabuf));
        assert!(TRIXIE.config().has(Kconfig::Udmabuf));
        assert!(!TRIXIE.config().has(Kconfig::DmabufHeapsCma));
        assert!(!TRIXIE.config().has(Kconfig::DebugVm));
    }
}
