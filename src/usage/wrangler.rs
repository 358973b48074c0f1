//! What a Wrangler configuration (`wrangler.toml`, `wrangler.json`,
//! `wrangler.jsonc`) says a Worker reads, as workers-sdk defines the
//! fields: the Worker's `name`; each `env.NAME` environment, a Worker of
//! its own (`<name>-<env>` unless it sets `name`); and for each of them
//! (none of these is inherited by an environment) the Secrets Store
//! bindings (`secrets_store_secrets = [{binding, store_id, secret_name}]`),
//! the secrets it declares it needs (`secrets.required = [..]`) and its
//! plain `vars`. Its code is not read: what it binds and declares is what
//! it reads.

use std::path::Path;

use super::jsonc::{self, Node, Value};
use crate::policy::Source;
use zeroize::Zeroizing;

/// One Worker a configuration describes (the top level, or an environment).
#[derive(Debug)]
pub struct Worker {
    /// The script's name on Cloudflare, where the configuration gives one.
    pub script: Option<String>,
    /// The configuration's top-level `name` and, for an environment, its
    /// name (how a `wrangler` target names the script).
    pub top: Option<String>,
    pub env: Option<String>,
    pub bindings: Vec<StoreBinding>,
    /// `secrets.required`, where declared.
    pub required: Option<Vec<(String, (usize, usize))>>,
    pub vars: Vec<Var>,
}

#[derive(Debug, Clone)]
pub struct StoreBinding {
    pub binding: String,
    pub store_id: String,
    pub secret_name: String,
    pub at: (usize, usize),
}

/// A `vars` entry with a string value.
pub struct Var {
    pub name: String,
    pub value: Zeroizing<String>,
    pub at: (usize, usize),
}

impl std::fmt::Debug for Var {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Var").field("name", &self.name).field("at", &self.at).finish_non_exhaustive()
    }
}

/// The file names wrangler reads.
pub const FILE_NAMES: &[&str] = &["wrangler.toml", "wrangler.json", "wrangler.jsonc"];

/// The Workers a configuration file describes, or why it cannot be read
/// (with the line and column).
pub fn parse(path: &Path, text: &str) -> Result<Vec<Worker>, (usize, usize, String)> {
    let lines = Source::new(path, text);
    let root = if path.extension().is_some_and(|e| e == "toml") {
        let table = toml::de::DeTable::parse(text).map_err(|e| {
            let (line, col) = lines.line_col(e.span().map_or(0, |s| s.start));
            (line, col, e.message().to_string())
        })?;
        let at = table.span().start;
        Node { at, value: from_toml_table(table.into_inner()) }
    } else {
        jsonc::parse(text).map_err(|e| {
            let (line, col) = lines.line_col(e.at);
            (line, col, e.message)
        })?
    };
    if !matches!(root.value, Value::Obj(_)) {
        return Err((1, 1, "the configuration is not a table".into()));
    }
    let top = root.get("name").and_then(Node::as_str).map(str::to_string);
    let mut workers = vec![worker(&root, &lines, top.clone(), top.clone(), None)];
    if let Some(envs) = root.get("env") {
        for (env, _, table) in envs.members() {
            let script = match table.get("name").and_then(Node::as_str) {
                Some(own) => Some(own.to_string()),
                None => top.as_ref().map(|t| format!("{t}-{env}")),
            };
            workers.push(worker(table, &lines, script, top.clone(), Some(env.clone())));
        }
    }
    Ok(workers)
}

fn worker(
    table: &Node,
    lines: &Source<'_>,
    script: Option<String>,
    top: Option<String>,
    env: Option<String>,
) -> Worker {
    let bindings = table
        .get("secrets_store_secrets")
        .map(Node::items)
        .unwrap_or_default()
        .iter()
        .filter_map(|b| {
            let field = |k| b.get(k).and_then(Node::as_str).map(str::to_string);
            Some(StoreBinding {
                binding: field("binding").unwrap_or_default(),
                store_id: field("store_id").unwrap_or_default(),
                secret_name: field("secret_name")?,
                at: lines.line_col(b.get("secret_name").map_or(b.at, |n| n.at)),
            })
        })
        .collect();
    let required = table.get("secrets").and_then(|s| s.get("required")).map(|list| {
        list.items().iter().filter_map(|n| n.as_str().map(|s| (s.to_string(), lines.line_col(n.at)))).collect()
    });
    let vars = table
        .get("vars")
        .map(Node::members)
        .unwrap_or_default()
        .iter()
        .filter_map(|(name, key_at, value)| {
            value.as_str().map(|v| Var {
                name: name.clone(),
                value: Zeroizing::new(v.to_string()),
                at: lines.line_col(*key_at),
            })
        })
        .collect();
    Worker { script, top, env, bindings, required, vars }
}

fn from_toml_table(table: toml::de::DeTable<'_>) -> Value {
    Value::Obj(
        table
            .into_iter()
            .map(|(k, v)| {
                let key_at = k.span().start;
                (k.into_inner().into_owned(), key_at, from_toml(v))
            })
            .collect(),
    )
}

fn from_toml(value: toml::Spanned<toml::de::DeValue<'_>>) -> Node {
    use toml::de::DeValue;
    let at = value.span().start;
    let value = match value.into_inner() {
        DeValue::String(s) => Value::Str(s.into_owned()),
        DeValue::Array(items) => Value::Arr(items.iter().cloned().map(from_toml).collect()),
        DeValue::Table(t) => from_toml_table(t),
        _ => Value::Other,
    };
    Node { at, value }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(w: &Worker) -> Vec<&str> {
        w.bindings.iter().map(|b| b.secret_name.as_str()).collect()
    }

    #[test]
    fn toml_workers_environments_bindings_and_vars() {
        let text = r#"name = "api"
main = "src/index.ts"

[vars]
MODE = "production"
PORT = 8080

[[secrets_store_secrets]]
binding = "KEY"
store_id = "0123456789abcdef0123456789abcdef"
secret_name = "API_KEY"

[secrets]
required = ["SESSION_SECRET"]

[env.staging]
vars = { MODE = "staging" }
secrets_store_secrets = [{ binding = "KEY", store_id = "0123456789abcdef0123456789abcdef", secret_name = "API_KEY_STAGING" }]

[env.eu]
name = "api-europe"
"#;
        let workers = parse(Path::new("wrangler.toml"), text).unwrap();
        let scripts: Vec<(Option<&str>, Option<&str>)> =
            workers.iter().map(|w| (w.script.as_deref(), w.env.as_deref())).collect();
        assert_eq!(
            scripts,
            [(Some("api"), None), (Some("api-europe"), Some("eu")), (Some("api-staging"), Some("staging"))]
        );
        assert_eq!(names(&workers[0]), ["API_KEY"]);
        assert_eq!(workers[0].bindings[0].at, (11, 15));
        assert_eq!(workers[0].required.as_ref().unwrap()[0], ("SESSION_SECRET".to_string(), (14, 13)));
        let vars: Vec<(&str, (usize, usize))> = workers[0].vars.iter().map(|v| (v.name.as_str(), v.at)).collect();
        assert_eq!(vars, [("MODE", (5, 1))]);
        assert_eq!(names(&workers[2]), ["API_KEY_STAGING"]);
        assert_eq!(workers[2].vars[0].at, (17, 10));
        assert!(workers[1].bindings.is_empty() && workers[1].required.is_none());
    }

    #[test]
    fn jsonc_and_errors_with_positions() {
        let text = "{\n  // the worker\n  \"name\": \"site\",\n  \"secrets_store_secrets\": [\n    {\"binding\": \"K\", \"store_id\": \"s\", \"secret_name\": \"SITE_KEY\"},\n  ],\n}\n";
        let workers = parse(Path::new("wrangler.jsonc"), text).unwrap();
        assert_eq!(workers[0].script.as_deref(), Some("site"));
        assert_eq!(workers[0].bindings[0].at, (5, 54));
        let err = parse(Path::new("wrangler.json"), "{\n  \"name\": ,\n}").unwrap_err();
        assert_eq!((err.0, err.1), (2, 11));
        assert!(parse(Path::new("wrangler.toml"), "name = \n").is_err());
    }
}
