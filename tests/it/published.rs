//! Every request the fakes receive is checked against the services'
//! published descriptions: GitHub's OpenAPI description and Cloudflare's
//! (through its generated TypeScript SDK), trimmed to the operations
//! chitty-secrets uses in tests/published/ (README.md there says where each
//! came from and how to regenerate it). The checks: the path template exists
//! with that method, every query parameter is one the operation declares
//! (with an allowed value), every path parameter is present, and the body
//! validates against the operation's request schema (for Cloudflare's
//! multipart version upload, the `metadata` part against the metadata
//! schema, and the parts the description requires are there).
//!
//! The flows below drive the real binary through every operation; a
//! request the description does not allow fails the test, named with what
//! is wrong and which published file says so.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{Read, Write};
use std::sync::OnceLock;

use serde_json::Value;

use crate::common::*;
use crate::fakes::cloudflare::FakeCloudflare;
use crate::fakes::github::FakeGithub;
use crate::fakes::{Control, Recorded};
use crate::remote::with_fakes;

/// One service's published request side, as trimmed into tests/published/.
struct Published {
    /// The file under tests/published/.
    file: &'static str,
    service: String,
    /// Where the fake serves the API (GitHub Enterprise's `/api/v3` too).
    prefixes: &'static [&'static str],
    /// False where the source (an SDK) does not name the JSON media type:
    /// then any JSON media type is checked against the JSON schema.
    media_type_exact: bool,
    operations: Vec<Operation>,
    /// Published methods of the paths beside the used ones.
    published_methods: BTreeMap<String, Vec<String>>,
}

struct Operation {
    id: String,
    method: String,
    path: String,
    segments: Vec<Segment>,
    parameters: Vec<Parameter>,
    body: Option<RequestBody>,
}

enum Segment {
    Literal(String),
    Param(String),
}

struct Parameter {
    name: String,
    location: String,
    required: bool,
    schema: Value,
    validator: jsonschema::Validator,
}

struct RequestBody {
    required: bool,
    /// Media type → what a body of that type must be.
    content: Vec<(String, Content)>,
}

enum Content {
    Json(jsonschema::Validator),
    /// Parts named in `json_parts` hold JSON checked against their schema;
    /// `required` parts must be there; `rule` is the description's text on
    /// the file parts.
    Multipart {
        parts: BTreeMap<String, jsonschema::Validator>,
        required: Vec<String>,
        rule: String,
    },
}

/// One request that the published description does not allow.
#[derive(Debug)]
struct Violation {
    request: String,
    operation: Option<String>,
    what: String,
    source: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = self.operation.as_deref().unwrap_or("no published operation");
        write!(f, "{}\n    {op}: {}\n    (per {})", self.request, self.what, self.source)
    }
}

fn compile(schema: &Value, what: &str) -> jsonschema::Validator {
    jsonschema::validator_for(schema).unwrap_or_else(|e| panic!("{what}: the trimmed schema does not compile: {e}"))
}

impl Published {
    fn load(file: &'static str, text: &str, prefixes: &'static [&'static str]) -> Self {
        let doc: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("tests/published/{file}: {e}"));
        let operations = doc["operations"]
            .as_array()
            .expect("operations")
            .iter()
            .map(|op| {
                let id = op["id"].as_str().expect("id").to_string();
                let path = op["path"].as_str().expect("path").to_string();
                let parameters = op["parameters"]
                    .as_array()
                    .expect("parameters")
                    .iter()
                    .map(|p| Parameter {
                        name: p["name"].as_str().expect("name").to_string(),
                        location: p["in"].as_str().expect("in").to_string(),
                        required: p["required"].as_bool().unwrap_or(false),
                        schema: p["schema"].clone(),
                        validator: compile(&p["schema"], &id),
                    })
                    .collect();
                let body = op.get("request_body").map(|b| RequestBody {
                    required: b["required"].as_bool().unwrap_or(false),
                    content: b["content"]
                        .as_object()
                        .expect("content")
                        .iter()
                        .map(|(media, c)| {
                            let schema = &c["schema"];
                            let content = match c.get("json_parts") {
                                None => Content::Json(compile(schema, &id)),
                                Some(json_parts) => Content::Multipart {
                                    parts: json_parts
                                        .as_array()
                                        .expect("json_parts")
                                        .iter()
                                        .map(|n| n.as_str().expect("a part name"))
                                        .map(|n| (n.to_string(), compile(&schema["properties"][n], &id)))
                                        .collect(),
                                    required: schema["required"]
                                        .as_array()
                                        .into_iter()
                                        .flatten()
                                        .filter_map(|n| n.as_str().map(str::to_string))
                                        .collect(),
                                    rule: c["file_parts_doc"].as_str().unwrap_or_default().to_string(),
                                },
                            };
                            (media.clone(), content)
                        })
                        .collect(),
                });
                Operation {
                    id,
                    method: op["method"].as_str().expect("method").to_string(),
                    segments: segments(&path),
                    path,
                    parameters,
                    body,
                }
            })
            .collect();
        let published_methods = serde_json::from_value(doc["published_methods"].clone()).expect("published_methods");
        Published {
            file,
            service: doc["service"].as_str().unwrap_or(file).to_string(),
            prefixes,
            media_type_exact: doc["media_type_exact"].as_bool().unwrap_or(true),
            operations,
            published_methods,
        }
    }

    fn github() -> &'static Published {
        static P: OnceLock<Published> = OnceLock::new();
        P.get_or_init(|| Published::load("github.json", include_str!("../published/github.json"), &["/api/v3", ""]))
    }

    fn cloudflare() -> &'static Published {
        static P: OnceLock<Published> = OnceLock::new();
        P.get_or_init(|| {
            Published::load("cloudflare.json", include_str!("../published/cloudflare.json"), &["/client/v4"])
        })
    }

    fn source(&self, template: Option<&str>) -> String {
        match template {
            Some(t) => format!("tests/published/{}, {t}", self.file),
            None => format!("tests/published/{}", self.file),
        }
    }

    /// The operation `r` is (by the most specific path template, as a
    /// router picks), and what is wrong with `r` against it.
    fn check(&self, r: &Recorded) -> (Option<&Operation>, Vec<Violation>) {
        let request = match &r.query {
            Some(q) => format!("{} {} {}?{q}", self.service, r.method, r.path),
            None => format!("{} {} {}", self.service, r.method, r.path),
        };
        let mut out = Vec::new();
        let mut violation = |op: Option<&Operation>, what: String| {
            out.push(Violation {
                request: request.clone(),
                operation: op.map(|o| format!("{} ({} {})", o.id, o.method, o.path)),
                what,
                source: self.source(op.map(|o| o.path.as_str())),
            })
        };
        let Some(path) = self.prefixes.iter().find_map(|p| r.path.strip_prefix(p).filter(|rest| rest.starts_with('/')))
        else {
            violation(None, format!("not under the API's base path ({:?})", self.prefixes));
            return (None, out);
        };
        let parts: Vec<&str> = path.split('/').skip(1).collect();
        let best = |templates: &mut dyn Iterator<Item = (&str, &[Segment])>| {
            templates
                .filter(|(_, segs)| matches(segs, &parts))
                .max_by_key(|(_, segs)| segs.iter().filter(|s| matches!(s, Segment::Literal(_))).count())
                .map(|(t, _)| t.to_string())
        };
        let trimmed = best(&mut self.operations.iter().map(|o| (o.path.as_str(), o.segments.as_slice())));
        let near: Vec<(String, Vec<Segment>)> =
            self.published_methods.keys().map(|t| (t.clone(), segments(t))).collect();
        let published = best(&mut near.iter().map(|(t, s)| (t.as_str(), s.as_slice())));
        let op = trimmed.as_deref().and_then(|t| self.operations.iter().find(|o| o.path == t && o.method == r.method));
        let Some(op) = op else {
            let template = published.or(trimmed);
            let methods = template.as_ref().and_then(|t| self.published_methods.get(t));
            let what = match (&template, methods) {
                (Some(t), Some(m)) if m.contains(&r.method) => format!(
                    "{} {t} is published but not among the operations trimmed in: add it to tests/published/trim.py and regenerate",
                    r.method
                ),
                (Some(t), Some(m)) => format!("{} is not published for {t} (published: {})", r.method, m.join(", ")),
                (Some(t), None) => format!("{} is not published for {t}", r.method),
                (None, _) => format!("no published path template matches {path}"),
            };
            violation(None, what);
            return (None, out);
        };
        let source_op = Some(op);

        // Path parameters: present, and of the published type.
        for (segment, value) in op.segments.iter().zip(&parts) {
            let Segment::Param(name) = segment else { continue };
            let value = percent_decode(value);
            match op.parameters.iter().find(|p| p.location == "path" && &p.name == name) {
                None => violation(source_op, format!("path parameter `{name}` is not declared")),
                Some(_) if value.is_empty() => violation(source_op, format!("path parameter `{name}` is empty")),
                Some(p) => {
                    // A path holds text: a number is read as the schema's type.
                    for e in p.validator.iter_errors(&typed(&value, &p.schema)) {
                        violation(source_op, format!("path parameter `{name}` = {value:?}: {e}"));
                    }
                }
            }
        }

        // Query parameters: declared, with allowed values; the required ones sent.
        let query = parse_query(r.query.as_deref().unwrap_or(""));
        let declared: Vec<&Parameter> = op.parameters.iter().filter(|p| p.location == "query").collect();
        for (name, value) in &query {
            match declared.iter().find(|p| &p.name == name) {
                None => {
                    let names: Vec<&str> = declared.iter().map(|p| p.name.as_str()).collect();
                    let names = if names.is_empty() { "none".to_string() } else { names.join(", ") };
                    violation(
                        source_op,
                        format!("query parameter `{name}` is not one the operation declares (declared: {names})"),
                    );
                }
                Some(p) => {
                    for e in p.validator.iter_errors(&typed(value, &p.schema)) {
                        violation(source_op, format!("query parameter `{name}` = {value:?}: {e}"));
                    }
                }
            }
        }
        for p in declared.iter().filter(|p| p.required && !query.iter().any(|(n, _)| *n == p.name)) {
            violation(source_op, format!("required query parameter `{}` is missing", p.name));
        }

        // The body.
        match &op.body {
            None if !r.body.is_empty() => {
                violation(source_op, format!("sends a body ({} bytes); the operation takes none", r.body.len()))
            }
            None => {}
            Some(body) if r.body.is_empty() && body.required => {
                violation(source_op, "sends no body; the operation requires one".into())
            }
            Some(_) if r.body.is_empty() => {}
            Some(_) if r.body_truncated => {
                violation(source_op, "the body is over the recording cap, so it could not be checked".into())
            }
            Some(body) => {
                let content_type = r.content_type.clone().unwrap_or_default();
                let media = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
                let is_json =
                    |m: &str| m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"));
                let found = body.content.iter().find(|(m, _)| *m == media).or_else(|| {
                    (!self.media_type_exact && is_json(&media))
                        .then(|| body.content.iter().find(|(m, _)| is_json(m)))
                        .flatten()
                });
                match found {
                    None => {
                        let takes: Vec<&str> = body.content.iter().map(|(m, _)| m.as_str()).collect();
                        violation(
                            source_op,
                            format!(
                                "Content-Type {content_type:?} is not one the operation takes ({})",
                                takes.join(", ")
                            ),
                        );
                    }
                    Some((_, Content::Json(validator))) => match serde_json::from_slice::<Value>(&r.body) {
                        Err(e) => violation(source_op, format!("the body is not JSON: {e}")),
                        Ok(json) => {
                            for e in validator.iter_errors(&json) {
                                violation(
                                    source_op,
                                    format!("body at `{}`: {e}", pointer(&e.instance_path().to_string())),
                                );
                            }
                        }
                    },
                    Some((_, Content::Multipart { parts, required, rule })) => {
                        let Some(form) = multipart(&content_type, &r.body) else {
                            violation(source_op, "the body is not a readable multipart/form-data body".into());
                            return (Some(op), out);
                        };
                        for name in required {
                            if !form.iter().any(|(n, _)| n == name) {
                                violation(source_op, format!("the required part `{name}` is missing"));
                            }
                        }
                        for (name, validator) in parts {
                            let Some((_, bytes)) = form.iter().find(|(n, _)| n == name) else { continue };
                            match serde_json::from_slice::<Value>(bytes) {
                                Err(e) => violation(source_op, format!("part `{name}` is not JSON: {e}")),
                                Ok(json) => {
                                    for e in validator.iter_errors(&json) {
                                        violation(
                                            source_op,
                                            format!(
                                                "part `{name}` at `{}`: {e}",
                                                pointer(&e.instance_path().to_string())
                                            ),
                                        );
                                    }
                                    // "At least one module must be present and referenced in
                                    // the metadata as `main_module` or `body_part`".
                                    if name == "metadata" && rule.contains("main_module") {
                                        let main = json["main_module"].as_str().or(json["body_part"].as_str());
                                        match main {
                                            Some(m) if form.iter().any(|(n, _)| n == m) => {}
                                            Some(m) => violation(
                                                source_op,
                                                format!("no part holds the module `{m}` the metadata names ({rule})"),
                                            ),
                                            None => violation(
                                                source_op,
                                                format!("the metadata names no main_module or body_part ({rule})"),
                                            ),
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        (Some(op), out)
    }
}

fn pointer(p: &str) -> String {
    if p.is_empty() { "/".into() } else { p.to_string() }
}

fn segments(template: &str) -> Vec<Segment> {
    template
        .split('/')
        .skip(1)
        .map(|s| match s.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            Some(name) => Segment::Param(name.to_string()),
            None => Segment::Literal(s.to_string()),
        })
        .collect()
}

fn matches(template: &[Segment], parts: &[&str]) -> bool {
    template.len() == parts.len()
        && template.iter().zip(parts).all(|(s, p)| match s {
            Segment::Literal(l) => l == p,
            Segment::Param(_) => true,
        })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = s.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (percent_decode(&k.replace('+', " ")), percent_decode(&v.replace('+', " ")))
        })
        .collect()
}

/// A query string's value as the JSON its schema's type means.
fn typed(value: &str, schema: &Value) -> Value {
    let kind = schema["type"].as_str().unwrap_or("string");
    let parsed = match kind {
        "integer" => value.parse::<i64>().ok().map(Value::from),
        "number" => value
            .parse::<i64>()
            .ok()
            .map(Value::from)
            .or_else(|| value.parse::<f64>().ok().and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))),
        "boolean" => match value {
            "true" => Some(Value::Bool(true)),
            "false" => Some(Value::Bool(false)),
            _ => None,
        },
        _ => None,
    };
    parsed.unwrap_or_else(|| Value::String(value.to_string()))
}

/// The parts of a multipart/form-data body: (name, bytes).
fn multipart(content_type: &str, body: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
    let boundary = content_type.split(';').find_map(|p| p.trim().strip_prefix("boundary="))?.trim_matches('"');
    let delimiter = format!("--{boundary}");
    let text = body;
    let mut parts = Vec::new();
    let mut rest = &text[find(text, delimiter.as_bytes())? + delimiter.len()..];
    loop {
        if rest.starts_with(b"--") {
            return Some(parts);
        }
        let rest_after_crlf = rest.strip_prefix(b"\r\n")?;
        let end = find(rest_after_crlf, delimiter.as_bytes())?;
        let part = &rest_after_crlf[..end];
        let part = part.strip_suffix(b"\r\n")?;
        let split = find(part, b"\r\n\r\n")?;
        let headers = String::from_utf8_lossy(&part[..split]).to_string();
        let name =
            headers.lines().find(|l| l.to_ascii_lowercase().starts_with("content-disposition")).and_then(|l| {
                l.split(';').find_map(|p| p.trim().strip_prefix("name=")).map(|n| n.trim_matches('"').to_string())
            })?;
        parts.push((name, part[split + 4..].to_vec()));
        rest = &rest_after_crlf[end + delimiter.len()..];
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Checks every request `control` recorded against `published`; returns the
/// violations and the operations met.
fn check_all(published: &Published, control: &Control) -> (Vec<Violation>, BTreeSet<String>) {
    let mut violations = Vec::new();
    let mut met = BTreeSet::new();
    for r in control.recorded() {
        let (op, v) = published.check(&r);
        if let Some(op) = op {
            met.insert(op.id.clone());
        }
        violations.extend(v);
    }
    if control.unrecorded() > 0 {
        violations.push(Violation {
            request: format!("{} requests", control.unrecorded()),
            operation: None,
            what: "received past the recording limit, not checked".into(),
            source: published.source(None),
        });
    }
    (violations, met)
}

fn assert_conforms(checks: &[(&Published, &Control)]) {
    let mut violations = Vec::new();
    let mut unmet = Vec::new();
    for (published, control) in checks {
        let (v, met) = check_all(published, control);
        violations.extend(v);
        for op in &published.operations {
            if !met.contains(&op.id) {
                unmet.push(format!("{} {} {} ({})", published.service, op.method, op.path, op.id));
            }
        }
    }
    // The same fault repeats (one request per secret or version): each
    // listed once, with the first such request and a count.
    let mut grouped: Vec<(String, &Violation, usize)> = Vec::new();
    for v in &violations {
        let key = format!("{:?} {} {}", v.operation, v.what, v.source);
        match grouped.iter_mut().find(|(k, _, _)| *k == key) {
            Some((_, _, n)) => *n += 1,
            None => grouped.push((key, v, 1)),
        }
    }
    let listing: Vec<String> = grouped
        .iter()
        .map(|(_, v, n)| if *n > 1 { format!("{v}\n    ({n} such requests; the first shown)") } else { v.to_string() })
        .collect();
    assert!(
        violations.is_empty() && unmet.is_empty(),
        "{} request(s) the published descriptions do not allow:\n\n{}\n\noperations never exercised ({}):\n{}",
        violations.len(),
        listing.join("\n\n"),
        unmet.len(),
        unmet.join("\n")
    );
}

// ------------------------------------------------------------------ flows

fn run_ok(p: &Project, gh: &FakeGithub, cf: &FakeCloudflare, args: &[&str]) -> String {
    let out = with_fakes(&mut p.command(args), gh, cf).output().unwrap();
    assert_eq!(code(&out), 0, "{args:?}:\n{}", text(&out));
    text(&out)
}

/// Every GitHub operation: each app's repository and organization secrets,
/// environments (one created on the way), organization visibility read
/// back (and its selected repositories), repositories named by name,
/// listings, and deletions by prune.
#[test]
fn every_github_request_matches_the_published_description() {
    let gh = FakeGithub::start();
    let cf = FakeCloudflare::start();
    gh.add_repo("acme/app");
    gh.add_repo("acme/svc001");
    gh.add_env("acme/app", "production");
    gh.add_org("acme");
    for app in ["dependabot", "codespaces"] {
        gh.add_repo_app("acme/app", app);
        gh.add_org_app("acme", app);
    }
    let mut policy = String::from("[tokens.T]\nissuer = \"random\"\noverlap = \"0s\"\n");
    let targets = [
        "repo = \"acme/app\"\n",
        "repo = \"acme/app\"\napp = \"dependabot\"\n",
        "repo = \"acme/app\"\napp = \"codespaces\"\n",
        "repo = \"acme/app\"\nenvironment = \"production\"\n",
        "repo = \"acme/app\"\nenvironment = \"staging\"\ncreate_environment = true\n",
        // No visibility: read back from GitHub before each write.
        "org = \"acme\"\n",
        "org = \"acme\"\napp = \"dependabot\"\nvisibility = \"selected\"\nselected_repositories = [\"svc001\"]\n",
        "org = \"acme\"\napp = \"codespaces\"\nvisibility = \"all\"\n",
    ];
    for target in targets {
        policy.push_str(&format!("[[tokens.T.targets]]\nkind = \"github\"\nnames = [\"T\", \"T_ALIAS\"]\n{target}"));
    }
    let p = Project::initialised(&policy);
    run_ok(&p, &gh, &cf, &["rotate"]);

    // Organization secrets shared with selected repositories, and a policy
    // that no longer says a visibility: the next write reads it back (GET
    // …/secrets/{name}), then which repositories (…/repositories), and keeps them.
    for scope in ["org:acme", "dependabot:org:acme", "codespaces:org:acme"] {
        for name in ["T", "T_ALIAS"] {
            let mut scopes = gh.state.scopes.lock().unwrap();
            let s = scopes.get_mut(scope).unwrap().secrets.get_mut(name).unwrap();
            s.visibility = Some("selected".into());
            s.selected_repository_ids = Some(vec![FakeGithub::repo_id("acme/svc001")]);
        }
    }
    let silent = policy
        .replace("visibility = \"all\"\n", "")
        .replace("visibility = \"selected\"\nselected_repositories = [\"svc001\"]\n", "");
    std::fs::write(p.path("policies/main.toml"), &silent).unwrap();
    run_ok(&p, &gh, &cf, &["rotate"]);
    let kept = gh.stored("dependabot:org:acme", "T", |s, _| s.selected_repository_ids.clone());
    assert_eq!(kept, Some(vec![FakeGithub::repo_id("acme/svc001")]));
    run_ok(&p, &gh, &cf, &["check", "--online"]);

    // The alias leaves the policy: prune deletes it everywhere.
    std::fs::write(p.path("policies/main.toml"), silent.replace("names = [\"T\", \"T_ALIAS\"]\n", "")).unwrap();
    let out = run_ok(&p, &gh, &cf, &["sync", "--prune"]);
    assert!(out.contains("pruned T_ALIAS"), "{out}");
    assert_eq!(gh.value("dependabot:org:acme", "T_ALIAS"), None);

    // GitHub Enterprise's /api/v3 is the same API.
    let mut cmd = p.command(&["check", "--online"]);
    with_fakes(&mut cmd, &gh, &cf).env("GITHUB_API_URL", format!("{}/api/v3", gh.url()));
    let out = cmd.output().unwrap();
    assert_eq!(code(&out), 0, "{}", text(&out));

    // A leak: the repository's and the organization's secret-scanning
    // alerts are read, the token rotated, and the alert closed as revoked.
    let value = p.ok(&["get", "T"]).trim_end().to_string();
    let alert = gh.add_alert("acme/app", &value, Some(("notes.md", 1, "0123456789abcdef0123456789abcdef01234567")));
    run_ok(&p, &gh, &cf, &["leaks", "--rotate"]);
    assert_eq!(gh.alert("acme/app", alert).resolution.as_deref(), Some("revoked"));

    assert_conforms(&[(Published::github(), &gh.control)]);
}

/// Every Cloudflare operation: the bulk endpoint and its per-secret PUT
/// fallback (deploy = "immediate", with what runs read first), a listing,
/// a prune's DELETE, and a version made from the deployed one (code read
/// back, multipart upload) then rolled out; a Pages project's variables
/// (production and preview): read by `plan` and `sync --verify` (GET of
/// the project), written by `rotate` and `sync` (PATCH of
/// `deployment_configs`), deleted by prune (PATCH with a `null`); and the
/// account's Secrets Store (`kind = "secrets_store"`): `plan` finds the
/// one store, lists its secrets and the account's Workers (one binds the
/// store secret, so it is named as a reader), `rotate` creates both names
/// in one POST, `rotate T` PATCHes each, and prune DELETEs the alias.
#[test]
fn every_cloudflare_request_matches_the_published_description() {
    let gh = FakeGithub::start();
    let cf = FakeCloudflare::start();
    cf.add_script("api");
    cf.add_script("web");
    cf.add_pages_project("shop");
    let store = cf.add_store("default_secrets_store");
    // A Worker whose deployed version reads T from the store.
    cf.add_script("edge");
    cf.bind_store_secret("edge", "T", &store, "T");
    let policy = "[tokens.T]\nissuer = \"random\"\noverlap = \"0s\"\n\
        [[tokens.T.targets]]\nkind = \"wrangler\"\nworker = \"api\"\nnames = [\"T\", \"T_ALIAS\"]\n\
        [[tokens.T.targets]]\nkind = \"wrangler\"\nworker = \"web\"\ndeploy = \"version\"\nrollout = \"100%\"\nnames = [\"T\", \"T_ALIAS\"]\n\
        [[tokens.T.targets]]\nkind = \"pages\"\nproject = \"shop\"\nnames = [\"T\", \"T_ALIAS\"]\n\
        [[tokens.T.targets]]\nkind = \"pages\"\nproject = \"shop\"\nenvironment = \"preview\"\nnames = [\"T\", \"T_ALIAS\"]\n\
        [[tokens.T.targets]]\nkind = \"secrets_store\"\nnames = [\"T\", \"T_ALIAS\"]\n";
    let p = Project::initialised(policy);
    // Requests since the last reset, by the fake's route: (Pages project
    // GETs, PATCHes), and one method of the store's secrets.
    let take = || {
        let counts = cf.control.counts();
        cf.control.reset_counts();
        counts
    };
    let n = |counts: &BTreeMap<String, u64>, route: &str| counts.get(route).copied().unwrap_or(0);
    let pages = |c: &BTreeMap<String, u64>| {
        let route = "/client/v4/accounts/{account}/pages/projects/{project}";
        (n(c, &format!("GET {route}")), n(c, &format!("PATCH {route}")))
    };
    let secrets = "/client/v4/accounts/{account}/secrets_store/stores/{store}/secrets";
    let secret = format!("{secrets}/{{secret}}");
    let run = |args: &[&str]| {
        let out = run_ok(&p, &gh, &cf, args);
        (out, take())
    };

    let (out, c) = run(&["plan"]);
    let (gets, patches) = pages(&c);
    assert!(gets > 0 && patches == 0, "plan: {gets} GET(s), {patches} PATCH(es) of the Pages project");
    for route in
        ["GET /client/v4/accounts/{account}/secrets_store/stores", "GET /client/v4/accounts/{account}/workers/scripts"]
    {
        assert!(n(&c, route) > 0, "plan sent no {route}: {c:?}");
    }
    assert!(n(&c, &format!("GET {secrets}")) > 0, "plan listed no store secrets: {c:?}");
    assert!(out.contains("T is read by Worker edge"), "{out}");
    let (_, c) = run(&["rotate"]);
    assert!(pages(&c).1 > 0, "rotate sent no PATCH of the Pages project");
    assert_eq!(n(&c, &format!("POST {secrets}")), 1, "one create for both store names: {c:?}");
    let value = p.ok(&["get", "T"]).trim_end().to_string();
    assert_eq!(cf.value("api", "T").as_deref(), Some(value.as_str()));
    assert_eq!(cf.value("web", "T").as_deref(), Some(value.as_str()));
    for env in ["production", "preview"] {
        assert_eq!(cf.pages_var("shop", env, "T"), Some(("secret_text".into(), value.clone())));
    }
    for name in ["T", "T_ALIAS"] {
        assert_eq!(cf.store_value(&store, name).as_deref(), Some(value.as_str()));
    }

    // A Pages variable deleted by hand: `sync --verify` reads the project
    // and writes it back.
    cf.pages_remove_by_hand("shop", "preview", "T_ALIAS");
    let (_, c) = run(&["sync", "--verify"]);
    let (gets, patches) = pages(&c);
    assert!(gets > 0 && patches > 0, "sync --verify: {gets} GET(s), {patches} PATCH(es) of the Pages project");
    assert_eq!(cf.pages_var("shop", "preview", "T_ALIAS"), Some(("secret_text".into(), value.clone())));

    // An account without the bulk endpoint: one PUT per secret. The store's
    // secrets exist now: each is PATCHed.
    cf.state.bulk_disabled.store(true, std::sync::atomic::Ordering::SeqCst);
    let (_, c) = run(&["rotate", "T"]);
    cf.state.bulk_disabled.store(false, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(n(&c, &format!("PATCH {secret}")), 2, "rotate T: a PATCH per store secret: {c:?}");
    assert_eq!(n(&c, &format!("POST {secrets}")), 0, "rotate T created store secrets again: {c:?}");
    let value = p.ok(&["get", "T"]).trim_end().to_string();
    assert_eq!(cf.store_value(&store, "T").as_deref(), Some(value.as_str()));
    run_ok(&p, &gh, &cf, &["check", "--online"]);

    std::fs::write(p.path("policies/main.toml"), policy.replace("names = [\"T\", \"T_ALIAS\"]\n", "")).unwrap();
    let (out, c) = run(&["sync", "--prune"]);
    assert!(out.contains("pruned T_ALIAS"), "{out}");
    assert_eq!(cf.value("api", "T_ALIAS"), None);
    for env in ["production", "preview"] {
        assert_eq!(cf.pages_var("shop", env, "T_ALIAS"), None);
    }
    assert_eq!(n(&c, &format!("DELETE {secret}")), 1, "prune: one DELETE of a store secret: {c:?}");
    assert_eq!(cf.store_value(&store, "T_ALIAS"), None);
    assert_eq!(cf.store_value(&store, "T").as_deref(), Some(value.as_str()));
    // The prune's PATCH names the variable with `null`: that body, too, is
    // checked against the published schema below.
    let pages_patches: Vec<Value> = cf
        .control
        .recorded()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path.contains("/pages/projects/"))
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect();
    assert!(
        pages_patches.iter().any(|b| ["production", "preview"]
            .iter()
            .any(|env| b["deployment_configs"][env]["env_vars"].get("T_ALIAS") == Some(&Value::Null))),
        "no Pages PATCH deleted T_ALIAS with null: {pages_patches:?}"
    );

    assert_conforms(&[(Published::cloudflare(), &cf.control)]);
}

/// The checker itself: requests the descriptions do not allow, sent over
/// HTTP to the fakes, are each caught and named.
#[test]
fn the_published_check_catches_what_the_descriptions_do_not_allow() {
    let gh = FakeGithub::start();
    let cf = FakeCloudflare::start();
    gh.add_repo("acme/app");
    cf.add_script("api");
    let base = "/client/v4/accounts/acc/workers/scripts/api";
    send(&cf.url(), "GET", &format!("{base}/content/v2?version=abc"), None);
    send(&cf.url(), "GET", &format!("{base}/versions?per_page=one"), None);
    send(
        &cf.url(),
        "PATCH",
        &format!("{base}/secrets-bulk"),
        Some(("application/merge-patch+json", r#"{"secrets":{"A":{"name":"A","type":"secret_txt","text":"v"}}}"#)),
    );
    send(&cf.url(), "GET", &format!("{base}/settings"), None);
    send(
        &gh.url(),
        "PUT",
        "/repos/acme/app/actions/secrets/A",
        Some(("application/json", r#"{"encrypted_value":"AAAA","key_id":null}"#)),
    );
    send(&gh.url(), "GET", "/repos/acme/app/actions/secrets?per_page=100&sort=name", None);
    send(&gh.url(), "POST", "/repos/acme/app/actions/secrets/public-key", None);

    let (gh_violations, _) = check_all(Published::github(), &gh.control);
    let (cf_violations, _) = check_all(Published::cloudflare(), &cf.control);
    let all: Vec<String> = gh_violations.iter().chain(&cf_violations).map(ToString::to_string).collect();
    let has = |needles: &[&str]| {
        assert!(
            all.iter().any(|v| needles.iter().all(|n| v.contains(n))),
            "no violation says {needles:?}; found:\n{}",
            all.join("\n\n")
        )
    };
    has(&["content/v2?version=abc", "workers.scripts.content.get", "query parameter `version`", "declared: none"]);
    has(&["versions?per_page=one", "query parameter `per_page`", "is not of type \"number\""]);
    has(&["secrets-bulk", "body at `/secrets/A`", "tests/published/cloudflare.json"]);
    has(&["/settings", "published but not among the operations trimmed in"]);
    has(&["actions/create-or-update-repo-secret", "body at `/key_id`", "null", "tests/published/github.json"]);
    has(&["query parameter `sort`", "declared: per_page, page"]);
    has(&["POST is not published for /repos/{owner}/{repo}/actions/secrets/public-key", "published: GET"]);
    assert_eq!(all.len(), 7, "one violation per bad request:\n{}", all.join("\n\n"));
}

/// One HTTP/1.1 request, its answer read and dropped.
fn send(base: &str, method: &str, path: &str, body: Option<(&str, &str)>) {
    let addr = base.trim_start_matches("http://").split('/').next().unwrap();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    let (content_type, body) = body.unwrap_or(("", ""));
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if !content_type.is_empty() {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
}
