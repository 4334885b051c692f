//! Helpers shared by the protocol's integration tests.

use std::path::PathBuf;

/// The steering repository's `shared/` folder, which holds the conformance
/// vectors. CI lays it beside the checkout; `GGIPC_SHARED` overrides.
pub(crate) fn shared_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("GGIPC_SHARED") {
        return PathBuf::from(dir);
    }
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .ancestors()
        .map(|a| a.join("shared"))
        .find(|p| p.join("conformance").is_dir())
        .unwrap_or_else(|| {
            panic!(
                "no shared/conformance folder above {}; set GGIPC_SHARED",
                manifest.display()
            )
        })
}

/// Bytes from a hex string, ignoring white space.
pub(crate) fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd number of hex digits");
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}
