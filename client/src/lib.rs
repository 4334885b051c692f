//! Greengrass IPC client. The async client arrives with its own issue; this
//! crate holds the `ggipc` tool.
