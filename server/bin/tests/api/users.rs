//! The users table behaves the same on SQLite and PostgreSQL.

use crate::helpers::spawn_app;
use server::db::users::{self, InsertUserError, NewUser};

fn new_user<'a>(id: &'a str, email: &'a str) -> NewUser<'a> {
    NewUser {
        id,
        email,
        name: "Ada",
        password_hash: "$argon2id$placeholder",
        role: server::db::users::Role::User,
        now: 1_700_000_000,
    }
}

#[tokio::test]
async fn a_user_round_trips_with_its_defaults() {
    let app = spawn_app().await;
    let id = uuid::Uuid::new_v4().to_string();
    let inserted = users::insert(app.db.pool(), new_user(&id, "Ada@Example.com"))
        .await
        .unwrap();
    assert_eq!(inserted.email, "Ada@Example.com");
    assert_eq!(inserted.role, server::db::users::Role::User);
    assert!(!inserted.email_verified);
    assert!(inserted.active);
    assert_eq!(inserted.created_at, 1_700_000_000);
    assert_eq!(inserted.updated_at, 1_700_000_000);

    let by_email = users::find_by_email(app.db.pool(), "  ADA@example.COM ")
        .await
        .unwrap();
    assert_eq!(by_email.as_ref(), Some(&inserted));
    let by_id = users::find_by_id(app.db.pool(), &id).await.unwrap();
    assert_eq!(by_id, Some(inserted));
    assert_eq!(
        users::find_by_email(app.db.pool(), "bob@example.com")
            .await
            .unwrap(),
        None
    );
}

#[tokio::test]
async fn emails_are_unique_case_insensitively() {
    let app = spawn_app().await;
    let a = uuid::Uuid::new_v4().to_string();
    let b = uuid::Uuid::new_v4().to_string();
    users::insert(app.db.pool(), new_user(&a, "ada@example.com"))
        .await
        .unwrap();
    let err = users::insert(app.db.pool(), new_user(&b, "ADA@EXAMPLE.COM"))
        .await
        .unwrap_err();
    assert!(matches!(err, InsertUserError::EmailTaken), "{err:?}");
    // Unicode case folding too, identically on both backends.
    let c = uuid::Uuid::new_v4().to_string();
    let d = uuid::Uuid::new_v4().to_string();
    users::insert(app.db.pool(), new_user(&c, "ÉLODIE@example.com"))
        .await
        .unwrap();
    let err = users::insert(app.db.pool(), new_user(&d, "élodie@example.com"))
        .await
        .unwrap_err();
    assert!(matches!(err, InsertUserError::EmailTaken), "{err:?}");
}

#[tokio::test]
async fn migrations_are_idempotent_across_restarts() {
    let app = spawn_app().await;
    app.db.migrate().await.expect("second run is a no-op");
}
