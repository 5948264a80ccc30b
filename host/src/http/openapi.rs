//! The OpenAPI 3.1 document of the HTTP API. Every route is declared once, by its handler's
//! `#[utoipa::path]` and registered through `utoipa_axum::routes!`, so the router and the
//! document cannot disagree about which routes exist; the schemas are the handlers' own request
//! and answer types. What every operation shares is added here: the error answers, the bearer
//! token scheme, the rules of ids and keys in paths, and `HEAD` beside every `GET` (the router
//! answers it).

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};
use utoipa::OpenApi;

use super::error::ErrorBody;
use super::log_seq;
use crate::domain::{ID_PATTERN, ID_RULES, KEY_PATTERN, KEY_RULES};

/// The name of the security scheme in the document.
pub const BEARER: &str = "bearer";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "storehost",
        description = "A storage host: artifacts (raw bytes, ranged reads), projects, UI documents, workspaces and runner files, served from caches in front of origin plugins. Every route but health, readiness, the document and signed URLs takes a bearer token when the server has tokens: `read` for GET and HEAD, `write` for the rest, `admin` for `/v1/admin/*`, `/metrics` and `/admin`. Errors are `{\"error\": {\"kind\", \"message\"}}`."
    ),
    components(schemas(ErrorBody)),
    tags(
        (name = "artifacts", description = "Artifacts: bodies of any size by key, with ranged reads and signed URLs"),
        (name = "projects", description = "Projects: JSON state under optimistic concurrency, and their artifact records"),
        (name = "ui", description = "UI documents: trees of nodes edited by batches of operations"),
        (name = "workspaces", description = "Workspaces and their tabs"),
        (name = "runs", description = "The runner's files, by run"),
        (name = "admin", description = "Health, metrics, plugins, caches and reloads"),
    )
)]
struct ApiDoc;

/// The document of `routes` (the router's own, from `split_for_parts`), completed with what
/// every operation shares.
pub(super) fn complete(routes: utoipa::openapi::OpenApi) -> Value {
    let mut doc = ApiDoc::openapi();
    doc.merge(routes);
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    let mut doc = serde_json::to_value(doc).expect("an OpenAPI document is JSON");
    doc["components"]["securitySchemes"] =
        json!({ (BEARER): { "type": "http", "scheme": "bearer", "description": "One of the manifest's `[server] tokens`." } });
    doc["components"]["responses"] = json!({
        "Error": {
            "description": "The request was refused or failed; `kind` says why.",
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
        }
    });
    doc["security"] = json!([{ (BEARER): [] }]);
    let paths = doc["paths"].as_object_mut().map(std::mem::take).unwrap_or_default();
    doc["paths"] = Value::Object(paths.into_iter().map(|(path, item)| (openapi_path(&path), complete_item(&path, item))).collect());
    complete_schemas(&mut doc);
    doc["components"]["schemas"]["OpenApiDocument"] = json!({
        "type": "object",
        "description": "An OpenAPI 3.1 document: this one.",
        "required": ["openapi", "info", "paths"],
        "properties": {
            "openapi": { "type": "string" },
            "info": { "type": "object", "required": ["title", "version"], "properties": { "title": { "type": "string" }, "version": { "type": "string" } } },
            "servers": { "type": "array", "items": { "type": "object", "required": ["url"], "properties": { "url": { "type": "string" } } } },
            "paths": { "type": "object" },
            "components": { "type": "object" },
        },
    });
    doc["paths"]["/openapi.json"]["get"]["responses"]["200"]["content"]["application/json"]["schema"] =
        json!({ "$ref": "#/components/schemas/OpenApiDocument" });
    doc
}

/// The document as a server listening on `local` serves it: its `servers` entry is the address
/// it answers on, or, listening on every address, the one the document was fetched from.
pub fn served(mut doc: Value, local: Option<std::net::SocketAddr>) -> Value {
    let url = match local {
        Some(local) if !local.ip().is_unspecified() => format!("http://{local}"),
        _ => "/".into(),
    };
    doc["servers"] = json!([{ "url": url, "description": "This server" }]);
    doc
}

/// What the generated schemas leave out: that every unsigned integer (`minimum: 0` of `format`
/// int32 or int64: the handlers' `u32` and `u64`) is one, `uint32` or `uint64` up to its type's
/// maximum (the signed format would put it at the signed type's), and that a tuple (`prefixItems`,
/// no other items) has all its items and no more.
fn complete_schemas(value: &mut Value) {
    match value {
        Value::Object(object) => {
            // `items: false` is said as `maxItems`: some generators cannot read a boolean schema.
            if let Some(n) = object.get("prefixItems").and_then(Value::as_array).map(Vec::len)
                && object.get("items") == Some(&Value::Bool(false))
            {
                object.remove("items");
                object.entry("minItems").or_insert(json!(n));
                object.insert("maxItems".into(), json!(n));
            }
            let unsigned = object.get("minimum").and_then(Value::as_u64) == Some(0) && !object.contains_key("maximum");
            let unsigned_format = match object.get("format").and_then(Value::as_str) {
                Some("int32") if unsigned => Some(("uint32", u64::from(u32::MAX))),
                Some("int64") if unsigned => Some(("uint64", u64::MAX)),
                _ => None,
            };
            if let Some((format, max)) = unsigned_format {
                object.insert("format".into(), json!(format));
                object.insert("maximum".into(), json!(max));
            }
            object.values_mut().for_each(complete_schemas);
        }
        Value::Array(items) => items.iter_mut().for_each(complete_schemas),
        _ => {}
    }
}

/// An axum path as OpenAPI writes it: the wildcard `{*key}` is the parameter `{key}`.
pub fn openapi_path(path: &str) -> String {
    path.replace("{*", "{")
}

/// The keys of a path item that are operations.
const OPERATIONS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

fn complete_item(path: &str, mut item: Value) -> Value {
    // The domains' routes, which caches answer and the cluster's log orders.
    let domain = path.starts_with("/v1/") && !path.starts_with("/v1/admin");
    let methods = item.as_object_mut().expect("a path item is an object");
    if let Some(get) = methods.get("get").filter(|_| !methods.contains_key("head")).cloned() {
        methods.insert("head".into(), head_of(get));
    }
    for (method, operation) in methods.iter_mut().filter(|(method, _)| OPERATIONS.contains(&method.as_str())) {
        complete_operation(domain, method == "get" || method == "head", operation);
    }
    item
}

/// The `HEAD` of a `GET`: the same parameters and answers, with no bodies.
fn head_of(mut get: Value) -> Value {
    if let Some(id) = get["operationId"].as_str() {
        get["operationId"] = json!(format!("head_{id}"));
    }
    get["summary"] = json!(format!("The headers of: {}", get["summary"].as_str().unwrap_or("the GET")));
    if let Some(responses) = get["responses"].as_object_mut() {
        for response in responses.values_mut() {
            if let Some(response) = response.as_object_mut() {
                response.remove("content");
            }
        }
    }
    get
}

/// Adds what every operation shares: the rules of its path's ids and keys, the error answers,
/// and on a domain's routes the log-position headers (a read may ask for one, a write's answer
/// gives its own) and the cache headers of a read's answer.
fn complete_operation(domain: bool, read: bool, operation: &mut Value) {
    let public = operation.get("security").is_some();
    let takes_body = operation.get("requestBody").is_some();
    binary_bodies(operation);
    // A body of bytes may be left out: it is the empty body.
    if operation["requestBody"]["content"].get("application/octet-stream").is_some() {
        operation["requestBody"]["required"] = json!(false);
    }
    let parameters = operation.as_object_mut().expect("an operation is an object").entry("parameters").or_insert_with(|| json!([]));
    let parameters = parameters.as_array_mut().expect("parameters are a list");
    for parameter in parameters.iter_mut() {
        if parameter["in"] == "path" {
            path_rules(parameter);
        } else if parameter["name"].as_str().is_some_and(|name| name.eq_ignore_ascii_case(super::artifacts::CONTENT_TYPE_HEADER)) {
            parameter["schema"] = json!({ "type": "string", "pattern": super::artifacts::MEDIA_TYPE_PATTERN });
        }
    }
    if domain && read && !public {
        parameters.push(json!({
            "name": log_seq::MIN_SEQ_HEADER, "in": "header", "required": false,
            "description": "Read-your-writes across replicas: answer from caches only once this host has applied the cluster log up to this position (a write's `Storehost-Log-Seq`).",
            "schema": { "type": "integer", "format": "int64", "minimum": 0 },
        }));
    }
    let answer_headers = if read {
        json!({
            "X-Cache": { "description": "`hit` (memory), `miss`, `peer` (the replica that owns the key answered: peer fill), or `stale`: an expired entry answered because the origin could not (`stale_if_error`)", "schema": { "type": "string" } },
            "Age": { "description": "With `X-Cache: stale`: seconds since the entry expired", "schema": { "type": "integer" } },
        })
    } else {
        json!({ (log_seq::LOG_SEQ_HEADER): { "description": "With replicas: the cluster log position of this write's invalidations", "schema": { "type": "integer" } } })
    };
    let responses = operation["responses"].as_object_mut().expect("an operation has responses");
    if domain && !public {
        for (status, response) in responses.iter_mut() {
            if status.starts_with('2') {
                let headers = response.as_object_mut().expect("a response is an object").entry("headers").or_insert_with(|| json!({}));
                for (name, header) in answer_headers.as_object().into_iter().flatten() {
                    headers[name] = header.clone();
                }
            }
        }
    }
    let mut shared = vec!["400", "404", "500", "503", "504"];
    if public {
        shared.push("403");
    } else {
        shared.extend(["401", "403"]);
    }
    if takes_body {
        shared.push("413");
    }
    for status in shared {
        responses.entry(status).or_insert_with(|| json!({ "$ref": "#/components/responses/Error" }));
    }
}

/// Bodies of raw bytes (the handlers' `[u8]`, any media type but JSON and text) as binary
/// strings rather than arrays of numbers; a body of any media type (`*/*`) is also declared as
/// `application/octet-stream`.
fn binary_bodies(operation: &mut Value) {
    let Some(operation) = operation.as_object_mut() else { return };
    let mut bodies: Vec<&mut Value> = Vec::new();
    for (key, value) in operation.iter_mut() {
        match key.as_str() {
            "requestBody" => bodies.push(value),
            "responses" => bodies.extend(value.as_object_mut().into_iter().flat_map(|r| r.values_mut())),
            _ => {}
        }
    }
    for content in bodies.into_iter().filter_map(|body| body.get_mut("content")).filter_map(Value::as_object_mut) {
        // Bytes of any type are also offered as `application/octet-stream`, the one media type
        // of raw bytes every client generator reads and sends.
        if content.contains_key("*/*") {
            content.entry("application/octet-stream").or_insert_with(|| json!({}));
        }
        for (media_type, body) in content.iter_mut() {
            if !media_type.starts_with("application/json") && !media_type.starts_with("text/") {
                body["schema"] = json!({ "type": "string", "format": "binary" });
            }
        }
    }
}

/// The schema of a path parameter by the rules of what it names.
fn path_rules(parameter: &mut Value) {
    let (pattern, what) = match parameter["name"].as_str() {
        Some("key" | "name") => (KEY_PATTERN, KEY_RULES),
        _ => (ID_PATTERN, ID_RULES),
    };
    parameter["schema"] = json!({ "type": "string", "minLength": 1, "pattern": pattern });
    let described = parameter["description"].as_str().unwrap_or_default().to_string();
    parameter["description"] = json!(if described.is_empty() { what.to_string() } else { format!("{described} ({what})") });
}

/// The document, as `GET /openapi.json` serves it.
pub fn document() -> Value {
    complete(super::routes(&super::Limits::default()).1)
}

/// The document of a server without tokens: no security scheme, and no `401` answers.
pub fn open_document() -> Value {
    let mut doc = document();
    if let Some(object) = doc.as_object_mut() {
        object.remove("security");
    }
    if let Some(components) = doc["components"].as_object_mut() {
        components.remove("securitySchemes");
    }
    for item in doc["paths"].as_object_mut().into_iter().flat_map(|paths| paths.values_mut()) {
        for (_, operation) in item.as_object_mut().into_iter().flatten().filter(|(method, _)| OPERATIONS.contains(&method.as_str())) {
            let Some(operation) = operation.as_object_mut() else { continue };
            operation.remove("security");
            if let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) {
                responses.remove("401");
            }
        }
    }
    doc
}

/// `GET /openapi.json`.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "admin",
    operation_id = "openapi",
    summary = "This document",
    security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", content_type = "application/json", body = Object))
)]
pub(super) async fn openapi_json(State(state): State<super::Shared>) -> Response {
    let doc = state.document.get_or_init(|| {
        // The bearer scheme only where the server asks for it: a client generated from the
        // document of a server without tokens has no credentials to send.
        let doc = if state.tokens.is_empty() { open_document() } else { document() };
        Bytes::from(serde_json::to_vec(&served(doc, state.local.get().copied())).expect("the document is JSON"))
    });
    ([(header::CONTENT_TYPE, "application/json")], doc.clone()).into_response()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The paths a router routes, read from its `Debug` form (axum lists its path table there,
    /// before the table of its fallback).
    fn routed_paths(router: &axum::Router<super::super::Shared>) -> BTreeSet<String> {
        let text = format!("{router:?}");
        let routes = text.split("fallback_router").next().expect("a router's Debug form");
        let mut paths = BTreeSet::new();
        let mut rest = routes;
        while let Some(at) = rest.find("RouteId(") {
            rest = &rest[at..];
            let Some(open) = rest.find(": \"") else { break };
            let after = &rest[open + 3..];
            let end = after.find('"').expect("a quoted path");
            paths.insert(after[..end].to_string());
            rest = &after[end..];
        }
        paths
    }

    #[test]
    fn every_route_of_the_router_is_in_the_document_and_no_other() {
        let (routes, doc) = super::super::routes(&super::super::Limits::default());
        let routed: BTreeSet<String> = [&routes.tokened, &routes.public].into_iter().flat_map(routed_paths).map(|p| openapi_path(&p)).collect();
        assert!(routed.len() >= 20, "the router's paths were not found in its Debug form: {routed:?}");
        let documented: BTreeSet<String> = complete(doc)["paths"].as_object().unwrap().keys().cloned().collect();
        assert_eq!(routed, documented);
    }

    #[test]
    fn the_document_completes_what_every_operation_shares() {
        let doc = document();
        let get = &doc["paths"]["/v1/projects/{id}"]["get"];
        assert_eq!(get["responses"]["404"]["$ref"], "#/components/responses/Error");
        assert_eq!(get["responses"]["401"]["$ref"], "#/components/responses/Error");
        assert!(get["responses"]["200"]["headers"]["X-Cache"].is_object());
        let id = get["parameters"].as_array().unwrap().iter().find(|p| p["name"] == "id").unwrap();
        assert_eq!(id["schema"]["pattern"], ID_PATTERN);
        assert!(get["parameters"].as_array().unwrap().iter().any(|p| p["name"] == log_seq::MIN_SEQ_HEADER));
        let head = &doc["paths"]["/v1/projects/{id}"]["head"];
        assert_eq!(head["operationId"], "head_get_project");
        assert!(head["responses"]["200"].get("content").is_none());
        let put = &doc["paths"]["/v1/artifacts/{key}"]["put"];
        assert!(put["responses"]["200"]["headers"][log_seq::LOG_SEQ_HEADER].is_object());
        assert_eq!(put["responses"]["413"]["$ref"], "#/components/responses/Error");
        assert_eq!(put["requestBody"]["content"]["application/octet-stream"]["schema"], json!({ "type": "string", "format": "binary" }));
        assert_eq!(put["requestBody"]["required"], false, "an absent body is the empty artifact");
        assert!(doc["paths"]["/v1/artifacts/{key}"]["get"].get("requestBody").is_none());
        assert!(doc["paths"]["/metrics"]["get"]["responses"]["200"].get("headers").is_none(), "no cache headers off the domains' routes");
        let health = &doc["paths"]["/healthz"]["get"];
        assert_eq!(health["security"], json!([{}]));
        assert!(health["responses"].get("401").is_none());
        // u64 fields reach u64::MAX, tuples have all their items.
        let meta = &doc["components"]["schemas"]["ArtifactMeta"]["properties"]["size"];
        assert_eq!(meta["maximum"], json!(u64::MAX));
        let props = &doc["components"]["schemas"]["UiNode"]["properties"]["props"]["items"];
        assert_eq!(props["minItems"], 2, "{props}");
        assert_eq!(props["maxItems"], 2, "{props}");
        assert!(props.get("items").is_none(), "no boolean schema: {props}");
        // Bytes of any type are also bytes of `application/octet-stream`.
        let get = &doc["paths"]["/v1/artifacts/{key}"]["get"]["responses"];
        for status in ["200", "206"] {
            let content = get[status]["content"].as_object().unwrap();
            assert_eq!(content.keys().collect::<Vec<_>>(), ["*/*", "application/octet-stream"], "{status}");
        }
        assert!(put["parameters"].as_array().unwrap().iter().any(|p| p["name"] == "Storehost-Content-Type" && p["in"] == "header"));
        // Named answers, titled variants.
        let schemas = &doc["components"]["schemas"];
        let titles: Vec<&str> = schemas["UiOp"]["oneOf"].as_array().unwrap().iter().map(|v| v["title"].as_str().unwrap_or_default()).collect();
        assert_eq!(titles, ["InsertNode", "RemoveNode", "MoveNode", "SetProp", "RemoveProp"]);
        for (path, schema) in [("/readyz", "Readiness"), ("/v1/admin/plugins", "PluginList"), ("/openapi.json", "OpenApiDocument")] {
            let answer = &doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"];
            assert_eq!(answer, &json!(format!("#/components/schemas/{schema}")), "{path}");
            assert!(schemas[schema]["properties"].is_object(), "{schema}");
        }
    }

    #[test]
    fn the_served_document_names_the_address_it_answers_on() {
        let at = |local: &str| served(document(), Some(local.parse().unwrap()))["servers"][0]["url"].clone();
        assert_eq!(at("127.0.0.1:7070"), "http://127.0.0.1:7070");
        assert_eq!(at("[::1]:8080"), "http://[::1]:8080");
        assert_eq!(at("0.0.0.0:7070"), "/", "on every address: relative to where the document was fetched");
    }
}
