//! Replays the checked-in fuzz corpus and the saved crash inputs through the
//! same entry points the fuzz targets call, so a regression shows up in an
//! ordinary test run without cargo-fuzz or libFuzzer.
//!
//! Each target reads `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`;
//! files whose names start with `.` (`.gitkeep`) are skipped. A target that
//! finds nothing to replay fails, so a moved or emptied corpus cannot pass
//! unnoticed.

use std::fs;
use std::path::{Path, PathBuf};

use ggipc_protocol::fuzzing;

/// Calls `run` on every input saved for `target` and returns how many there were.
fn replay(target: &str, run: impl Fn(&[u8])) -> usize {
    let fuzz_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut count = 0;
    for kind in ["corpus", "regressions"] {
        let dir = fuzz_dir.join(kind).join(target);
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<PathBuf> = entries
            .map(|e| e.expect("readable directory entry").path())
            .filter(|p| p.is_file())
            .filter(|p| {
                !p.file_name()
                    .is_some_and(|n| n.as_encoded_bytes().starts_with(b"."))
            })
            .collect();
        // A stable order makes a failure point at the same file every time.
        paths.sort();
        for path in paths {
            let data = fs::read(&path).expect("readable corpus file");
            // libtest shows captured output only for a failing test, where
            // this line names the input that failed.
            eprintln!("replaying {}", path.display());
            run(&data);
            count += 1;
        }
    }
    assert!(
        count > 0,
        "no fuzz inputs found for {target} under {fuzz_dir:?}"
    );
    count
}

#[test]
fn frame_decode_corpus() {
    replay("frame_decode", fuzzing::frame_decode);
}

#[test]
fn rpc_view_corpus() {
    replay("rpc_view", fuzzing::rpc_view);
}

#[test]
fn topic_match_corpus() {
    replay("topic_match", fuzzing::topic_match);
}

#[test]
fn policy_match_corpus() {
    replay("policy_match", fuzzing::policy_match);
}

#[test]
fn request_json_corpus() {
    replay("request_json", fuzzing::request_json);
}

/// Builds the message exactly as `libfuzzer_sys::fuzz_target!` does for a
/// typed input: `arbitrary_take_rest` over the whole file, inputs it cannot
/// turn into a message skipped (they never reach the target either).
#[cfg(feature = "arbitrary")]
#[test]
fn frame_roundtrip_corpus() {
    use std::cell::Cell;

    use arbitrary::{Arbitrary, Unstructured};
    use ggipc_protocol::Message;

    let built = Cell::new(0);
    replay("frame_roundtrip", |data| {
        if let Ok(message) = Message::arbitrary_take_rest(Unstructured::new(data)) {
            fuzzing::frame_roundtrip(&message);
            built.set(built.get() + 1);
        }
    });
    assert!(built.get() > 0, "no frame_roundtrip input became a message");
}

/// Stands in for the real replay when the crate's `arbitrary` feature is off,
/// so that the missing coverage shows up as an ignored test rather than
/// vanishing. Run the suite with `--all-features` to replay this corpus.
#[cfg(not(feature = "arbitrary"))]
#[test]
#[ignore = "replaying frame_roundtrip inputs needs --features arbitrary"]
fn frame_roundtrip_corpus() {
    panic!("built without the `arbitrary` feature; rerun with --all-features");
}
