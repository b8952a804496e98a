//! Build configuration: which Kconfig options a kernel was built with, apart from its version.
//!
//! Which exporters exist (CONFIG_UDMABUF, CONFIG_DMABUF_HEAPS, the DRM and V4L2 drivers) and a
//! few MM options are a property of the build, not of the version. A [`KernelConfig`] comes from
//! a kernel `.config` ([`KernelConfig::parse`], e.g. `/boot/config-$(uname -r)`), from Debian's
//! amd64 build of a release ([`crate::debian`]), or is [`KernelConfig::every_option`] when
//! nothing says otherwise.

use std::fmt;

macro_rules! kconfig {
    ($($(#[doc = $doc:literal])* $name:ident = $sym:literal,)*) => {
        /// A Kconfig option the model reads.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum Kconfig {
            $($(#[doc = $doc])* $name,)*
        }

        impl Kconfig {
            /// Every option, in declaration order.
            pub const ALL: &'static [Kconfig] = &[$(Kconfig::$name,)*];

            /// The symbol without `CONFIG_` (`UDMABUF`).
            pub const fn symbol(self) -> &'static str {
                match self {
                    $(Kconfig::$name => $sym,)*
                }
            }
        }
    };
}

kconfig! {
    /// drivers/dma-buf/udmabuf.c.
    Udmabuf = "UDMABUF",
    /// drivers/dma-buf/dma-heap.c.
    DmabufHeaps = "DMABUF_HEAPS",
    /// drivers/dma-buf/heaps/system_heap.c.
    DmabufHeapsSystem = "DMABUF_HEAPS_SYSTEM",
    /// drivers/dma-buf/heaps/cma_heap.c.
    DmabufHeapsCma = "DMABUF_HEAPS_CMA",
    /// The `VM_WARN_ON*` / `VM_BUG_ON*` checks.
    DebugVm = "DEBUG_VM",
    /// mm/secretmem.c (memfd_secret).
    Secretmem = "SECRETMEM",
    /// fs/hugetlbfs.
    Hugetlbfs = "HUGETLBFS",
    /// x86 PAT: whole-VMA `remap_pfn_range()` sets VM_PAT.
    X86Pat = "X86_PAT",
    /// drivers/gpu/drm/vgem.
    DrmVgem = "DRM_VGEM",
    /// drivers/gpu/drm/virtio.
    DrmVirtioGpu = "DRM_VIRTIO_GPU",
    /// drivers/gpu/drm/tiny/bochs.c (drivers/gpu/drm/bochs before 5.15).
    DrmBochs = "DRM_BOCHS",
    /// drivers/gpu/drm/tiny/cirrus.c.
    DrmCirrusQemu = "DRM_CIRRUS_QEMU",
    /// drivers/gpu/drm/qxl.
    DrmQxl = "DRM_QXL",
    /// drivers/gpu/drm/amd/amdgpu.
    DrmAmdgpu = "DRM_AMDGPU",
    /// drivers/gpu/drm/i915.
    DrmI915 = "DRM_I915",
    /// drivers/gpu/drm/drm_gem_dma_helper.c (`DRM_GEM_CMA_HELPER` before 6.1).
    DrmGemDmaHelper = "DRM_GEM_DMA_HELPER",
    /// drivers/gpu/drm/rockchip.
    DrmRockchip = "DRM_ROCKCHIP",
    /// drivers/gpu/drm/tegra.
    DrmTegra = "DRM_TEGRA",
    /// drivers/media/test-drivers/vivid.
    VideoVivid = "VIDEO_VIVID",
    /// drivers/media/common/videobuf2/videobuf2-dma-sg.c.
    Videobuf2DmaSg = "VIDEOBUF2_DMA_SG",
}

impl Kconfig {
    /// Debugging options, off unless a `.config` turns them on.
    pub const fn is_debug(self) -> bool {
        matches!(self, Kconfig::DebugVm)
    }
}

/// Older names of options (`# CONFIG_X` in older trees means the same as the new name).
const RENAMED: [(&str, Kconfig); 1] = [("DRM_GEM_CMA_HELPER", Kconfig::DrmGemDmaHelper)];

impl fmt::Display for Kconfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CONFIG_{}", self.symbol())
    }
}

/// Where a [`KernelConfig`] came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigSource {
    /// Every option the model knows is on: nothing named a build.
    EveryOption,
    /// Debian's amd64 build (the suite named).
    Debian(&'static str),
    /// A `.config` file.
    File(String),
}

impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigSource::EveryOption => f.write_str("every modeled option built"),
            ConfigSource::Debian(s) => write!(f, "Debian amd64 config, {s}"),
            ConfigSource::File(p) => write!(f, "{p}"),
        }
    }
}

/// The options a kernel was built with (`=y` or `=m`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KernelConfig {
    bits: u64,
    /// Where it came from.
    pub source: ConfigSource,
}

const _: () = assert!(Kconfig::ALL.len() <= 64);

/// A `.config` line the parser refuses.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}:{line}: {what}")]
pub struct ConfigError {
    /// The file.
    pub path: String,
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub what: String,
}

impl KernelConfig {
    /// Every option the model knows is on, except the debugging ones (CONFIG_DEBUG_VM), which no
    /// distribution build enables: what a kernel whose build nothing names is taken to have.
    pub fn every_option() -> KernelConfig {
        let opts: Vec<Kconfig> = Kconfig::ALL
            .iter()
            .copied()
            .filter(|o| !o.is_debug())
            .collect();
        KernelConfig::from_options(&opts, ConfigSource::EveryOption)
    }

    /// Exactly `options` on.
    pub fn from_options(options: &[Kconfig], source: ConfigSource) -> KernelConfig {
        let bits = options.iter().fold(0u64, |b, o| b | 1u64 << (*o as u8));
        KernelConfig { bits, source }
    }

    /// The options as a bit set (bit `option as u8`): equal for equal builds.
    pub fn bits(&self) -> u64 {
        self.bits
    }

    /// Whether `option` is built (`=y` or `=m`).
    #[inline]
    pub fn has(&self, option: Kconfig) -> bool {
        self.bits & (1u64 << (option as u8)) != 0
    }

    /// The same config with `option` set or cleared.
    pub fn with(mut self, option: Kconfig, on: bool) -> KernelConfig {
        if on {
            self.bits |= 1u64 << (option as u8);
        } else {
            self.bits &= !(1u64 << (option as u8));
        }
        self
    }

    /// The options that are on.
    pub fn options(&self) -> impl Iterator<Item = Kconfig> + '_ {
        Kconfig::ALL.iter().copied().filter(|o| self.has(*o))
    }

    /// Parse a kernel `.config` (`CONFIG_X=y|m|n|"string"|number`, `# CONFIG_X is not set`,
    /// comments and blank lines). Options the model does not read are ignored; an option absent
    /// from the file is off, as for Kconfig itself.
    pub fn parse(path: &str, text: &str) -> Result<KernelConfig, ConfigError> {
        let mut bits = 0u64;
        for (i, raw) in text.lines().enumerate() {
            let err = |what: String| ConfigError {
                path: path.to_owned(),
                line: i + 1,
                what,
            };
            let line = raw.trim_end();
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix('#') {
                let rest = rest.trim();
                if let Some(sym) = rest
                    .strip_prefix("CONFIG_")
                    .and_then(|r| r.strip_suffix(" is not set"))
                {
                    if !valid_symbol(sym) {
                        return Err(err(format!("`{sym}` is not a Kconfig symbol")));
                    }
                }
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(err(format!(
                    "expected CONFIG_NAME=value or a comment, found `{}`",
                    clip(line)
                )));
            };
            let Some(sym) = key.strip_prefix("CONFIG_") else {
                return Err(err(format!("`{}` does not start with CONFIG_", clip(key))));
            };
            if !valid_symbol(sym) {
                return Err(err(format!("`{}` is not a Kconfig symbol", clip(sym))));
            }
            let on = match value {
                "y" | "m" => true,
                "n" => false,
                v if v.starts_with('"') && v.ends_with('"') && v.len() >= 2 => false,
                v if v.parse::<i64>().is_ok()
                    || (v.starts_with("0x") && u64::from_str_radix(&v[2..], 16).is_ok()) =>
                {
                    false
                }
                v => {
                    return Err(err(format!(
                        "CONFIG_{sym}: `{}` is not y, m, n, a string or a number",
                        clip(v)
                    )))
                }
            };
            let option = Kconfig::ALL
                .iter()
                .find(|o| o.symbol() == sym)
                .copied()
                .or_else(|| RENAMED.iter().find(|(old, _)| *old == sym).map(|(_, o)| *o));
            if let (Some(o), true) = (option, on) {
                bits |= 1u64 << (o as u8);
            }
        }
        Ok(KernelConfig {
            bits,
            source: ConfigSource::File(path.to_owned()),
        })
    }
}

/// A symbol as scripts/kconfig/lexer.l reads it: letters, digits and `_` (`CONFIG_64BIT` begins
/// with a digit, `CONFIG_FONT_8x16` has a small letter).
fn valid_symbol(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

fn clip(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if s.chars().count() > 60 {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_kernel_config() {
        let text = "#\n# Automatically generated file; DO NOT EDIT.\n#\nCONFIG_UDMABUF=y\n\
                    # CONFIG_DMABUF_HEAPS is not set\nCONFIG_DRM_VGEM=m\nCONFIG_DRM_GEM_CMA_HELPER=y\n\
                    CONFIG_CMDLINE=\"\"\nCONFIG_NR_CPUS=64\nCONFIG_64BIT=y\nCONFIG_FONT_8x16=y\nCONFIG_PHYSICAL_START=0x1000000\n\
                    CONFIG_DEBUG_VM=n\n";
        let c = KernelConfig::parse("config", text).unwrap();
        assert!(c.has(Kconfig::Udmabuf));
        assert!(c.has(Kconfig::DrmVgem));
        assert!(c.has(Kconfig::DrmGemDmaHelper));
        assert!(!c.has(Kconfig::DmabufHeaps));
        assert!(!c.has(Kconfig::DebugVm));
        assert!(!c.has(Kconfig::DrmQxl));
    }

    #[test]
    fn bad_lines_name_the_file_and_line() {
        for (text, line, what) in [
            (
                "CONFIG_UDMABUF=y\nUDMABUF=y\n",
                2,
                "does not start with CONFIG_",
            ),
            ("CONFIG_UDMABUF\n", 1, "expected CONFIG_NAME=value"),
            ("\n\nCONFIG_UDMABUF=maybe\n", 3, "not y, m, n"),
            ("CONFIG_UDMA BUF=y\n", 1, "not a Kconfig symbol"),
            ("# CONFIG_a-b is not set\n", 1, "not a Kconfig symbol"),
        ] {
            let e = KernelConfig::parse("/boot/config-x", text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}");
            assert!(e
                .to_string()
                .starts_with(&format!("/boot/config-x:{line}: ")));
            assert!(e.what.contains(what), "{e}");
        }
    }

    #[test]
    fn every_option_has_every_option_but_the_debug_ones() {
        let c = KernelConfig::every_option();
        assert!(Kconfig::ALL.iter().all(|o| c.has(*o) != o.is_debug()));
        assert!(!c.has(Kconfig::DebugVm));
        assert!(!c
            .clone()
            .with(Kconfig::Udmabuf, false)
            .has(Kconfig::Udmabuf));
    }
}
