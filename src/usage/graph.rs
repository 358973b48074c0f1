//! The usage map as a Mermaid flowchart: token → target → the workflows,
//! actions and Workers that read it. A read nothing delivers is drawn from
//! a red node with a dashed red edge. Labels carry names, addresses and
//! file paths, never a value; node ids are made of `[A-Za-z0-9_]` only.

use std::collections::{BTreeSet, HashMap, HashSet};

use super::{Map, ReaderKind, State};
use crate::policy::Policy;

/// What a caller knows beyond the offline map.
#[derive(Debug, Default)]
pub struct Marks {
    /// Tokens known to be leaked (a `scan` hit, a service's word): drawn in
    /// red with thick edges. Offline, nobody knows: empty.
    pub leaked: BTreeSet<String>,
}

/// Node ids, unique and Mermaid-safe.
#[derive(Default)]
struct Ids {
    by_key: HashMap<String, String>,
    used: HashSet<String>,
}

impl Ids {
    fn id(&mut self, prefix: &str, key: &str) -> (String, bool) {
        let full = format!("{prefix}:{key}");
        if let Some(id) = self.by_key.get(&full) {
            return (id.clone(), false);
        }
        let base: String = format!("{prefix}_{key}")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' })
            .collect();
        let mut id = base.clone();
        let mut n = 2;
        while self.used.contains(&id) {
            id = format!("{base}_{n}");
            n += 1;
        }
        self.used.insert(id.clone());
        self.by_key.insert(full, id.clone());
        (id, true)
    }
}

/// A label inside `["…"]`: quotes and angle brackets as entities.
fn label(text: &str) -> String {
    text.replace('"', "#quot;").replace('<', "#lt;").replace('>', "#gt;")
}

struct Chart {
    ids: Ids,
    lines: Vec<String>,
    edges: usize,
    red: Vec<usize>,
    thick: Vec<usize>,
    classes: Vec<(String, &'static str)>,
}

impl Chart {
    /// The node's id, and whether it was new.
    fn node(&mut self, prefix: &str, key: &str, shape: (&str, &str), text: &str) -> (String, bool) {
        let (id, new) = self.ids.id(prefix, key);
        if new {
            self.lines.push(format!("  {id}{}\"{}\"{}", shape.0, label(text), shape.1));
        }
        (id, new)
    }

    fn edge(&mut self, from: &str, arrow: &str, name: Option<&str>, to: &str) -> usize {
        match name {
            Some(n) => self.lines.push(format!("  {from} {arrow}|{}| {to}", label(n))),
            None => self.lines.push(format!("  {from} {arrow} {to}")),
        }
        self.edges += 1;
        self.edges - 1
    }
}

/// The flowchart of `map`; with `only`, just those tokens, their targets
/// and who reads them (a run's step summary).
pub fn mermaid(policy: &Policy, map: &Map, only: Option<&BTreeSet<String>>, marks: &Marks) -> String {
    let mut c = Chart {
        ids: Ids::default(),
        lines: vec!["flowchart LR".into()],
        edges: 0,
        red: Vec::new(),
        thick: Vec::new(),
        classes: Vec::new(),
    };
    let wanted = |token: &str| only.is_none_or(|o| o.contains(token));
    let mut seen_edges = HashSet::new();
    for (name, token) in policy.tokens.iter().filter(|(n, _)| wanted(n)) {
        let (tok, _) = c.node("tok", name, ("(", ")"), name);
        let leaked = marks.leaked.contains(name);
        if leaked {
            c.classes.push((tok.clone(), "leaked"));
        }
        for target in &token.targets {
            let address = target.address().to_string();
            let (tgt, _) = c.node("tgt", &address, ("[", "]"), &address);
            let names = (target.names.len() != 1 || target.names[0] != *name).then(|| target.names.join(", "));
            if seen_edges.insert((tok.clone(), tgt.clone())) {
                let i = c.edge(&tok, if leaked { "==>" } else { "-->" }, names.as_deref(), &tgt);
                if leaked {
                    c.thick.push(i);
                }
            }
        }
    }
    for r in &map.reads {
        let reader = &map.usage.readers[r.read.reader];
        let (prefix, reader_key) = match reader.kind {
            ReaderKind::Workflow => ("wf", reader.file.clone()),
            ReaderKind::Action => ("act", reader.file.clone()),
            ReaderKind::Worker => ("wk", reader.worker.clone().unwrap_or_else(|| reader.file.clone())),
        };
        match &r.state {
            State::Delivered => {
                for d in r.delivered_by.iter().filter(|d| wanted(&d.token)) {
                    let (rd, _) = c.node(prefix, &reader_key, ("[[", "]]"), &reader.label());
                    let (tgt, _) = c.node("tgt", &d.target, ("[", "]"), &d.target);
                    if seen_edges.insert((tgt.clone(), format!("{rd}|{}", d.name))) {
                        c.edge(&tgt, "-->", Some(&d.name), &rd);
                    }
                }
            }
            State::NotDelivered { .. } if only.is_none() => {
                let (rd, _) = c.node(prefix, &reader_key, ("[[", "]]"), &reader.label());
                let missing = format!("{}: no policy delivers it", r.read.secret);
                let (id, new) = c.node("miss", &r.read.secret, ("[", "]"), &missing);
                if new {
                    c.classes.push((id.clone(), "undelivered"));
                }
                if seen_edges.insert((id.clone(), format!("{rd}|{}", r.read.secret))) {
                    let i = c.edge(&id, "-.->", Some(&r.read.secret), &rd);
                    c.red.push(i);
                }
            }
            _ => {}
        }
    }
    let mut out = c.lines;
    for class in ["undelivered", "leaked"] {
        let ids: Vec<&str> = c.classes.iter().filter(|(_, k)| *k == class).map(|(id, _)| id.as_str()).collect();
        if !ids.is_empty() {
            out.push(format!("  class {} {class}", ids.join(",")));
        }
    }
    out.push("  classDef undelivered fill:#fdecea,stroke:#c62828,color:#b71c1c,stroke-dasharray:5 5".into());
    out.push("  classDef leaked fill:#fdecea,stroke:#c62828,stroke-width:3px,color:#b71c1c".into());
    let list = |v: &[usize]| v.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    if !c.red.is_empty() {
        out.push(format!("  linkStyle {} stroke:#c62828,stroke-width:2px,stroke-dasharray:5 5", list(&c.red)));
    }
    if !c.thick.is_empty() {
        out.push(format!("  linkStyle {} stroke:#c62828,stroke-width:4px", list(&c.thick)));
    }
    out.join("\n") + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_safe_and_unique() {
        let mut ids = Ids::default();
        assert_eq!(ids.id("tgt", "github:o/r").0, "tgt_github_o_r");
        assert_eq!(ids.id("tgt", "github:o_r").0, "tgt_github_o_r_2");
        assert_eq!(ids.id("tgt", "github:o/r"), ("tgt_github_o_r".into(), false));
        assert_eq!(label("a \"b\" <c>"), "a #quot;b#quot; #lt;c#gt;");
    }
}
