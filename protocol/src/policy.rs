//! `accessControl` policies: resource patterns and per-component
//! authorization (`semantics.md` §2).
//!
//! The matching rules are those of the Java nucleus's `WildcardTrie`, which
//! has two modes (§2.3):
//!
//! - [`MatchStyle::Standard`]: `*` matches any run of characters, `/` and the
//!   empty run included, anywhere in the pattern and any number of times.
//!   `+` and `#` are ordinary characters.
//! - [`MatchStyle::MqttStyle`], used only for `aws.greengrass.ipc.mqttproxy`:
//!   the same, plus MQTT wildcards in the pattern where they are used validly.
//!   `#` as the last character after a `/` (or as the whole pattern) matches
//!   the rest, and `a/#` also matches `a`; `+` as a whole level matches any
//!   run without `/`, the empty run included. Other uses are literal.
//!
//! In both modes `${*}`, `${?}` and `${$}` stand for a literal `*`, `?` and
//! `$`; any other `${` and a bare `?` make the pattern invalid (Java
//! `AuthorizationModule` resource validation); a `$` not followed by `{` is
//! literal. The requested resource is always literal: a subscription to the
//! filter `a/#` is checked as the string `a/#`, which the MQTT-style pattern
//! `a/+` matches because `#` is a run without `/` — a quirk the nucleus has
//! and we keep.

use std::collections::HashMap;

use serde_json::Value;

/// How a destination's resource patterns are matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchStyle {
    /// `*` globs; `+` and `#` are literal.
    Standard,
    /// `*` globs, and valid MQTT `+`/`#` wildcards too.
    MqttStyle,
}

/// The destination whose policies use MQTT-style matching
/// (`MqttProxyIPCAgent.doAuthorization` passes `MQTT_STYLE`).
pub const MQTT_PROXY_DESTINATION: &str = "aws.greengrass.ipc.mqttproxy";

impl MatchStyle {
    /// The style the nucleus uses for a destination (service identifier).
    pub fn for_destination(destination: &str) -> Self {
        if destination == MQTT_PROXY_DESTINATION {
            Self::MqttStyle
        } else {
            Self::Standard
        }
    }
}

/// A policy resource that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// The resource is the empty string.
    #[error("resource is empty")]
    Empty,
    /// A `?` outside an escape: reserved, there is no single-character
    /// wildcard.
    #[error("`?` at byte {offset} is reserved; `${{?}}` stands for a literal `?`")]
    BareQuestionMark {
        /// Byte offset of the `?`.
        offset: usize,
    },
    /// A `${` that does not start `${*}`, `${?}` or `${$}`.
    #[error(
        "`${{` at byte {offset} does not start one of the escapes `${{*}}`, `${{?}}`, `${{$}}`"
    )]
    InvalidEscape {
        /// Byte offset of the `$`.
        offset: usize,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// These bytes, exactly.
    Literal(Box<[u8]>),
    /// Any run of bytes.
    Star,
    /// Any run of bytes without `/`. Only ever produced for a `+` that has
    /// `/` or an end of the pattern on both sides.
    Plus,
}

/// A policy resource compiled once, for matching without allocating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePattern {
    source: Box<str>,
    tokens: Box<[Token]>,
    /// The pattern ended in a valid `/#` (MQTT style), which is not among
    /// `tokens`: what the tokens match may then be followed by nothing or by
    /// `/` and anything. That one rule gives both `a/#` ⊇ `a/b/c` and the
    /// parent case `a/#` ⊇ `a` (`WildcardTrie` "terminal level").
    hash: bool,
}

impl ResourcePattern {
    /// Compiles a policy resource string.
    pub fn compile(pattern: &str, style: MatchStyle) -> Result<Self, PolicyError> {
        if pattern.is_empty() {
            return Err(PolicyError::Empty);
        }
        let bytes = pattern.as_bytes();
        let mqtt = style == MatchStyle::MqttStyle;
        let (body, hash) = if mqtt && pattern == "#" {
            // A whole-pattern `#` matches everything, as `*` does
            // (`WildcardTrie` sets `matchAll` for both).
            (&b"*"[..], false)
        } else if mqtt && bytes.ends_with(b"/#") {
            (&bytes[..bytes.len() - 2], true)
        } else {
            (bytes, false)
        };

        let mut tokens = Vec::new();
        let mut literal = Vec::new();
        let mut i = 0;
        while i < body.len() {
            match body[i] {
                b'*' => {
                    flush(&mut literal, &mut tokens);
                    // `**` matches what `*` does; one token keeps matching
                    // linear in the number of stars.
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                }
                b'?' => return Err(PolicyError::BareQuestionMark { offset: i }),
                b'$' if body.get(i + 1) == Some(&b'{') => {
                    match (body.get(i + 2), body.get(i + 3)) {
                        (Some(&c @ (b'*' | b'?' | b'$')), Some(b'}')) => {
                            literal.push(c);
                            i += 4;
                            continue;
                        }
                        _ => return Err(PolicyError::InvalidEscape { offset: i }),
                    }
                }
                // Neighbours are looked up in the whole pattern: the `/`
                // after `+` in `a/+/#` is the one stripped with the `#`.
                b'+' if mqtt
                    && (i == 0 || bytes[i - 1] == b'/')
                    && bytes.get(i + 1).is_none_or(|&c| c == b'/') =>
                {
                    flush(&mut literal, &mut tokens);
                    tokens.push(Token::Plus);
                }
                c => literal.push(c),
            }
            i += 1;
        }
        flush(&mut literal, &mut tokens);
        Ok(Self {
            source: pattern.into(),
            tokens: tokens.into(),
            hash,
        })
    }

    /// The resource string as written in the policy.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the (literal) requested resource matches. Allocates nothing;
    /// time is at most proportional to the pattern's length times the
    /// resource's.
    ///
    /// The classic glob algorithm: tokens are matched left to right, and on a
    /// mismatch only the most recent `*` gives up one more byte. Forgetting
    /// earlier stars is sound because the stretch between two stars is
    /// matched at the earliest place it fits, and a later end can always be
    /// absorbed by the following star. `+` needs no backtracking: it is only
    /// ever followed by `/` or the end, and cannot cross a `/`, so it takes
    /// everything up to the next `/`. The same fact keeps "earliest start"
    /// equal to "earliest end" for a stretch holding a `+`: such a stretch
    /// starts with a literal ending in `/`, whose position is pinned by the
    /// slashes the stretch must contain.
    pub fn matches(&self, resource: &str) -> bool {
        let text = resource.as_bytes();
        let tokens = &self.tokens[..];
        let mut t = 0;
        let mut pos = 0;
        // The token after the latest `*`, and where that star's run ends.
        let mut retry: Option<(usize, usize)> = None;
        loop {
            let advanced = match tokens.get(t) {
                None => {
                    if pos == text.len() || (self.hash && text[pos] == b'/') {
                        return true;
                    }
                    false
                }
                // A final star takes whatever is left.
                Some(Token::Star) if t + 1 == tokens.len() => return true,
                Some(Token::Star) => {
                    retry = Some((t + 1, pos));
                    t += 1;
                    true
                }
                Some(Token::Plus) => {
                    pos += text[pos..]
                        .iter()
                        .position(|&c| c == b'/')
                        .unwrap_or(text.len() - pos);
                    t += 1;
                    true
                }
                Some(Token::Literal(lit)) => {
                    if text[pos..].starts_with(lit) {
                        pos += lit.len();
                        t += 1;
                        true
                    } else {
                        false
                    }
                }
            };
            if advanced {
                continue;
            }
            match retry {
                Some((next, end)) if end < text.len() => {
                    retry = Some((next, end + 1));
                    t = next;
                    pos = end + 1;
                }
                _ => return false,
            }
        }
    }
}

fn flush(literal: &mut Vec<u8>, tokens: &mut Vec<Token>) {
    if !literal.is_empty() {
        tokens.push(Token::Literal(std::mem::take(literal).into_boxed_slice()));
    }
}

/// Something in a component's `accessControl` that was skipped. The nucleus
/// logs these and carries on; so should the broker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyWarning {
    /// `accessControl` is not a map of destination → policy id → policy (or a
    /// JSON string holding one); every policy of the component is ignored,
    /// as when Jackson fails to deserialize it in
    /// `AuthorizationPolicyParser.parseAllPoliciesForComponent`.
    #[error("accessControl ignored: {reason}")]
    Malformed {
        /// What is wrong, and where.
        reason: String,
    },
    /// A policy id is empty. The nucleus then skips the destination's whole
    /// policy list (`AuthorizationHandler.validatePolicyId`) — for every
    /// component, since it groups policies per destination; here the
    /// component's policies for that destination are dropped, and a broker
    /// that wants the nucleus's behaviour exactly can drop the other
    /// components' ones too.
    #[error("policies for {destination} ignored: a policy id is empty")]
    EmptyPolicyId {
        /// The destination whose policies were dropped.
        destination: String,
    },
    /// A policy has no `operations` (or an empty list) and was dropped
    /// (`AuthorizationPolicyParser.parseAuthorizationPolicyConfig`).
    #[error("policy {policy_id} for {destination} ignored: it has no operations")]
    MissingOperations {
        /// The destination.
        destination: String,
        /// The policy dropped.
        policy_id: String,
    },
    /// An empty operation name was skipped (the nucleus refuses to add it:
    /// `AuthorizationModule.addPermission` "Invalid arguments").
    #[error("policy {policy_id} for {destination}: empty operation skipped")]
    EmptyOperation {
        /// The destination.
        destination: String,
        /// The policy holding it.
        policy_id: String,
    },
    /// A resource that is not a valid pattern was skipped.
    #[error("policy {policy_id} for {destination}: resource {resource:?} skipped: {error}")]
    InvalidResource {
        /// The destination.
        destination: String,
        /// The policy holding it.
        policy_id: String,
        /// The resource as written.
        resource: String,
        /// Why it is invalid.
        #[source]
        error: PolicyError,
    },
    /// A resource whose recipe variable has no value was skipped.
    #[error(
        "policy {policy_id} for {destination}: resource {resource:?} skipped: \
         no value for {{{variable}}}"
    )]
    UnresolvedVariable {
        /// The destination.
        destination: String,
        /// The policy holding it.
        policy_id: String,
        /// The resource as written.
        resource: String,
        /// The variable, without braces, e.g. `iot:thingName`.
        variable: String,
    },
}

/// The operation standing for every operation of a destination.
const ANY_OPERATION: &str = "*";

#[derive(Debug, Clone, Default)]
struct DestinationPolicies {
    /// Operation → the patterns allowed for it. An entry with no patterns
    /// comes from policies without resources and admits only requests that
    /// carry no resource.
    operations: HashMap<String, Vec<ResourcePattern>>,
}

/// One component's `accessControl`, compiled: what that component (the
/// principal of all of its policies) may do.
#[derive(Debug, Clone, Default)]
pub struct ComponentPolicies {
    destinations: HashMap<String, DestinationPolicies>,
}

/// A policy as read from JSON, before compiling.
struct RawPolicy<'a> {
    id: &'a str,
    operations: Option<Vec<String>>,
    resources: Option<Vec<String>>,
}

impl ComponentPolicies {
    /// Compiles a component's `accessControl` configuration value.
    ///
    /// The shape is destination → policy id → `{policyDescription,
    /// operations, resources}`, property names in any letter case (Jackson
    /// `ACCEPT_CASE_INSENSITIVE_PROPERTIES`); the value may also be a string
    /// holding that object as JSON. Like Jackson, list items may be strings,
    /// numbers or booleans (coerced to strings); an unknown property, a
    /// `null` property, a `null` list item or a property given twice in
    /// different cases makes the whole value unreadable (one
    /// [`PolicyWarning::Malformed`]; the nucleus also ignores the whole
    /// value when Jackson fails). `null` or an absent value holds no
    /// policies.
    ///
    /// Resources may contain recipe variables `{namespace:key}` (a `{`
    /// not part of a `${…}` escape, up to the next `}`, with a `:` in
    /// between). `interpolate` gets the text between the braces and returns
    /// the value to put in its place, which then takes part in the pattern as
    /// if written there; `None` skips the resource with a warning, as
    /// Greengrass Lite does. A nucleus with `interpolateComponentConfiguration`
    /// off leaves such text as it is: return `Some(format!("{{{v}}}"))`.
    /// Braces without a `:` inside are plain characters.
    pub fn compile(
        access_control: &Value,
        interpolate: &dyn Fn(&str) -> Option<String>,
    ) -> (Self, Vec<PolicyWarning>) {
        let mut warnings = Vec::new();
        let parsed;
        let value = match access_control {
            Value::String(text) => match serde_json::from_str::<Value>(text) {
                Ok(v) => {
                    parsed = v;
                    &parsed
                }
                Err(e) => {
                    warnings.push(PolicyWarning::Malformed {
                        reason: format!("the string is not JSON: {e}"),
                    });
                    return (Self::default(), warnings);
                }
            },
            v => v,
        };
        let raw = match read_access_control(value) {
            Ok(raw) => raw,
            Err(reason) => {
                warnings.push(PolicyWarning::Malformed { reason });
                return (Self::default(), warnings);
            }
        };

        let mut this = Self::default();
        for (destination, policies) in raw {
            if policies.iter().any(|p| p.id.is_empty()) {
                warnings.push(PolicyWarning::EmptyPolicyId {
                    destination: destination.to_owned(),
                });
                continue;
            }
            let style = MatchStyle::for_destination(destination);
            let compiled = this.destinations.entry(destination.to_owned()).or_default();
            for policy in policies {
                compile_policy(
                    destination,
                    style,
                    policy,
                    compiled,
                    interpolate,
                    &mut warnings,
                );
            }
            if compiled.operations.is_empty() {
                this.destinations.remove(destination);
            }
        }
        (this, warnings)
    }

    /// Whether there is no permission at all.
    pub fn is_empty(&self) -> bool {
        self.destinations.is_empty()
    }

    /// Whether the component may perform `operation` of `destination` on
    /// `resource`. Allocates nothing.
    ///
    /// The policies for `operation` are tried, then those for `*` (the
    /// nucleus's `isAuthorized` lookup order, restricted to the component's
    /// own policies). A request without a resource is allowed by any policy
    /// for the operation, with or without resources (`WildcardTrie.matches`
    /// returns true for null); an empty resource is never allowed (the
    /// nucleus throws "Resource cannot be empty").
    pub fn is_authorized(
        &self,
        destination: &str,
        operation: &str,
        resource: Option<&str>,
    ) -> bool {
        if resource == Some("") {
            return false;
        }
        let Some(policies) = self.destinations.get(destination) else {
            return false;
        };
        [operation, ANY_OPERATION]
            .into_iter()
            .any(|op| match policies.operations.get(op) {
                None => false,
                Some(patterns) => match resource {
                    None => true,
                    Some(resource) => patterns.iter().any(|p| p.matches(resource)),
                },
            })
    }
}

fn compile_policy(
    destination: &str,
    style: MatchStyle,
    policy: RawPolicy<'_>,
    compiled: &mut DestinationPolicies,
    interpolate: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<PolicyWarning>,
) {
    let operations = policy.operations.unwrap_or_default();
    if operations.is_empty() {
        warnings.push(PolicyWarning::MissingOperations {
            destination: destination.to_owned(),
            policy_id: policy.id.to_owned(),
        });
        return;
    }
    let mut patterns = Vec::new();
    for resource in policy.resources.unwrap_or_default() {
        let text = match interpolate_resource(&resource, interpolate) {
            Ok(text) => text,
            Err(variable) => {
                warnings.push(PolicyWarning::UnresolvedVariable {
                    destination: destination.to_owned(),
                    policy_id: policy.id.to_owned(),
                    resource,
                    variable,
                });
                continue;
            }
        };
        match ResourcePattern::compile(&text, style) {
            Ok(pattern) => patterns.push(pattern),
            Err(error) => warnings.push(PolicyWarning::InvalidResource {
                destination: destination.to_owned(),
                policy_id: policy.id.to_owned(),
                resource,
                error,
            }),
        }
    }
    for operation in operations {
        if operation.is_empty() {
            warnings.push(PolicyWarning::EmptyOperation {
                destination: destination.to_owned(),
                policy_id: policy.id.to_owned(),
            });
            continue;
        }
        let allowed = compiled.operations.entry(operation).or_default();
        for pattern in &patterns {
            // The same resource in several policies needs checking once.
            if !allowed.iter().any(|p| p.source == pattern.source) {
                allowed.push(pattern.clone());
            }
        }
    }
}

/// Replaces the recipe variables of `resource`, or names the one without a
/// value.
fn interpolate_resource(
    resource: &str,
    interpolate: &dyn Fn(&str) -> Option<String>,
) -> Result<String, String> {
    let bytes = resource.as_bytes();
    let mut out = String::with_capacity(resource.len());
    let mut copied = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            // `${` opens an escape, never a variable: step over both bytes.
            b'$' if bytes.get(i + 1) == Some(&b'{') => i += 2,
            b'{' => {
                let body_len = resource[i + 1..].find(['{', '}']);
                match body_len {
                    Some(n)
                        if bytes[i + 1 + n] == b'}' && resource[i + 1..i + 1 + n].contains(':') =>
                    {
                        let variable = &resource[i + 1..i + 1 + n];
                        let value = interpolate(variable).ok_or_else(|| variable.to_owned())?;
                        out.push_str(&resource[copied..i]);
                        out.push_str(&value);
                        i += n + 2;
                        copied = i;
                    }
                    _ => i += 1,
                }
            }
            _ => i += 1,
        }
    }
    out.push_str(&resource[copied..]);
    Ok(out)
}

/// Reads destination → policy id → policy, Jackson-style (see
/// [`ComponentPolicies::compile`]), or says what is wrong.
fn read_access_control(value: &Value) -> Result<Vec<(&str, Vec<RawPolicy<'_>>)>, String> {
    let destinations = match value {
        Value::Null => return Ok(Vec::new()),
        Value::Object(map) => map,
        other => {
            return Err(format!(
                "expected a map of destinations, found {}",
                kind(other)
            ));
        }
    };
    let mut out = Vec::with_capacity(destinations.len());
    for (destination, policies) in destinations {
        let Value::Object(policies) = policies else {
            return Err(format!(
                "{destination}: expected a map of policies, found {}",
                kind(policies)
            ));
        };
        let mut raw = Vec::with_capacity(policies.len());
        for (id, policy) in policies {
            raw.push(read_policy(destination, id, policy)?);
        }
        out.push((destination.as_str(), raw));
    }
    Ok(out)
}

fn read_policy<'a>(
    destination: &str,
    id: &'a str,
    policy: &Value,
) -> Result<RawPolicy<'a>, String> {
    let Value::Object(properties) = policy else {
        return Err(format!(
            "{destination}.{id}: expected a policy map, found {}",
            kind(policy)
        ));
    };
    let mut raw = RawPolicy {
        id,
        operations: None,
        resources: None,
    };
    let mut description_seen = false;
    for (name, value) in properties {
        let at = |what: &str| format!("{destination}.{id}.{name}: {what}");
        if value.is_null() {
            // Lombok's @NonNull setters throw on an explicit null.
            return Err(at("null"));
        }
        if name.eq_ignore_ascii_case("policyDescription") {
            if std::mem::replace(&mut description_seen, true) {
                return Err(at("given twice"));
            }
            if value.is_array() || value.is_object() {
                return Err(at("expected text"));
            }
        } else if name.eq_ignore_ascii_case("operations") {
            if raw
                .operations
                .replace(string_list(value).map_err(|e| at(&e))?)
                .is_some()
            {
                return Err(at("given twice"));
            }
        } else if name.eq_ignore_ascii_case("resources") {
            if raw
                .resources
                .replace(string_list(value).map_err(|e| at(&e))?)
                .is_some()
            {
                return Err(at("given twice"));
            }
        } else {
            return Err(at("unknown property"));
        }
    }
    Ok(raw)
}

fn string_list(value: &Value) -> Result<Vec<String>, String> {
    let Value::Array(items) = value else {
        return Err(format!("expected a list, found {}", kind(value)));
    };
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => Ok(s.clone()),
            Value::Number(n) => Ok(n.to_string()),
            Value::Bool(b) => Ok(b.to_string()),
            other => Err(format!(
                "expected a list of strings, found {} in it",
                kind(other)
            )),
        })
        .collect()
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// The text of the nucleus's `AuthorizationException` on denial
/// (`AuthorizationHandler.isAuthorized`), which pubsub, lifecycle and CLI
/// return as the `UnauthorizedError` message.
pub fn denial_message(
    component: &str,
    destination: &str,
    operation: &str,
    resource: &str,
) -> String {
    format!(
        "Principal {component} is not authorized to perform \
         {destination}:{operation} on resource {resource}"
    )
}

/// A deliberately plain matcher that the property tests and fuzz targets
/// compare [`ResourcePattern`] against: it reads the pattern one character at
/// a time and tracks every position of the resource a prefix of the pattern
/// can reach. Quadratic and allocating; not for production.
#[doc(hidden)]
pub mod reference {
    use super::MatchStyle;

    #[derive(Clone, Copy, PartialEq)]
    enum Unit {
        Byte(u8),
        Star,
        Plus,
        Hash,
    }

    /// `None` when the pattern is invalid, else whether it matches.
    pub fn matches(pattern: &str, style: MatchStyle, resource: &str) -> Option<bool> {
        let p = pattern.as_bytes();
        let mqtt = style == MatchStyle::MqttStyle;
        if p.is_empty() {
            return None;
        }
        let mut units = Vec::new();
        let mut i = 0;
        while i < p.len() {
            let before = if i == 0 { None } else { Some(p[i - 1]) };
            let after = p.get(i + 1).copied();
            let unit = match p[i] {
                b'?' => return None,
                b'$' if after == Some(b'{') => {
                    let escaped = p.get(i + 2).copied()?;
                    if !matches!(escaped, b'*' | b'?' | b'$') || p.get(i + 3) != Some(&b'}') {
                        return None;
                    }
                    i += 3;
                    Unit::Byte(escaped)
                }
                b'*' => Unit::Star,
                b'+' if mqtt
                    && matches!(before, None | Some(b'/'))
                    && matches!(after, None | Some(b'/')) =>
                {
                    Unit::Plus
                }
                b'#' if mqtt && after.is_none() && matches!(before, None | Some(b'/')) => {
                    Unit::Hash
                }
                c => Unit::Byte(c),
            };
            units.push(unit);
            i += 1;
        }
        let text = resource.as_bytes();
        let parent = match units.as_slice() {
            [rest @ .., Unit::Byte(b'/'), Unit::Hash] => reaches_end(rest, text),
            _ => false,
        };
        Some(parent || reaches_end(&units, text))
    }

    fn reaches_end(units: &[Unit], text: &[u8]) -> bool {
        // reach[k]: the units so far can match text[..k].
        let mut reach = vec![false; text.len() + 1];
        reach[0] = true;
        for unit in units {
            let mut next = vec![false; text.len() + 1];
            for k in 0..=text.len() {
                next[k] = match unit {
                    Unit::Byte(c) => k > 0 && reach[k - 1] && text[k - 1] == *c,
                    Unit::Star | Unit::Hash => reach[k] || (k > 0 && next[k - 1]),
                    Unit::Plus => reach[k] || (k > 0 && next[k - 1] && text[k - 1] != b'/'),
                };
            }
            reach = next;
        }
        reach[text.len()]
    }
}
