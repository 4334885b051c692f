//! The GreengrassCoreIPC service model (`protocol.md` §6–§7).
