//! Settlement: the payment service closes, per event, what its captures
//! and refunds since the last batch come to.
//!
//! A round reads up to `max_entries` unsettled ledger entries (captures and
//! refunds no batch took yet), groups them by event and asks the repository
//! to close one batch per event. Closing is one transaction that takes
//! exactly those entries; an entry another closer took first makes that
//! batch a `Conflict` and nothing of it is written, so two workers, a
//! repeated round or a crash mid-round neither lose an entry nor count one
//! twice. The worker runs a round every `settlement.interval_ms`; an
//! operator (or a harness that audits) closes everything now through
//! `POST /internal/settlements/close`.
//!
//! Layer: a use case of the payment service; imports the domain's
//! payment repository port and the clock, `config` and `worker`; no HTTP,
//! not its parent module.

use std::collections::BTreeMap;
use std::sync::Arc;
use ticketing_domain::ports::{Clock, PaymentRepository, RepoError};
use ticketing_domain::{EventId, SettlementBatch};
use tokio_util::sync::CancellationToken;

/// Rounds one "close everything now" may run before it reports what is
/// left (entries keep arriving under load).
pub const CLOSE_ALL_MAX_ROUNDS: usize = 64;

/// One round: a batch per event over up to `max_entries` unsettled entries.
/// Returns the batches it closed; a batch that lost a race is skipped (its
/// entries went to the winner's batch or wait for the next round).
pub async fn settle_round(
    repo: &dyn PaymentRepository,
    clock: &dyn Clock,
    max_entries: usize,
) -> Result<Vec<SettlementBatch>, RepoError> {
    let open = repo.unsettled(max_entries).await?;
    let mut by_event: BTreeMap<EventId, Vec<u64>> = BTreeMap::new();
    for entry in open {
        by_event.entry(entry.event_id).or_default().push(entry.seq);
    }
    let mut closed = Vec::with_capacity(by_event.len());
    for (event_id, seqs) in by_event {
        match repo.close_batch(&event_id, &seqs, clock.now_ms()).await {
            Ok(batch) => closed.push(batch),
            Err(RepoError::Conflict) => {
                tracing::info!(%event_id, "settlement batch lost a race; next round settles the rest");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(closed)
}

/// Rounds until nothing is left to settle (at most
/// [`CLOSE_ALL_MAX_ROUNDS`]); returns every batch closed and whether the
/// ledger was found fully settled.
pub async fn settle_all(
    repo: &dyn PaymentRepository,
    clock: &dyn Clock,
    max_entries: usize,
) -> Result<(Vec<SettlementBatch>, bool), RepoError> {
    let mut closed = Vec::new();
    for _ in 0..CLOSE_ALL_MAX_ROUNDS {
        let round = settle_round(repo, clock, max_entries).await?;
        if round.is_empty() && repo.unsettled(1).await?.is_empty() {
            return Ok((closed, true));
        }
        closed.extend(round);
    }
    Ok((closed, false))
}

/// The worker: a round every `interval_ms` until shutdown.
pub async fn run_worker(
    repo: Arc<dyn PaymentRepository>,
    clock: Arc<dyn Clock>,
    settings: crate::config::SettlementSettings,
    shutdown: CancellationToken,
) {
    while crate::worker::pause(settings.interval_ms, &shutdown).await {
        let round = settle_round(repo.as_ref(), clock.as_ref(), settings.max_entries);
        match round.await {
            Ok(closed) if closed.is_empty() => {}
            Ok(closed) => tracing::info!(batches = closed.len(), "settlement batches closed"),
            Err(e) => tracing::warn!(error = %e, "settlement round failed; retried next round"),
        }
    }
}
