//! `accessControl` policies: resource pattern matching in both styles (the
//! semantics.md §2.3 table, escapes, validation, worst cases, properties
//! against reference globs) and compiling and checking a component's
//! policies.

use std::time::{Duration, Instant};

use ggipc_protocol::policy::{
    ComponentPolicies, MatchStyle, PolicyError, PolicyWarning, ResourcePattern, denial_message,
    reference,
};
use proptest::prelude::*;
use serde_json::json;

fn matches(pattern: &str, style: MatchStyle, resource: &str) -> bool {
    ResourcePattern::compile(pattern, style)
        .unwrap_or_else(|e| panic!("{pattern:?} does not compile: {e}"))
        .matches(resource)
}

/// semantics.md §2.3: policy resource, request, STANDARD, MQTT_STYLE.
const TABLE: &[(&str, &str, bool, bool)] = &[
    ("*", "anything", true, true),
    ("*", "a/b/c", true, true),
    ("a/*", "a/b/c", true, true),
    ("a/*", "a/", true, true),
    ("a/*/c", "a/x/y/c", true, true),
    ("a/#", "a/b/c", false, true),
    ("a/#", "a", false, true),
    ("a/+/c", "a/b/c", false, true),
    ("a/+/c", "a/b/x/c", false, false),
    ("a/+", "a/#", false, true),
    ("a${*}", "a*", true, true),
    ("a${*}", "ab", false, false),
];

/// More cases in the same shape, each pinning one rule.
const MORE: &[(&str, &str, bool, bool)] = &[
    // Literal `+` and `#` in STANDARD.
    ("a/#", "a/#", true, true),
    ("a/+/c", "a/+/c", true, true),
    ("test/topic/#", "test/topic/filter", false, true),
    // Full-string match.
    ("a/b", "a/b/c", false, false),
    ("a/b", "a", false, false),
    ("a*", "xa", false, false),
    ("*a", "ab", false, false),
    // Several stars.
    ("*/*", "a", false, false),
    ("*/*", "/", true, true),
    ("a*b*c", "aXbYc", true, true),
    ("a*b*c", "abc", true, true),
    ("a*b*c", "acb", false, false),
    ("*a*a*", "aa", true, true),
    ("*ab", "aab", true, true),
    ("**", "x/y", true, true),
    // Whole-pattern wildcards.
    ("#", "a/b/c", false, true),
    ("#", "#", true, true),
    ("+", "abc", false, true),
    ("+", "a/b", false, false),
    ("+", "+", true, true),
    // `+` takes one level, including an empty one.
    ("a/+", "a/", false, true),
    ("+/b", "/b", false, true),
    ("a/+/+", "a/x/y", false, true),
    ("+/+", "a/b/c", false, false),
    // `#` takes the rest, and the level above it.
    ("a/#", "a/", false, true),
    ("a/#", "ab", false, false),
    ("a/#", "a/b/c/d", false, true),
    ("a/+/#", "a/b", false, true),
    ("a/+/#", "a/b/c/d", false, true),
    ("a/+/#", "a", false, false),
    ("/#", "/x", false, true),
    ("a*/#", "aXYZ", false, true),
    ("a/*xy/#", "a/12xy", false, true),
    ("a/*xy/#", "a/12xy/z", false, true),
    ("a/*xy/#", "a/12xyz", false, false),
    // Invalid MQTT uses are literal.
    ("a#", "a#", true, true),
    ("a#", "ab", false, false),
    ("a/#/b", "a/x/b", false, false),
    ("a/#/b", "a/#/b", true, true),
    ("a/b+", "a/bc", false, false),
    ("a/+b", "a/xb", false, false),
    ("a/*+", "a/x+", true, true),
    ("a/+*", "a/x", false, false),
    ("a/+*", "a/+x", true, true),
    // `+` and `*` together.
    ("*/+/c", "x/y/b/c", false, true),
    ("*/+/c", "x/y/b/d/c", false, true),
    ("*/+/c", "x/+/c", true, true),
    ("+/*", "a/b/c", false, true),
    ("a/*/+", "a/b/c/d", false, true),
    ("a/*/+/c", "a/1/2/x/c", false, true),
    ("*/b/+/d", "b/b/x/d", false, true),
    ("*/b/+/d", "b/b/x/y/d", false, false),
    // `$` is literal unless it starts an escape; escapes give literals.
    ("$aws/things/*", "$aws/things/x/shadow", true, true),
    ("a$", "a$", true, true),
    ("${$}{x}", "${x}", true, true),
    ("${?}", "?", true, true),
    ("${*}", "x", false, false),
    ("${*}*", "*abc", true, true),
    ("${$}${*}${?}", "$*?", true, true),
    ("a/${*}/#", "a/*", false, true),
    ("a/${*}/#", "a/x", false, false),
];

#[test]
fn semantics_table() {
    for &(pattern, request, standard, mqtt) in TABLE.iter().chain(MORE) {
        assert_eq!(
            matches(pattern, MatchStyle::Standard, request),
            standard,
            "STANDARD {pattern:?} vs {request:?}"
        );
        assert_eq!(
            matches(pattern, MatchStyle::MqttStyle, request),
            mqtt,
            "MQTT_STYLE {pattern:?} vs {request:?}"
        );
        assert_eq!(
            reference::matches(pattern, MatchStyle::Standard, request),
            Some(standard),
            "reference STANDARD {pattern:?} vs {request:?}"
        );
        assert_eq!(
            reference::matches(pattern, MatchStyle::MqttStyle, request),
            Some(mqtt),
            "reference MQTT_STYLE {pattern:?} vs {request:?}"
        );
    }
}

#[test]
fn validation() {
    let cases = [
        ("", PolicyError::Empty),
        ("?", PolicyError::BareQuestionMark { offset: 0 }),
        ("a/b?", PolicyError::BareQuestionMark { offset: 3 }),
        ("${x}", PolicyError::InvalidEscape { offset: 0 }),
        ("a${", PolicyError::InvalidEscape { offset: 1 }),
        ("a${*", PolicyError::InvalidEscape { offset: 1 }),
        ("a${*x", PolicyError::InvalidEscape { offset: 1 }),
        ("${**}", PolicyError::InvalidEscape { offset: 0 }),
        ("${}", PolicyError::InvalidEscape { offset: 0 }),
        ("${iot:thingName}", PolicyError::InvalidEscape { offset: 0 }),
        ("${{}", PolicyError::InvalidEscape { offset: 0 }),
        ("${#}/#", PolicyError::InvalidEscape { offset: 0 }),
        ("${é}", PolicyError::InvalidEscape { offset: 0 }),
        ("x${/#", PolicyError::InvalidEscape { offset: 1 }),
    ];
    for (pattern, error) in cases {
        for style in [MatchStyle::Standard, MatchStyle::MqttStyle] {
            assert_eq!(
                ResourcePattern::compile(pattern, style),
                Err(error.clone()),
                "{pattern:?}"
            );
            assert_eq!(
                reference::matches(pattern, style, "x"),
                None,
                "reference {pattern:?}"
            );
        }
    }
    for ok in ["$", "$$", "a$b", "${$}{", "{}", "a/{b}", "${?}", "}", "$}"] {
        assert!(
            ResourcePattern::compile(ok, MatchStyle::Standard).is_ok(),
            "{ok:?}"
        );
    }
    assert_eq!(
        PolicyError::InvalidEscape { offset: 3 }.to_string(),
        "`${` at byte 3 does not start one of the escapes `${*}`, `${?}`, `${$}`"
    );
    let pattern = ResourcePattern::compile("a/${*}", MatchStyle::Standard).unwrap();
    assert_eq!(pattern.as_str(), "a/${*}");
}

#[test]
fn unicode_resources() {
    assert!(matches("é/*", MatchStyle::Standard, "é/ü/ß"));
    assert!(matches("*ü", MatchStyle::Standard, "éü"));
    assert!(!matches("*ü", MatchStyle::Standard, "éu"));
    assert!(matches("a/+/c", MatchStyle::MqttStyle, "a/日本/c"));
}

#[test]
fn pathological_patterns_are_not_exponential() {
    let long = "a".repeat(20_000);
    let started = Instant::now();
    for style in [MatchStyle::Standard, MatchStyle::MqttStyle] {
        assert!(!matches("*a*a*a*a*a*b", style, &long));
        assert!(matches("*a*a*a*a*a*", style, &long));
        assert!(!matches("*aaaaaaaaaaaaaaaaaaaab", style, &long));
        let slashes = "a/".repeat(10_000);
        assert!(!matches("*a/*a/*a/+/*b", style, &slashes));
        assert!(!matches("*/+/+/+/+/+/b/#", style, &slashes));
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

fn standard_reference(pattern: &[u8], text: &[u8]) -> bool {
    // The textbook recursive glob: fine for the short inputs below.
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|skip| standard_reference(rest, &text[skip..])),
        Some((c, rest)) => text.first() == Some(c) && standard_reference(rest, &text[1..]),
    }
}

fn pattern_from(
    alphabet: &'static [&'static str],
    len: std::ops::Range<usize>,
) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(alphabet), len).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn standard_star_globs_match_textbook_glob(
        pattern in pattern_from(&["a", "b", "/", "*", "a", "*"], 1..8),
        text in pattern_from(&["a", "b", "/"], 0..10),
    ) {
        let compiled = ResourcePattern::compile(&pattern, MatchStyle::Standard).unwrap();
        prop_assert_eq!(
            compiled.matches(&text),
            standard_reference(pattern.as_bytes(), text.as_bytes()),
            "{:?} vs {:?}", pattern, text
        );
    }

    #[test]
    fn both_styles_match_reference(
        pattern in pattern_from(
            &["a", "b", "/", "*", "+", "#", "$", "${*}", "${$}", "${x}", "?", "/+", "/#"],
            1..9,
        ),
        text in pattern_from(&["a", "b", "/", "*", "+", "#", "$", "//"], 0..10),
    ) {
        for style in [MatchStyle::Standard, MatchStyle::MqttStyle] {
            let fast = ResourcePattern::compile(&pattern, style).ok().map(|p| p.matches(&text));
            prop_assert_eq!(
                fast,
                reference::matches(&pattern, style, &text),
                "{:?} {:?} vs {:?}", style, pattern, text
            );
        }
    }

    #[test]
    fn fuzz_entry_point_holds(data in prop::collection::vec(
        prop::sample::select(b"ab/*+#?${}\0\xff".to_vec()), 0..24,
    )) {
        ggipc_protocol::fuzzing::policy_match(&data);
    }
}

fn no_variables(_: &str) -> Option<String> {
    None
}

fn compile(value: serde_json::Value) -> (ComponentPolicies, Vec<PolicyWarning>) {
    ComponentPolicies::compile(&value, &no_variables)
}

const PUBSUB: &str = "aws.greengrass.ipc.pubsub";
const MQTT: &str = "aws.greengrass.ipc.mqttproxy";
const PUBLISH: &str = "aws.greengrass#PublishToTopic";
const SUBSCRIBE: &str = "aws.greengrass#SubscribeToTopic";

#[test]
fn component_policies() {
    let (policies, warnings) = compile(json!({
        PUBSUB: {
            "p1": {
                "policyDescription": "publish",
                "operations": [PUBLISH],
                "resources": ["t/1", "t/*/x"]
            },
            "p2": {
                "operations": [SUBSCRIBE],
                "resources": ["s/#"]
            },
            "p3": {
                "operations": [PUBLISH, SUBSCRIBE],
                "resources": ["both"]
            }
        },
        MQTT: {
            "m1": {
                "operations": ["aws.greengrass#SubscribeToIoTCore"],
                "resources": ["s/#", "d/+/x"]
            }
        }
    }));
    assert_eq!(warnings, []);
    assert!(!policies.is_empty());
    let allowed = |dest, op, res| policies.is_authorized(dest, op, res);
    assert!(allowed(PUBSUB, PUBLISH, Some("t/1")));
    assert!(allowed(PUBSUB, PUBLISH, Some("t/a/b/x")));
    assert!(allowed(PUBSUB, PUBLISH, Some("both")));
    assert!(allowed(PUBSUB, SUBSCRIBE, Some("both")));
    assert!(!allowed(PUBSUB, PUBLISH, Some("t/2")));
    assert!(
        !allowed(PUBSUB, SUBSCRIBE, Some("t/1")),
        "operations are kept apart"
    );
    // Pubsub is STANDARD: `#` is literal.
    assert!(allowed(PUBSUB, SUBSCRIBE, Some("s/#")));
    assert!(!allowed(PUBSUB, SUBSCRIBE, Some("s/x")));
    // mqttproxy is MQTT_STYLE.
    let iot = "aws.greengrass#SubscribeToIoTCore";
    assert!(allowed(MQTT, iot, Some("s/x/y")));
    assert!(allowed(MQTT, iot, Some("s")));
    assert!(allowed(MQTT, iot, Some("d/1/x")));
    assert!(allowed(MQTT, iot, Some("d/+/x")));
    assert!(!allowed(MQTT, iot, Some("d/1/2/x")));
    // Other destinations, empty and null resources.
    assert!(!allowed(
        "aws.greengrass.ipc.lifecycle",
        PUBLISH,
        Some("t/1")
    ));
    assert!(!allowed(PUBSUB, PUBLISH, Some("")));
    assert!(allowed(PUBSUB, PUBLISH, None));
    assert!(!allowed(PUBSUB, "aws.greengrass#Other", None));
}

#[test]
fn any_operation_and_null_resources() {
    let (policies, warnings) = compile(json!({
        PUBSUB: {
            "all": { "operations": ["*"], "resources": ["shared/*"] },
            "one": { "operations": [PUBLISH], "resources": ["mine"] }
        },
        "aws.greengrass.TokenExchangeService": {
            "tes": { "operations": ["getCredentials"] }
        },
        "aws.greengrass.Cli": {
            "cli": { "operations": ["aws.greengrass#ListComponents"], "resources": [] }
        }
    }));
    assert_eq!(warnings, []);
    // The operation's own policies first, then `*`.
    assert!(policies.is_authorized(PUBSUB, PUBLISH, Some("mine")));
    assert!(policies.is_authorized(PUBSUB, PUBLISH, Some("shared/x")));
    assert!(policies.is_authorized(PUBSUB, SUBSCRIBE, Some("shared/x")));
    assert!(!policies.is_authorized(PUBSUB, SUBSCRIBE, Some("mine")));
    // A policy without resources admits only requests without one.
    let tes = "aws.greengrass.TokenExchangeService";
    assert!(policies.is_authorized(tes, "getCredentials", None));
    assert!(!policies.is_authorized(tes, "getCredentials", Some("x")));
    assert!(policies.is_authorized("aws.greengrass.Cli", "aws.greengrass#ListComponents", None));
    assert!(!policies.is_authorized(
        "aws.greengrass.Cli",
        "aws.greengrass#ListComponents",
        Some("*")
    ));
}

#[test]
fn property_names_ignore_case_and_string_values_are_parsed() {
    let object = json!({
        PUBSUB: {
            "p": { "PolicyDescription": "x", "OPERATIONS": [PUBLISH], "Resources": ["t/*"] }
        }
    });
    let as_string = serde_json::Value::String(object.to_string());
    for value in [object, as_string] {
        let (policies, warnings) = compile(value);
        assert_eq!(warnings, []);
        assert!(policies.is_authorized(PUBSUB, PUBLISH, Some("t/1")));
    }
}

#[test]
fn jackson_coerces_scalars_in_lists() {
    let (policies, warnings) = compile(json!({
        PUBSUB: { "p": { "operations": [PUBLISH], "resources": [42, true] } }
    }));
    assert_eq!(warnings, []);
    assert!(policies.is_authorized(PUBSUB, PUBLISH, Some("42")));
    assert!(policies.is_authorized(PUBSUB, PUBLISH, Some("true")));
}

#[test]
fn malformed_access_control_grants_nothing() {
    let good = json!({ "operations": [PUBLISH], "resources": ["*"] });
    let bad = |policy| json!({ PUBSUB: { "good": good, "bad": policy } });
    let cases = [
        json!(["not", "a", "map"]),
        json!(7),
        json!("{ not json"),
        json!("[1]"),
        json!({ PUBSUB: ["x"] }),
        bad(json!("text")),
        bad(json!({ "operations": [PUBLISH], "extra": 1 })),
        bad(json!({ "operations": PUBLISH })),
        bad(json!({ "operations": [PUBLISH], "resources": null })),
        bad(json!({ "operations": [PUBLISH, null] })),
        bad(json!({ "operations": [[PUBLISH]] })),
        bad(json!({ "operations": [PUBLISH], "Operations": [PUBLISH] })),
        bad(json!({ "operations": [PUBLISH], "policyDescription": {} })),
        json!({ PUBSUB: { "good": good }, "aws.greengrass.Cli": { "bad": 1 } }),
    ];
    for value in cases {
        let (policies, warnings) = compile(value.clone());
        assert!(policies.is_empty(), "{value}");
        assert!(
            matches!(warnings.as_slice(), [PolicyWarning::Malformed { .. }]),
            "{value}: {warnings:?}"
        );
    }
    for empty in [json!(null), json!({}), json!("null"), json!({ PUBSUB: {} })] {
        let (policies, warnings) = compile(empty.clone());
        assert!(policies.is_empty(), "{empty}");
        assert_eq!(warnings, [], "{empty}");
    }
}

#[test]
fn bad_parts_are_skipped_with_warnings() {
    let (policies, warnings) = compile(json!({
        PUBSUB: {
            "noops": { "resources": ["*"] },
            "emptyops": { "operations": [], "resources": ["*"] },
            "p": { "operations": [PUBLISH, ""], "resources": ["ok/*", "bad?", "", "a${x}"] }
        },
        "aws.greengrass.Cli": {
            "": { "operations": ["*"], "resources": ["*"] },
            "fine": { "operations": ["*"], "resources": ["*"] }
        }
    }));
    let dest = PUBSUB.to_owned();
    let invalid = |resource: &str, error| PolicyWarning::InvalidResource {
        destination: dest.clone(),
        policy_id: "p".into(),
        resource: resource.into(),
        error,
    };
    let mut expected = vec![
        PolicyWarning::EmptyPolicyId {
            destination: "aws.greengrass.Cli".into(),
        },
        PolicyWarning::MissingOperations {
            destination: dest.clone(),
            policy_id: "emptyops".into(),
        },
        PolicyWarning::MissingOperations {
            destination: dest.clone(),
            policy_id: "noops".into(),
        },
        invalid("bad?", PolicyError::BareQuestionMark { offset: 3 }),
        invalid("", PolicyError::Empty),
        invalid("a${x}", PolicyError::InvalidEscape { offset: 1 }),
        PolicyWarning::EmptyOperation {
            destination: dest.clone(),
            policy_id: "p".into(),
        },
    ];
    let mut got = warnings;
    let key = |w: &PolicyWarning| w.to_string();
    got.sort_by_key(key);
    expected.sort_by_key(key);
    assert_eq!(got, expected);
    assert!(policies.is_authorized(PUBSUB, PUBLISH, Some("ok/1")));
    assert!(!policies.is_authorized(PUBSUB, PUBLISH, Some("bad?")));
    assert!(!policies.is_authorized(PUBSUB, SUBSCRIBE, Some("ok/1")));
    assert!(!policies.is_authorized("aws.greengrass.Cli", "x", Some("y")));
    assert_eq!(
        PolicyWarning::MissingOperations {
            destination: dest,
            policy_id: "noops".into()
        }
        .to_string(),
        "policy noops for aws.greengrass.ipc.pubsub ignored: it has no operations"
    );
}

#[test]
fn recipe_variables_are_interpolated() {
    let value = json!({
        MQTT: {
            "p": {
                "operations": ["aws.greengrass#PublishToIoTCore"],
                "resources": [
                    "$aws/things/{iot:thingName}/shadow/#",
                    "x/{unknown:var}",
                    "${$}{iot:thingName}",
                    "${*}{iot:thingName}{iot:thingName}",
                    "plain/{braces}",
                    "open/{iot:thingName"
                ]
            }
        }
    });
    let vars = |v: &str| (v == "iot:thingName").then(|| "dev1".to_owned());
    let (policies, warnings) = ComponentPolicies::compile(&value, &vars);
    assert_eq!(
        warnings,
        [PolicyWarning::UnresolvedVariable {
            destination: MQTT.into(),
            policy_id: "p".into(),
            resource: "x/{unknown:var}".into(),
            variable: "unknown:var".into(),
        }]
    );
    let op = "aws.greengrass#PublishToIoTCore";
    let allowed = |r| policies.is_authorized(MQTT, op, Some(r));
    assert!(allowed("$aws/things/dev1/shadow/update"));
    assert!(allowed("$aws/things/dev1/shadow"));
    assert!(!allowed("$aws/things/dev2/shadow/update"));
    assert!(!allowed("$aws/things/{iot:thingName}/shadow/update"));
    assert!(allowed("$dev1"));
    assert!(allowed("*dev1dev1"));
    assert!(allowed("plain/{braces}"));
    assert!(allowed("open/{iot:thingName"));
    // Variables are looked up only where they appear.
    let (_, warnings) = ComponentPolicies::compile(
        &json!({ PUBSUB: { "p": {
        "operations": [PUBLISH], "resources": ["${*}", "a/{b}"] } } }),
        &|_| panic!("no variable here"),
    );
    assert_eq!(warnings, []);
}

#[test]
fn denial_message_text() {
    assert_eq!(
        denial_message("com.example.A", PUBSUB, PUBLISH, "t/1"),
        "Principal com.example.A is not authorized to perform \
         aws.greengrass.ipc.pubsub:aws.greengrass#PublishToTopic on resource t/1"
    );
}

#[test]
fn fuzz_entry_point_reads_json() {
    // The whole input is also tried as an accessControl value.
    ggipc_protocol::fuzzing::policy_match(
        br#"{"aws.greengrass.ipc.mqttproxy":{"p":{"operations":["*"],"resources":["a/#"]}}}"#,
    );
    ggipc_protocol::fuzzing::policy_match(br#"{"x":{"":{"operations":[1]}}}"#);
}

#[test]
fn style_by_destination() {
    assert_eq!(MatchStyle::for_destination(MQTT), MatchStyle::MqttStyle);
    assert_eq!(MatchStyle::for_destination(PUBSUB), MatchStyle::Standard);
    assert_eq!(
        MatchStyle::for_destination("aws.greengrass.Cli"),
        MatchStyle::Standard
    );
}
