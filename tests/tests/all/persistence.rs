//! The fs plugin's data survives reloading the host.

use bytes::Bytes;
use storehost::domain::{Ctx, ProjectInput, TabInput, UiNode, UiOp, WorkspaceInput};
use storehost_tests::{fs_spec, runtime, stores};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fs_data_survives_a_host_reload() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = Ctx::background();
    {
        let s = stores(&runtime(), fs_spec(dir.path())).await;
        s.artifact.as_ref().unwrap().put(&ctx, "a/b.txt", Bytes::from_static(b"kept"), Some("text/plain".into())).await.unwrap();
        let input = ProjectInput { id: "p".into(), name: "P".into(), state: "{}".into() };
        s.project.as_ref().unwrap().save(&ctx, input, None).await.unwrap();
        let node = UiNode { id: "n".into(), parent: None, kind: "k".into(), props: vec![] };
        s.ui.as_ref().unwrap().apply_ops(&ctx, "d", None, vec![UiOp::InsertNode { node, index: 0 }]).await.unwrap();
        let ws = s.workspace.as_ref().unwrap();
        ws.create(&ctx, WorkspaceInput { id: "w".into(), project_id: "p".into(), name: "W".into() }).await.unwrap();
        ws.create_tab(&ctx, "w", TabInput { id: "t".into(), title: "T".into(), kind: "k".into() }).await.unwrap();
        ws.select_tab(&ctx, "w", "t").await.unwrap();
        s.runner.as_ref().unwrap().write(&ctx, "run1", "out.txt", Bytes::from_static(b"result")).await.unwrap();
    }
    // A new runtime and a new plugin instance: nothing is shared but the directory.
    let s = stores(&runtime(), fs_spec(dir.path())).await;
    let a = s.artifact.as_ref().unwrap().get(&ctx, "a/b.txt").await.unwrap();
    assert_eq!((&a.body[..], a.meta.content_type.as_deref()), (&b"kept"[..], Some("text/plain")));
    assert_eq!(s.project.as_ref().unwrap().get(&ctx, "p").await.unwrap().version, 1);
    assert_eq!(s.ui.as_ref().unwrap().get(&ctx, "d").await.unwrap().nodes.len(), 1);
    let ws = s.workspace.as_ref().unwrap().get(&ctx, "w").await.unwrap();
    assert_eq!((ws.selected_tab.as_deref(), ws.version), (Some("t"), 2));
    assert_eq!(&s.runner.as_ref().unwrap().read(&ctx, "run1", "out.txt").await.unwrap()[..], b"result");
}
