//! Component tokens (`SVCUID`): issued at start, compared in constant time,
//! never logged.

use std::fmt;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;

/// The nucleus' 32-symbol alphabet (A–Z without I and O, digits 0–7), so our
/// tokens look like its tokens; clients treat them as opaque ASCII.
const ALPHABET: &[u8; 32] = b"ABCDEFGHJKLMNPQRSTUVWXYZ01234567";
/// 26 symbols of 5 bits: 130 random bits, above the 128 we promise.
const TOKEN_LEN: usize = 26;

/// A secret token. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A fresh random token.
    pub fn generate() -> std::io::Result<Self> {
        let mut raw = [0u8; TOKEN_LEN];
        getrandom::fill(&mut raw).map_err(std::io::Error::other)?;
        Ok(Self(
            raw.iter()
                .map(|b| ALPHABET[(b & 31) as usize] as char)
                .collect(),
        ))
    }

    /// The secret itself, for the component's environment or token file.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Writes the token to `path` with mode 0600, replacing any old file.
    pub fn write_to(&self, path: &Path) -> std::io::Result<()> {
        if let Some(dir) = path.parent()
            && !dir.as_os_str().is_empty()
        {
            std::fs::create_dir_all(dir)?;
        }
        // Remove first: an existing file may carry wider permissions that
        // `mode` would not narrow.
        match std::fs::remove_file(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.write_all(self.0.as_bytes())
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(<redacted>)")
    }
}

/// Equality whose time does not depend on where the inputs first differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Lengths are not secret: every token has the same length.
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Token → component name.
#[derive(Debug, Default)]
pub struct TokenStore {
    entries: Vec<(Token, Arc<str>)>,
}

impl TokenStore {
    /// Registers `component` with `token`.
    pub fn insert(&mut self, token: Token, component: Arc<str>) {
        self.entries.push((token, component));
    }

    /// The component a presented token belongs to. Every entry is compared
    /// so the time taken does not reveal which one matched.
    pub fn lookup(&self, presented: &str) -> Option<Arc<str>> {
        let mut found = None;
        for (token, component) in &self.entries {
            if constant_time_eq(token.0.as_bytes(), presented.as_bytes()) {
                found = Some(component.clone());
            }
        }
        found
    }

    /// The token of `component`.
    pub fn token_of(&self, component: &str) -> Option<&Token> {
        self.entries
            .iter()
            .find(|(_, c)| &**c == component)
            .map(|(t, _)| t)
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn tokens_are_long_distinct_and_redacted() {
        let a = Token::generate().unwrap();
        let b = Token::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), TOKEN_LEN);
        assert!(a.expose().bytes().all(|c| ALPHABET.contains(&c)));
        assert!(!format!("{a:?}").contains(a.expose()));
    }

    #[test]
    fn lookup_finds_only_exact_tokens() {
        let mut store = TokenStore::default();
        let t = Token::generate().unwrap();
        store.insert(t.clone(), Arc::from("A"));
        store.insert(Token::generate().unwrap(), Arc::from("B"));
        assert_eq!(store.lookup(t.expose()).as_deref(), Some("A"));
        assert_eq!(store.lookup(&t.expose()[1..]), None);
        assert_eq!(store.lookup(""), None);
        let mut wrong = t.expose().to_owned().into_bytes();
        wrong[TOKEN_LEN - 1] ^= 1;
        assert_eq!(store.lookup(std::str::from_utf8(&wrong).unwrap()), None);
    }

    #[test]
    fn token_file_is_owner_only_even_when_replacing_a_wider_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/t");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let t = Token::generate().unwrap();
        t.write_to(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), t.expose());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
}
