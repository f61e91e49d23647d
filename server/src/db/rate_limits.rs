//! The `rate_limits` table: attempts counted per key in fixed windows, shared by every
//! instance. The budgets and the keys are the rules' (`auth::throttle`); this module
//! counts.

use super::{Backend, Db};
use crate::auth::throttle::{self, Limit, RetryAfter};
use sqlx::{Any, Executor};

/// The statement that makes sure every key of `n` limits has a row (a new one counts 0
/// in a window already ended), so the attempt statement finds a row to lock for each.
fn rows_sql(n: usize) -> String {
    let rows = (0..n)
        .map(|i| format!("(${}, $1, 0)", 2 + i))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "insert into rate_limits (key, window_ends, count) values {rows} \
         on conflict (key) do nothing"
    )
}

/// The attempt statement for `n` limits: it counts one attempt against every limit, or,
/// when any of them is spent, nothing at all, in one statement, so parallel attempts on
/// any number of instances cannot get past a budget.
///
/// On PostgreSQL the keys' rows are locked first (`for update`, in key order so two
/// attempts cannot deadlock), and after a wait the lock returns the row as the other
/// attempt left it: every decision sees every count before it. (Without a row to lock,
/// forty attempts on a new key all counted.) SQLite runs it in a write transaction, alone.
fn attempt_sql(n: usize, backend: Backend) -> String {
    let wanted = (0..n)
        .map(|i| {
            format!(
                "(cast(${} as text), cast(${} as bigint), cast(${} as bigint))",
                2 + 3 * i,
                3 + 3 * i,
                4 + 3 * i
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let lock = match backend {
        Backend::Postgres => " order by r.key for update",
        Backend::Sqlite => "",
    };
    format!(
        "with wanted (key, lim, secs) as (values {wanted}), \
         held as (select r.key, r.count, r.window_ends from rate_limits r \
                  where r.key in (select key from wanted){lock}) \
         insert into rate_limits (key, window_ends, count) \
         select w.key, $1 + w.secs, 1 from wanted w \
         where (select count(*) from held) = {n} \
           and not exists (select 1 from wanted s join held h on h.key = s.key \
                           where h.window_ends > $1 and h.count >= s.lim) \
         order by w.key \
         on conflict (key) do update set \
           count = case when rate_limits.window_ends > $1 then rate_limits.count + 1 else 1 end, \
           window_ends = case when rate_limits.window_ends > $1 \
                         then rate_limits.window_ends else excluded.window_ends end \
         returning key"
    )
}

/// Counts one attempt against every limit, or refuses with the longest wait of the spent
/// ones and counts nothing.
pub async fn attempt(
    db: &Db,
    limits: &[Limit],
    now: i64,
) -> Result<Result<(), RetryAfter>, sqlx::Error> {
    let mut limits = limits.to_vec();
    limits.sort_by(|a, b| a.key.cmp(&b.key));
    limits.dedup_by(|a, b| a.key == b.key);
    // A budget already spent is refused on a read: a flood of attempts from a spent
    // address (each naming a new account, say) writes nothing.
    if let Some(wait) = spent(db, &limits, now).await? {
        return Ok(Err(wait));
    }
    // A key's row deleted between the two statements (a window pruned, a count reset)
    // makes the attempt statement count nothing without a spent budget: then again.
    for _ in 0..3 {
        if count(db, &limits, now).await? {
            return Ok(Ok(()));
        }
        if let Some(wait) = spent(db, &limits, now).await? {
            return Ok(Err(wait));
        }
    }
    Err(sqlx::Error::Protocol(
        "rate limit rows kept vanishing".into(),
    ))
}

/// The wait of the spent budgets among `limits`, if any is.
async fn spent(db: &Db, limits: &[Limit], now: i64) -> Result<Option<RetryAfter>, sqlx::Error> {
    let windows = windows(db.pool(), limits, now).await?;
    let any_spent = limits.iter().any(|limit| {
        windows
            .iter()
            .any(|(key, count, _)| *key == limit.key && *count >= i64::from(limit.budget.limit))
    });
    Ok(any_spent.then(|| throttle::retry_after(limits, &windows, now)))
}

/// The two statements of an attempt (see [`rows_sql`] and [`attempt_sql`]); whether it
/// was counted.
async fn count(db: &Db, limits: &[Limit], now: i64) -> Result<bool, sqlx::Error> {
    let rows_sql = rows_sql(limits.len());
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(rows_sql)).bind(now);
    for limit in limits {
        rows = rows.bind(limit.key.clone());
    }
    let sql = attempt_sql(limits.len(), db.backend());
    let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql)).bind(now);
    for limit in limits {
        query = query
            .bind(limit.key.clone())
            .bind(i64::from(limit.budget.limit))
            .bind(limit.budget.window_secs);
    }
    let counted = match db.backend() {
        Backend::Postgres => {
            rows.execute(db.pool()).await?;
            query.fetch_all(db.pool()).await?
        }
        Backend::Sqlite => {
            let mut tx = db.begin_write().await?;
            rows.execute(&mut *tx).await?;
            let counted = query.fetch_all(&mut *tx).await?;
            tx.commit().await?;
            counted
        }
    };
    Ok(!counted.is_empty())
}

/// The live windows of `limits`' keys: `(key, count, window_ends)`.
async fn windows<'e>(
    db: impl Executor<'e, Database = Any>,
    limits: &[Limit],
    now: i64,
) -> Result<Vec<(String, i64, i64)>, sqlx::Error> {
    let keys = placeholders(2, limits.len());
    let mut query = sqlx::query_as::<_, (String, i64, i64)>(sqlx::AssertSqlSafe(format!(
        "select key, count, window_ends from rate_limits where window_ends > $1 and key in ({keys})"
    )))
    .bind(now);
    for limit in limits {
        query = query.bind(limit.key.clone());
    }
    query.fetch_all(db).await
}

/// `$first, $first+1, …`: `n` placeholders.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Gives one attempt made at `now` back to every limit whose window that counted it is
/// still running (it succeeded: it was no guess).
pub async fn give_back(db: &Db, limits: &[Limit], now: i64) -> Result<(), sqlx::Error> {
    let mut limits = limits.to_vec();
    limits.sort_by(|a, b| a.key.cmp(&b.key));
    limits.dedup_by(|a, b| a.key == b.key);
    let given = (0..limits.len())
        .map(|i| {
            format!(
                "(cast(${} as text), cast(${} as bigint))",
                2 + 2 * i,
                3 + 2 * i
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    // In key order, as attempts lock them, so the two cannot deadlock.
    let lock = match db.backend() {
        Backend::Postgres => " order by r.key for update",
        Backend::Sqlite => "",
    };
    // Only to the window that counted the attempt (`now` is the attempt's time): one
    // that began after it, the attempt's own having ended meanwhile, keeps its count.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
        "with given (key, secs) as (values {given}) \
         update rate_limits set count = count - 1 \
         where key in (select r.key from rate_limits r join given g on g.key = r.key \
                       where r.window_ends > $1 and r.window_ends - g.secs <= $1 \
                         and r.count > 0{lock})"
    )))
    .bind(now);
    for limit in &limits {
        query = query.bind(limit.key.clone()).bind(limit.budget.window_secs);
    }
    write(db, query).await
}

/// Forgets a key's count (a person got in from this address: their earlier typos there
/// are forgiven).
pub async fn reset(db: &Db, key: &str) -> Result<(), sqlx::Error> {
    // The row stays (counting nothing), so an attempt between its two statements does
    // not find it gone; the pruner takes it when its window ends.
    write(
        db,
        sqlx::query("update rate_limits set count = 0 where key = $1").bind(key.to_string()),
    )
    .await
}

/// One statement that writes: on SQLite in a write transaction, taking its turn.
async fn write<'q>(
    db: &Db,
    query: sqlx::query::Query<'q, Any, sqlx::any::AnyArguments>,
) -> Result<(), sqlx::Error> {
    match db.backend() {
        Backend::Postgres => query.execute(db.pool()).await.map(|_| ()),
        Backend::Sqlite => {
            let mut tx = db.begin_write().await?;
            query.execute(&mut *tx).await?;
            tx.commit().await
        }
    }
}

/// Deletes up to [`super::PRUNE_BATCH`] keys whose window ended at or before `before`
/// (call it with a minute's margin: an attempt's new row counts 0 in a window ending at
/// its start until the attempt statement counts it).
pub async fn prune(db: &mut sqlx::AnyConnection, before: i64) -> Result<u64, sqlx::Error> {
    // Rows an attempt holds are left for the next round (`skip locked`, PostgreSQL), so
    // pruning (on every instance) never waits on, nor deadlocks with, an attempt.
    // SQLite has one writer: nothing to skip, and no such clause.
    let sql = if db.backend_name() == "PostgreSQL" {
        "delete from rate_limits where key in \
         (select key from rate_limits where window_ends <= $1 order by key limit $2 \
          for update skip locked)"
    } else {
        "delete from rate_limits where key in \
         (select key from rate_limits where window_ends <= $1 limit $2)"
    };
    sqlx::query(sql)
        .bind(before)
        .bind(super::PRUNE_BATCH)
        .execute(db)
        .await
        .map(|done| done.rows_affected())
}
