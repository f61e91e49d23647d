//! Brute-force limits counted in the database: the store's rules, parallel attempts, and
//! two instances counting each attempt once.

use crate::helpers::{assert_error, spawn_app, spawn_app_with, unique_email, PASSWORD};
use app::api::ErrorCode;
use reqwest::StatusCode;
use server::{
    auth::throttle::{Budget, Limit},
    db::rate_limits,
};

const B: Budget = Budget {
    limit: 3,
    window_secs: 100,
};

fn k(key: &str) -> Vec<Limit> {
    vec![Limit::new(key, B)]
}

#[tokio::test]
async fn the_budget_is_spent_refused_without_counting_given_back_and_renewed() {
    let app = spawn_app().await;
    let db = &app.db;
    // Times from the app's clock: its pruner deletes windows that ended before it.
    let t = app.clock.now_unix();
    for i in 0..3 {
        assert_eq!(
            rate_limits::attempt(db, &k("k"), t + i).await.unwrap(),
            Ok(())
        );
    }
    assert_eq!(
        rate_limits::attempt(db, &k("k"), t + 10).await.unwrap(),
        Err(90)
    );
    assert_eq!(
        rate_limits::attempt(db, &k("other"), t + 10).await.unwrap(),
        Ok(())
    );
    // A refusal counts nothing on any key: "a" was counted once, by the attempt that passed.
    let spent = Budget {
        limit: 1,
        window_secs: 500,
    };
    let both = [Limit::new("a", B), Limit::new("b", spent)];
    assert_eq!(rate_limits::attempt(db, &both, t).await.unwrap(), Ok(()));
    for _ in 0..5 {
        // The longest wait of the spent keys ("b": 500 s from 1000).
        assert_eq!(
            rate_limits::attempt(db, &both, t + 10).await.unwrap(),
            Err(490)
        );
    }
    assert_eq!(
        rate_limits::attempt(db, &k("a"), t + 10).await.unwrap(),
        Ok(())
    );
    assert_eq!(
        rate_limits::attempt(db, &k("a"), t + 10).await.unwrap(),
        Ok(())
    );
    assert!(rate_limits::attempt(db, &k("a"), t + 10)
        .await
        .unwrap()
        .is_err());
    // Giving back makes room for one more.
    rate_limits::give_back(db, &k("a"), t + 20).await.unwrap();
    assert_eq!(
        rate_limits::attempt(db, &k("a"), t + 20).await.unwrap(),
        Ok(())
    );
    assert!(rate_limits::attempt(db, &k("a"), t + 20)
        .await
        .unwrap()
        .is_err());
    // A reset forgets the key; a window's end renews it.
    rate_limits::reset(db, "a").await.unwrap();
    assert_eq!(
        rate_limits::attempt(db, &k("a"), t + 30).await.unwrap(),
        Ok(())
    );
    assert_eq!(
        rate_limits::attempt(db, &k("k"), t + 100).await.unwrap(),
        Ok(())
    );
}

#[tokio::test]
async fn parallel_attempts_never_get_past_the_budget() {
    let app = spawn_app().await;
    let budget = Budget {
        limit: 10,
        window_secs: 900,
    };
    let now = app.clock.now_unix();
    for round in 0..10 {
        let shared = format!("shared-{round}");
        if round % 2 == 1 {
            // A key whose window has ended: the race restarts it.
            let earlier = [Limit::new(shared.clone(), budget)];
            rate_limits::attempt(&app.db, &earlier, now - 1000)
                .await
                .unwrap()
                .unwrap();
        }
        // Every attempt names the shared key and one of its own, in either order.
        let attempts = (0..40).map(|i| {
            let db = app.db.clone();
            let shared = shared.clone();
            tokio::spawn(async move {
                let mut limits = vec![
                    Limit::new(shared, budget),
                    Limit::new(format!("own-{round}-{i}"), budget),
                ];
                if i % 2 == 0 {
                    limits.reverse();
                }
                rate_limits::attempt(&db, &limits, now).await.unwrap()
            })
        });
        let mut passed = 0;
        for attempt in attempts.collect::<Vec<_>>() {
            if attempt.await.unwrap().is_ok() {
                passed += 1;
            }
        }
        assert_eq!(passed, 10, "round {round}");
        let counted: i64 = sqlx::query_scalar("select count from rate_limits where key = $1")
            .bind(&shared)
            .fetch_one(app.db.pool())
            .await
            .unwrap();
        assert_eq!(counted, 10, "round {round}");
    }
}

#[tokio::test]
async fn ended_windows_are_pruned() {
    let app = spawn_app().await;
    let t = app.clock.now_unix();
    rate_limits::attempt(&app.db, &k("short"), t)
        .await
        .unwrap()
        .unwrap();
    let long = [Limit::new(
        "long",
        Budget {
            limit: 3,
            window_secs: 3600,
        },
    )];
    rate_limits::attempt(&app.db, &long, t)
        .await
        .unwrap()
        .unwrap();
    server::prune_once(&app.db, t + 160, app.state.settings.audit_retention)
        .await
        .unwrap();
    let keys: Vec<String> = sqlx::query_scalar("select key from rate_limits")
        .fetch_all(app.db.pool())
        .await
        .unwrap();
    assert_eq!(keys, ["long"]);
}

#[tokio::test]
async fn wrong_passwords_on_two_instances_are_counted_once() {
    let throttled = [("RATE_LIMIT_ENABLED", "true")];
    let a = spawn_app_with(&throttled).await;
    let b = a.another_instance(&throttled).await;
    let email = unique_email();
    a.register(&email).await;
    // Ten guesses per account and address, whichever instance answers.
    for i in 0..10 {
        let instance = if i % 2 == 0 { &a } else { &b };
        let r = instance.login_raw(&email, "wrong password").await;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "guess {i}");
    }
    for instance in [&a, &b] {
        assert_error(
            instance.login_raw(&email, PASSWORD).await,
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
        )
        .await;
    }
}

#[tokio::test]
async fn attempts_refused_on_a_spent_budget_write_nothing() {
    let app = spawn_app().await;
    let now = app.clock.now_unix();
    let address = Limit::new("ip:attacker", B);
    for _ in 0..3 {
        rate_limits::attempt(&app.db, std::slice::from_ref(&address), now)
            .await
            .unwrap()
            .unwrap();
    }
    // Each refused attempt names a new account too: no row for any of them.
    for i in 0..50 {
        let limits = [address.clone(), Limit::new(format!("account:{i}"), B)];
        assert!(rate_limits::attempt(&app.db, &limits, now)
            .await
            .unwrap()
            .is_err());
    }
    let rows: i64 = sqlx::query_scalar("select count(*) from rate_limits")
        .fetch_one(app.db.pool())
        .await
        .unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn registrations_on_two_instances_are_counted_once() {
    let throttled = [("RATE_LIMIT_ENABLED", "true")];
    let a = spawn_app_with(&throttled).await;
    let b = a.another_instance(&throttled).await;
    // Twenty registrations an hour per address, whichever instance takes them.
    for i in 0..20 {
        let instance = if i % 2 == 0 { &a } else { &b };
        let r = instance.register_raw("not an email", "x", "").await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "attempt {i}");
    }
    for instance in [&a, &b] {
        assert_error(
            instance
                .register_raw(&unique_email(), PASSWORD, "Ada")
                .await,
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
        )
        .await;
    }
}

#[tokio::test]
async fn an_attempt_is_given_back_only_to_the_window_that_counted_it() {
    let app = spawn_app().await;
    let t = app.clock.now_unix();
    // Counted at t + 90, near the end of the window that began at t (100 s).
    rate_limits::attempt(&app.db, &k("k"), t)
        .await
        .unwrap()
        .unwrap();
    rate_limits::attempt(&app.db, &k("k"), t + 90)
        .await
        .unwrap()
        .unwrap();
    // The next window fills up...
    for _ in 0..3 {
        rate_limits::attempt(&app.db, &k("k"), t + 100)
            .await
            .unwrap()
            .unwrap();
    }
    // ...and the give-back of the attempt of t + 90 lands late: it makes no room there.
    rate_limits::give_back(&app.db, &k("k"), t + 90)
        .await
        .unwrap();
    assert!(rate_limits::attempt(&app.db, &k("k"), t + 100)
        .await
        .unwrap()
        .is_err());
}
