#!/usr/bin/env python3
"""Regenerates tests/published/github.json and tests/published/cloudflare.json,
the request side of the GitHub and Cloudflare operations chitty-secrets uses,
from the services' published descriptions (see README.md beside this file).

    trim.py github API_GITHUB_COM_JSON [--source TEXT]
    trim.py cloudflare CLOUDFLARE_TYPESCRIPT [--commit REV] [--source TEXT]

API_GITHUB_COM_JSON is GitHub's OpenAPI description of api.github.com:
`descriptions/api.github.com/api.github.com.json` of github/rest-api-description,
or the same file as npm's @octokit/openapi ships it (`generated/api.github.com.json`).

CLOUDFLARE_TYPESCRIPT is a checkout of cloudflare/cloudflare-typescript (the
SDK Cloudflare generates from its OpenAPI description with Stainless), or its
bare git directory (then files are read at --commit, default HEAD). It stands
in for cloudflare/api-schemas' openapi.json where that file cannot be had.

Python 3 standard library only. Output is written beside this script.
"""

import argparse
import datetime
import hashlib
import json
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------- GitHub

GITHUB_OPERATIONS = []
for _app in ("actions", "dependabot", "codespaces"):
    GITHUB_OPERATIONS += [
        ("GET", f"/repos/{{owner}}/{{repo}}/{_app}/secrets/public-key"),
        ("GET", f"/repos/{{owner}}/{{repo}}/{_app}/secrets"),
        ("PUT", f"/repos/{{owner}}/{{repo}}/{_app}/secrets/{{secret_name}}"),
        ("DELETE", f"/repos/{{owner}}/{{repo}}/{_app}/secrets/{{secret_name}}"),
        ("GET", f"/orgs/{{org}}/{_app}/secrets/public-key"),
        ("GET", f"/orgs/{{org}}/{_app}/secrets"),
        ("GET", f"/orgs/{{org}}/{_app}/secrets/{{secret_name}}"),
        ("PUT", f"/orgs/{{org}}/{_app}/secrets/{{secret_name}}"),
        ("DELETE", f"/orgs/{{org}}/{_app}/secrets/{{secret_name}}"),
        ("GET", f"/orgs/{{org}}/{_app}/secrets/{{secret_name}}/repositories"),
    ]
GITHUB_OPERATIONS += [
    ("PUT", "/repos/{owner}/{repo}/environments/{environment_name}"),
    ("GET", "/repos/{owner}/{repo}/environments/{environment_name}/secrets/public-key"),
    ("GET", "/repos/{owner}/{repo}/environments/{environment_name}/secrets"),
    ("PUT", "/repos/{owner}/{repo}/environments/{environment_name}/secrets/{secret_name}"),
    ("DELETE", "/repos/{owner}/{repo}/environments/{environment_name}/secrets/{secret_name}"),
    ("GET", "/orgs/{org}/repos"),
    # `leaks`: the secret-scanning alerts of the repositories and
    # organizations the policies deliver to, and closing one as revoked.
    ("GET", "/repos/{owner}/{repo}/secret-scanning/alerts"),
    ("GET", "/orgs/{org}/secret-scanning/alerts"),
    ("PATCH", "/repos/{owner}/{repo}/secret-scanning/alerts/{alert_number}"),
]

# Schema keywords dropped: prose and examples, which a request is not checked against.
DROPPED = {"description", "example", "examples", "title", "externalDocs", "deprecated", "readOnly", "writeOnly"}


def openapi_to_json_schema(schema, resolve, seen=()):
    """An OpenAPI 3.0 schema with every $ref resolved inline, prose dropped,
    and `nullable: true` written the JSON Schema way (a `null` type/enum member)."""
    if isinstance(schema, list):
        return [openapi_to_json_schema(s, resolve, seen) for s in schema]
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema:
        ref = schema["$ref"]
        if ref in seen:
            sys.exit(f"recursive $ref {ref}: not expected in a request schema")
        return openapi_to_json_schema(resolve(ref), resolve, seen + (ref,))
    out = {}
    for key, value in schema.items():
        if key in DROPPED or key.startswith("x-") or key == "nullable":
            continue
        if key in ("properties", "patternProperties"):
            out[key] = {k: openapi_to_json_schema(v, resolve, seen) for k, v in value.items()}
        elif key in ("items", "additionalProperties", "not", "allOf", "anyOf", "oneOf"):
            out[key] = openapi_to_json_schema(value, resolve, seen)
        else:
            out[key] = value
    if schema.get("nullable") is True:
        if "type" in out:
            out["type"] = [out["type"], "null"] if isinstance(out["type"], str) else out["type"] + ["null"]
            if "enum" in out and None not in out["enum"]:
                out["enum"] = out["enum"] + [None]
        else:
            out = {"anyOf": [out, {"type": "null"}]}
    return out


def trim_github(path, source_text):
    raw = open(path, "rb").read()
    doc = json.loads(raw)

    def resolve(ref):
        node = doc
        for part in ref.lstrip("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        return node

    operations = []
    for method, template in GITHUB_OPERATIONS:
        item = doc["paths"].get(template)
        if item is None or method.lower() not in item:
            sys.exit(f"{method} {template} is not in {path}")
        op = item[method.lower()]
        params = []
        for p in item.get("parameters", []) + op.get("parameters", []):
            p = resolve(p["$ref"]) if "$ref" in p else p
            params.append({
                "name": p["name"],
                "in": p["in"],
                "required": bool(p.get("required", False)),
                "schema": openapi_to_json_schema(p.get("schema", {}), resolve),
            })
        entry = {
            "id": op["operationId"],
            "method": method,
            "path": template,
            "docs": op.get("externalDocs", {}).get("url"),
            "parameters": params,
        }
        body = op.get("requestBody")
        if body is not None:
            body = resolve(body["$ref"]) if "$ref" in body else body
            entry["request_body"] = {
                "required": bool(body.get("required", False)),
                "content": {
                    media: {"schema": openapi_to_json_schema(c.get("schema", {}), resolve)}
                    for media, c in body["content"].items()
                },
            }
        operations.append(entry)

    out = {
        "service": "GitHub REST API (api.github.com)",
        "source": {
            "description": "GitHub's OpenAPI 3.0 description of api.github.com, from github/rest-api-description",
            "file": source_text or os.path.basename(path),
            "openapi": doc.get("openapi"),
            "info_version": doc.get("info", {}).get("version"),
            "sha256": hashlib.sha256(raw).hexdigest(),
            "servers": [s["url"] for s in doc.get("servers", [])],
        },
        "trimmed": trimming_note("github", "GITHUB_OPERATIONS"),
        "media_type_exact": True,
        "operations": operations,
        "published_methods": neighbours(
            [(m, t) for m, t in GITHUB_OPERATIONS],
            [(m.upper(), t) for t, item in doc["paths"].items() for m in item if m in HTTP_METHODS],
        ),
    }
    write("github.json", out)


HTTP_METHODS = {"get", "put", "post", "patch", "delete", "head", "options"}


def parent(template):
    return template.rsplit("/", 1)[0]


def neighbours(used, published):
    """Every published METHOD of every used path, of its parent, of its
    children and (below a parent of four segments or more, so not all of
    /repos/{owner}/{repo}/…) of its siblings, so the check can tell "not
    published" from "published, but not trimmed in"."""
    paths = {t for _, t in used}
    parents = {parent(t) for t in paths if parent(t).count("/") >= 4}
    out = {}
    for method, template in published:
        if template in paths or parent(template) in paths | parents or any(parent(t) == template for t in paths):
            out.setdefault(template, set()).add(method)
    return {t: sorted(ms) for t, ms in sorted(out.items())}


def trimming_note(service, table):
    return (
        f"Only the operations in {table} of tests/published/trim.py (the ones chitty-secrets sends), "
        "and of each only the request side: parameters (name, in, required, schema) and the request "
        "body's schema per media type. Every $ref is resolved inline; descriptions, examples, titles "
        "and x- extensions are dropped; enums, patterns, formats and bounds are kept; OpenAPI's "
        "`nullable: true` is written as a JSON Schema `null` type (and enum member). "
        "`published_methods` lists the published methods of every used path, its parent, its children and "
        "(below a parent of four segments or more) its siblings. "
        f"Regenerate: python3 tests/published/trim.py {service} ... (see README.md)."
    )


# ------------------------------------------------------------ Cloudflare

CLOUDFLARE_RESOURCES = "src/resources"
# (file under src/resources of the SDK, method of its resource class); an
# operation's id is the file's path with dots, then the method.
CLOUDFLARE_OPERATIONS = [
    ("workers/scripts/secrets.ts", "list"),
    ("workers/scripts/secrets.ts", "update"),
    ("workers/scripts/secrets.ts", "delete"),
    ("workers/scripts/secrets.ts", "bulkUpdate"),
    ("workers/scripts/deployments.ts", "list"),
    ("workers/scripts/deployments.ts", "create"),
    ("workers/scripts/versions.ts", "list"),
    ("workers/scripts/versions.ts", "get"),
    ("workers/scripts/versions.ts", "create"),
    ("workers/scripts/content.ts", "get"),
    ("pages/projects/projects.ts", "get"),
    ("pages/projects/projects.ts", "edit"),
    # kind = "secrets_store": the store found, its secrets listed, created,
    # edited and deleted; and the account's Workers listed (which read it).
    # (src/resources/secrets-store/stores.ts only re-exports stores/.)
    ("secrets-store/stores/stores.ts", "list"),
    ("secrets-store/stores/secrets.ts", "list"),
    ("secrets-store/stores/secrets.ts", "create"),
    ("secrets-store/stores/secrets.ts", "edit"),
    ("secrets-store/stores/secrets.ts", "delete"),
    ("workers/scripts/scripts.ts", "list"),
]
# The SDK directories whose calls make up `published_methods`.
CLOUDFLARE_PUBLISHED_UNDER = ["workers", "pages", "secrets-store"]


class Source:
    """Files of the SDK: a checkout, or a bare git directory at a commit."""

    def __init__(self, root, commit):
        self.root = root
        self.git = not os.path.isdir(os.path.join(root, "src"))
        self.commit = commit
        if self.git:
            self.commit = self.run("rev-parse", commit or "HEAD")
        elif commit:
            sys.exit("--commit needs a git directory")
        else:
            try:
                self.commit = subprocess.run(["git", "-C", root, "rev-parse", "HEAD"], capture_output=True,
                                             text=True, check=True).stdout.strip()
            except (OSError, subprocess.CalledProcessError):
                self.commit = None

    def run(self, *args):
        return subprocess.run(["git", "--git-dir", self.root, *args], capture_output=True, text=True,
                              check=True).stdout.strip()

    def read(self, rel):
        if self.git:
            return subprocess.run(["git", "--git-dir", self.root, "show", f"{self.commit}:{rel}"],
                                  capture_output=True, text=True, check=True).stdout
        return open(os.path.join(self.root, rel), encoding="utf-8").read()

    def date(self):
        if self.git:
            return self.run("log", "-1", "--format=%cI", self.commit)
        return None

    def list(self, under):
        if self.git:
            return self.run("ls-tree", "-r", "--name-only", self.commit, under).splitlines()
        out = []
        for d, _, files in os.walk(os.path.join(self.root, under)):
            out += [os.path.relpath(os.path.join(d, f), self.root) for f in files]
        return sorted(out)


TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<doc>/\*\*.*?\*/)
  | (?P<comment>/\*.*?\*/|//[^\n]*)
  | (?P<str>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
  | (?P<tpl>`(?:[^`\\]|\\.)*`)
  | (?P<num>-?\d+(?:\.\d+)?)
  | (?P<id>[A-Za-z_$][\w$]*)
  | (?P<arrow>=>)
  | (?P<punct>\.\.\.|[{}()\[\]<>;:,|&?=.!*+\-/@#%^~])
""", re.S | re.X)


def tokenize(text):
    tokens, pos = [], 0
    while pos < len(text):
        m = TOKEN.match(text, pos)
        if not m:
            sys.exit(f"cannot read TypeScript at {text[pos:pos + 40]!r}")
        pos = m.end()
        kind = m.lastgroup
        if kind in ("ws", "comment"):
            continue
        tokens.append((kind, m.group()))
    return tokens


class TsFile:
    """The declarations of one generated TypeScript file: interfaces, type
    aliases and namespaces (by dotted name), and its imports."""

    def __init__(self, sdk, rel):
        self.sdk, self.rel = sdk, rel
        self.text = sdk.read(rel)
        self.toks = tokenize(self.text)
        self.i = 0
        self.decls = {}  # dotted name -> ("interface", extends, members) | ("type", typeexpr)
        self.imports = {}  # local name -> (module file, exported name or None for `* as`)
        self.parse_block(prefix="", until=None)

    # -- token helpers
    def peek(self, k=0):
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else (None, None)

    def next(self):
        t = self.peek()
        self.i += 1
        return t

    def expect(self, value):
        t = self.next()
        if t[1] != value:
            sys.exit(f"{self.rel}: expected {value!r}, found {t[1]!r} (token {self.i})")
        return t

    def skip_balanced(self):
        opener = self.next()[1]
        closer = {"{": "}", "(": ")", "[": "]", "<": ">"}[opener]
        depth = 1
        while depth:
            v = self.next()[1]
            if v is None:
                sys.exit(f"{self.rel}: unbalanced {opener}")
            if v == opener:
                depth += 1
            elif v == closer:
                depth -= 1

    def skip_statement(self):
        while True:
            v = self.peek()[1]
            if v is None or v == ";":
                self.i += 1
                return
            if v == "}":
                return
            if v in "{([":
                self.skip_balanced()
                if v == "{" and self.peek()[1] != ".":
                    return
            else:
                self.i += 1

    # -- declarations
    def parse_block(self, prefix, until):
        while True:
            kind, v = self.peek()
            if v is None or v == until:
                if until:
                    self.i += 1
                return
            if kind == "doc":
                self.i += 1
            elif v in ("export", "declare", "abstract", "default"):
                self.i += 1
            elif v == "import":
                self.parse_import()
            elif v == "interface":
                self.i += 1
                name = self.next()[1]
                if self.peek()[1] == "<":
                    self.skip_balanced()
                extends = []
                if self.peek()[1] == "extends":
                    self.i += 1
                    while self.peek()[1] != "{":
                        extends.append(self.parse_type())
                        if self.peek()[1] == ",":
                            self.i += 1
                self.decls[prefix + name] = ("interface", extends, self.parse_members())
            elif v == "namespace":
                self.i += 1
                name = self.next()[1]
                self.expect("{")
                self.parse_block(prefix + name + ".", "}")
            elif v == "type" and self.peek(1)[0] == "id" and self.peek(2)[1] in ("=", "<"):
                self.i += 1
                name = self.next()[1]
                if self.peek()[1] == "<":
                    self.skip_balanced()
                self.expect("=")
                self.decls[prefix + name] = ("type", self.parse_type())
                if self.peek()[1] == ";":
                    self.i += 1
            elif v == "class":
                while self.peek()[1] != "{":
                    self.i += 1
                self.skip_balanced()
            else:
                self.skip_statement()

    def parse_import(self):
        self.expect("import")
        names = []
        if self.peek()[1] == "type":
            self.i += 1
        if self.peek()[1] == "*":
            self.i += 1
            self.expect("as")
            names.append((self.next()[1], None))
        elif self.peek()[1] == "{":
            self.i += 1
            while self.peek()[1] != "}":
                if self.peek()[1] == "type":
                    self.i += 1
                exported = self.next()[1]
                local = exported
                if self.peek()[1] == "as":
                    self.i += 1
                    local = self.next()[1]
                names.append((local, exported))
                if self.peek()[1] == ",":
                    self.i += 1
            self.i += 1
        else:
            names.append((self.next()[1], "default"))
        self.expect("from")
        module = json.loads('"' + self.next()[1][1:-1] + '"')
        if self.peek()[1] == ";":
            self.i += 1
        base = os.path.normpath(os.path.join(os.path.dirname(self.rel), module))
        for local, exported in names:
            self.imports[local] = (base, exported)

    def parse_members(self):
        """`{ name?: type; 'quoted': type; [key: string]: type }` as
        (members, index signature type); each member (name, optional, type, doc)."""
        self.expect("{")
        members, index, doc = [], None, ""
        while self.peek()[1] != "}":
            kind, v = self.peek()
            if kind == "doc":
                doc = v
                self.i += 1
                continue
            if v in (";", ","):
                self.i += 1
                continue
            if v == "readonly":
                self.i += 1
                continue
            if v == "[":
                self.i += 1
                self.next()  # key
                self.expect(":")
                self.parse_type()
                self.expect("]")
                self.expect(":")
                index = self.parse_type()
                doc = ""
                continue
            name = self.next()[1]
            if kind == "str":
                name = json.loads('"' + name[1:-1].replace('"', '\\"') + '"')
            optional = False
            if self.peek()[1] == "?":
                optional = True
                self.i += 1
            self.expect(":")
            members.append((name, optional, self.parse_type(), doc))
            doc = ""
        self.i += 1
        return members, index

    # -- type expressions, as small trees
    def parse_type(self):
        if self.peek()[1] in ("|", "&"):
            self.i += 1
        parts = [self.parse_intersection()]
        while self.peek()[1] == "|":
            self.i += 1
            parts.append(self.parse_intersection())
        return parts[0] if len(parts) == 1 else ("union", parts)

    def parse_intersection(self):
        parts = [self.parse_postfix()]
        while self.peek()[1] == "&":
            self.i += 1
            parts.append(self.parse_postfix())
        return parts[0] if len(parts) == 1 else ("all", parts)

    def parse_postfix(self):
        t = self.parse_primary()
        while self.peek()[1] == "[" and self.peek(1)[1] == "]":
            self.i += 2
            t = ("array", t)
        return t

    def parse_primary(self):
        kind, v = self.next()
        if kind == "str":
            return ("lit", json.loads('"' + v[1:-1].replace('"', '\\"') + '"'))
        if kind == "num":
            return ("lit", float(v) if "." in v else int(v))
        if v in ("true", "false"):
            return ("lit", v == "true")
        if v == "(":
            t = self.parse_type()
            self.expect(")")
            return t
        if v == "{":
            self.i -= 1
            return ("object", *self.parse_members())
        if kind == "id":
            name = v
            while self.peek()[1] == "." and self.peek(1)[0] == "id":
                self.i += 1
                name += "." + self.next()[1]
            args = []
            if self.peek()[1] == "<":
                self.i += 1
                while self.peek()[1] != ">":
                    args.append(self.parse_type())
                    if self.peek()[1] == ",":
                        self.i += 1
                self.i += 1
            return ("ref", name, args, self)
        sys.exit(f"{self.rel}: unexpected {v!r} in a type")


class Converter:
    """TypeScript types of the SDK -> JSON Schema (draft 2020-12)."""

    KEYWORDS = {
        "string": {"type": "string"},
        "number": {"type": "number"},
        "boolean": {"type": "boolean"},
        "null": {"type": "null"},
        "unknown": {},
        "any": {},
        "object": {"type": "object"},
        "Uploadable": {"type": "string", "format": "binary"},
    }

    def __init__(self, sdk):
        self.sdk = sdk
        self.files = {}
        self.stack = []

    def file(self, rel):
        if rel not in self.files:
            self.files[rel] = TsFile(self.sdk, rel)
        return self.files[rel]

    def module(self, base):
        for rel in (base + ".ts", os.path.join(base, "index.ts")):
            try:
                return self.file(rel)
            except subprocess.CalledProcessError:
                continue
            except FileNotFoundError:
                continue
        sys.exit(f"no module {base}")

    def lookup(self, f, name, scope):
        """A declaration named `name` as seen from namespace `scope` of `f`:
        (file, dotted name)."""
        parts = scope.split(".") if scope else []
        for n in range(len(parts), -1, -1):
            candidate = ".".join(parts[:n] + [name])
            if candidate in f.decls:
                return f, candidate
        head, _, rest = name.partition(".")
        if head in f.imports:
            base, exported = f.imports[head]
            target = self.module(base)
            if exported is None:  # import * as X
                return self.lookup(target, rest, "") if rest else (target, None)
            return self.lookup(target, exported + ("." + rest if rest else ""), "")
        # A re-export (`export { X } from` / index.ts): look in the modules it names.
        for m in re.finditer(r"export \{([^}]*)\} from '([^']+)'", f.text):
            exported = [e.strip().split(" as ")[-1].replace("type ", "").strip() for e in m.group(1).split(",")]
            if head in exported:
                target = self.module(os.path.normpath(os.path.join(os.path.dirname(f.rel), m.group(2))))
                return self.lookup(target, name, "")
        sys.exit(f"{f.rel}: cannot resolve {name} (from {scope or 'the top level'})")

    def convert(self, t, f, scope):
        kind = t[0]
        if kind == "lit":
            return {"type": json_type(t[1]), "enum": [t[1]]}
        if kind == "array":
            return {"type": "array", "items": self.convert(t[1], f, scope)}
        if kind == "union":
            items = [self.convert(x, f, scope) for x in t[1]]
            if all(set(x) == {"type", "enum"} for x in items):
                values = [v for x in items for v in x["enum"]]
                types = sorted({json_type(v) for v in values})
                return {"type": types[0] if len(types) == 1 else types, "enum": values}
            return {"anyOf": items}
        if kind == "all":
            return {"allOf": [self.convert(x, f, scope) for x in t[1]]}
        if kind == "object":
            return self.object(t[1], t[2], f, scope, [])
        if kind == "ref":
            _, name, args, where = t
            f = where
            if name in self.KEYWORDS:
                return dict(self.KEYWORDS[name])
            if name in ("Array", "ReadonlyArray"):
                return {"type": "array", "items": self.convert(args[0], f, scope)}
            if name == "Record":
                return {"type": "object", "additionalProperties": self.convert(args[1], f, scope)}
            target, dotted = self.lookup(f, name, scope)
            key = (target.rel, dotted)
            if key in self.stack:
                return {}  # recursive type: not constrained further
            self.stack.append(key)
            try:
                decl = target.decls[dotted]
                if decl[0] == "type":
                    return self.convert(decl[1], target, dotted)
                return self.interface(target, dotted)
            finally:
                self.stack.pop()
        sys.exit(f"unknown type node {t!r}")

    def interface(self, f, dotted, drop=()):
        _, extends, (members, index) = f.decls[dotted]
        scope = dotted  # members' names resolve inside the interface's own namespace first
        return self.object(members, index, f, scope, extends, drop)

    def object(self, members, index, f, scope, extends, drop=()):
        props, required = {}, []
        for base in extends:
            s = self.convert(base, f, scope)
            props.update(s.get("properties", {}))
            required += s.get("required", [])
        for name, optional, t, _doc in members:
            if name in drop:
                continue
            props[name] = self.convert(t, f, scope)
            if not optional:
                required.append(name)
        out = {"type": "object"}
        if props:
            out["properties"] = props
        if required:
            out["required"] = required
        if index is not None:
            out["additionalProperties"] = self.convert(index, f, scope)
        return out


def json_type(v):
    return {bool: "boolean", int: "integer", float: "number", str: "string"}[type(v)]


def camel_to_snake(name):
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


METHOD_RE = re.compile(r"\n  (?P<name>\w+)\((?P<sig>.*?)\)(?:: [^{]*)? \{\n(?P<body>.*?)\n  \}\n", re.S)
CALL_RE = re.compile(r"this\._client\.(?P<verb>get|put|post|patch|delete|getAPIList)\(\s*path`(?P<path>[^`]*)`")


def sdk_method(f, name):
    """The SDK method's HTTP verb, path template, params type and how it
    splits the params (path / query / body)."""
    for m in METHOD_RE.finditer(f.text):
        if m.group("name") != name:
            continue
        call = CALL_RE.search(m.group("body"))
        if not call:
            continue
        verb = call_verb(call, m.group("body"))
        names = re.findall(r"\$\{(\w+)\}", call.group("path"))
        path = re.sub(r"\$\{(\w+)\}", lambda x: "{" + camel_to_snake(x.group(1)) + "}", call.group("path"))
        params_type = re.search(r"params\??: (\w+)", m.group("sig"))
        destructure = re.search(r"const \{(.*?)\} = params", m.group("body"), re.S)
        fields = [x.strip() for x in destructure.group(1).split(",")] if destructure else []
        rest = next((x[3:] for x in fields if x.startswith("...")), None)
        query_names = set()
        q = re.search(r"query: \{([^}]*)\}", m.group("body"))
        if q:
            query_names = {x.strip() for x in q.group(1).split(",") if x.strip()}
        # A body that is not an object (a JSON array) is one params field,
        # `body`, destructured by name and sent whole (`{ body: body, ... }`).
        whole_body = "body" in fields and re.search(r"\{\s*body(?::\s*body)?\s*,", m.group("body")) is not None
        return {
            "method": verb,
            "path": path,
            "path_names": names,
            "params_type": params_type.group(1) if params_type else None,
            "rest": rest,
            "whole_body": "body" if whole_body else None,
            "query_names": query_names,
            "multipart": "multipartFormRequestOptions" in m.group("body"),
            "doc_param_label": True,
        }
    sys.exit(f"{f.rel}: no method {name} calling this._client")


def call_verb(call, body=""):
    """The HTTP verb of a `this._client.<verb>(path`...`` call; a paginated
    `getAPIList` is a GET unless its options say `method: '...'` (a POST
    whose answer is a page)."""
    if call.group("verb") != "getAPIList":
        return call.group("verb").upper()
    rest = body[call.end():]
    end = rest.find(");")
    m = re.search(r"method: '(\w+)'", rest[:end if end >= 0 else None])
    return m.group(1).upper() if m else "GET"


def label(doc):
    m = re.search(r"\*\s*(Path|Query|Body|Header) param\b", doc or "")
    return m.group(1).lower() if m else None


def params_split(conv, f, type_name, info):
    """Query parameters and the body schema of the params type (a union of
    interfaces gives a body `anyOf`)."""
    decl = f.decls[type_name]
    variants = [type_name]
    if decl[0] == "type":
        union = decl[1][1] if decl[1][0] == "union" else [decl[1]]
        variants = [conv.lookup(f, t[1], type_name)[1] for t in union]
    query, bodies = {}, []
    for variant in variants:
        _, extends, (members, _index) = f.decls[variant]
        inherited = []
        for base in extends:
            s = conv.convert(base, f, variant)
            for pname, pschema in s.get("properties", {}).items():
                inherited.append((pname, pname not in s.get("required", []), pschema, ""))
        body_members = []
        for name, optional, t, doc in list(members) + inherited:
            where = label(doc)
            if where is None:
                if name in info["path_names"]:
                    where = "path"
                elif name in info["query_names"] or info["rest"] == "query":
                    where = "query"
                elif info["rest"] == "body":
                    where = "body"
                else:
                    where = "path" if name in ("account_id", "script_name") else None
            if where == "path":
                continue
            schema = t if isinstance(t, dict) else conv.convert(t, f, variant)
            if where == "query":
                query[name] = {"name": name, "in": "query", "required": not optional, "schema": schema}
            elif where == "body" and name == info.get("whole_body"):
                bodies.append(schema)
            elif where == "body":
                body_members.append((name, optional, schema))
            else:
                sys.exit(f"{f.rel}: cannot tell where {type_name}.{name} goes")
        if body_members:
            bodies.append({
                "type": "object",
                "properties": {n: s for n, _, s in body_members},
                "required": [n for n, opt, _ in body_members if not opt],
            })
    body = None
    if bodies:
        body = bodies[0] if len(bodies) == 1 else {"anyOf": bodies}
    return list(query.values()), body


def strip_empty_required(s):
    if isinstance(s, dict):
        if s.get("required") == []:
            del s["required"]
        for v in s.values():
            strip_empty_required(v)
    elif isinstance(s, list):
        for v in s:
            strip_empty_required(v)
    return s


def trim_cloudflare(root, commit, source_text):
    sdk = Source(root, commit)
    conv = Converter(sdk)
    operations, used = [], []
    for rel, name in CLOUDFLARE_OPERATIONS:
        f = conv.file(f"{CLOUDFLARE_RESOURCES}/{rel}")
        info = sdk_method(f, name)
        params = [{"name": n, "in": "path", "required": True, "schema": {"type": "string"}}
                  for n in (camel_to_snake(x) for x in info["path_names"])]
        query, body = params_split(conv, f, info["params_type"], info) if info["params_type"] else ([], None)
        # workers/scripts/secrets.ts -> workers.scripts.secrets; pages/projects/projects.ts -> pages.projects
        resource = rel[:-3].split("/")
        if len(resource) >= 2 and resource[-1] == resource[-2]:
            resource = resource[:-1]
        entry = {
            "id": ".".join(resource + [name]),
            "method": info["method"],
            "path": info["path"],
            "sdk": f"{CLOUDFLARE_RESOURCES}/{rel}: {name}({info['params_type']})",
            "parameters": params + query,
        }
        if body is not None:
            if info["multipart"]:
                # Each body field is a part; `Uploadable` ones are files, the
                # others are sent as JSON (Stainless' multipart encoding).
                json_parts = [k for k, v in body["properties"].items()
                              if not (v.get("format") == "binary" or v.get("items", {}).get("format") == "binary")]
                files_doc = next((d for n, _, _, d in f.decls[info["params_type"]][2][0] if n == "files"), "")
                entry["request_body"] = {
                    "required": True,
                    "content": {"multipart/form-data": {
                        "schema": body,
                        "json_parts": json_parts,
                        "file_parts_doc": " ".join(
                            line.strip().lstrip("*").strip() for line in files_doc.strip("/*").splitlines()
                        ).strip(),
                    }},
                }
            else:
                # The SDK always sends the body object of such a method.
                entry["request_body"] = {"required": True, "content": {"application/json": {"schema": body}}}
        operations.append(strip_empty_required(entry))
        used.append((info["method"], info["path"]))

    published = []
    for rel in (r for under in CLOUDFLARE_PUBLISHED_UNDER for r in sdk.list(f"{CLOUDFLARE_RESOURCES}/{under}")):
        if not rel.endswith(".ts"):
            continue
        text = sdk.read(rel)
        for call in CALL_RE.finditer(text):
            verb = call_verb(call, text)
            path = re.sub(r"\$\{(\w+)\}", lambda x: "{" + camel_to_snake(x.group(1)) + "}", call.group("path"))
            published.append((verb, path))

    out = {
        "service": "Cloudflare API v4 (Workers scripts, Pages projects, Secrets Store)",
        "source": {
            "description": (
                "Cloudflare's TypeScript SDK, generated by Stainless from Cloudflare's OpenAPI description "
                "(cloudflare/api-schemas openapi.json, whose current copy is over the size this workplace can fetch)"
            ),
            "repository": "cloudflare/cloudflare-typescript",
            "files": sorted({f"{CLOUDFLARE_RESOURCES}/{rel}" for rel, _ in CLOUDFLARE_OPERATIONS}),
            "commit": sdk.commit,
            "commit_date": sdk.date(),
            "note": source_text,
            "servers": ["https://api.cloudflare.com/client/v4"],
        },
        "trimmed": trimming_note("cloudflare", "CLOUDFLARE_OPERATIONS") + (
            " From the SDK: each method's verb and path template; its params type split into path, query "
            "and body by the SDK's own `Path param:` / `Query param:` / `Body param:` labels (else by the "
            "method's destructuring); TypeScript types written as JSON Schema (optional `?` = not required, "
            "string-literal unions = enums, `| null` = a null type, `Uploadable` = a binary part). The SDK "
            "does not carry the description's length limits and patterns, nor its JSON media type names "
            "(it sends application/json), hence media_type_exact = false: any JSON media type is checked "
            "against the JSON schema."
        ),
        "media_type_exact": False,
        "operations": operations,
        "published_methods": neighbours(used, published),
    }
    write("cloudflare.json", out)


def write(name, doc):
    doc["generated"] = datetime.date.today().isoformat()
    path = os.path.join(HERE, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=1, sort_keys=False, ensure_ascii=False)
        f.write("\n")
    print(f"wrote {path} ({os.path.getsize(path)} bytes, {len(doc['operations'])} operations)")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("service", choices=["github", "cloudflare"])
    ap.add_argument("input")
    ap.add_argument("--commit")
    ap.add_argument("--source", help="where the input came from, recorded in the output")
    a = ap.parse_args()
    if a.service == "github":
        trim_github(a.input, a.source)
    else:
        trim_cloudflare(a.input, a.commit, a.source)


if __name__ == "__main__":
    main()
