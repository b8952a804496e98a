//! Helpers shared by the test files of this crate.

/// A kernel named by the tests: `6.1` and `6.12` are the lines the real kernels were probed
/// at (Debian's 6.1.192 and 6.12.117); any other name resolves as `--kernel` does.
pub fn resolved(name: &str) -> pfnguard_mm::ResolvedKernel {
    let v = match name {
        "6.1" => "6.1.192",
        "6.12" => "6.12.117",
        v => v,
    };
    pfnguard_mm::resolve_kernel(v).expect("modeled kernel")
}
