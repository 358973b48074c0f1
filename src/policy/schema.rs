//! The JSON Schema of a policy file, generated from the very types the
//! loader decodes (`chitty-secrets policy schema`; the repository keeps a
//! copy at `schema/policy.schema.json` for editors: taplo / Even Better
//! TOML read a `#:schema` line). It checks shape — fields, kinds, names,
//! duration syntax; what needs the whole project (issuers declared in
//! another file, two tokens writing one name) is `policy check`'s.

use schemars::{SchemaGenerator, generate::SchemaSettings};
use serde_json::{Map, Value, json};

use super::model::*;

/// A name every .env parser and every secret store accepts (see `is_secret_name`).
const NAME_PATTERN: &str = "^[A-Za-z_][A-Za-z0-9_]{0,127}$";

pub fn policy_schema() -> Value {
    let mut generator: SchemaGenerator = SchemaSettings::draft2020_12().into_generator();
    let issuer_kinds = [
        ("random", generator.subschema_for::<RandomSpec>()),
        ("manual", generator.subschema_for::<ManualSpec>()),
        ("chittyid", generator.subschema_for::<ChittyidSpec>()),
        ("chittyauth", generator.subschema_for::<ChittyauthSpec>()),
        ("command", generator.subschema_for::<CommandSpec>()),
    ];
    let registered = TargetSpec::schemas(&mut generator);
    let target_kinds: Vec<(&str, schemars::Schema)> = registered.iter().map(|(k, s, _)| (*k, s.clone())).collect();
    let token = generator.subschema_for::<TokenFields>();
    let check = generator.subschema_for::<CheckFields>();
    let mut defs = generator.take_definitions(true);

    // `kind` picks the type: each kinded definition gets it as a constant.
    let mut kinded = |kinds: &[(&str, schemars::Schema)]| -> Vec<Value> {
        kinds
            .iter()
            .map(|(kind, reference)| {
                let name = def_name(reference.as_value());
                if let Some(Value::Object(def)) = defs.get_mut(&name) {
                    add_property(def, "kind", json!({ "const": kind }), true);
                }
                reference.as_value().clone()
            })
            .collect()
    };
    let issuers = kinded(&issuer_kinds);
    let targets = kinded(&target_kinds);
    if let Some(Value::Object(def)) = defs.get_mut(&def_name(token.as_value())) {
        add_property(
            def,
            "targets",
            json!({
                "description": "Where the token is delivered: [[tokens.NAME.targets]] entries",
                "type": "array",
                "items": { "oneOf": targets },
            }),
            false,
        );
    }
    for (_, reference, refine) in &registered {
        if let Some(Value::Object(def)) = defs.get_mut(&def_name(reference.as_value())) {
            refine(def);
            // Every kind's `names`, alike.
            def["properties"]["names"] = json!({
                "description": "The names the target receives the token under (default: the token's own name)",
                "type": "array",
                "items": { "type": "string", "pattern": NAME_PATTERN },
                "minItems": 1,
                "uniqueItems": true,
            });
        }
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://github.com/chittyos/chitty-secrets/schema/policy.schema.json",
        "title": "chitty-secrets policy",
        "description": "A file in policies/: issuers, tokens and where each token is delivered",
        "type": "object",
        "additionalProperties": false,
        "properties": {
            "issuers": {
                "description": "Where values come from: [issuers.NAME] with a kind",
                "type": "object",
                "additionalProperties": { "oneOf": issuers },
            },
            "tokens": {
                "description": "The tokens: [tokens.NAME], NAME a variable name",
                "type": "object",
                "propertyNames": { "pattern": NAME_PATTERN },
                "additionalProperties": token.as_value(),
            },
            "check": check.as_value(),
        },
        "$defs": defs,
    })
}

/// `Foo` out of `{"$ref": "#/$defs/Foo"}`.
fn def_name(reference: &Value) -> String {
    reference["$ref"].as_str().and_then(|r| r.rsplit('/').next()).unwrap_or_default().to_string()
}

fn add_property(def: &mut Map<String, Value>, name: &str, schema: Value, required: bool) {
    let properties = def.entry("properties").or_insert_with(|| json!({}));
    properties[name] = schema;
    if required {
        let list = def.entry("required").or_insert_with(|| json!([]));
        if let Value::Array(list) = list {
            list.insert(0, json!(name));
        }
    }
}

/// The schema as the repository keeps it: pretty, with a final newline.
pub fn policy_schema_text() -> String {
    let mut text = serde_json::to_string_pretty(&policy_schema()).expect("a schema serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    /// The copy editors read is the generated one: regenerate it with
    /// `cargo run -- policy schema > schema/policy.schema.json`.
    #[test]
    fn the_committed_schema_is_the_generated_one() {
        let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema/policy.schema.json"))
            .expect("schema/policy.schema.json");
        assert!(
            committed == super::policy_schema_text(),
            "schema/policy.schema.json is stale: run `cargo run -- policy schema > schema/policy.schema.json`"
        );
    }
}
