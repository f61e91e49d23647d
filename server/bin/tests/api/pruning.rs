//! Pruning many rows at once (the first round after an upgrade, or after a long outage):
//! it deletes them all without holding up the requests that write meanwhile.

use crate::helpers::{spawn_app, unique_email, TestApp};
use reqwest::StatusCode;
use server::db::Backend;
use std::time::Duration;

const OLD_AUDIT_ENTRIES: usize = 20_000;
const DEAD_FAMILIES: usize = 12_000;

/// Inserts `count` rows of `values(i)` into `table`, in statements of 500 rows, all in
/// one transaction.
async fn insert_many(
    app: &TestApp,
    table: &str,
    columns: &str,
    count: usize,
    values: impl Fn(usize) -> String,
) {
    let mut tx = app.db.begin_write().await.unwrap();
    for start in (0..count).step_by(500) {
        let rows: Vec<String> = (start..(start + 500).min(count)).map(&values).collect();
        let sql = format!("insert into {table} ({columns}) values {}", rows.join(", "));
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .unwrap();
    }
    tx.commit().await.unwrap();
}

/// The old audit entries and dead families left, read in a write transaction as any
/// writer sees the tables between its turns.
async fn left(app: &TestApp, cut_off: i64) -> (i64, i64) {
    let mut tx = app.db.begin_write().await.unwrap();
    let entries: i64 = sqlx::query_scalar("select count(*) from audit_log where at < $1")
        .bind(cut_off)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let families: i64 =
        sqlx::query_scalar("select count(*) from refresh_families where id like 'dead-%'")
            .fetch_one(&mut *tx)
            .await
            .unwrap();
    tx.commit().await.unwrap();
    (entries, families)
}

#[tokio::test]
async fn pruning_many_rows_takes_turns_with_other_writers_and_deletes_them_all() {
    let app = spawn_app().await;
    let person = app.register(&unique_email()).await;
    let user_id = person.session.user.id.clone();
    let now = app.clock.now_unix();
    let long_ago = now - 400 * 86_400;
    insert_many(
        &app,
        "audit_log",
        "id, at, action, ip",
        OLD_AUDIT_ENTRIES,
        |i| format!("('old-{i}', {long_ago}, 'login_failed', '192.0.2.1')"),
    )
    .await;
    // Revoked long ago: past the week ended sessions are kept.
    insert_many(
        &app,
        "refresh_families",
        "id, user_id, created_at, last_used_at, expires_at, idle_expires_at, revoked_at",
        DEAD_FAMILIES,
        |i| format!("('dead-{i}', '{user_id}', {long_ago}, {long_ago}, {now}, {now}, {long_ago})"),
    )
    .await;
    insert_many(
        &app,
        "refresh_tokens",
        "token_hash, family_id, generation, created_at, expires_at",
        DEAD_FAMILIES,
        |i| format!("('hash-{i}', 'dead-{i}', 0, {long_ago}, {now})"),
    )
    .await;
    let retention = app.state.settings.audit_retention;
    let cut_off = now - retention.as_secs() as i64;
    assert_eq!(
        left(&app, cut_off).await,
        (OLD_AUDIT_ENTRIES as i64, DEAD_FAMILIES as i64)
    );

    let pruning = tokio::spawn({
        let db = app.db.clone();
        async move { server::prune_once(&db, now, retention).await }
    });
    // A writer that looks whenever it gets a turn while the pruning runs.
    let mut seen = Vec::new();
    let watching = async {
        while !pruning.is_finished() {
            seen.push(left(&app, cut_off).await);
        }
    };
    // And someone registers meanwhile.
    let newcomer = unique_email();
    let registering = app.register_raw(&newcomer, crate::helpers::PASSWORD, "New Person");
    let ((), registered) = tokio::time::timeout(Duration::from_secs(20), async {
        tokio::join!(watching, registering)
    })
    .await
    .expect("pruning ends");
    assert_eq!(registered.status(), StatusCode::CREATED);
    pruning.await.unwrap().expect("pruning succeeds");
    assert_eq!(left(&app, cut_off).await, (0, 0), "everything old is gone");
    let tokens: i64 =
        sqlx::query_scalar("select count(*) from refresh_tokens where token_hash like 'hash-%'")
            .fetch_one(app.db.pool())
            .await
            .unwrap();
    assert_eq!(tokens, 0, "the dead families' tokens went with them");
    // The person's live session is kept.
    assert_eq!(
        app.refresh_raw(&person.refresh_token()).await.status(),
        StatusCode::OK
    );

    seen.dedup();
    if app.db.backend() == Backend::Sqlite {
        // SQLite has one writer: other writers get their turns between batches, so they
        // saw each table part-way pruned, rather than waiting for one long delete (which
        // could outlast their 5 s busy timeout, a 500).
        assert!(
            seen.iter()
                .any(|&(entries, _)| 0 < entries && entries < OLD_AUDIT_ENTRIES as i64),
            "a writer got a turn while the audit log was part-way pruned: {seen:?}"
        );
        assert!(
            seen.iter()
                .any(|&(_, families)| 0 < families && families < DEAD_FAMILIES as i64),
            "a writer got a turn while the sessions were part-way pruned: {seen:?}"
        );
    }
}
