//! A component's configuration as the nucleus keeps it: a tree of
//! containers and leaves whose keys compare case-insensitively (the stored
//! spelling is the first one written) and whose every node carries the time
//! it was last modified, in milliseconds since the epoch
//! (N:…/config/Topics.java, Topic.java, CaseInsensitiveString.java).
//!
//! JSON objects become containers; everything else, arrays and `null`
//! included, is a leaf value. A container's modification time is the latest
//! of its own creation and of every write below it, which is what the
//! stale-timestamp rule of UpdateConfiguration compares against.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

/// Milliseconds since the Unix epoch.
pub(crate) type Millis = i64;

/// A key as compared: the nucleus folds case with `toLowerCase`.
pub(crate) fn fold(key: &str) -> String {
    key.to_lowercase()
}

/// Whether `path` is `ancestor` or below it, comparing keys without case.
pub(crate) fn is_within(path: &[String], ancestor: &[String]) -> bool {
    ancestor.len() <= path.len()
        && ancestor
            .iter()
            .zip(path)
            .all(|(a, p)| a == p || fold(a) == fold(p))
}

/// One node below a container.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    /// A value that is not a JSON object.
    Leaf {
        /// The value.
        value: Value,
        /// When it was last written.
        modtime: Millis,
    },
    /// A map of further nodes.
    Container(Container),
}

impl Node {
    fn from_json(value: &Value, modtime: Millis) -> Self {
        match value {
            Value::Object(map) => Self::Container(Container::from_json(map, modtime)),
            other => Self::Leaf {
                value: other.clone(),
                modtime,
            },
        }
    }

    fn to_json(&self) -> Value {
        match self {
            Self::Leaf { value, .. } => value.clone(),
            Self::Container(c) => c.to_json(),
        }
    }
}

/// A container node; a component's whole configuration is one.
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Container {
    modtime: Millis,
    /// By folded key.
    children: BTreeMap<String, Child>,
}

#[derive(Debug, Clone, PartialEq)]
struct Child {
    /// The key as first written.
    name: String,
    node: Node,
}

/// What a path leads to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum NodeRef<'a> {
    /// A leaf and its value.
    Leaf(&'a Value),
    /// A container.
    Container(&'a Container),
}

/// A written leaf, or a container created empty: what UpdateConfiguration
/// keeps across restarts and what subscribers hear about.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Written {
    /// From the configuration root, keys as stored.
    pub(crate) path: Vec<String>,
    /// The leaf's new value; an empty object for a container created empty.
    pub(crate) value: Value,
}

/// A node that changed between two versions of a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    /// From the configuration root, keys as stored.
    pub(crate) path: Vec<String>,
    /// The node is gone (with everything below it).
    pub(crate) removed: bool,
}

/// A map met a leaf, or a value met a container. The nucleus refuses to
/// change a node's kind in a merge (`Topics.createInteriorChild`,
/// `createLeafChild`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Conflict {
    path: Vec<String>,
    existing_is_leaf: bool,
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let path = self.path.join(".");
        if self.existing_is_leaf {
            write!(f, "{path} is already a leaf, cannot become a container")
        } else {
            write!(f, "{path} is already a container, cannot become a leaf")
        }
    }
}

impl Container {
    /// A tree holding `map`, every node modified at `modtime`.
    pub(crate) fn from_json(map: &Map<String, Value>, modtime: Millis) -> Self {
        let mut container = Self {
            modtime,
            children: BTreeMap::new(),
        };
        for (key, value) in map {
            container.absorb(key, value, modtime);
        }
        container
    }

    /// Adds `key` while building from JSON. Keys that differ only in case
    /// are one key to the nucleus: maps merge, anything else replaces.
    fn absorb(&mut self, key: &str, value: &Value, modtime: Millis) {
        if let (
            Some(Child {
                node: Node::Container(existing),
                ..
            }),
            Value::Object(map),
        ) = (self.children.get_mut(&fold(key)), value)
        {
            for (k, v) in map {
                existing.absorb(k, v, modtime);
            }
            return;
        }
        self.children.insert(
            fold(key),
            Child {
                name: key.to_owned(),
                node: Node::from_json(value, modtime),
            },
        );
    }

    /// When this container or anything below it was last modified.
    pub(crate) fn modtime(&self) -> Millis {
        self.modtime
    }

    fn child(&self, key: &str) -> Option<&Child> {
        self.children.get(&fold(key))
    }

    /// The node at `path` (the root for an empty path) and the path as
    /// stored. A path through a leaf leads nowhere.
    pub(crate) fn find(&self, path: &[String]) -> Option<(Vec<String>, NodeRef<'_>)> {
        let mut stored = Vec::with_capacity(path.len());
        let mut here = NodeRef::Container(self);
        for key in path {
            let NodeRef::Container(container) = here else {
                return None;
            };
            let child = container.child(key)?;
            stored.push(child.name.clone());
            here = match &child.node {
                Node::Leaf { value, .. } => NodeRef::Leaf(value),
                Node::Container(c) => NodeRef::Container(c),
            };
        }
        Some((stored, here))
    }

    /// The value at `path` as JSON, if any.
    pub(crate) fn value_at(&self, path: &[String]) -> Option<Value> {
        match self.find(path)?.1 {
            NodeRef::Leaf(value) => Some(value.clone()),
            NodeRef::Container(c) => Some(c.to_json()),
        }
    }

    /// Everything, as JSON.
    pub(crate) fn to_json(&self) -> Value {
        Value::Object(
            self.children
                .values()
                .map(|c| (c.name.clone(), c.node.to_json()))
                .collect(),
        )
    }

    /// What GetConfiguration shows of a container: like the nucleus'
    /// `Topics.toPOJO`, keys starting with `_` are left out at every level.
    pub(crate) fn to_visible_json(&self) -> Value {
        Value::Object(
            self.children
                .values()
                .filter(|c| !c.name.starts_with('_'))
                .map(|c| {
                    let value = match &c.node {
                        Node::Leaf { value, .. } => value.clone(),
                        Node::Container(inner) => inner.to_visible_json(),
                    };
                    (c.name.clone(), value)
                })
                .collect(),
        )
    }

    /// Checks that `path` can be a container: every node on it that exists
    /// is one.
    fn check_path(&self, path: &[String]) -> Result<Option<&Self>, Conflict> {
        let mut here = self;
        for (i, key) in path.iter().enumerate() {
            match here.child(key) {
                None => return Ok(None),
                Some(Child {
                    node: Node::Container(c),
                    ..
                }) => here = c,
                Some(Child {
                    node: Node::Leaf { .. },
                    name,
                }) => {
                    let mut at = path[..i].to_vec();
                    at.push(name.clone());
                    return Err(Conflict {
                        path: at,
                        existing_is_leaf: true,
                    });
                }
            }
        }
        Ok(Some(here))
    }

    /// Checks that merging `update` here changes no node's kind.
    fn check_merge(&self, prefix: &[String], update: &Map<String, Value>) -> Result<(), Conflict> {
        for (key, value) in update {
            let Some(child) = self.child(key) else {
                continue;
            };
            let conflict = |existing_is_leaf| {
                let mut path = prefix.to_vec();
                path.push(child.name.clone());
                Conflict {
                    path,
                    existing_is_leaf,
                }
            };
            match (&child.node, value) {
                (Node::Container(c), Value::Object(map)) => {
                    let mut path = prefix.to_vec();
                    path.push(child.name.clone());
                    c.check_merge(&path, map)?;
                }
                (Node::Container(_), _) => return Err(conflict(false)),
                (Node::Leaf { .. }, Value::Object(_)) => return Err(conflict(true)),
                (Node::Leaf { .. }, _) => {}
            }
        }
        Ok(())
    }

    /// Walks to `path`, creating missing containers modified at `modtime`.
    /// Returns the container and the path as stored. The path must have
    /// been checked.
    fn walk_create(&mut self, path: &[String], modtime: Millis) -> (&mut Self, Vec<String>) {
        let mut here = self;
        let mut stored = Vec::with_capacity(path.len());
        for key in path {
            let child = here.children.entry(fold(key)).or_insert_with(|| Child {
                name: key.clone(),
                node: Node::Container(Self {
                    modtime,
                    children: BTreeMap::new(),
                }),
            });
            stored.push(child.name.clone());
            here = match &mut child.node {
                Node::Container(c) => c,
                // check_path ruled leaves out.
                Node::Leaf { .. } => unreachable!("walk_create through a leaf"),
            };
        }
        (here, stored)
    }

    /// Raises the modification time of the root and of every container on
    /// `path` to at least `modtime`.
    fn touch(&mut self, path: &[String], modtime: Millis) {
        let mut here = self;
        here.modtime = here.modtime.max(modtime);
        for key in path {
            match here.children.get_mut(&fold(key)) {
                Some(Child {
                    node: Node::Container(c),
                    ..
                }) => {
                    c.modtime = c.modtime.max(modtime);
                    here = c;
                }
                _ => return,
            }
        }
    }

    /// UpdateConfiguration's MERGE of `update` into the container at `path`
    /// (created if missing), as the nucleus' `Topics.updateFromMap`: maps
    /// merge key by key; a leaf takes the new value unless the value is the
    /// same or the leaf was modified after `modtime`. Returns what was
    /// written; changes nothing when a node would change kind.
    pub(crate) fn merge(
        &mut self,
        path: &[String],
        update: &Map<String, Value>,
        modtime: Millis,
    ) -> Result<Vec<Written>, Conflict> {
        let existed = match self.check_path(path)? {
            Some(target) => {
                target.check_merge(path, update)?;
                true
            }
            None => false,
        };
        let (target, stored) = self.walk_create(path, modtime);
        let mut written = Vec::new();
        target.merge_map(&stored, update, modtime, &mut written);
        if !existed && update.is_empty() {
            written.push(Written {
                path: stored,
                value: Value::Object(Map::new()),
            });
        }
        if !written.is_empty() {
            self.touch(path, modtime);
        }
        Ok(written)
    }

    fn merge_map(
        &mut self,
        prefix: &[String],
        update: &Map<String, Value>,
        modtime: Millis,
        written: &mut Vec<Written>,
    ) {
        let before = written.len();
        for (key, value) in update {
            let folded = fold(key);
            if let Some(child) = self.children.get_mut(&folded) {
                let path = with(prefix, &child.name);
                match (&mut child.node, value) {
                    (Node::Container(c), Value::Object(map)) => {
                        c.merge_map(&path, map, modtime, written);
                    }
                    (
                        Node::Leaf {
                            value: current,
                            modtime: leaf_time,
                        },
                        new,
                        // Topic.withNewerValue: the same value changes
                        // nothing, not even the time; an older write loses to a
                        // newer one.
                    ) if !new.is_object() && *current != *new && modtime >= *leaf_time => {
                        *current = new.clone();
                        *leaf_time = modtime;
                        written.push(Written {
                            path,
                            value: new.clone(),
                        });
                    }
                    // Unchanged or older leaves; check_merge ruled kind
                    // changes out.
                    _ => {}
                }
                continue;
            }
            let path = with(prefix, key);
            let node = match value {
                Value::Object(map) => {
                    let mut c = Self {
                        modtime,
                        children: BTreeMap::new(),
                    };
                    c.merge_map(&path, map, modtime, written);
                    if map.is_empty() {
                        written.push(Written {
                            path,
                            value: Value::Object(Map::new()),
                        });
                    }
                    Node::Container(c)
                }
                other => {
                    written.push(Written {
                        path,
                        value: other.clone(),
                    });
                    Node::Leaf {
                        value: other.clone(),
                        modtime,
                    }
                }
            };
            self.children.insert(
                folded,
                Child {
                    name: key.clone(),
                    node,
                },
            );
        }
        if written.len() > before {
            self.modtime = self.modtime.max(modtime);
        }
    }

    /// Restores one persisted write at `path` (not the root): a leaf value,
    /// or an empty container for an object. Applied whatever the times;
    /// containers on the way take at least `modtime`.
    pub(crate) fn replay(
        &mut self,
        path: &[String],
        value: &Value,
        modtime: Millis,
    ) -> Result<(), Conflict> {
        let Some((last, parents)) = path.split_last() else {
            return Ok(());
        };
        if let Some(parent) = self.check_path(parents)?
            && let Some(child) = parent.child(last)
        {
            let existing_is_leaf = matches!(child.node, Node::Leaf { .. });
            if existing_is_leaf == value.is_object() {
                return Err(Conflict {
                    path: with(parents, &child.name),
                    existing_is_leaf,
                });
            }
        }
        let (parent, _) = self.walk_create(parents, modtime);
        let folded = fold(last);
        if value.is_object() {
            parent.children.entry(folded).or_insert_with(|| Child {
                name: last.clone(),
                node: Node::Container(Self {
                    modtime,
                    children: BTreeMap::new(),
                }),
            });
        } else {
            let leaf = Node::Leaf {
                value: value.clone(),
                modtime,
            };
            match parent.children.get_mut(&folded) {
                Some(child) => child.node = leaf,
                None => {
                    parent.children.insert(
                        folded,
                        Child {
                            name: last.clone(),
                            node: leaf,
                        },
                    );
                }
            }
        }
        self.touch(path, modtime);
        Ok(())
    }

    /// The nodes that differ from `old` to `new`, as the nucleus notifies
    /// them: a changed or new leaf, a removed node (once, not its
    /// descendants); a node that changes kind is removed, then its new
    /// leaves are new. Containers added empty are not reported (the
    /// nucleus suppresses `interiorAdded`).
    pub(crate) fn diff(old: &Self, new: &Self) -> Vec<Change> {
        let mut changes = Vec::new();
        diff_into(old, new, &mut Vec::new(), &mut changes);
        changes
    }
}

fn diff_into(old: &Container, new: &Container, prefix: &mut Vec<String>, out: &mut Vec<Change>) {
    for (key, before) in &old.children {
        match new.children.get(key) {
            None => out.push(Change {
                path: with(prefix, &before.name),
                removed: true,
            }),
            Some(after) => {
                prefix.push(after.name.clone());
                match (&before.node, &after.node) {
                    (Node::Container(a), Node::Container(b)) => diff_into(a, b, prefix, out),
                    (Node::Leaf { value: a, .. }, Node::Leaf { value: b, .. }) => {
                        if a != b {
                            out.push(Change {
                                path: prefix.clone(),
                                removed: false,
                            });
                        }
                    }
                    (_, node) => {
                        out.push(Change {
                            path: prefix.clone(),
                            removed: true,
                        });
                        leaves_into(node, prefix, out);
                    }
                }
                prefix.pop();
            }
        }
    }
    for (key, after) in &new.children {
        if !old.children.contains_key(key) {
            prefix.push(after.name.clone());
            leaves_into(&after.node, prefix, out);
            prefix.pop();
        }
    }
}

fn leaves_into(node: &Node, prefix: &mut Vec<String>, out: &mut Vec<Change>) {
    match node {
        Node::Leaf { .. } => out.push(Change {
            path: prefix.clone(),
            removed: false,
        }),
        Node::Container(c) => {
            for child in c.children.values() {
                prefix.push(child.name.clone());
                leaves_into(&child.node, prefix, out);
                prefix.pop();
            }
        }
    }
}

fn with(prefix: &[String], last: &str) -> Vec<String> {
    let mut path = prefix.to_vec();
    path.push(last.to_owned());
    path
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn tree(value: Value, modtime: Millis) -> Container {
        Container::from_json(value.as_object().unwrap(), modtime)
    }

    fn path(keys: &[&str]) -> Vec<String> {
        keys.iter().map(|k| (*k).to_owned()).collect()
    }

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    fn modtime_at(t: &Container, keys: &[&str]) -> Millis {
        let mut here = t;
        let mut keys = keys.iter().peekable();
        while let Some(key) = keys.next() {
            match &here.child(key).unwrap().node {
                Node::Container(c) => here = c,
                Node::Leaf { modtime, .. } => {
                    assert!(keys.peek().is_none(), "path through a leaf");
                    return *modtime;
                }
            }
        }
        here.modtime
    }

    #[test]
    fn keys_match_without_case_and_report_their_stored_spelling() {
        let t = tree(json!({"Mqtt": {"Port": 8883}, "list": [1, 2]}), 5);
        let (stored, node) = t.find(&path(&["mqtt", "PORT"])).unwrap();
        assert_eq!(stored, path(&["Mqtt", "Port"]));
        assert_eq!(node, NodeRef::Leaf(&json!(8883)));
        assert_eq!(t.value_at(&path(&["LIST"])), Some(json!([1, 2])));
        assert!(t.find(&path(&["mqtt", "host"])).is_none());
        // A path through a leaf leads nowhere.
        assert!(t.find(&path(&["list", "0"])).is_none());
        assert!(matches!(t.find(&[]), Some((p, NodeRef::Container(_))) if p.is_empty()));
    }

    #[test]
    fn merge_sets_leaves_and_keeps_siblings() {
        let mut t = tree(json!({"a": {"x": 1, "y": 2}, "b": true}), 10);
        let written = t
            .merge(&[], &map(json!({"a": {"x": 5, "z": {"deep": null}}})), 20)
            .unwrap();
        assert_eq!(
            t.to_json(),
            json!({"a": {"x": 5, "y": 2, "z": {"deep": null}}, "b": true})
        );
        assert_eq!(
            written,
            vec![
                Written {
                    path: path(&["a", "x"]),
                    value: json!(5)
                },
                Written {
                    path: path(&["a", "z", "deep"]),
                    value: Value::Null
                },
            ]
        );
        assert_eq!(modtime_at(&t, &["a", "x"]), 20);
        assert_eq!(modtime_at(&t, &["a", "y"]), 10);
        assert_eq!(modtime_at(&t, &["a"]), 20);
        assert_eq!(modtime_at(&t, &["b"]), 10);
        assert_eq!(t.modtime(), 20);
    }

    #[test]
    fn merge_reports_keys_as_stored_and_writes_through_any_case() {
        let mut t = tree(json!({"Mqtt": {"Port": 1}}), 0);
        let written = t
            .merge(&path(&["MQTT"]), &map(json!({"port": 2})), 1)
            .unwrap();
        assert_eq!(written[0].path, path(&["Mqtt", "Port"]));
        assert_eq!(t.to_json(), json!({"Mqtt": {"Port": 2}}));
    }

    #[test]
    fn the_same_value_changes_nothing_not_even_the_time() {
        let mut t = tree(json!({"a": 1}), 10);
        assert!(t.merge(&[], &map(json!({"a": 1})), 50).unwrap().is_empty());
        assert_eq!(modtime_at(&t, &["a"]), 10);
        assert_eq!(t.modtime(), 10);
    }

    #[test]
    fn an_older_write_loses_to_a_newer_leaf() {
        let mut t = tree(json!({"a": 1, "b": 1}), 10);
        t.merge(&[], &map(json!({"a": 2})), 30).unwrap();
        let written = t.merge(&[], &map(json!({"a": 3, "b": 3})), 20).unwrap();
        assert_eq!(written.len(), 1, "only b is older than the write");
        assert_eq!(t.to_json(), json!({"a": 2, "b": 3}));
        // An equal time is not older.
        t.merge(&[], &map(json!({"a": 4})), 30).unwrap();
        assert_eq!(t.value_at(&path(&["a"])), Some(json!(4)));
    }

    #[test]
    fn a_kind_change_is_refused_and_nothing_is_written() {
        let mut t = tree(json!({"leaf": 1, "box": {"x": 1}}), 0);
        let before = t.clone();
        let err = t
            .merge(&[], &map(json!({"new": 1, "leaf": {"x": 1}})), 5)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "leaf is already a leaf, cannot become a container"
        );
        let err = t
            .merge(&[], &map(json!({"new": 1, "box": 2})), 5)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "box is already a container, cannot become a leaf"
        );
        let err = t
            .merge(&path(&["LEAF", "below"]), &map(json!({"x": 1})), 5)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "leaf is already a leaf, cannot become a container"
        );
        let err = t.merge(&path(&["leaf"]), &map(json!({})), 5).unwrap_err();
        assert_eq!(
            err.to_string(),
            "leaf is already a leaf, cannot become a container"
        );
        assert_eq!(t, before);
    }

    #[test]
    fn a_missing_path_is_created_and_an_empty_container_reported() {
        let mut t = Container::default();
        let written = t.merge(&path(&["a", "b"]), &map(json!({})), 7).unwrap();
        assert_eq!(
            written,
            vec![Written {
                path: path(&["a", "b"]),
                value: json!({})
            }]
        );
        let written = t
            .merge(&path(&["a"]), &map(json!({"c": {}, "d": {"e": 1}})), 8)
            .unwrap();
        assert_eq!(
            written,
            vec![
                Written {
                    path: path(&["a", "c"]),
                    value: json!({})
                },
                Written {
                    path: path(&["a", "d", "e"]),
                    value: json!(1)
                },
            ]
        );
        assert_eq!(t.to_json(), json!({"a": {"b": {}, "c": {}, "d": {"e": 1}}}));
        assert_eq!(modtime_at(&t, &["a", "b"]), 7);
        assert_eq!(modtime_at(&t, &["a"]), 8);
        // Merging {} into an existing container writes nothing.
        assert!(
            t.merge(&path(&["a"]), &map(json!({})), 9)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn what_get_configuration_shows_leaves_out_underscore_keys() {
        let t = tree(json!({"_hidden": 1, "shown": {"_also": 2, "x": 3}}), 0);
        assert_eq!(t.to_visible_json(), json!({"shown": {"x": 3}}));
        assert_eq!(t.value_at(&path(&["_hidden"])), Some(json!(1)));
    }

    #[test]
    fn keys_that_differ_only_in_case_are_one_key() {
        let t = tree(json!({"A": {"x": 1}, "a": {"y": 2}}), 0);
        assert_eq!(t.to_json(), json!({"A": {"x": 1, "y": 2}}));
    }

    #[test]
    fn replay_sets_whatever_the_times_and_refuses_kind_changes() {
        let mut t = tree(json!({"a": {"x": 1}}), 100);
        t.replay(&path(&["a", "x"]), &json!(2), 50).unwrap();
        assert_eq!(t.value_at(&path(&["a", "x"])), Some(json!(2)));
        assert_eq!(modtime_at(&t, &["a", "x"]), 50);
        assert_eq!(modtime_at(&t, &["a"]), 100);
        t.replay(&path(&["n", "m"]), &json!({}), 200).unwrap();
        assert_eq!(t.value_at(&path(&["n"])), Some(json!({"m": {}})));
        assert_eq!(t.modtime(), 200);
        let before = t.clone();
        assert!(t.replay(&path(&["a", "x", "y"]), &json!(1), 0).is_err());
        assert!(t.replay(&path(&["a"]), &json!(1), 0).is_err());
        assert!(t.replay(&path(&["a", "x"]), &json!({}), 0).is_err());
        assert_eq!(t, before);
    }

    #[test]
    fn diff_reports_changed_new_and_removed_nodes() {
        let old = tree(
            json!({"same": 1, "changed": 1, "gone": {"a": 1, "b": 2}, "kind": 1, "box": {"k": {}}}),
            0,
        );
        let new = tree(
            json!({"same": 1, "changed": 2, "kind": {"p": 1, "q": {}}, "box": {"k": {}, "e": {}}, "added": {"n": 1}}),
            0,
        );
        let changes: Vec<(String, bool)> = Container::diff(&old, &new)
            .into_iter()
            .map(|c| (c.path.join("/"), c.removed))
            .collect();
        assert_eq!(
            changes,
            vec![
                ("changed".to_owned(), false),
                ("gone".to_owned(), true),
                ("kind".to_owned(), true),
                ("kind/p".to_owned(), false),
                ("added/n".to_owned(), false),
            ]
        );
        assert!(Container::diff(&new, &new).is_empty());
    }

    #[test]
    fn within_compares_keys_without_case() {
        assert!(is_within(&path(&["A", "b"]), &path(&["a"])));
        assert!(is_within(&path(&["a"]), &path(&["A"])));
        assert!(is_within(&path(&["a"]), &[]));
        assert!(!is_within(&path(&["a"]), &path(&["a", "b"])));
        assert!(!is_within(&path(&["ab"]), &path(&["a"])));
    }
}
