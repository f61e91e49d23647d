//! The session store on its own: pruning of dead families.

use crate::helpers::{spawn_app, unique_email};
use server::db::sessions;

async fn families(app: &crate::helpers::TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from refresh_families")
        .fetch_one(app.db.pool())
        .await
        .unwrap()
}

#[tokio::test]
async fn prune_deletes_only_dead_families_and_their_tokens() {
    let app = spawn_app().await;
    let now = app.clock.now_unix();
    let live = app.register(&unique_email()).await;
    let revoked = app.register(&unique_email()).await;
    app.register(&unique_email()).await;
    // Logged out long ago, and one past its idle lifetime.
    sessions::revoke(
        app.db.pool(),
        &family_of(&app, &revoked.refresh_token()).await,
        now - 100_000,
        "logout",
    )
    .await
    .unwrap();
    assert_eq!(families(&app).await, 3);

    assert_eq!(
        sessions::prune(app.db.pool(), now, 86_400).await.unwrap(),
        1
    );
    assert_eq!(families(&app).await, 2);
    // Past the idle lifetime of the remaining ones, both go, tokens with them.
    assert_eq!(
        sessions::prune(app.db.pool(), now + 1_209_600, 86_400)
            .await
            .unwrap(),
        2
    );
    let tokens: i64 = sqlx::query_scalar("select count(*) from refresh_tokens")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(tokens, 0, "tokens go with their family");
    let _ = live;
}

async fn family_of(app: &crate::helpers::TestApp, token: &str) -> String {
    sessions::find_presented(app.db.pool(), &server::auth::tokens::hash(token))
        .await
        .unwrap()
        .unwrap()
        .family
        .id
}
