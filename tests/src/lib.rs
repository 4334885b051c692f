//! Shared helpers of the end-to-end tests. The end-to-end suites arrive with
//! the broker; the protocol's own tests live in `protocol/tests/`.
