//! `GET /api`: the OpenAPI description as a page of the site.

use std::sync::OnceLock;

use axum::response::Html;
use serde_json::Value;

use super::description;
use crate::html::escape;

/// `GET /api`: every operation with its parameters, body and answers, and every schema — a
/// page of the site (its navigation, its stylesheet, nothing from elsewhere).
pub async fn docs_page(
    axum::extract::State(state): axum::extract::State<crate::driver::Driver>,
    headers: axum::http::HeaderMap,
) -> Html<String> {
    static BODY: OnceLock<String> = OnceLock::new();
    let session = crate::web::signed_in(&state, &headers);
    crate::web::page(
        "API",
        session.as_ref(),
        BODY.get_or_init(render_body).as_str(),
    )
}

/// The description as HTML: operations by tag, then schemas. Text from the description is
/// escaped.
fn render_body() -> String {
    let doc = description();
    let info = &doc["info"];
    let mut page = format!(
        "<p>{}</p><p>Base path <code>/api/v2</code>. The machine-readable description: \
         <a href=\"/api/swagger.json\">/api/swagger.json</a> (OpenAPI 3). OpenAI clients use \
         <code>/v1</code> (<code>/v1/models</code>, <code>/v1/completions</code>, \
         <code>/v1/chat/completions</code>) with the same key as a bearer token.</p>",
        inline_code(info["description"].as_str().unwrap_or_default()),
    );
    let mut operations: Vec<(String, String, String, &Value)> = Vec::new();
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for method in ["get", "post", "put", "delete"] {
                if let Some(operation) = item.get(method) {
                    let tag = operation["tags"][0].as_str().unwrap_or("other").to_owned();
                    operations.push((tag, path.clone(), method.to_owned(), operation));
                }
            }
        }
    }
    operations.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    let mut current_tag = String::new();
    for (tag, path, method, operation) in operations {
        if tag != current_tag {
            page += &format!("<h2>{}</h2>", escape(&tag));
            current_tag = tag;
        }
        page += &format!(
            "<div class=\"op\"><p><span class=\"m\">{}</span><code>{}</code></p><p>{}</p>",
            escape(&method),
            escape(&path),
            inline_code(operation["description"].as_str().unwrap_or_default()),
        );
        if let Some(params) = operation["parameters"].as_array() {
            page += "<p>Parameters: ";
            let list: Vec<String> = params
                .iter()
                .map(|p| {
                    format!(
                        "<code>{}</code> ({}{}) {}",
                        escape(p["name"].as_str().unwrap_or_default()),
                        escape(p["in"].as_str().unwrap_or_default()),
                        if p["required"] == true {
                            ", required"
                        } else {
                            ""
                        },
                        inline_code(p["description"].as_str().unwrap_or_default())
                    )
                })
                .collect();
            page += &list.join("; ");
            page += "</p>";
        }
        if let Some(schema) = operation["requestBody"]["content"]["application/json"].get("schema")
        {
            page += &format!("<p>Body: {}</p>", schema_name(schema));
        }
        page += "<div class=\"scroll\"><table><tr><th>status</th><th>answer</th><th>body</th></tr>";
        if let Some(responses) = operation["responses"].as_object() {
            for (status, response) in responses {
                let body = response["content"]["application/json"]
                    .get("schema")
                    .map(schema_name)
                    .unwrap_or_default();
                page += &format!(
                    "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(status),
                    inline_code(response["description"].as_str().unwrap_or_default()),
                    body
                );
            }
        }
        page += "</table></div></div>";
    }
    page += "<h2>Schemas</h2>";
    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        for (name, schema) in schemas {
            page += &format!(
                "<h3 id=\"{0}\">{0}</h3><p>{1}</p>",
                escape(name),
                inline_code(schema["description"].as_str().unwrap_or_default())
            );
            if let Some(values) = schema["enum"].as_array() {
                let values: Vec<String> = values
                    .iter()
                    .map(|v| format!("<code>{}</code>", escape(&v.to_string())))
                    .collect();
                page += &format!("<p>One of {}</p>", values.join(", "));
            }
            page += &fields_table(schema);
        }
    }
    page
}

/// A table of an object schema's fields (with those of `allOf` parts).
fn fields_table(schema: &Value) -> String {
    let mut rows = String::new();
    let parts = std::iter::once(schema).chain(schema["allOf"].as_array().into_iter().flatten());
    for part in parts {
        let required: Vec<&str> = part["required"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if let Some(properties) = part["properties"].as_object() {
            for (field, property) in properties {
                rows += &format!(
                    "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td></tr>",
                    escape(field),
                    if required.contains(&field.as_str()) {
                        " *"
                    } else {
                        ""
                    },
                    schema_name(property),
                    inline_code(property["description"].as_str().unwrap_or_default())
                );
            }
        }
    }
    if rows.is_empty() {
        return rows;
    }
    format!(
        "<div class=\"scroll\"><table><tr><th>field</th><th>type</th><th></th></tr>{rows}</table>\
         </div>"
    )
}

/// `text` escaped, its `backticked` parts as code (descriptions are written in markdown's
/// inline style); an unpaired backtick stays as it is.
fn inline_code(text: &str) -> String {
    let parts: Vec<&str> = text.split('`').collect();
    let unpaired_last = parts.len().is_multiple_of(2);
    let mut out = String::with_capacity(text.len() + 16);
    for (i, part) in parts.iter().enumerate() {
        let code = i % 2 == 1 && !(unpaired_last && i == parts.len() - 1);
        if code {
            out.push_str("<code>");
            out.push_str(&escape(part));
            out.push_str("</code>");
        } else {
            if i % 2 == 1 {
                out.push('`');
            }
            out.push_str(&escape(part));
        }
    }
    out
}

/// A short HTML name for a schema: a link for a reference, its type otherwise.
fn schema_name(schema: &Value) -> String {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or(reference);
        return format!("<a href=\"#{0}\">{0}</a>", escape(name));
    }
    if let Some(items) = schema.get("items") {
        return format!("array of {}", schema_name(items));
    }
    if let Some(one_of) = schema["oneOf"].as_array() {
        let names: Vec<String> = one_of.iter().map(schema_name).collect();
        return names.join(" or ");
    }
    match &schema["type"] {
        Value::String(kind) => escape(kind),
        Value::Array(kinds) => {
            let kinds: Vec<String> = kinds.iter().filter_map(Value::as_str).map(escape).collect();
            kinds.join(" or ")
        }
        _ => "any".into(),
    }
}
