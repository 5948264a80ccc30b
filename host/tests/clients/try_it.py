"""The README's "Try it" and every route that answers JSON, through the client that
openapi-python-client generated from the served document (the package `storehost_client`, on
PYTHONPATH). Each JSON answer must come back as the generated model the document names. The last
line printed is `{"typed": [operation ids]}`: the JSON routes called with a typed answer."""

import importlib
import io
import json
import os
import urllib.request

from storehost_client import AuthenticatedClient, Client
from storehost_client import models
from storehost_client.types import File

BASE = os.environ.get("STOREHOST_URL", "http://127.0.0.1:7070")
client = AuthenticatedClient(base_url=BASE, token=os.environ.get("STOREHOST_TOKEN", ""))
anonymous = Client(base_url=BASE)
typed = set()


def call(tag, operation, *args, status=200, via=client, **kwargs):
    """Calls `operation` (its module under `api.<tag>`) and returns the whole answer."""
    module = importlib.import_module(f"storehost_client.api.{tag}.{operation}")
    answer = module.sync_detailed(*args, client=via, **kwargs)
    assert answer.status_code == status, (operation, answer.status_code, status, answer.content)
    return answer


def answer(tag, operation, model, *args, status=200, **kwargs):
    """The parsed answer of `operation`, which must be a `model` (or a list of them)."""
    parsed = call(tag, operation, *args, status=status, **kwargs).parsed
    if isinstance(model, list):
        assert isinstance(parsed, list) and all(isinstance(item, model[0]) for item in parsed), (operation, parsed)
    else:
        assert isinstance(parsed, model), (operation, type(parsed), parsed)
    typed.add(operation)
    return parsed


def failure(tag, operation, status, kind, *args, **kwargs):
    """An error answer, parsed as the document's `Error`."""
    parsed = call(tag, operation, *args, status=status, **kwargs).parsed
    assert isinstance(parsed, models.Error) and parsed.error.kind == kind and parsed.error.message, (operation, parsed)


# Health, readiness, the document.
assert answer("admin", "healthz", models.Health, via=anonymous).status == "ok"
ready = answer("admin", "readyz", models.Readiness, via=anonymous)
assert ready.ready and ready.origins["artifact"] == "ok" and ready.plugins == 1, ready
doc = answer("admin", "openapi", models.OpenApiDocument, via=anonymous)
assert doc.openapi.startswith("3.1") and doc.servers[0].url == BASE, doc

# Artifacts: the README's text upload, then bytes of every value.
key = "reports/today.txt"
meta = answer("artifacts", "put_artifact", models.ArtifactMeta, key,
              body=File(payload=io.BytesIO(b"hello, storehost")), storehost_content_type="text/plain")
assert meta.size == 16 and meta.content_type == "text/plain", meta
got = call("artifacts", "get_artifact", key)
assert isinstance(got.parsed, File) and got.parsed.payload.read() == b"hello, storehost", got
assert got.headers["content-type"] == "text/plain", got.headers
head = call("artifacts", "head_artifact", key)
assert head.headers["content-length"] == "16", head.headers
data = bytes((i * 7919) % 256 for i in range(70_000))
meta = answer("artifacts", "put_artifact", models.ArtifactMeta, "reports/bytes.bin",
              body=File(payload=io.BytesIO(data)), storehost_content_type="application/x-storehost-test")
assert meta.size == len(data) and meta.content_type == "application/x-storehost-test", meta
got = call("artifacts", "get_artifact", "reports/bytes.bin")
assert got.parsed.payload.read() == data and got.headers["content-type"] == "application/x-storehost-test"
ranged = call("artifacts", "get_artifact", "reports/bytes.bin", range_="bytes=10-19", status=206)
assert ranged.parsed.payload.read() == data[10:20], ranged
page = answer("artifacts", "list_artifacts", models.ArtifactPage, prefix="reports/")
assert [a.key for a in page.items] == ["reports/bytes.bin", "reports/today.txt"], page
url = answer("artifacts", "artifact_url", models.ArtifactUrl, key, expires_in=300)
with urllib.request.urlopen(url.url) as signed:
    assert signed.read() == b"hello, storehost"
failure("artifacts", "get_artifact", 404, "not-found", "reports/missing")
failure("artifacts", "get_artifact", 401, "unauthorized", key, via=anonymous)

# Projects.
project = answer("projects", "save_project", models.Project, "demo",
                 body=models.SaveBody.from_dict({"name": "demo", "state": {"stage": 1}}))
assert project.version == 1, project
project = answer("projects", "save_project", models.Project, "demo", if_match='"1"',
                 body=models.SaveBody.from_dict({"name": "demo", "state": {"stage": 2}}))
assert project.version == 2, project
failure("projects", "save_project", 409, "conflict", "demo", if_match='"1"',
        body=models.SaveBody.from_dict({"name": "demo", "state": {}}))
project = answer("projects", "get_project", models.Project, "demo")
assert project.to_dict()["state"] == {"stage": 2}, project
assert len(answer("projects", "list_projects", models.ProjectList).items) == 1
call("projects", "add_project_artifact", "demo", status=201,
     body=models.ArtifactBody(name="today", artifact_key=key, size=16, kind="report"))
records = answer("projects", "list_project_artifacts", [models.ProjectArtifact], "demo")
assert [r.artifact_key for r in records] == [key], records

# UI documents.
ops = models.OpsBody.from_dict({"ops": [
    {"op": "insert-node", "node": {"id": "root", "parent": None, "kind": "page", "props": []}, "index": 0},
    {"op": "insert-node", "node": {"id": "title", "parent": "root", "kind": "text", "props": [["text", '"hi"']]}, "index": 0},
    {"op": "set-prop", "node_id": "title", "key": "size", "value": "2"},
]})
assert isinstance(ops.ops[0], models.InsertNode) and isinstance(ops.ops[2], models.SetProp), ops.ops
answer("ui", "apply_ui_ops", models.UiDocument, "home", body=ops)
document = answer("ui", "get_ui_document", models.UiDocument, "home")
title = next(node for node in document.nodes if node.id == "title")
assert ["size", "2"] in title.props, title.props

# Workspaces and tabs.
workspace = answer("workspaces", "create_workspace", models.Workspace, "main", status=201,
                   body=models.CreateBody(project_id="demo", name="main"))
assert workspace.project_id == "demo", workspace
tab = answer("workspaces", "create_tab", models.Tab, "main", status=201,
             body=models.TabInput(id="t1", title="Logs", kind="log"))
assert tab.workspace_id == "main", tab
assert len(answer("workspaces", "list_tabs", [models.Tab], "main")) == 1
assert answer("workspaces", "select_tab", models.Workspace, "main", body=models.SelectBody(tab_id="t1")).selected_tab == "t1"
assert answer("workspaces", "update_tab_run", models.Tab, "main", "t1", body=models.RunBody(run_id="run-1")).run_id == "run-1"
assert answer("workspaces", "get_tab", models.Tab, "main", "t1").run_id == "run-1"
assert answer("workspaces", "get_workspace", models.Workspace, "main").selected_tab == "t1"

# The runner's files.
call("runs", "write_run_file", "run-1", "logs/step1.txt", body=File(payload=io.BytesIO(b"step 1 done")), status=204)
assert answer("runs", "list_run_files", [str], "run-1", prefix="logs/") == ["logs/step1.txt"]
assert call("runs", "read_run_file", "run-1", "logs/step1.txt").parsed.payload.read() == b"step 1 done"

# Admin.
assert "storehost_" in call("admin", "metrics").parsed
plugins = answer("admin", "admin_plugins", models.PluginList)
assert len(plugins.plugins) == 1 and plugins.plugins[0].source == "builtin:fs" and plugins.plugins[0].describe.name, plugins
assert answer("admin", "admin_cache", models.CacheAnswer).domains
assert answer("admin", "reload", models.Reloaded).reloaded is not None
assert answer("admin", "rotate_url_secret", models.Rotated).rotated

print(json.dumps({"typed": sorted(typed)}))
