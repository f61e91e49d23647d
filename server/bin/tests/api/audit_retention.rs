//! Audit retention: entries older than `AUDIT_RETENTION_DAYS` are deleted, newer ones kept.

use crate::helpers::spawn_app_with;
use server::db::audit;

#[tokio::test]
async fn prune_deletes_only_entries_recorded_before_the_cut_off() {
    // The app's own pruning runs once at start; a retention longer than any entry here
    // keeps it from racing this test's calls.
    let app = spawn_app_with(&[("AUDIT_RETENTION_DAYS", "100000")]).await;
    let now = app.clock.now_unix();
    let day = 86_400;
    for (at, detail) in [
        (now - 400 * day, "old"),
        (now - 365 * day - 1, "just past"),
        (now - 365 * day, "on the cut-off"),
        (now - day, "recent"),
    ] {
        audit::record(
            app.db.pool(),
            audit::Event {
                action: audit::Action::LoginFailed,
                actor_id: None,
                subject_id: None,
                ip: Some("192.0.2.1"),
                detail: Some(detail),
                now: at,
            },
        )
        .await
        .unwrap();
    }
    assert_eq!(
        audit::prune(app.db.pool(), now - 365 * day).await.unwrap(),
        2
    );
    let kept: Vec<Option<String>> = audit::page(app.db.pool(), 100, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.detail)
        .collect();
    assert_eq!(
        kept,
        vec![
            Some("recent".to_string()),
            Some("on the cut-off".to_string())
        ]
    );
    assert_eq!(
        audit::prune(app.db.pool(), now - 365 * day).await.unwrap(),
        0,
        "nothing more to delete"
    );
}

#[tokio::test]
async fn the_pruning_round_keeps_entries_for_audit_retention_days() {
    let app = spawn_app_with(&[("AUDIT_RETENTION_DAYS", "30")]).await;
    let now = app.clock.now_unix();
    let day = 86_400;
    for (at, detail) in [
        (now - 31 * day, "31 days old"),
        (now - 29 * day, "29 days old"),
    ] {
        audit::record(
            app.db.pool(),
            audit::Event {
                action: audit::Action::LoginFailed,
                actor_id: None,
                subject_id: None,
                ip: Some("192.0.2.1"),
                detail: Some(detail),
                now: at,
            },
        )
        .await
        .unwrap();
    }
    // What the periodic task runs, with the retention the settings read.
    server::prune_once(&app.db, now, app.state.settings.audit_retention)
        .await
        .unwrap();
    let kept: Vec<Option<String>> = audit::page(app.db.pool(), 100, 0)
        .await
        .unwrap()
        .into_iter()
        .map(|entry| entry.detail)
        .collect();
    assert_eq!(kept, vec![Some("29 days old".to_string())]);
}
