//! The database layer. All SQL of the server lives in this folder.
//!
//! One code path serves SQLite and PostgreSQL through sqlx's `Any` driver: queries use
//! `$n` placeholders (which both accept), ids are stored as text and times as Unix
//! seconds, so no backend-specific type ever crosses the boundary.

pub mod audit;
pub mod changes;
pub mod email_codes;
pub mod identities;
pub mod mfa;
pub mod oidc_flows;
pub mod passkeys;
pub mod password_resets;
pub mod rate_limits;
pub mod sessions;
pub mod signing_keys;
pub mod users;

use sqlx::error::BoxDynError;
use sqlx::{
    any::{AnyPoolOptions, AnyQueryResult},
    migrate::{Migration, MigrationSource, MigrationType, Migrator},
    AnyPool, Executor, SqlSafeStr,
};
use std::{
    future::Future,
    path::Path,
    pin::Pin,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

#[derive(Clone, Debug)]
pub struct Db {
    pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer at a time. Write transactions of this process queue here, so
    /// the next one starts the moment the previous one ends, instead of polling in SQLite's
    /// busy handler (which sleeps 1, 2, 5, 10… ms between tries).
    writer: Arc<tokio::sync::Mutex<()>>,
    /// The group commit of refresh rotations on SQLite (`sessions::write_rotation`),
    /// started at the first rotation, and again should its task ever stop.
    rotations: Arc<std::sync::Mutex<Option<sessions::RotationQueue>>>,
}

/// What [`Db::connections`] counts (`db_pool_connections`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PoolConnections {
    pub idle: usize,
    pub in_use: usize,
}

/// A write transaction (see [`Db::begin_write`]): use it as the connection (`&mut *tx`),
/// then `commit` it; dropped without a commit, it rolls back.
pub struct WriteTx {
    tx: sqlx::Transaction<'static, sqlx::Any>,
    _turn: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        self.tx.commit().await
    }

    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        self.tx.rollback().await
    }
}

impl std::ops::Deref for WriteTx {
    type Target = sqlx::AnyConnection;

    fn deref(&self) -> &sqlx::AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut sqlx::AnyConnection {
        &mut self.tx
    }
}

/// The longest a write transaction waits for its turn on SQLite, like the pool's wait for
/// a connection.
pub const WRITE_TURN_WAIT: Duration = Duration::from_secs(5);

/// The most rows one pruning statement deletes. A batch (with the rows that cascade from
/// it) takes milliseconds, so writers waiting their turn, or in SQLite's busy handler
/// for up to 5 s, get in between batches of a backlog of any size.
pub const PRUNE_BATCH: i64 = 5_000;

/// One batch of a pruning (`audit::prune`, `sessions::prune`): deletes up to
/// [`PRUNE_BATCH`] rows older than its argument on the connection, and says how many.
pub type PruneBatch =
    for<'c> fn(
        &'c mut sqlx::AnyConnection,
        i64,
    ) -> Pin<Box<dyn Future<Output = Result<u64, sqlx::Error>> + Send + 'c>>;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("cannot create the database folder {path}: {source}")]
    Folder {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot create the database file {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot run migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// Migrations, compiled into the binary so a deployed server needs no `migrations/` folder.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "users", include_str!("../../migrations/0001_users.sql")),
    (
        2,
        "sessions",
        include_str!("../../migrations/0002_sessions.sql"),
    ),
    (
        3,
        "session_epoch",
        include_str!("../../migrations/0003_session_epoch.sql"),
    ),
    (
        4,
        "audit_log",
        include_str!("../../migrations/0004_audit_log.sql"),
    ),
    (
        5,
        "email_codes_and_resets",
        include_str!("../../migrations/0005_email_codes_and_resets.sql"),
    ),
    (
        6,
        "identities",
        include_str!("../../migrations/0006_identities.sql"),
    ),
    (
        7,
        "signing_keys",
        include_str!("../../migrations/0007_signing_keys.sql"),
    ),
    (
        8,
        "rate_limits",
        include_str!("../../migrations/0008_rate_limits.sql"),
    ),
    (
        9,
        "second_factor",
        include_str!("../../migrations/0009_second_factor.sql"),
    ),
    (
        10,
        "passkeys",
        include_str!("../../migrations/0010_passkeys.sql"),
    ),
    (
        11,
        "link_session",
        include_str!("../../migrations/0011_link_session.sql"),
    ),
    (
        12,
        "ceremonies_by_person",
        include_str!("../../migrations/0012_ceremonies_by_person.sql"),
    ),
];

#[derive(Debug)]
struct Embedded;

impl MigrationSource<'static> for Embedded {
    fn resolve(
        self,
    ) -> Pin<Box<dyn Future<Output = Result<Vec<Migration>, BoxDynError>> + Send + 'static>> {
        Box::pin(async {
            Ok(MIGRATIONS
                .iter()
                .map(|(version, description, sql)| {
                    Migration::new(
                        *version,
                        (*description).into(),
                        MigrationType::Simple,
                        sql.into_sql_str(),
                        false,
                    )
                })
                .collect())
        })
    }
}

/// Whether the database answered the last time this process tried to reach it.
///
/// A pool that cannot connect (the server stopped, restarting) answers `PoolTimedOut` after
/// its wait, as a busy pool does; this tells the two apart (`ApiError::from`): the first is
/// `unavailable`, the second `overloaded`. Set by what tries connections of its own (a new
/// connection of the pool, the change follower's listener on PostgreSQL) and by errors
/// that say the connection is gone. One value for the process: a server has one database.
static REACHABLE: AtomicBool = AtomicBool::new(true);

/// Notes whether the database could be reached just now.
pub fn reachable(yes: bool) {
    REACHABLE.store(yes, Ordering::Relaxed);
}

/// Whether the database could be reached when last tried.
pub fn seems_reachable() -> bool {
    REACHABLE.load(Ordering::Relaxed)
}

impl Db {
    /// Connects, creating the SQLite file and its folder when needed, and tunes SQLite for
    /// a web server: WAL (readers never wait for the writer), foreign keys on, and a busy
    /// timeout so a writer queues instead of failing with `SQLITE_BUSY`.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = match backend {
            Backend::Sqlite => prepare_sqlite_url(url)?,
            Backend::Postgres => url.to_string(),
        };

        let pool = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(5))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("pragma foreign_keys = on").await?;
                        conn.execute("pragma busy_timeout = 5000").await?;
                        conn.execute("pragma synchronous = normal").await?;
                    }
                    reachable(true);
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .map_err(DbError::Connect)?;

        if backend == Backend::Sqlite {
            // Persistent in the file: set once, every later connection inherits it.
            sqlx::query("pragma journal_mode = wal")
                .execute(&pool)
                .await
                .map_err(DbError::Connect)?;
        }
        Ok(Db {
            pool,
            backend,
            writer: Arc::default(),
            rotations: Arc::default(),
        })
    }

    /// The queue of rotations written together on SQLite (started on first use, and again
    /// if its task stopped), on a handle of this database that does not hold the queue
    /// itself, so the queue's task ends when the last handle that can send to it is
    /// dropped. `None` on PostgreSQL.
    pub fn rotation_queue(&self) -> Option<sessions::RotationQueue> {
        if self.backend != Backend::Sqlite {
            return None;
        }
        let mut queue = self
            .rotations
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match queue.as_ref() {
            Some(running) if running.running() => Some(running.clone()),
            _ => {
                let started = sessions::RotationQueue::start(Db {
                    pool: self.pool.clone(),
                    backend: self.backend,
                    writer: self.writer.clone(),
                    rotations: Arc::default(),
                });
                *queue = Some(started.clone());
                Some(started)
            }
        }
    }

    pub async fn migrate(&self) -> Result<(), DbError> {
        let migrator = Migrator::new(Embedded).await?;
        migrator.run(&self.pool).await?;
        Ok(())
    }

    /// Answers whether the database takes a query now (for `/readyz`).
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        sqlx::query("select 1")
            .execute(&self.pool)
            .await
            .map(|_: AnyQueryResult| ())
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The pool's open connections now: idle, and lent to a query or transaction.
    pub fn connections(&self) -> PoolConnections {
        let open = self.pool.size() as usize;
        // Read one after the other, the two may disagree for a moment.
        let idle = self.pool.num_idle().min(open);
        PoolConnections {
            idle,
            in_use: open - idle,
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A write transaction. On SQLite it takes the write lock at once (`BEGIN IMMEDIATE`):
    /// a deferred transaction that reads first and writes later fails with `SQLITE_BUSY`
    /// when another writer got in between, instead of waiting its turn.
    /// Here they also take their turn in this process first (see `writer`), waiting at
    /// most [`WRITE_TURN_WAIT`]: past it the answer is `PoolTimedOut`, which the API says
    /// as 503 `overloaded`, as it does when no connection is free in time.
    pub async fn begin_write(&self) -> Result<WriteTx, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => {
                let turn = tokio::time::timeout(WRITE_TURN_WAIT, self.writer.clone().lock_owned())
                    .await
                    .map_err(|_| sqlx::Error::PoolTimedOut)?;
                Ok(WriteTx {
                    tx: self.pool.begin_with("begin immediate").await?,
                    _turn: Some(turn),
                })
            }
            Backend::Postgres => Ok(WriteTx {
                tx: self.pool.begin().await?,
                _turn: None,
            }),
        }
    }

    /// Runs `batch` with `before`, each in its own write transaction (so on SQLite each takes
    /// its turn in the writer queue), until one deletes fewer than [`PRUNE_BATCH`] rows;
    /// returns how many went in all.
    pub async fn prune_in_batches(
        &self,
        batch: PruneBatch,
        before: i64,
    ) -> Result<u64, sqlx::Error> {
        let mut total = 0;
        loop {
            let mut tx = self.begin_write().await?;
            let deleted = batch(&mut tx, before).await?;
            tx.commit().await?;
            total += deleted;
            if deleted < PRUNE_BATCH as u64 {
                return Ok(total);
            }
        }
    }

    /// Closes every connection; later queries fail. Used at shutdown and by tests.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// The database server's time on `db`, in Unix milliseconds: the time every instance on one
/// database agrees on (see `clock::DatabaseClock`).
pub async fn time_ms<'e>(
    db: impl Executor<'e, Database = sqlx::Any>,
    backend: Backend,
) -> Result<i64, sqlx::Error> {
    let sql = match backend {
        Backend::Postgres => "select cast(extract(epoch from clock_timestamp()) * 1000 as bigint)",
        Backend::Sqlite => "select cast((julianday('now') - 2440587.5) * 86400000.0 as integer)",
    };
    sqlx::query_scalar::<_, i64>(sql).fetch_one(db).await
}

/// `sqlite://data/app.db` → create `data/` and the file, readable by its owner only, and ask
/// SQLite to create it should it vanish meanwhile.
fn prepare_sqlite_url(url: &str) -> Result<String, DbError> {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    let mode = query.split('&').find_map(|kv| kv.strip_prefix("mode="));
    if !path.is_empty() && path != ":memory:" && mode != Some("memory") {
        if let Some(parent) = Path::new(path)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            std::fs::create_dir_all(parent).map_err(|source| DbError::Folder {
                path: parent.display().to_string(),
                source,
            })?;
        }
        if mode.is_none_or(|m| m == "rwc") {
            create_private_file(Path::new(path))?;
        }
        tighten_database_files(Path::new(path));
    }
    Ok(if mode.is_some() {
        url.to_string()
    } else if query.is_empty() {
        format!("{url}?mode=rwc")
    } else {
        format!("{url}&mode=rwc")
    })
}

/// Creates an empty database file with mode 0600 unless it exists. SQLite would create it
/// with the umask's mode (often world-readable: every account, session and audit entry),
/// and gives its `-wal` and `-shm` files the main file's mode, so this covers all three.
fn create_private_file(path: &Path) -> Result<(), DbError> {
    match crate::files::create_private(path, b"") {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(source) => Err(DbError::File {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// Makes an existing database, and its `-wal` and `-shm` files, owner-only when group or
/// others may use them (a database created before the server created it 0600, or copied
/// since); returns how many it changed. Each change is a warning naming the file. Refusing
/// to start instead would stop every existing deployment at its upgrade; a file this
/// cannot change (another owner's) is a warning too, for the same reason.
fn tighten_database_files(path: &Path) -> usize {
    let mut changed = 0;
    for suffix in ["", "-wal", "-shm"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = Path::new(&file);
        match crate::files::make_private(file) {
            Ok(Some(mode)) => {
                changed += 1;
                tracing::warn!(
                    file = %file.display(),
                    "the database file was open to group or others (mode {mode:o}); \
                     made it owner-only (0600)"
                );
            }
            Ok(None) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(
                file = %file.display(),
                error = %e,
                "cannot check or change the database file's permissions; make it \
                 owner-only yourself (chmod 600)"
            ),
        }
    }
    changed
}

/// Whether `e` says the database cannot be reached, rather than that a statement failed.
pub fn is_unreachable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        // PostgreSQL's connection exceptions (class 08) and "shutting down / starting up"
        // (57P01 to 57P03).
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P0")),
        _ => false,
    }
}

/// True when `e` is a unique violation of the named constraint. PostgreSQL reports the
/// constraint's name; SQLite reports none, so there the caller's table must have only that
/// one unique key besides its random primary key.
pub fn is_unique_violation(e: &sqlx::Error, constraint: &str) -> bool {
    match e.as_database_error() {
        Some(db) if db.is_unique_violation() => db.constraint().is_none_or(|c| c == constraint),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_ask_for_creation() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/nested/app.db", dir.path().display());
        assert_eq!(prepare_sqlite_url(&url).unwrap(), format!("{url}?mode=rwc"));
        assert!(dir.path().join("nested").is_dir());
        assert!(dir.path().join("nested/app.db").is_file());
        let ro = format!("sqlite://{}/x.db?mode=ro", dir.path().display());
        assert_eq!(prepare_sqlite_url(&ro).unwrap(), ro);
        assert!(
            !dir.path().join("x.db").exists(),
            "read-only asks for an existing file"
        );
        assert_eq!(
            prepare_sqlite_url("sqlite::memory:").unwrap(),
            "sqlite::memory:?mode=rwc"
        );
    }

    #[cfg(unix)]
    fn mode_of(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_new_sqlite_database_and_its_journal_are_owner_only() {
        // The usual umask, under which SQLite alone would create 0644 files; a restrictive
        // one (077) on the machine running the tests would hide the difference. The umask
        // is the process's: other tests creating files meanwhile get the common default.
        // SAFETY: umask only sets the process's file creation mask; it cannot fail.
        unsafe { libc::umask(0o022) };
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}/app.db", dir.path().display()))
            .await
            .unwrap();
        // Migrations write, so the WAL and its index exist.
        db.migrate().await.unwrap();
        for file in ["app.db", "app.db-wal", "app.db-shm"] {
            let mode = mode_of(&dir.path().join(file));
            assert_eq!(mode, 0o600, "{file}: {mode:o}");
        }
        db.close().await;
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn an_existing_database_open_to_group_or_others_is_made_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}/app.db", dir.path().display());
        // Open, so the WAL and its index exist, as a running server keeps them.
        let first = Db::connect(&url).await.unwrap();
        first.migrate().await.unwrap();
        let files = [
            ("app.db", 0o644),
            ("app.db-wal", 0o640),
            ("app.db-shm", 0o606),
        ];
        for (file, mode) in files {
            std::fs::set_permissions(dir.path().join(file), std::fs::Permissions::from_mode(mode))
                .unwrap();
        }
        // As an upgraded server starts on a database an older one created.
        let second = Db::connect(&url).await.unwrap();
        for (file, _) in files {
            let mode = mode_of(&dir.path().join(file));
            assert_eq!(mode, 0o600, "{file}: {mode:o}");
        }
        // It still works.
        second.ping().await.unwrap();
        second.close().await;
        first.close().await;
        // Owner-only ones are left as they are, read-only included.
        std::fs::set_permissions(
            dir.path().join("app.db"),
            std::fs::Permissions::from_mode(0o400),
        )
        .unwrap();
        assert_eq!(
            tighten_database_files(Path::new(&format!("{}/app.db", dir.path().display()))),
            0
        );
        assert_eq!(mode_of(&dir.path().join("app.db")), 0o400);
    }

    /// A migration file added to `migrations/` but not to `MIGRATIONS` would never run.
    #[test]
    fn every_migration_file_is_embedded_in_order() {
        let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        let mut files: Vec<String> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        assert_eq!(
            files.len(),
            MIGRATIONS.len(),
            "files {files:?} vs MIGRATIONS"
        );
        for (i, (file, (version, description, sql))) in files.iter().zip(MIGRATIONS).enumerate() {
            let stem = file
                .strip_suffix(".sql")
                .unwrap_or_else(|| panic!("{file}: migrations are .sql files"));
            let (number, name) = stem
                .split_once('_')
                .unwrap_or_else(|| panic!("{file}: expected NNNN_name.sql"));
            assert_eq!(number.len(), 4, "{file}: four digits");
            assert_eq!(
                number.parse::<i64>().unwrap(),
                i as i64 + 1,
                "{file}: numbered in sequence from 1"
            );
            assert_eq!(*version, i as i64 + 1, "{file}: its entry's version");
            assert_eq!(*description, name, "{file}: its entry's description");
            assert_eq!(
                *sql,
                std::fs::read_to_string(folder.join(file)).unwrap(),
                "{file}: its entry embeds this file"
            );
        }
    }
}
