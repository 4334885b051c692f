//! Local pub/sub topics: filter and topic validation, MQTT 3.1.1 §4.7
//! matching, and the subscription index checked against the plain reference
//! matcher.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use ggipc_protocol::topic::{
    TopicError, TopicIndex, filter_matches, has_wildcard, reference, validate_filter,
    validate_publish_topic,
};
use proptest::prelude::*;

#[test]
fn filter_validation() {
    for ok in [
        "a", "a/b", "#", "+", "a/#", "a/+/b", "+/+", "/", "a//b", "a/", "$aws/+/x", "a*b", "+/#",
        "/#",
    ] {
        assert_eq!(validate_filter(ok), Ok(()), "{ok:?}");
    }
    assert_eq!(validate_filter(""), Err(TopicError::EmptyFilter));
    let misplaced = |offset| Err(TopicError::MisplacedMultiLevelWildcard { offset });
    assert_eq!(validate_filter("a/#/b"), misplaced(2));
    assert_eq!(validate_filter("#/"), misplaced(0));
    assert_eq!(validate_filter("a#"), misplaced(1));
    assert_eq!(validate_filter("a/b#"), misplaced(3));
    assert_eq!(validate_filter("a/#b"), misplaced(2));
    let partial = |offset| Err(TopicError::PartialSingleLevelWildcard { offset });
    assert_eq!(validate_filter("a+"), partial(1));
    assert_eq!(validate_filter("a/+b/c"), partial(2));
    assert_eq!(validate_filter("a/b/c+"), partial(5));
}

#[test]
fn publish_topic_validation() {
    for ok in [
        "a",
        "a/b",
        "$aws/things/x/shadow/get",
        "/",
        "a//",
        "a?b",
        "a${x}",
    ] {
        assert_eq!(validate_publish_topic(ok), Ok(()), "{ok:?}");
    }
    assert_eq!(validate_publish_topic(""), Err(TopicError::EmptyTopic));
    for (topic, wildcard, offset) in [
        ("a/+", '+', 2),
        ("a#", '#', 1),
        ("x/y*z", '*', 3),
        ("é+", '+', 2),
    ] {
        assert_eq!(
            validate_publish_topic(topic),
            Err(TopicError::WildcardInTopic { wildcard, offset }),
            "{topic:?}"
        );
    }
    // Messages are lowercase and say what is wrong.
    assert_eq!(
        validate_publish_topic("a/+").unwrap_err().to_string(),
        "publish topic contains the wildcard `+` at byte 2"
    );
}

#[test]
fn wildcard_detection() {
    for (filter, wild) in [
        ("a/b", false),
        ("#", true),
        ("+", true),
        ("a/#", true),
        ("a/+/b", true),
        ("a+", false),
        ("a#", false),
        ("a/#/b", false),
        ("#/a", false),
        ("a*", false),
        ("", false),
    ] {
        assert_eq!(has_wildcard(filter), wild, "{filter:?}");
    }
}

/// (filter, topic, matches) — MQTT 3.1.1 §4.7 examples and our choices.
const MATCH_CASES: &[(&str, &str, bool)] = &[
    // §4.7.1.2
    ("sport/tennis/player1/#", "sport/tennis/player1", true),
    (
        "sport/tennis/player1/#",
        "sport/tennis/player1/ranking",
        true,
    ),
    (
        "sport/tennis/player1/#",
        "sport/tennis/player1/score/wimbledon",
        true,
    ),
    ("sport/#", "sport", true),
    ("#", "sport/tennis", true),
    ("#", "/", true),
    // §4.7.1.3
    ("sport/tennis/+", "sport/tennis/player1", true),
    ("sport/tennis/+", "sport/tennis/player1/ranking", false),
    ("sport/+", "sport", false),
    ("sport/+", "sport/", true),
    ("+/+", "/finance", true),
    ("/+", "/finance", true),
    ("+", "/finance", false),
    // §4.7.2: `$` topics and filters starting with a wildcard.
    ("#", "$SYS/x", false),
    ("+/monitor/Clients", "$SYS/monitor/Clients", false),
    ("$SYS/#", "$SYS/monitor/Clients", true),
    ("$SYS/monitor/+", "$SYS/monitor/Clients", true),
    ("$aws/things/x", "$aws/things/x", true),
    ("$aws/+/x", "$aws/things/x", true),
    ("+", "$x", false),
    ("a/+", "a/$x", true),
    ("a/#", "a/$x", true),
    // Levels are split on every `/`, unlike Java's String.split.
    ("a/b", "a/b/", false),
    ("a/b/+", "a/b/", true),
    ("a/b/#", "a/b/", true),
    ("a//b", "a//b", true),
    ("a/+/b", "a//b", true),
    // Literal comparison everywhere else.
    ("a/b", "a/b", true),
    ("a/b", "a/c", false),
    ("a/b", "a", false),
    ("a", "a/b", false),
    ("a*", "ab", false),
    ("a/#/b", "a/#/b", true),
    ("a/#/b", "a/x/b", false),
    ("a+", "ab", false),
    ("#/a", "x/a", false),
    ("#/a", "#/a", true),
];

#[test]
fn matching_cases() {
    for &(filter, topic, expected) in MATCH_CASES {
        assert_eq!(
            filter_matches(filter, topic),
            expected,
            "{filter:?} vs {topic:?}"
        );
        assert_eq!(
            reference::filter_matches(filter, topic),
            expected,
            "reference: {filter:?} vs {topic:?}"
        );
        let mut index = TopicIndex::new();
        index.insert(filter, 7, ());
        assert_eq!(
            visited(&index, topic),
            if expected { vec![7] } else { vec![] }
        );
    }
}

fn visited<T>(index: &TopicIndex<T>, topic: &str) -> Vec<u64> {
    let mut ids = Vec::new();
    index.visit(topic, |id, _| ids.push(id));
    ids.sort_unstable();
    ids
}

#[test]
fn index_basics() {
    let mut index = TopicIndex::new();
    assert!(index.is_empty());
    index.insert("a/b", 1, "exact");
    index.insert("a/b", 2, "exact again");
    index.insert("a/+", 3, "plus");
    index.insert("a/#", 4, "hash");
    index.insert("#", 5, "all");
    index.insert("+/b", 6, "plus first");
    index.insert("a/b/c", 7, "deeper");
    assert_eq!(index.len(), 7);

    assert_eq!(visited(&index, "a/b"), [1, 2, 3, 4, 5, 6]);
    assert_eq!(visited(&index, "a"), [4, 5]);
    assert_eq!(visited(&index, "a/b/c"), [4, 5, 7]);
    assert_eq!(visited(&index, "$a/b"), Vec::<u64>::new());
    assert_eq!(visited(&index, "x/b"), [5, 6]);

    let mut values = Vec::new();
    index.visit("a/b", |id, v| values.push((id, *v)));
    values.sort_unstable();
    assert_eq!(values[2], (3, "plus"));

    assert_eq!(index.remove("a/b", 2), Some("exact again"));
    assert_eq!(index.remove("a/b", 2), None);
    assert_eq!(index.remove("a/+", 4), None, "id on another filter");
    assert_eq!(index.remove("nothing/+", 3), None);
    assert_eq!(index.remove("a/#", 4), Some("hash"));
    assert_eq!(visited(&index, "a/b"), [1, 3, 5, 6]);
    assert_eq!(index.len(), 5);
    for (filter, id) in [("a/b", 1), ("a/+", 3), ("#", 5), ("+/b", 6), ("a/b/c", 7)] {
        assert!(index.remove(filter, id).is_some(), "{filter}");
    }
    assert!(index.is_empty());
    assert_eq!(index.node_count(), 0);
}

#[test]
fn removal_prunes_only_what_is_unused() {
    let mut index = TopicIndex::new();
    index.insert("a/+/c/d", 1, ());
    let one = index.node_count();
    index.insert("a/+/c/#", 2, ());
    assert_eq!(
        index.node_count(),
        one,
        "a trailing `#` hangs off an existing node"
    );
    index.insert("a/+/x", 3, ());
    index.insert("a/+", 4, ());
    index.remove("a/+/c/d", 1);
    assert_eq!(visited(&index, "a/b/c/d"), [2]);
    assert_eq!(visited(&index, "a/b/c"), [2]);
    assert_eq!(visited(&index, "a/b/x"), [3]);
    assert_eq!(visited(&index, "a/b"), [4]);
    index.remove("a/+/c/#", 2);
    index.remove("a/+", 4);
    assert_eq!(visited(&index, "a/b/x"), [3]);
    index.remove("a/+/x", 3);
    assert_eq!(index.node_count(), 0);
}

#[test]
fn churn_returns_to_empty() {
    let mut index = TopicIndex::new();
    let filters = [
        "a/b",
        "a/+",
        "a/#",
        "+/+/c",
        "#",
        "x/y/z/#",
        "+",
        "a/b/c/d/e/+",
        "$x/+",
        "a//+",
    ];
    let mut live = Vec::new();
    let mut id = 0;
    for round in 0..50 {
        for (i, filter) in filters.iter().enumerate() {
            for copy in 0..(round % 4 + 1) {
                id += 1;
                let name = format!("{filter}/{}", (i + copy) % 3);
                index.insert(&name, id, id);
                live.push((name, id));
            }
        }
        // Remove about two thirds, oldest first, to interleave lifetimes.
        let keep = live.len() / 3;
        for (name, id) in live.drain(..live.len() - keep) {
            assert_eq!(index.remove(&name, id), Some(id));
        }
        assert_eq!(index.len(), live.len());
    }
    for (name, id) in live.drain(..) {
        assert_eq!(index.remove(&name, id), Some(id));
    }
    assert!(index.is_empty());
    assert_eq!(index.node_count(), 0);
}

#[test]
fn deep_filters_do_not_overflow_the_stack() {
    // The depth is a client's choice: insert, visit, remove and drop must
    // not recurse once per level. Test threads have small stacks.
    let deep = "+/".repeat(200_000) + "x";
    let topic = "a/".repeat(200_000) + "x";
    let mut index = TopicIndex::new();
    index.insert(&deep, 1, ());
    index.insert(&(deep.clone() + "/#"), 2, ());
    assert_eq!(visited(&index, &topic), [1, 2]);
    assert_eq!(index.remove(&deep, 1), Some(()));
    assert_eq!(visited(&index, &topic), [2]);
    assert!(index.node_count() > 200_000);
    drop(index);

    let mut index = TopicIndex::new();
    index.insert(&deep, 1, ());
    assert_eq!(index.remove(&deep, 1), Some(()));
    assert_eq!(index.node_count(), 0);
}

#[test]
fn publish_cost_does_not_grow_with_subscriptions() {
    // A sanity bound, not a benchmark: 100k subscriptions and 100k publishes
    // finish in well under the limit unless a publish scans every
    // subscription (that would be 10^10 steps).
    let mut index = TopicIndex::new();
    let mut id = 0;
    for device in 0..10_000 {
        for filter in [
            format!("devices/{device}/state"),
            format!("devices/{device}/cmd/+"),
            format!("devices/{device}/log/#"),
        ] {
            id += 1;
            index.insert(&filter, id, ());
        }
    }
    for i in 0..70_000 {
        id += 1;
        index.insert(&format!("other/{i}"), id, ());
    }
    let started = Instant::now();
    let mut hits = 0;
    for device in 0..100_000 {
        let d = device % 10_000;
        index.visit(&format!("devices/{d}/state"), |_, ()| hits += 1);
        index.visit(&format!("devices/{d}/cmd/reboot"), |_, ()| hits += 1);
    }
    assert_eq!(hits, 200_000);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
}

fn level() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["a", "b", "$x", "", "a", "b"])
}

fn topic() -> impl Strategy<Value = String> {
    prop::collection::vec(level(), 1..5).prop_map(|levels| levels.join("/"))
}

fn filter() -> impl Strategy<Value = String> {
    // Mostly valid filters, some with `#` in odd places and partial-level
    // wildcards, which every matcher must treat alike.
    let filter_level = prop::sample::select(vec!["a", "b", "$x", "", "+", "+", "#", "a+", "b#"]);
    (prop::collection::vec(filter_level, 1..5), any::<bool>()).prop_map(|(levels, hash)| {
        let mut filter = levels.join("/");
        if hash {
            filter.push_str("/#");
        }
        filter
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn matches_reference(filter in filter(), topic in topic()) {
        prop_assert_eq!(
            filter_matches(&filter, &topic),
            reference::filter_matches(&filter, &topic),
        );
    }

    #[test]
    fn index_visits_exactly_the_matching_subscriptions(
        filters in prop::collection::vec(filter(), 0..30),
        topics in prop::collection::vec(topic(), 1..10),
        removals in prop::collection::vec(any::<prop::sample::Index>(), 0..20),
    ) {
        let mut index = TopicIndex::new();
        let mut live: Vec<(u64, String)> = Vec::new();
        for (id, filter) in (0u64..).zip(&filters) {
            index.insert(filter, id, id);
            live.push((id, filter.clone()));
        }
        for r in &removals {
            if live.is_empty() {
                break;
            }
            let (id, filter) = live.remove(r.index(live.len()));
            prop_assert_eq!(index.remove(&filter, id), Some(id));
        }
        prop_assert_eq!(index.len(), live.len());
        for topic in &topics {
            let mut seen = Vec::new();
            index.visit(topic, |id, value| {
                assert_eq!(id, *value);
                seen.push(id);
            });
            let unique: BTreeSet<u64> = seen.iter().copied().collect();
            prop_assert_eq!(unique.len(), seen.len(), "a subscription was visited twice");
            let expected: BTreeSet<u64> = live
                .iter()
                .filter(|(_, f)| reference::filter_matches(f, topic))
                .map(|(id, _)| *id)
                .collect();
            prop_assert_eq!(unique, expected, "topic {:?}", topic);
        }
        for (id, filter) in live {
            prop_assert_eq!(index.remove(&filter, id), Some(id));
        }
        prop_assert_eq!(index.node_count(), 0);
    }

    #[test]
    fn fuzz_entry_point_holds(data in prop::collection::vec(
        prop::sample::select(b"ab$/+#*\0\xff".to_vec()), 0..24,
    )) {
        ggipc_protocol::fuzzing::topic_match(&data);
    }
}
