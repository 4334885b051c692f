//! Local publish/subscribe topics: validation, filter matching and the
//! subscription index used on the publish path (`semantics.md` §3.1).
//!
//! Filters follow MQTT 3.1.1 §4.7 in full (architecture.md, decisions), so a
//! message bridged to or from MQTT meets the same filters on both sides. That
//! departs from the Java nucleus (`SubscriptionTrie`) in three places:
//!
//! - `a/#` matches `a` (§4.7.1.2); Java wants at least one level below `a`.
//! - Levels are split on every `/`: `a/b/` has three levels, the last one
//!   empty, so it is matched by `a/b/+` and not by `a/b`. Java splits with
//!   `String.split("/")`, which drops trailing empty strings and so treats
//!   `a/b/` as `a/b`.
//! - A filter whose first level is a wildcard does not match a topic starting
//!   with `$` (§4.7.2); Java has no `$` rule. Filters that spell the `$` level
//!   out (`$aws/things/x`, `$aws/+/x`) match as usual.
//!
//! Which levels are wildcards is defined once, here, and used by every
//! function of this module, valid filter or not: a level that is exactly `+`,
//! and a last level that is exactly `#`. Everything else compares literally —
//! including a `#` level that is not last and `+`/`#` inside a longer level,
//! which [`validate_filter`] refuses but the matchers never panic on.

use std::collections::HashMap;
use std::fmt;
use std::str::Split;

/// A topic or topic filter is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopicError {
    /// The subscription filter is the empty string.
    #[error("topic filter is empty")]
    EmptyFilter,
    /// A `#` that is not the whole last level of the filter.
    #[error("`#` at byte {offset} of the topic filter is not the whole last level")]
    MisplacedMultiLevelWildcard {
        /// Byte offset of the offending `#`.
        offset: usize,
    },
    /// A `+` that shares its level with other characters.
    #[error("`+` at byte {offset} of the topic filter is not a whole level")]
    PartialSingleLevelWildcard {
        /// Byte offset of the offending `+`.
        offset: usize,
    },
    /// The publish topic is the empty string.
    #[error("publish topic is empty")]
    EmptyTopic,
    /// The publish topic contains `+`, `#` or `*`.
    #[error("publish topic contains the wildcard `{wildcard}` at byte {offset}")]
    WildcardInTopic {
        /// The character found.
        wildcard: char,
        /// Its byte offset.
        offset: usize,
    },
}

/// Checks a SubscribeToTopic filter: not empty, `#` only as the whole last
/// level, `+` only as a whole level (MQTT 3.1.1 §4.7.1). `*` is an ordinary
/// character in filters.
pub fn validate_filter(filter: &str) -> Result<(), TopicError> {
    if filter.is_empty() {
        return Err(TopicError::EmptyFilter);
    }
    let mut start = 0;
    for level in filter.split('/') {
        let end = start + level.len();
        if let Some(i) = level.find('#')
            && (level != "#" || end != filter.len())
        {
            return Err(TopicError::MisplacedMultiLevelWildcard { offset: start + i });
        }
        if let Some(i) = level.find('+')
            && level != "+"
        {
            return Err(TopicError::PartialSingleLevelWildcard { offset: start + i });
        }
        start = end + 1;
    }
    Ok(())
}

/// Checks a PublishToTopic topic: not empty, and no `+`, `#` or `*` anywhere.
///
/// The nucleus refuses all three characters wherever they appear, answering
/// `InvalidArgumentsError` "Publish topic must not contain a wildcard."
/// (`PubSubIPCEventStreamAgent` publish validation); `*` is included because
/// policy resources treat it as a glob.
pub fn validate_publish_topic(topic: &str) -> Result<(), TopicError> {
    if topic.is_empty() {
        return Err(TopicError::EmptyTopic);
    }
    match topic
        .char_indices()
        .find(|(_, c)| matches!(c, '+' | '#' | '*'))
    {
        Some((offset, wildcard)) => Err(TopicError::WildcardInTopic { wildcard, offset }),
        None => Ok(()),
    }
}

/// Whether the filter has a `+` level or a last `#` level.
///
/// This decides the default `receiveMode` of a subscription (FROM_OTHERS when
/// true, ALL otherwise), as the nucleus's `validateReceiveMode` does, and
/// whether [`TopicIndex`] files the filter in its exact map or its trie.
pub fn has_wildcard(filter: &str) -> bool {
    filter == "#" || filter.ends_with("/#") || filter.split('/').any(|level| level == "+")
}

/// Whether `filter` matches `topic` under MQTT 3.1.1 §4.7 (see the module
/// documentation for how this differs from the Java nucleus).
pub fn filter_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && starts_with_wildcard(filter) {
        return false;
    }
    let mut filter_levels = filter.split('/');
    let mut topic_levels = topic.split('/');
    loop {
        match (filter_levels.next(), topic_levels.next()) {
            (None, None) => return true,
            // A last `#` takes the rest, including nothing at all: `a/#`
            // matches `a` (§4.7.1.2).
            (Some("#"), _) if filter_levels.clone().next().is_none() => return true,
            (Some("+"), Some(_)) => {}
            (Some(f), Some(t)) if f == t => {}
            _ => return false,
        }
    }
}

/// §4.7.2: such a filter must not match a topic beginning with `$`.
fn starts_with_wildcard(filter: &str) -> bool {
    filter == "#" || filter == "+" || filter.starts_with("+/")
}

/// The subscriptions of a broker, keyed by filter, for finding the
/// subscribers of a published topic without looking at the others.
///
/// Filters without wildcards live in a hash map keyed by the whole filter, so
/// the common case costs one hash lookup per publish. Filters with `+` or a
/// last `#` live in a trie of levels; a publish walks only the branches its
/// levels select (the literal child and the `+` child of each node), and
/// collects `#` subscriptions on the way down.
///
/// Each subscription carries a caller-chosen id, unique per subscription; one
/// filter may hold any number of subscriptions. Matching follows
/// [`filter_matches`] exactly, invalid filters included.
pub struct TopicIndex<T> {
    exact: HashMap<String, Vec<(u64, T)>>,
    root: Node<T>,
    len: usize,
}

/// One trie level. Filters are stored at the node their last level leads to;
/// a last `#` level is not a node of its own but a list on its parent, which
/// is what makes `a/#` match `a`.
struct Node<T> {
    children: HashMap<String, Self>,
    plus: Option<Box<Self>>,
    /// Subscriptions whose filter ends at this node.
    here: Vec<(u64, T)>,
    /// Subscriptions whose filter is this node's path followed by `/#`.
    hash: Vec<(u64, T)>,
}

impl<T> Default for Node<T> {
    fn default() -> Self {
        Self {
            children: HashMap::new(),
            plus: None,
            here: Vec::new(),
            hash: Vec::new(),
        }
    }
}

impl<T> Node<T> {
    fn edge_count(&self) -> usize {
        self.children.len() + usize::from(self.plus.is_some())
    }

    fn has_subscriptions(&self) -> bool {
        !self.here.is_empty() || !self.hash.is_empty()
    }

    fn is_empty(&self) -> bool {
        !self.has_subscriptions() && self.edge_count() == 0
    }

    fn child(&self, level: &str) -> Option<&Self> {
        if level == "+" {
            self.plus.as_deref()
        } else {
            self.children.get(level)
        }
    }

    fn child_mut(&mut self, level: &str) -> Option<&mut Self> {
        if level == "+" {
            self.plus.as_deref_mut()
        } else {
            self.children.get_mut(level)
        }
    }

    /// Moves this node's children onto `out`, leaving it a leaf.
    fn take_children(&mut self, out: &mut Vec<Self>) {
        out.extend(self.children.drain().map(|(_, child)| child));
        if let Some(plus) = self.plus.take() {
            out.push(*plus);
        }
    }
}

impl<T> Drop for Node<T> {
    // The depth of the trie is the level count of the longest filter, which a
    // client chooses; the default drop glue would recurse that deep and could
    // overflow the stack. Flatten the subtree onto the heap instead.
    fn drop(&mut self) {
        if self.edge_count() == 0 {
            return;
        }
        let mut pending = Vec::new();
        self.take_children(&mut pending);
        while let Some(mut node) = pending.pop() {
            node.take_children(&mut pending);
        }
    }
}

/// The trie path of a wildcard filter: the levels leading to its node, and
/// whether it hangs off that node as a trailing `#`.
fn trie_path(filter: &str) -> (impl Iterator<Item = &str> + Clone, bool) {
    let (prefix, hash) = if filter == "#" {
        (None, true)
    } else if let Some(prefix) = filter.strip_suffix("/#") {
        (Some(prefix), true)
    } else {
        (Some(filter), false)
    };
    (prefix.into_iter().flat_map(|p| p.split('/')), hash)
}

/// Removes the subscription `id` from `subs`.
fn take_subscription<T>(subs: &mut Vec<(u64, T)>, id: u64) -> Option<T> {
    let i = subs.iter().position(|(sub, _)| *sub == id)?;
    let (_, value) = subs.swap_remove(i);
    // Give memory back after a burst of subscriptions on one filter.
    if subs.capacity() > 8 && subs.len() < subs.capacity() / 4 {
        subs.shrink_to(subs.len() * 2);
    }
    Some(value)
}

fn shrink_map<V>(map: &mut HashMap<String, V>) {
    // Same reason as in `take_subscription`: a map keeps its largest size
    // otherwise, and churn would ratchet memory up.
    if map.capacity() > 16 && map.len() < map.capacity() / 4 {
        map.shrink_to(map.len() * 2);
    }
}

impl<T> Default for TopicIndex<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> TopicIndex<T> {
    /// An empty index.
    pub fn new() -> Self {
        Self {
            exact: HashMap::new(),
            root: Node::default(),
            len: 0,
        }
    }

    /// Number of subscriptions.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no subscriptions.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Adds subscription `id` on `filter`. Ids must be unique among the
    /// subscriptions of the index; with a duplicate, [`remove`](Self::remove)
    /// takes out one of the two.
    pub fn insert(&mut self, filter: &str, id: u64, value: T) {
        self.len += 1;
        if !has_wildcard(filter) {
            match self.exact.get_mut(filter) {
                Some(subs) => subs.push((id, value)),
                None => {
                    self.exact.insert(filter.to_owned(), vec![(id, value)]);
                }
            }
            return;
        }
        let (levels, hash) = trie_path(filter);
        let mut node = &mut self.root;
        for level in levels {
            node = if level == "+" {
                node.plus.get_or_insert_with(Box::default)
            } else {
                node.children.entry(level.to_owned()).or_default()
            };
        }
        if hash {
            node.hash.push((id, value));
        } else {
            node.here.push((id, value));
        }
    }

    /// Removes subscription `id` from `filter`, giving back its value, and
    /// frees the trie nodes and map entries nothing needs any more.
    pub fn remove(&mut self, filter: &str, id: u64) -> Option<T> {
        let value = if has_wildcard(filter) {
            self.remove_wildcard(filter, id)?
        } else {
            let subs = self.exact.get_mut(filter)?;
            let value = take_subscription(subs, id)?;
            if subs.is_empty() {
                self.exact.remove(filter);
                shrink_map(&mut self.exact);
            }
            value
        };
        self.len -= 1;
        Some(value)
    }

    fn remove_wildcard(&mut self, filter: &str, id: u64) -> Option<T> {
        let (levels, hash) = trie_path(filter);

        let mut node = &mut self.root;
        for level in levels.clone() {
            node = node.child_mut(level)?;
        }
        let value = take_subscription(if hash { &mut node.hash } else { &mut node.here }, id)?;

        // Find the first node of the run at the end of the path whose nodes
        // hold nothing but the path itself: that whole run can go. Done
        // without recursion, since the depth is the client's choice.
        // The path exists: the subscription was just found at its end.
        let mut cut = None;
        let mut node = &self.root;
        for (depth, level) in levels.clone().enumerate() {
            let Some(child) = node.child(level) else {
                return Some(value);
            };
            node = child;
            if node.has_subscriptions() || node.edge_count() > 1 {
                cut = None;
            } else if cut.is_none() {
                cut = Some(depth);
            }
        }
        if !node.is_empty() {
            cut = None;
        }
        if let Some(cut) = cut {
            let mut levels = levels;
            let mut parent = &mut self.root;
            for level in levels.by_ref().take(cut) {
                let Some(child) = parent.child_mut(level) else {
                    return Some(value);
                };
                parent = child;
            }
            match levels.next() {
                Some("+") => parent.plus = None,
                Some(level) => {
                    parent.children.remove(level);
                    shrink_map(&mut parent.children);
                }
                None => {}
            }
        }
        Some(value)
    }

    /// Calls `f` once for every subscription whose filter matches `topic`,
    /// with its id and value. Allocates nothing.
    ///
    /// The order is: exact-filter subscriptions first, then trie ones in an
    /// unspecified order.
    pub fn visit(&self, topic: &str, mut f: impl FnMut(u64, &T)) {
        if let Some(subs) = self.exact.get(topic) {
            for (id, value) in subs {
                f(*id, value);
            }
        }
        if self.root.is_empty() {
            return;
        }
        // §4.7.2: the root's wildcards are closed to `$` topics.
        let wildcards = !topic.starts_with('$');
        walk(&self.root, topic.split('/'), wildcards, &mut f);
    }

    /// Trie nodes below the root plus entries of the exact map: zero when the
    /// index is empty, which tests use to see that removal frees everything.
    #[doc(hidden)]
    pub fn node_count(&self) -> usize {
        let mut count = self.exact.len();
        let mut pending: Vec<&Node<T>> = vec![&self.root];
        while let Some(node) = pending.pop() {
            count += node.edge_count();
            pending.extend(node.children.values());
            pending.extend(node.plus.as_deref());
        }
        count
    }
}

/// Descends the trie along `levels`. Loops while only one branch matches and
/// recurses where both the literal and the `+` child do, so the stack grows
/// with the number of such forks on the path, not with the topic's depth.
fn walk<T, F: FnMut(u64, &T)>(
    mut node: &Node<T>,
    mut levels: Split<'_, char>,
    mut wildcards: bool,
    f: &mut F,
) {
    loop {
        if wildcards {
            for (id, value) in &node.hash {
                f(*id, value);
            }
        }
        let Some(level) = levels.next() else {
            for (id, value) in &node.here {
                f(*id, value);
            }
            return;
        };
        let literal = node.children.get(level);
        let plus = if wildcards {
            node.plus.as_deref()
        } else {
            None
        };
        node = match (literal, plus) {
            (Some(literal), Some(plus)) => {
                walk(plus, levels.clone(), true, f);
                literal
            }
            (Some(next), None) | (None, Some(next)) => next,
            (None, None) => return,
        };
        wildcards = true;
    }
}

impl<T> fmt::Debug for TopicIndex<T> {
    // Sizes only: a broker's index can hold many thousands of filters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TopicIndex")
            .field("len", &self.len)
            .field("exact_filters", &self.exact.len())
            .field("trie_is_empty", &self.root.is_empty())
            .finish()
    }
}

/// A deliberately plain matcher that the property tests and fuzz targets
/// compare [`filter_matches`] and [`TopicIndex`] against. Not for production:
/// it allocates and recurses once per level.
#[doc(hidden)]
pub mod reference {
    /// MQTT 3.1.1 §4.7 matching, written as directly as possible.
    pub fn filter_matches(filter: &str, topic: &str) -> bool {
        fn go(filter: &[&str], topic: &[&str]) -> bool {
            match (filter, topic) {
                (["#"], _) => true,
                ([], []) => true,
                (["+", f @ ..], [_, t @ ..]) => go(f, t),
                ([fl, f @ ..], [tl, t @ ..]) => fl == tl && go(f, t),
                _ => false,
            }
        }
        let filter: Vec<&str> = filter.split('/').collect();
        let topic_levels: Vec<&str> = topic.split('/').collect();
        let wildcard_first = filter[0] == "+" || filter == ["#"];
        if wildcard_first && topic.starts_with('$') {
            return false;
        }
        go(&filter, &topic_levels)
    }
}
