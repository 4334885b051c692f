//! The ggipc broker. Its socket server, authorization and pub/sub arrive with
//! the broker issue; until then this crate only links the protocol.
