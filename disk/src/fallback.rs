//! The fallback path: ordinary blocking file I/O, one job at a time on
//! the disk thread.

use crate::{blocking, Job, Stats};
use std::sync::Arc;
use tokio::sync::mpsc;

/// Runs jobs until every sender is gone.
pub(crate) fn serve(mut rx: mpsc::Receiver<Job>, stats: Arc<Stats>) {
    while let Some(job) = rx.blocking_recv() {
        let result = blocking(&job.op).map_err(|e| job.op.error(e));
        stats.count(&result);
        // The caller may have gone away (a dropped request): fine.
        let _ = job.reply.send(result);
    }
}
