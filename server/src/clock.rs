//! Time as a parameter: expiry, grace windows and lifetimes are tested without sleeping.

use std::sync::Arc;
use time::OffsetDateTime;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> OffsetDateTime;

    fn unix(&self) -> i64 {
        self.now().unix_timestamp()
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

pub type SharedClock = Arc<dyn Clock>;

/// Unix seconds as RFC 3339, the form of every time in the API.
pub fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A clock that moves only when told: for tests of expiry and grace windows.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<std::sync::atomic::AtomicI64>);

impl ManualClock {
    /// Starts at `unix` seconds.
    pub fn at(unix: i64) -> ManualClock {
        ManualClock(Arc::new(std::sync::atomic::AtomicI64::new(unix)))
    }

    pub fn now_unix(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(self.0.load(std::sync::atomic::Ordering::SeqCst))
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

/// This instance's clock brought to the database's, so instances sharing a database judge
/// times alike: above all the refresh grace window, where a token rotated on one instance
/// is presented to another.
///
/// The offset is how far the database's clock is from `reference` (this machine's real
/// clock), in whole seconds, measured at start and every [`MEASURE_EVERY`]; it is added to
/// `local`, the clock the server runs on. In production both are the system clock; tests
/// run on a `ManualClock` while the offset is still measured against real time.
pub struct DatabaseClock {
    local: SharedClock,
    reference: SharedClock,
    offset_secs: std::sync::atomic::AtomicI64,
}

/// How often the offset is measured again (a clock stepped by NTP, say).
pub const MEASURE_EVERY: std::time::Duration = std::time::Duration::from_secs(30);

/// The offset, in whole seconds, to follow after a database read `db_ms` while the
/// reference clock read `reference_ms` (the middle of the round trip), `current` being the
/// one followed so far: it changes only when the difference is 0.75 s or more away from
/// it, so a real offset near half a second does not flip it back and forth.
pub fn offset_secs(db_ms: i64, reference_ms: i64, current: i64) -> i64 {
    let difference = db_ms - reference_ms;
    if (difference - current * 1000).abs() < 750 {
        current
    } else {
        (difference as f64 / 1000.0).round() as i64
    }
}

impl DatabaseClock {
    pub fn new(local: SharedClock, reference: SharedClock) -> DatabaseClock {
        DatabaseClock {
            local,
            reference,
            offset_secs: std::sync::atomic::AtomicI64::new(0),
        }
    }

    /// Reads the database's time and keeps the offset to it; returns the offset.
    pub async fn measure(&self, db: &crate::db::Db) -> Result<i64, sqlx::Error> {
        let millis = |t: OffsetDateTime| (t.unix_timestamp_nanos() / 1_000_000) as i64;
        // The connection first: a wait for one would skew the round trip's middle.
        let mut connection = db.pool().acquire().await?;
        let before = millis(self.reference.now());
        let db_ms = crate::db::time_ms(&mut *connection, db.backend()).await?;
        let after = millis(self.reference.now());
        let previous = self.offset_secs.load(std::sync::atomic::Ordering::SeqCst);
        let offset = offset_secs(db_ms, before + (after - before) / 2, previous);
        self.offset_secs
            .store(offset, std::sync::atomic::Ordering::SeqCst);
        if offset != previous {
            tracing::warn!(
                offset_secs = offset,
                "this server's clock differs from the database's; following the database's"
            );
        }
        Ok(offset)
    }

    /// Measures again every [`MEASURE_EVERY`] until the task is aborted.
    pub async fn keep_measuring(self: Arc<Self>, db: crate::db::Db) {
        let mut ticker = tokio::time::interval(MEASURE_EVERY);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            if let Err(e) = self.measure(&db).await {
                tracing::warn!(error = %e, "reading the database's time failed");
            }
        }
    }
}

impl Clock for DatabaseClock {
    fn now(&self) -> OffsetDateTime {
        let offset = self.offset_secs.load(std::sync::atomic::Ordering::SeqCst);
        self.local.now() + time::Duration::seconds(offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_is_whole_seconds_and_changes_only_by_three_quarters_of_one() {
        assert_eq!(offset_secs(1_000_000, 1_000_000, 0), 0);
        assert_eq!(offset_secs(1_000_749, 1_000_000, 0), 0);
        assert_eq!(offset_secs(1_000_750, 1_000_000, 0), 1);
        // Near half a second either way: whatever was followed stays.
        assert_eq!(offset_secs(1_000_400, 1_000_000, 1), 1);
        assert_eq!(offset_secs(1_000_600, 1_000_000, 0), 0);
        assert_eq!(offset_secs(1_001_500, 1_000_000, 0), 2);
        assert_eq!(offset_secs(1_000_000, 1_020_300, 0), -20);
        assert_eq!(offset_secs(1_000_000, 1_000_000, -20), 0);
    }

    #[test]
    fn the_database_clock_adds_its_offset() {
        let local = ManualClock::at(1_000);
        let clock = DatabaseClock::new(Arc::new(local.clone()), Arc::new(SystemClock));
        clock
            .offset_secs
            .store(-20, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(clock.unix(), 980);
        local.advance(5);
        assert_eq!(clock.unix(), 985);
    }
}
