//! The second factor's tables: `totp_secrets`, `recovery_codes` and `mfa_challenges`.
//! Every "once only" rule is one conditional statement, so two racing requests cannot both
//! pass it.

use sqlx::{Any, Executor, FromRow};

/// Wrong codes that end an `mfa_token`.
pub const MAX_FAILURES: i64 = 5;

#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct TotpRow {
    pub secret_sealed: String,
    pub enabled_at: Option<i64>,
    pub last_step: Option<i64>,
}

pub async fn find_totp<'e>(
    db: impl Executor<'e, Database = Any>,
    user_id: &str,
) -> Result<Option<TotpRow>, sqlx::Error> {
    sqlx::query_as::<_, TotpRow>(
        "select secret_sealed, enabled_at, last_step from totp_secrets where user_id = $1",
    )
    .bind(user_id)
    .fetch_optional(db)
    .await
}

/// Whether `user_id` has a confirmed authenticator (the second factor is on).
pub async fn totp_enabled<'e>(
    db: impl Executor<'e, Database = Any>,
    user_id: &str,
) -> Result<bool, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as(
        "select user_id from totp_secrets where user_id = $1 and enabled_at is not null",
    )
    .bind(user_id)
    .fetch_optional(db)
    .await?;
    Ok(row.is_some())
}

/// Stores a pending secret for `user_id`, replacing an earlier pending one. False (nothing
/// written) when the person's authenticator is already confirmed.
pub async fn set_pending<'e>(
    db: impl Executor<'e, Database = Any>,
    user_id: &str,
    secret_sealed: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "insert into totp_secrets (user_id, secret_sealed, created_at) values ($1, $2, $3) \
         on conflict (user_id) do update \
         set secret_sealed = excluded.secret_sealed, created_at = excluded.created_at, \
             last_step = null \
         where totp_secrets.enabled_at is null",
    )
    .bind(user_id)
    .bind(secret_sealed)
    .bind(now)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Confirms the pending secret `secret_sealed` with the first code's `step` (that code is
/// then used up). False when that secret is no longer the one pending.
pub async fn enable<'e>(
    db: impl Executor<'e, Database = Any>,
    user_id: &str,
    secret_sealed: &str,
    step: i64,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update totp_secrets set enabled_at = $2, last_step = $3 \
         where user_id = $1 and enabled_at is null and secret_sealed = $4",
    )
    .bind(user_id)
    .bind(now)
    .bind(step)
    .bind(secret_sealed)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Accepts a code of `step` for `user_id`: only a step later than the last accepted one,
/// so a code (or an older one) never opens anything twice. False: a replay.
pub async fn claim_step<'e>(
    db: impl Executor<'e, Database = Any>,
    user_id: &str,
    step: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update totp_secrets set last_step = $2 \
         where user_id = $1 and enabled_at is not null \
           and (last_step is null or last_step < $2)",
    )
    .bind(user_id)
    .bind(step)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Turns the second factor off for `user_id`: the secret (pending or confirmed), the
/// recovery codes and every open `mfa_token` go. True when a confirmed factor was removed.
pub async fn remove(conn: &mut sqlx::AnyConnection, user_id: &str) -> Result<bool, sqlx::Error> {
    let enabled =
        sqlx::query("delete from totp_secrets where user_id = $1 and enabled_at is not null")
            .bind(user_id)
            .execute(&mut *conn)
            .await?
            .rows_affected()
            == 1;
    sqlx::query("delete from totp_secrets where user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("delete from recovery_codes where user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("delete from mfa_challenges where user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    Ok(enabled)
}

/// Ends every sign-in of `user_id` waiting for its second step (their password changed:
/// what was proven with the old one opens nothing now).
pub async fn end_challenges<'e>(
    db: impl Executor<'e, Database = Any>,
    user_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("delete from mfa_challenges where user_id = $1")
        .bind(user_id)
        .execute(db)
        .await
        .map(|_| ())
}

/// Replaces `user_id`'s recovery codes with `digests` (the old set is dead at once).
pub async fn replace_recovery_codes(
    conn: &mut sqlx::AnyConnection,
    user_id: &str,
    digests: &[String],
    now: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("delete from recovery_codes where user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?;
    for digest in digests {
        sqlx::query(
            "insert into recovery_codes (user_id, code_digest, created_at) values ($1, $2, $3)",
        )
        .bind(user_id)
        .bind(digest)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// Uses up one recovery code. False when it is not one of the person's, or already used.
pub async fn use_recovery_code<'e>(
    db: impl Executor<'e, Database = Any>,
    user_id: &str,
    digest: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update recovery_codes set used_at = $3 \
         where user_id = $1 and code_digest = $2 and used_at is null",
    )
    .bind(user_id)
    .bind(digest)
    .bind(now)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// How many unused recovery codes `user_id` has.
pub async fn recovery_codes_left<'e>(
    db: impl Executor<'e, Database = Any>,
    user_id: &str,
) -> Result<i64, sqlx::Error> {
    let (left,): (i64,) = sqlx::query_as(
        "select count(*) from recovery_codes where user_id = $1 and used_at is null",
    )
    .bind(user_id)
    .fetch_one(db)
    .await?;
    Ok(left)
}

#[derive(Clone, Debug, PartialEq, Eq, FromRow)]
pub struct ChallengeRow {
    pub user_id: String,
    pub method: String,
    pub expires_at: i64,
    pub failures: i64,
    pub used_at: Option<i64>,
}

impl ChallengeRow {
    /// Still good for a try at `now`: not used, not expired, not ended by wrong codes.
    pub fn open(&self, now: i64) -> bool {
        self.used_at.is_none() && self.expires_at > now && self.failures < MAX_FAILURES
    }
}

pub struct NewChallenge<'a> {
    pub token_hash: &'a str,
    pub user_id: &'a str,
    pub method: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

pub async fn create_challenge<'e>(
    db: impl Executor<'e, Database = Any>,
    challenge: NewChallenge<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into mfa_challenges (token_hash, user_id, method, created_at, expires_at) \
         values ($1, $2, $3, $4, $5)",
    )
    .bind(challenge.token_hash)
    .bind(challenge.user_id)
    .bind(challenge.method)
    .bind(challenge.now)
    .bind(challenge.expires_at)
    .execute(db)
    .await
    .map(|_| ())
}

pub async fn find_challenge<'e>(
    db: impl Executor<'e, Database = Any>,
    token_hash: &str,
) -> Result<Option<ChallengeRow>, sqlx::Error> {
    sqlx::query_as::<_, ChallengeRow>(
        "select user_id, method, expires_at, failures, used_at \
         from mfa_challenges where token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(db)
    .await
}

/// Uses the challenge up (a sign-in completes once). False when it was used, expired or
/// ended meanwhile.
pub async fn use_challenge<'e>(
    db: impl Executor<'e, Database = Any>,
    token_hash: &str,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update mfa_challenges set used_at = $2 \
         where token_hash = $1 and used_at is null and expires_at > $2 and failures < $3",
    )
    .bind(token_hash)
    .bind(now)
    .bind(MAX_FAILURES)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Counts a wrong code against the challenge; its failures now, or `None` when it was no
/// longer open.
pub async fn fail_challenge<'e>(
    db: impl Executor<'e, Database = Any>,
    token_hash: &str,
    now: i64,
) -> Result<Option<i64>, sqlx::Error> {
    let row: Option<(i64,)> = sqlx::query_as(
        "update mfa_challenges set failures = failures + 1 \
         where token_hash = $1 and used_at is null and expires_at > $2 and failures < $3 \
         returning failures",
    )
    .bind(token_hash)
    .bind(now)
    .bind(MAX_FAILURES)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(failures,)| failures))
}

pub async fn prune_challenges<'e>(
    db: impl Executor<'e, Database = Any>,
    before: i64,
) -> Result<u64, sqlx::Error> {
    sqlx::query("delete from mfa_challenges where expires_at < $1")
        .bind(before)
        .execute(db)
        .await
        .map(|r| r.rows_affected())
}
