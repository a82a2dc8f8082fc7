//! Bounding how long a client may keep this executor's connection waiting.

use std::future::Future;
use std::time::{Duration, Instant};

/// `future`'s output, or `None` if it takes longer than `limit`.
pub(crate) async fn within<T>(limit: Duration, future: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(future.await) }, async {
        glommio::timer::sleep(limit).await;
        None
    })
    .await
}

/// `future`'s output, or `None` if `deadline` passes first.
pub(crate) async fn before<T>(deadline: Instant, future: impl Future<Output = T>) -> Option<T> {
    within(deadline.saturating_duration_since(Instant::now()), future).await
}
