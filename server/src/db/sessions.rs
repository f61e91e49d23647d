//! The `refresh_families` and `refresh_tokens` tables.

use sqlx::{any::AnyRow, Any, AnyConnection, Executor, FromRow, Row};

/// A family as the refresh path sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FamilyRow {
    pub id: String,
    pub user_id: String,
    pub generation: i64,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
    pub revoke_reason: Option<String>,
}

/// The revocation reason of the families of a person an admin disabled.
pub const DISABLED_BY_ADMIN: &str = "account disabled by an admin";

/// One refresh token as stored (its hash aside).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TokenRow {
    pub generation: i64,
    /// End of its idle lifetime.
    pub expires_at: i64,
    /// When a rotation consumed it.
    pub used_at: Option<i64>,
}

/// A presented token with its family.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Presented {
    pub token: TokenRow,
    pub family: FamilyRow,
}

impl FromRow<'_, AnyRow> for Presented {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Presented {
            token: TokenRow {
                generation: row.try_get("generation")?,
                expires_at: row.try_get("token_expires_at")?,
                used_at: row.try_get("used_at")?,
            },
            family: FamilyRow {
                id: row.try_get("family_id")?,
                user_id: row.try_get("user_id")?,
                generation: row.try_get("newest_generation")?,
                expires_at: row.try_get("family_expires_at")?,
                revoked_at: row.try_get("revoked_at")?,
                revoke_reason: row.try_get("revoke_reason")?,
            },
        })
    }
}

pub struct NewFamily<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub token_hash: &'a str,
    pub now: i64,
    pub token_expires_at: i64,
    pub expires_at: i64,
    pub user_agent: Option<&'a str>,
    pub ip: Option<&'a str>,
    /// How the session began: `password`, or a provider's id.
    pub method: &'a str,
}

/// Starts a family with its generation-0 token.
pub async fn create(conn: &mut AnyConnection, family: NewFamily<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into refresh_families \
         (id, user_id, generation, created_at, last_used_at, expires_at, idle_expires_at, user_agent, ip, method) \
         values ($1, $2, 0, $3, $3, $4, $5, $6, $7, $8)",
    )
    .bind(family.id)
    .bind(family.user_id)
    .bind(family.now)
    .bind(family.expires_at)
    .bind(family.token_expires_at)
    .bind(family.user_agent)
    .bind(family.ip)
    .bind(family.method)
    .execute(&mut *conn)
    .await?;
    insert_token(
        conn,
        family.id,
        0,
        family.token_hash,
        family.now,
        family.token_expires_at,
    )
    .await
}

pub async fn find_presented<'e>(
    db: impl Executor<'e, Database = Any>,
    token_hash: &str,
) -> Result<Option<Presented>, sqlx::Error> {
    sqlx::query_as::<_, Presented>(
        "select t.generation, t.expires_at as token_expires_at, t.used_at, \
                f.id as family_id, f.user_id, f.generation as newest_generation, \
                f.expires_at as family_expires_at, f.revoked_at, f.revoke_reason \
         from refresh_tokens t join refresh_families f on f.id = t.family_id \
         where t.token_hash = $1",
    )
    .bind(token_hash)
    .fetch_optional(db)
    .await
}

async fn insert_token(
    conn: &mut AnyConnection,
    family_id: &str,
    generation: i64,
    token_hash: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "insert into refresh_tokens (token_hash, family_id, generation, created_at, expires_at) \
         values ($1, $2, $3, $4, $5)",
    )
    .bind(token_hash)
    .bind(family_id)
    .bind(generation)
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await
    .map(|_| ())
}

/// One rotation step: the family's newest token (`parent`) is consumed and `child` becomes
/// the newest, in two statements, the fewest the writer's turn can take. False, with
/// nothing written, when the family moved on, was revoked or ended since it was read: the
/// first statement (the claim) re-checks all of that on the family row itself and locks it,
/// so a rotation racing a logout or a second rotation loses cleanly (PostgreSQL
/// re-evaluates the condition on the row a concurrent transaction committed).
pub async fn rotate(conn: &mut AnyConnection, step: Rotation<'_>) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "update refresh_families set generation = $1, last_used_at = $2, idle_expires_at = $3 \
         where id = $4 and generation = $5 and revoked_at is null and expires_at > $2",
    )
    .bind(step.parent_generation + 1)
    .bind(step.now)
    .bind(step.child_expires_at)
    .bind(step.family_id)
    .bind(step.parent_generation)
    .execute(&mut *conn)
    .await?;
    if claimed.rows_affected() != 1 {
        return Ok(false);
    }
    // The child is inserted and the parent marked used by one statement: the parent's row
    // is offered again under its own hash, which is stored already, so instead of being
    // inserted it has its `used_at` stamped by the conflict clause. The claim above made
    // sure the parent is the family's newest token, so it is stored and unused: two rows
    // are written. Anything else (a child whose hash or generation is taken) writes fewer
    // or fails, and fails the rotation, which the caller rolls back.
    let written = sqlx::query(
        "insert into refresh_tokens (token_hash, family_id, generation, created_at, expires_at) \
         values ($1, $2, $3, $4, $5), ($6, $2, $7, $4, $5) \
         on conflict (token_hash) do update set used_at = excluded.created_at \
         where refresh_tokens.token_hash = $6 and refresh_tokens.used_at is null",
    )
    .bind(step.child_hash)
    .bind(step.family_id)
    .bind(step.parent_generation + 1)
    .bind(step.now)
    .bind(step.child_expires_at)
    .bind(step.parent_hash)
    .bind(step.parent_generation)
    .execute(&mut *conn)
    .await?;
    if written.rows_affected() != 2 {
        return Err(sqlx::Error::Protocol(format!(
            "a rotation wrote {} of its 2 token rows",
            written.rows_affected()
        )));
    }
    Ok(true)
}

/// Most rotations one group commit writes; more wait for the next.
const GROUP_MAX: usize = 64;
/// Most rotations waiting for a group; more are refused at once as overloaded (503), as a
/// rotation that waits past [`super::WRITE_TURN_WAIT`] is.
const QUEUE_MAX: usize = 1024;

/// Group commit of rotations, on SQLite (one writer at a time): each is queued to one task
/// that writes every rotation waiting when it takes the write turn together, in one
/// transaction, and then answers each. A rotation that finds the queue empty is written at
/// once, alone; under load the turn and the commit are shared. Each is still decided on
/// its own by [`rotate`]'s conditional statements: one that finds its family moved on
/// answers false without touching the others, and one whose statement fails is taken out
/// and the rest written again. A rotation whose caller gave up (its request cut by its
/// time limit) is not written, and one that waited past the write turn's wait is answered
/// as busy, unwritten, as it was before there was a queue.
///
/// PostgreSQL writes each rotation in its own transaction: it takes many writers at once,
/// and a group would lock several families in one transaction (two instances' groups
/// could deadlock); measured, grouping did not help there.
#[derive(Clone, Debug)]
pub struct RotationQueue {
    jobs: tokio::sync::mpsc::Sender<Job>,
    counts: std::sync::Arc<GroupCounts>,
}

/// How many groups (transactions) and rotations the queue wrote.
#[derive(Debug, Default)]
pub struct GroupCounts {
    pub groups: std::sync::atomic::AtomicU64,
    pub rotations: std::sync::atomic::AtomicU64,
}

#[derive(Debug)]
struct Job {
    rotation: OwnedRotation,
    /// Past this, the job is answered busy and not written.
    deadline: tokio::time::Instant,
    answer: tokio::sync::oneshot::Sender<Result<bool, sqlx::Error>>,
}

/// A [`Rotation`] that owns its fields, to wait in the queue.
#[derive(Debug)]
struct OwnedRotation {
    family_id: String,
    parent_generation: i64,
    parent_hash: String,
    child_hash: String,
    child_expires_at: i64,
    now: i64,
}

impl OwnedRotation {
    fn borrowed(&self) -> Rotation<'_> {
        Rotation {
            family_id: &self.family_id,
            parent_generation: self.parent_generation,
            parent_hash: &self.parent_hash,
            child_hash: &self.child_hash,
            child_expires_at: self.child_expires_at,
            now: self.now,
        }
    }
}

impl RotationQueue {
    /// Starts the queue's task on `db` (a handle without a queue of its own).
    pub(super) fn start(db: super::Db) -> RotationQueue {
        let (jobs, mut queued) = tokio::sync::mpsc::channel::<Job>(QUEUE_MAX);
        let counts = std::sync::Arc::new(GroupCounts::default());
        let written = counts.clone();
        tokio::spawn(async move {
            while let Some(first) = queued.recv().await {
                let mut group = vec![first];
                while group.len() < GROUP_MAX {
                    match queued.try_recv() {
                        Ok(job) => group.push(job),
                        Err(_) => break,
                    }
                }
                write_group(&db, group, &written).await;
            }
        });
        RotationQueue { jobs, counts }
    }

    /// Whether its task still runs (it ends only if it panicked, or with the database).
    pub(super) fn running(&self) -> bool {
        !self.jobs.is_closed()
    }

    pub fn counts(&self) -> &GroupCounts {
        &self.counts
    }
}

/// Writes `group` in one transaction and answers each job; a job whose statement fails gets
/// that error and the others are written again without it.
async fn write_group(db: &super::Db, mut group: Vec<Job>, counts: &GroupCounts) {
    use std::sync::atomic::Ordering::Relaxed;
    while !group.is_empty() {
        let mut tx = match db.begin_write().await {
            Ok(tx) => tx,
            Err(e) => return fail_all(group, &e),
        };
        // Judged once the turn is ours: a caller that gave up meanwhile gets nothing
        // written; one that waited past the turn's wait is answered busy, unwritten.
        let now = tokio::time::Instant::now();
        group.retain(|job| !job.answer.is_closed());
        let (late, waiting): (Vec<Job>, Vec<Job>) =
            group.into_iter().partition(|job| job.deadline <= now);
        fail_all(late, &sqlx::Error::PoolTimedOut);
        group = waiting;
        if group.is_empty() {
            let _ = tx.rollback().await;
            return;
        }
        let mut rotated = Vec::with_capacity(group.len());
        let mut failed = None;
        for (i, job) in group.iter().enumerate() {
            match rotate(&mut tx, job.rotation.borrowed()).await {
                Ok(done) => rotated.push(done),
                Err(e) => {
                    failed = Some((i, e));
                    break;
                }
            }
        }
        match failed {
            None => {
                match tx.commit().await {
                    Ok(()) => {
                        counts.groups.fetch_add(1, Relaxed);
                        counts.rotations.fetch_add(group.len() as u64, Relaxed);
                        for (job, done) in group.into_iter().zip(rotated) {
                            let _ = job.answer.send(Ok(done));
                        }
                    }
                    Err(e) => fail_all(group, &e),
                }
                return;
            }
            Some((i, e)) => {
                // Rolled back before the turn is given up; the rest are written again
                // without the one that failed.
                let _ = tx.rollback().await;
                let _ = group.remove(i).answer.send(Err(e));
            }
        }
    }
}

/// Answers every job of a group whose transaction could not begin or commit.
fn fail_all(group: Vec<Job>, e: &sqlx::Error) {
    for job in group {
        let _ = job.answer.send(Err(same_error(e)));
    }
}

/// An error that says to each caller what `e` said to the group (sqlx's errors do not
/// clone): the kinds the API tells apart (busy, unreachable) are kept.
fn same_error(e: &sqlx::Error) -> sqlx::Error {
    match e {
        sqlx::Error::PoolTimedOut => sqlx::Error::PoolTimedOut,
        sqlx::Error::PoolClosed => sqlx::Error::PoolClosed,
        unreachable if super::is_unreachable(unreachable) => sqlx::Error::Io(std::io::Error::new(
            std::io::ErrorKind::ConnectionAborted,
            unreachable.to_string(),
        )),
        other => sqlx::Error::Protocol(other.to_string()),
    }
}

/// What a refresh writes: [`rotate`], through the group commit on SQLite
/// ([`RotationQueue`]), in a transaction of its own on PostgreSQL. Returns what [`rotate`]
/// returns (false: nothing written). Never call it while holding a write transaction: on
/// SQLite the queue waits for that same turn.
pub async fn write_rotation(db: &super::Db, step: Rotation<'_>) -> Result<bool, sqlx::Error> {
    let Some(queue) = db.rotation_queue() else {
        return write_rotation_alone(db, step).await;
    };
    let (answer, answered) = tokio::sync::oneshot::channel();
    let job = Job {
        rotation: OwnedRotation {
            family_id: step.family_id.to_string(),
            parent_generation: step.parent_generation,
            parent_hash: step.parent_hash.to_string(),
            child_hash: step.child_hash.to_string(),
            child_expires_at: step.child_expires_at,
            now: step.now,
        },
        deadline: tokio::time::Instant::now() + super::WRITE_TURN_WAIT,
        answer,
    };
    match queue.jobs.try_send(job) {
        Ok(()) => {}
        // As many waiting as a second of writing takes: busy, as a full writer queue was.
        Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => {
            return Err(sqlx::Error::PoolTimedOut)
        }
        Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => {
            return Err(sqlx::Error::PoolClosed)
        }
    }
    answered.await.unwrap_or(Err(sqlx::Error::PoolClosed))
}

/// [`rotate`] in a write transaction of its own.
pub async fn write_rotation_alone(db: &super::Db, step: Rotation<'_>) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin_write().await?;
    let rotated = rotate(&mut tx, step).await?;
    if rotated {
        tx.commit().await?;
    }
    Ok(rotated)
}

/// What [`rotate`] changes.
pub struct Rotation<'a> {
    pub family_id: &'a str,
    pub parent_generation: i64,
    pub parent_hash: &'a str,
    pub child_hash: &'a str,
    pub child_expires_at: i64,
    pub now: i64,
}

/// The stored hash and idle expiry of one generation of a family, while the family is
/// live (a convergence that races a logout answers nothing).
pub async fn token_of_generation<'e>(
    db: impl Executor<'e, Database = Any>,
    family_id: &str,
    generation: i64,
) -> Result<Option<(String, i64)>, sqlx::Error> {
    sqlx::query_as::<_, (String, i64)>(
        "select t.token_hash, t.expires_at from refresh_tokens t \
         join refresh_families f on f.id = t.family_id \
         where t.family_id = $1 and t.generation = $2 and f.revoked_at is null",
    )
    .bind(family_id)
    .bind(generation)
    .fetch_optional(db)
    .await
}

/// Ends a family; every token of it is refused from now on. Idempotent.
pub async fn revoke<'e>(
    db: impl Executor<'e, Database = Any>,
    family_id: &str,
    now: i64,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update refresh_families set revoked_at = $1, revoke_reason = $2 where id = $3 and revoked_at is null",
    )
    .bind(now)
    .bind(reason)
    .bind(family_id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Deletes up to [`super::PRUNE_BATCH`] families that ended (past their absolute or idle
/// end, or revoked) at or before `ended_before`, their tokens with them; returns how many.
/// Run it until it deletes fewer ([`super::Db::prune_in_batches`]), so no one statement
/// holds SQLite's write lock over a whole backlog. Callers keep ended families a while, so
/// a late token of one is still answered for what it is (`refresh_expired`, or reuse)
/// rather than as unknown.
pub async fn prune<'e>(
    db: impl Executor<'e, Database = Any>,
    ended_before: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "delete from refresh_families where id in (select id from refresh_families \
         where expires_at <= $1 or idle_expires_at <= $1 or revoked_at <= $1 limit $2)",
    )
    .bind(ended_before)
    .bind(super::PRUNE_BATCH)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// The ids of the person's families that can still refresh: the sessions whose access
/// tokens are honoured.
pub async fn live_ids_for_user<'e>(
    db: impl Executor<'e, Database = Any>,
    user_id: &str,
    now: i64,
) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar(
        "select id from refresh_families \
         where user_id = $1 and revoked_at is null and expires_at > $2 and idle_expires_at > $2",
    )
    .bind(user_id)
    .bind(now)
    .fetch_all(db)
    .await
}

/// A live family, as the sessions list shows it.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct LiveFamily {
    pub id: String,
    pub created_at: i64,
    pub last_used_at: i64,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub method: String,
}

/// The person's families that can still refresh, most recently used first.
pub async fn live_for_user<'e>(
    db: impl Executor<'e, Database = Any>,
    user_id: &str,
    now: i64,
) -> Result<Vec<LiveFamily>, sqlx::Error> {
    sqlx::query_as::<_, LiveFamily>(
        "select id, created_at, last_used_at, user_agent, ip, method from refresh_families \
         where user_id = $1 and revoked_at is null and expires_at > $2 and idle_expires_at > $2 \
         order by last_used_at desc, id",
    )
    .bind(user_id)
    .bind(now)
    .fetch_all(db)
    .await
}

/// Revokes one family of the person; false when it is not theirs or already ended.
pub async fn revoke_of_user<'e>(
    db: impl Executor<'e, Database = Any>,
    user_id: &str,
    family_id: &str,
    now: i64,
    reason: &str,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "update refresh_families set revoked_at = $1, revoke_reason = $2 \
         where id = $3 and user_id = $4 and revoked_at is null",
    )
    .bind(now)
    .bind(reason)
    .bind(family_id)
    .bind(user_id)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Revokes every family of the person but `keep`; returns how many.
pub async fn revoke_others<'e>(
    db: impl Executor<'e, Database = Any>,
    user_id: &str,
    keep: &str,
    now: i64,
    reason: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "update refresh_families set revoked_at = $1, revoke_reason = $2 \
         where user_id = $3 and id <> $4 and revoked_at is null",
    )
    .bind(now)
    .bind(reason)
    .bind(user_id)
    .bind(keep)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// Revokes every family of the person; returns how many.
pub async fn revoke_all_of_user<'e>(
    db: impl Executor<'e, Database = Any>,
    user_id: &str,
    now: i64,
    reason: &str,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query(
        "update refresh_families set revoked_at = $1, revoke_reason = $2 where user_id = $3 and revoked_at is null",
    )
    .bind(now)
    .bind(reason)
    .bind(user_id)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}
