//! AWS IoT Core's topic rules, checked before anything goes upstream, and
//! the containment test between MQTT filters that lets one upstream
//! subscription serve several local ones.
//!
//! The limits follow the nucleus' `IotCoreTopicValidator` (`semantics.md`
//! §4.1) with one deliberate difference: lengths are counted in bytes of
//! UTF-8, which is what AWS IoT Core measures, where the Java validator
//! counts UTF-16 code units (field case BR-08). A topic of 200 two-byte
//! characters is 400 bytes and is refused here; the nucleus would pass it
//! and the cloud would then drop the connection.

use ggipc_protocol::topic::{TopicError, validate_filter};

/// Most bytes in the effective topic (after a Basic Ingest or shared
/// subscription prefix).
pub const MAX_TOPIC_BYTES: usize = 256;
/// Most `/` in the effective topic.
pub const MAX_SLASHES: usize = 7;
/// Reserved topics other than Basic Ingest get only this sanity limit under
/// MQTT 5: the cloud knows its reserved topics (shadow names add levels)
/// better than a list kept here would.
pub const MAX_RESERVED_TOPIC_BYTES: usize = 512;

const BASIC_INGEST_PREFIX: &str = "$aws/rules/";
const SHARED_PREFIX: &str = "$share/";

/// Why a topic or filter cannot go to AWS IoT Core.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopicRuleError {
    /// Empty topic or filter.
    #[error("topic must not be empty")]
    Empty,
    /// `+` or `#` in a publish topic.
    #[error("publish topics must not contain the wildcards '#' or '+'")]
    WildcardInPublish,
    /// Over 256 bytes.
    #[error(
        "topic is {bytes} bytes of UTF-8, over AWS IoT Core's limit of {MAX_TOPIC_BYTES} \
         (a '$aws/rules/<rule>/' or '$share/<group>/' prefix is not counted)"
    )]
    TooLong {
        /// Bytes in the effective topic.
        bytes: usize,
    },
    /// Over 7 slashes.
    #[error(
        "topic has {slashes} forward slashes, over AWS IoT Core's limit of {MAX_SLASHES} \
         (a '$aws/rules/<rule>/' or '$share/<group>/' prefix is not counted)"
    )]
    TooManySlashes {
        /// Slashes in the effective topic.
        slashes: usize,
    },
    /// A reserved topic over the sanity limit.
    #[error("reserved topic is {bytes} bytes of UTF-8, over {MAX_RESERVED_TOPIC_BYTES}")]
    ReservedTooLong {
        /// Bytes in the topic.
        bytes: usize,
    },
    /// `$aws/rules/<rule>/` with nothing after it.
    #[error("the Basic Ingest topic has nothing after '$aws/rules/<rule>/'")]
    EmptyBasicIngest,
    /// `$share/<group>/` with nothing after it.
    #[error("the shared subscription has no filter after '$share/<group>/'")]
    EmptyShared,
    /// A malformed MQTT filter.
    #[error("{0}")]
    Filter(#[from] TopicError),
}

/// Checks a PublishToIoTCore topic.
pub fn check_publish(topic: &str, mqtt5: bool) -> Result<(), TopicRuleError> {
    if topic.is_empty() {
        return Err(TopicRuleError::Empty);
    }
    if topic.contains(['#', '+']) {
        return Err(TopicRuleError::WildcardInPublish);
    }
    check_effective(topic, mqtt5, false)
}

/// Checks a SubscribeToIoTCore filter: MQTT syntax, then the same limits as
/// a publish; `$share/<group>/` is understood under MQTT 5.
pub fn check_subscribe(filter: &str, mqtt5: bool) -> Result<(), TopicRuleError> {
    if filter.is_empty() {
        return Err(TopicRuleError::Empty);
    }
    validate_filter(filter)?;
    check_effective(filter, mqtt5, true)
}

fn check_effective(topic: &str, mqtt5: bool, subscribe: bool) -> Result<(), TopicRuleError> {
    if !topic.starts_with('$') {
        return check_limits(topic);
    }
    if mqtt5 && let Some(rest) = topic.strip_prefix(SHARED_PREFIX) {
        // `$share/<group>/<filter>` only means a shared subscription when
        // subscribing; a publish to it is an ordinary (odd) topic.
        return match rest.split_once('/') {
            Some((group, filter)) if !group.is_empty() && subscribe => {
                if filter.is_empty() {
                    return Err(TopicRuleError::EmptyShared);
                }
                check_limits(filter)
            }
            _ => check_limits(topic),
        };
    }
    if let Some(rest) = topic.strip_prefix(BASIC_INGEST_PREFIX)
        && let Some((rule, effective)) = rest.split_once('/')
        && !rule.is_empty()
    {
        if effective.is_empty() {
            return Err(TopicRuleError::EmptyBasicIngest);
        }
        return check_limits(effective);
    }
    if mqtt5 {
        if topic.len() > MAX_RESERVED_TOPIC_BYTES {
            return Err(TopicRuleError::ReservedTooLong { bytes: topic.len() });
        }
        return Ok(());
    }
    // MQTT 3.1.1 has no way to learn the cloud's reason for a refusal (it
    // drops the connection), so unknown reserved topics get the full rules.
    check_limits(topic)
}

fn check_limits(topic: &str) -> Result<(), TopicRuleError> {
    let slashes = topic.bytes().filter(|b| *b == b'/').count();
    if slashes > MAX_SLASHES {
        return Err(TopicRuleError::TooManySlashes { slashes });
    }
    if topic.len() > MAX_TOPIC_BYTES {
        return Err(TopicRuleError::TooLong { bytes: topic.len() });
    }
    Ok(())
}

/// Whether every topic `narrow` matches is also matched by `wide` (MQTT
/// 3.1.1 §4.7, with the `$` rule of §4.7.2). Both must be valid filters.
/// Shared subscriptions (`$share/…`) cover nothing and are covered by
/// nothing but themselves: their messages are split among a group.
pub fn covers(wide: &str, narrow: &str) -> bool {
    if wide == narrow {
        return true;
    }
    if wide.starts_with(SHARED_PREFIX) || narrow.starts_with(SHARED_PREFIX) {
        return false;
    }
    // A filter starting with a wildcard matches no `$` topic, so it covers
    // a filter only if that one cannot match `$` topics either.
    let wide_open = wide.starts_with('+') || wide.starts_with('#');
    let narrow_reaches_dollar = narrow.starts_with('$');
    if wide_open && narrow_reaches_dollar {
        return false;
    }
    let mut w = wide.split('/');
    let mut n = narrow.split('/');
    loop {
        match (w.next(), n.next()) {
            (None, None) => return true,
            // `a/#` covers `a`, `a/b`, `a/+/#`: the rest, or nothing.
            (Some("#"), _) => return true,
            (Some(_), None) | (None, Some(_)) => return false,
            (Some(_), Some("#")) => return false,
            (Some("+"), Some(_)) => {}
            (Some(wl), Some(nl)) if wl == nl && nl != "+" => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_count_utf8_bytes_and_slashes() {
        assert_eq!(check_publish("a/b", false), Ok(()));
        let ascii = "a".repeat(256);
        assert_eq!(check_publish(&ascii, false), Ok(()));
        assert_eq!(
            check_publish(&"a".repeat(257), false),
            Err(TopicRuleError::TooLong { bytes: 257 })
        );
        // 200 two-byte characters: 400 bytes though only 200 UTF-16 units.
        let wide = "é".repeat(200);
        assert_eq!(
            check_publish(&wide, true),
            Err(TopicRuleError::TooLong { bytes: 400 })
        );
        assert_eq!(check_publish("1/2/3/4/5/6/7/8", false), Ok(()));
        assert_eq!(
            check_publish("1/2/3/4/5/6/7/8/9", false),
            Err(TopicRuleError::TooManySlashes { slashes: 8 })
        );
        assert_eq!(check_publish("", false), Err(TopicRuleError::Empty));
        assert_eq!(
            check_publish("a/+/b", false),
            Err(TopicRuleError::WildcardInPublish)
        );
        assert_eq!(
            check_publish("a/#", false),
            Err(TopicRuleError::WildcardInPublish)
        );
    }

    #[test]
    fn basic_ingest_prefix_is_not_counted() {
        // Seven slashes after the prefix: allowed.
        assert_eq!(
            check_publish("$aws/rules/rule1/a/b/c/d/e/f/g/h", false),
            Ok(())
        );
        assert_eq!(
            check_publish("$aws/rules/rule1/a/b/c/d/e/f/g/h/i", true),
            Err(TopicRuleError::TooManySlashes { slashes: 8 })
        );
        let long = format!("$aws/rules/r/{}", "x".repeat(256));
        assert_eq!(check_publish(&long, false), Ok(()));
        assert_eq!(
            check_publish("$aws/rules/r/", false),
            Err(TopicRuleError::EmptyBasicIngest)
        );
    }

    #[test]
    fn other_reserved_topics_depend_on_the_version() {
        let shadow = "$aws/things/t/shadow/name/n/update/x/y";
        assert_eq!(check_publish(shadow, true), Ok(()));
        assert_eq!(
            check_publish(shadow, false),
            Err(TopicRuleError::TooManySlashes { slashes: 8 })
        );
        let huge = format!("$aws/{}", "x".repeat(600));
        assert_eq!(
            check_publish(&huge, true),
            Err(TopicRuleError::ReservedTooLong { bytes: 605 })
        );
    }

    #[test]
    fn shared_subscriptions_under_mqtt5() {
        assert_eq!(check_subscribe("$share/g/a/b/c/d/e/f/g/h", true), Ok(()));
        assert!(check_subscribe("$share/g/a/b/c/d/e/f/g/h", false).is_err());
        assert_eq!(
            check_subscribe("$share/g/", true),
            Err(TopicRuleError::EmptyShared)
        );
    }

    #[test]
    fn subscribe_checks_filter_syntax() {
        assert_eq!(check_subscribe("a/+/b/#", false), Ok(()));
        assert!(matches!(
            check_subscribe("a/b#", false),
            Err(TopicRuleError::Filter(_))
        ));
        assert!(matches!(
            check_subscribe("a/#/b", false),
            Err(TopicRuleError::Filter(_))
        ));
    }

    #[test]
    fn containment() {
        assert!(covers("a/#", "a"));
        assert!(covers("a/#", "a/b/c"));
        assert!(covers("a/#", "a/+/#"));
        assert!(covers("a/+", "a/b"));
        assert!(covers("a/+", "a/+"));
        assert!(covers("#", "a/b"));
        assert!(covers("+/+", "a/+"));
        assert!(!covers("a/+", "a/#"));
        assert!(!covers("a/b", "a/+"));
        assert!(!covers("a/+", "a/b/c"));
        assert!(!covers("a/+/c", "a/b/+"));
        assert!(!covers("a", "a/#"));
        assert!(!covers("#", "$aws/things/x"));
        assert!(!covers("+/things/x", "$aws/things/x"));
        assert!(covers("$aws/#", "$aws/things/x"));
        assert!(covers("#", "+/x"));
        assert!(!covers("$share/g/a/#", "a/b"));
        assert!(!covers("a/#", "$share/g/a/b"));
    }

    /// Containment agrees with matching: whenever `covers(w, n)` holds, every
    /// topic of a small alphabet matched by `n` is matched by `w`.
    #[test]
    fn containment_agrees_with_matching() {
        use ggipc_protocol::topic::filter_matches;
        let levels = ["a", "b", "$x"];
        let mut topics = Vec::new();
        for len in 1..=3 {
            let mut idx = vec![0; len];
            loop {
                topics.push(idx.iter().map(|i| levels[*i]).collect::<Vec<_>>().join("/"));
                let mut k = 0;
                while k < len {
                    idx[k] += 1;
                    if idx[k] < levels.len() {
                        break;
                    }
                    idx[k] = 0;
                    k += 1;
                }
                if k == len {
                    break;
                }
            }
        }
        let filters = [
            "a", "a/b", "a/+", "+/b", "+", "#", "a/#", "+/#", "$x/#", "$x/+", "a/+/#", "+/+",
        ];
        for w in filters {
            for n in filters {
                if covers(w, n) {
                    for t in &topics {
                        assert!(
                            !filter_matches(n, t) || filter_matches(w, t),
                            "{w} covers {n} but not {t}"
                        );
                    }
                }
            }
        }
    }
}
