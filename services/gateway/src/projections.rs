//! Read-your-writes: follows how far every projection has got, so that a write's reply can wait
//! (with a bound) until the read views show it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::Row;
use tokio::sync::{Notify, watch};
use tokio_util::sync::CancellationToken;
use zhzj_projector::Projection;
use zhzj_store::ReadStore;

/// How often the checkpoints are read while someone waits (and no commit of this process's
/// projectors woke the poller first).
const POLL_WHILE_WAITING: Duration = Duration::from_millis(2);
/// How often they are read otherwise.
const POLL_IDLE: Duration = Duration::from_secs(1);

/// The lowest position every projection has reached, kept current by a background task.
#[derive(Debug, Clone)]
pub struct ProjectionWatch {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    reached: watch::Sender<u64>,
    waiters: AtomicUsize,
    wake: Notify,
}

/// Counts a waiter while it lives, so the poller knows to hurry.
struct Waiting<'a>(&'a Inner);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiters.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The position every projection has reached (0 while any has not started).
pub async fn lowest_position(store: &ReadStore) -> Result<u64, sqlx::Error> {
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, COALESCE(MIN(position), 0) AS lowest FROM projection_checkpoints",
    )
    .fetch_one(store.pool())
    .await?;
    let count: i64 = row.try_get("n")?;
    let lowest: i64 = row.try_get("lowest")?;
    Ok(
        if usize::try_from(count).unwrap_or(0) < Projection::ALL.len() {
            0
        } else {
            u64::try_from(lowest).unwrap_or(0)
        },
    )
}

/// The position the event archive has reached: every figure drawn "as of" a position at or below
/// it is final, since nothing can be appended there any more.
pub async fn archive_position(store: &ReadStore) -> Result<u64, sqlx::Error> {
    position_of(store, Projection::ARCHIVE).await
}

/// The position `projection` has reached (0 before it has started).
pub async fn position_of(store: &ReadStore, projection: Projection) -> Result<u64, sqlx::Error> {
    let position: Option<i64> =
        sqlx::query_scalar("SELECT position FROM projection_checkpoints WHERE projection = $1")
            .bind(projection.name())
            .fetch_optional(store.pool())
            .await?;
    Ok(position.and_then(|p| u64::try_from(p).ok()).unwrap_or(0))
}

impl ProjectionWatch {
    /// Starts following the checkpoints of `store` until `shutdown`.
    pub fn start(store: ReadStore, shutdown: CancellationToken) -> Self {
        let (reached, _) = watch::channel(0);
        let inner = Arc::new(Inner {
            reached,
            waiters: AtomicUsize::new(0),
            wake: Notify::new(),
        });
        let poller = Arc::clone(&inner);
        tokio::spawn(async move {
            while !shutdown.is_cancelled() {
                // Listening before reading: a commit made meanwhile wakes the next round.
                let committed = store.committed();
                tokio::pin!(committed);
                committed.as_mut().enable();
                match lowest_position(&store).await {
                    Ok(position) => {
                        poller.reached.send_if_modified(|current| {
                            let moved = position != *current;
                            *current = position;
                            moved
                        });
                    }
                    Err(e) => tracing::debug!(error = %e, "could not read checkpoints"),
                }
                let waiting = poller.waiters.load(Ordering::SeqCst) > 0;
                let pause = if waiting {
                    POLL_WHILE_WAITING
                } else {
                    POLL_IDLE
                };
                // While someone waits, a projection's commit in this process (`zhzj up`) wakes
                // the poller at once; the poll is for projectors in other processes.
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = poller.wake.notified() => {}
                    () = &mut committed, if waiting => {}
                    () = tokio::time::sleep(pause) => {}
                }
            }
        });
        Self { inner }
    }

    /// Waits until every projection has reached `position`, at most `bound`; whether it did.
    pub async fn wait_for(&self, position: u64, bound: Duration) -> bool {
        let mut reached = self.inner.reached.subscribe();
        if *reached.borrow() >= position {
            return true;
        }
        self.inner.waiters.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.inner);
        self.inner.wake.notify_one();
        matches!(
            tokio::time::timeout(bound, reached.wait_for(|p| *p >= position)).await,
            Ok(Ok(_))
        )
    }
}
