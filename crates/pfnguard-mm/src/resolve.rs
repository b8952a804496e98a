//! From the name a user gives a kernel to the facts and config the model runs.

use crate::debian::{self, BOOKWORM};
use crate::facts::KernelFacts;
use crate::kconfig::KernelConfig;
use crate::version::{KernelName, KernelNameError, KernelVersion};

/// A kernel name resolved for the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedKernel {
    /// The name as given.
    pub name: String,
    /// The upstream version the facts were resolved at.
    pub version: KernelVersion,
    /// The facts in force.
    pub facts: KernelFacts,
    /// The build configuration.
    pub config: KernelConfig,
    /// What the user should know about how the name was read.
    pub notes: Vec<String>,
}

impl ResolvedKernel {
    /// The same kernel with the build configuration of a `.config` file.
    pub fn with_config(mut self, config: KernelConfig) -> ResolvedKernel {
        self.notes.retain(|n| !n.starts_with("config:"));
        self.config = config;
        self
    }

    /// A short label: the name, and the upstream version when the name does not carry it.
    pub fn label(&self) -> String {
        let v = self.version.to_string();
        if self.name == v || self.name.starts_with(&v) && !self.version.is_newest() {
            self.name.clone()
        } else {
            format!("{} ({v})", self.name)
        }
    }
}

/// Resolve a kernel name: a line (`6.14`: its newest point release), a version (`6.12.117`)
/// or a `uname -r` release. Debian releases map to their upstream version (through the ABI
/// table for `5.10.0-32-amd64` style names) and to Debian's amd64 config; other names get
/// every modeled option, with a note saying so.
pub fn resolve_kernel(name: &str) -> Result<ResolvedKernel, KernelNameError> {
    let n: KernelName = name.parse()?;
    let mut notes = Vec::new();
    let (version, config) = match (&n.suffix, n.patch) {
        (None, None) => (n.line.newest(), KernelConfig::every_option()),
        (None, Some(p)) => (
            KernelVersion::new(n.line.major, n.line.minor, p),
            KernelConfig::every_option(),
        ),
        (Some(sfx), patch) => {
            let plain = KernelVersion::new(n.line.major, n.line.minor, patch.unwrap_or(0));
            if sfx.starts_with("0.deb11.") && sfx.ends_with("amd64") {
                notes.push(format!(
                    "{name}: a bullseye backport; its ABI names no upstream version, modeled as \
                     the newest {} point release",
                    n.line
                ));
                (n.line.newest(), BOOKWORM.config())
            } else {
                match debian::recognise(n.line, patch, sfx) {
                    Ok(Some(d)) => {
                        if let Some((lo, hi)) = d.abi_range {
                            notes.push(format!(
                                "{name}: Debian uploaded {lo} to {hi} under this ABI name; \
                                 modeled as {hi}"
                            ));
                        }
                        (d.version, d.build.config())
                    }
                    Ok(None) => {
                        notes.push(format!(
                            "config: {name} is not a Debian release, so every modeled exporter \
                             is taken as built; pass --config with its .config (e.g. \
                             /boot/config-{name}) for its own"
                        ));
                        (plain, KernelConfig::every_option())
                    }
                    Err(e) => return Err(KernelNameError::NotModeled(e)),
                }
            }
        }
    };
    Ok(ResolvedKernel {
        name: name.to_owned(),
        version,
        facts: KernelFacts::at(version),
        config,
        notes,
    })
}

/// Resolve a probed kernel: its `uname -r` release for the build, and the upstream version it
/// reports (`/proc/version`, e.g. Debian's `5.10.262` behind `5.10.0-46-amd64`) for the facts.
pub fn resolve_release(
    release: &str,
    upstream: Option<&str>,
) -> Result<ResolvedKernel, KernelNameError> {
    let mut r = match (resolve_kernel(release), upstream) {
        (Ok(r), _) => r,
        // A Debian ABI name newer than the table: the version the kernel reports says which
        // upstream release it is, its line which Debian build.
        (Err(e), Some(_)) => {
            let n: KernelName = release.parse()?;
            let build = n
                .suffix
                .as_deref()
                .filter(|s| s.ends_with("amd64") && n.patch == Some(0))
                .and_then(|_| debian::abi_build(n.line))
                .ok_or(e)?;
            ResolvedKernel {
                name: release.to_owned(),
                version: n.line.release(),
                facts: KernelFacts::at(n.line.release()),
                config: build.config(),
                notes: Vec::new(),
            }
        }
        (Err(e), None) => return Err(e),
    };
    let Some(up) = upstream else {
        return Ok(r);
    };
    let n: KernelName = up.parse()?;
    match (n.patch, n.suffix) {
        (Some(p), None) if n.line == r.version.line() => {
            r.version = KernelVersion::new(n.line.major, n.line.minor, p);
            r.facts = KernelFacts::at(r.version);
            r.notes.retain(|n| n.starts_with("config:"));
            Ok(r)
        }
        _ => Err(KernelNameError::Malformed(format!(
            "{up} (upstream version of {release})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kconfig::{ConfigSource, Kconfig};

    #[test]
    fn every_form_of_name_resolves() {
        let r = resolve_kernel("5.10.0-32-amd64").unwrap();
        assert_eq!(r.version, KernelVersion::new(5, 10, 223));
        assert_eq!(r.config.source, ConfigSource::Debian("bullseye"));
        let r = resolve_kernel("6.12.117+deb13-amd64").unwrap();
        assert_eq!(r.version, KernelVersion::new(6, 12, 117));
        assert!(r.config.has(Kconfig::Udmabuf));
        assert!(r.notes.is_empty(), "{:?}", r.notes);
        let r = resolve_kernel("7.3.4+deb13-amd64").unwrap();
        assert_eq!(r.version, KernelVersion::new(7, 3, 4));
        let r = resolve_kernel("6.18.44-fc-v1045").unwrap();
        assert_eq!(r.version, KernelVersion::new(6, 18, 44));
        assert_eq!(r.config.source, ConfigSource::EveryOption);
        assert!(r.notes.iter().any(|n| n.contains("--config")));
        let r = resolve_kernel("6.14").unwrap();
        assert!(r.version.is_newest());
        let r = resolve_kernel("6.6.50").unwrap();
        assert_eq!(r.version, KernelVersion::new(6, 6, 50));
        let r = resolve_kernel("6.1.0-0.deb11.13-amd64").unwrap();
        assert!(r.version.is_newest());
        assert!(!r.config.has(Kconfig::Udmabuf));
    }

    #[test]
    fn probed_kernels_take_the_version_they_report() {
        let r = resolve_release("5.10.0-46-amd64", Some("5.10.262")).unwrap();
        assert_eq!(r.version, KernelVersion::new(5, 10, 262));
        assert_eq!(r.config.source, ConfigSource::Debian("bullseye"));
        // An ABI newer than the table: the reported upstream version decides.
        let r = resolve_release("6.1.0-999-amd64", Some("6.1.200")).unwrap();
        assert_eq!(r.version, KernelVersion::new(6, 1, 200));
        assert_eq!(r.config.source, ConfigSource::Debian("bookworm"));
        assert!(resolve_release("6.1.0-999-amd64", None).is_err());
        assert!(resolve_release("6.12.117+deb13-amd64", Some("6.1.1")).is_err());
    }

    #[test]
    fn outside_the_range_names_the_range() {
        for bad in ["5.4", "4.19.0-27-amd64", "7.4.1", "6.1.0-999-amd64"] {
            let e = resolve_kernel(bad).unwrap_err().to_string();
            assert!(
                e.contains("5.10 to 7.3") || e.contains("ABI 999"),
                "{bad}: {e}"
            );
        }
    }
}
