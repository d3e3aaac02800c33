//! The goose scenarios: `rush`, `purchase`, `browse`, `sse`, the `mix`
//! that weights them, and `onsale` (a flash sale, on the open model).
//!
//! Each transaction is a closure over the run's [`RunCtx`] (goose passes
//! only the user), so several runs can share one process (tests do); it
//! hands the scenario the [`shared::Shared`] part and the scenario's own
//! context. Every request goes through [`call`]: a named goose request (so per-endpoint
//! figures aggregate under a path template), classified as ok / expected /
//! error, and recorded in our own histograms with goose's
//! coordinated-omission cadence. Every loop in a transaction is bounded by
//! the run's deadline and a count.
//!
//! Layer: this file assembles the scenarios (imports each); a scenario
//! imports only `shared` (and `record`, `client`), never this file or
//! another scenario.

pub mod after_sale;
pub mod browse;
pub mod holds;
pub mod onsale;
pub mod purchase;
pub mod rush;
pub mod scalpers;
pub mod shared;
pub mod sse;
pub mod waiting;

use crate::client::Api;
use goose::prelude::*;
use shared::{Shared, UserState};
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub use shared::{Answer, Req, available_seats, call, pause, token};

/// Which scenario(s) a run drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScenarioName {
    Rush,
    Purchase,
    Browse,
    Sse,
    Mix,
    /// Benchmark only (not in the mix): hold one seat, release it, repeat.
    Holds,
    /// A flash sale: many more arrivals than seats, on the open model.
    Onsale,
}

impl std::fmt::Display for ScenarioName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = match self {
            ScenarioName::Rush => "rush",
            ScenarioName::Purchase => "purchase",
            ScenarioName::Browse => "browse",
            ScenarioName::Sse => "sse",
            ScenarioName::Mix => "mix",
            ScenarioName::Holds => "holds",
            ScenarioName::Onsale => "onsale",
        };
        f.write_str(s)
    }
}

/// User weights of the mix (goose assigns users to scenarios by weight).
pub const MIX_WEIGHTS: [(ScenarioName, usize); 4] = [
    (ScenarioName::Browse, 5),
    (ScenarioName::Purchase, 3),
    (ScenarioName::Rush, 1),
    (ScenarioName::Sse, 1),
];

/// One run: the shared state and each scenario's own context (`None`
/// when the run does not drive it). Reads as its [`Shared`] part.
#[derive(Debug)]
pub struct RunCtx {
    pub shared: Shared,
    pub rush: Option<rush::RushCtx>,
    pub purchase: Option<purchase::PurchaseCtx>,
    pub browse: Option<browse::BrowseCtx>,
    pub sse: Option<sse::SseCtx>,
    pub holds: Option<holds::HoldsCtx>,
    pub onsale: Option<onsale::OnsaleCtx>,
    /// The onsale's waiting room (`--waiting-room`).
    pub waiting: Option<waiting::WaitingCtx>,
}

impl std::ops::Deref for RunCtx {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.shared
    }
}

/// The SSE scenario's writer (holds and releases seats so watchers have
/// changes to see), when the run drives that scenario.
pub async fn run_sse_writer(ctx: Arc<RunCtx>, api: Api) {
    if let Some(s) = &ctx.sse {
        sse::run_writer(&ctx.shared, s, api).await;
    }
}

impl RunCtx {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        started: tokio::time::Instant,
        seed: u64,
        deadline: tokio::time::Instant,
        rush: Option<rush::RushCtx>,
        purchase: Option<purchase::PurchaseCtx>,
        browse: browse::BrowseCtx,
        sse: Option<sse::SseCtx>,
        holds: Option<holds::HoldsCtx>,
        truth: crate::audit::ClientTruth,
    ) -> RunCtx {
        RunCtx {
            shared: Shared::new(started, seed, deadline, truth),
            rush,
            purchase,
            browse: Some(browse),
            sse,
            holds,
            onsale: None,
            waiting: None,
        }
    }
}

/// The on-start transaction every scenario shares: installs the user's
/// state, with room for what its scenario keeps (`T`).
fn on_start<T: Clone + Send + Sync + 'static>(
    ctx: Arc<RunCtx>,
    scenario: ScenarioName,
) -> Transaction {
    Transaction::new(Arc::new(move |user: &mut GooseUser| {
        let ctx = ctx.clone();
        Box::pin(async move {
            let (number, rng) = ctx.user_rng();
            if scenario == ScenarioName::Rush
                && let Some(r) = &ctx.rush
            {
                r.users.fetch_add(1, Ordering::Relaxed);
            }
            user.set_session_data(UserState::<T> {
                number,
                rng,
                own: None,
            });
            Ok(())
        })
    }))
    .set_on_start()
    .set_name("start")
}

/// Wraps a scenario's transaction `f(shared, own ctx, user)` as a goose
/// transaction; it does nothing when the run has no context for it.
macro_rules! tx {
    ($ctx:expr, $name:expr, $part:ident, $f:path) => {{
        let ctx = $ctx.clone();
        Transaction::new(Arc::new(move |user: &mut GooseUser| {
            let ctx = ctx.clone();
            Box::pin(async move {
                match ctx.$part.as_ref() {
                    Some(own) => $f(&ctx.shared, own, user).await,
                    None => Ok(()),
                }
            })
        }))
        .set_name($name)
    }};
}

/// The goose scenarios for `name` (one, or the weighted mix); with an open
/// run, one goose scenario whose users take scheduled iterations.
pub fn scenarios(ctx: &Arc<RunCtx>, name: ScenarioName) -> anyhow::Result<Vec<Scenario>> {
    if ctx.open.is_some() {
        return Ok(vec![open_scenario(ctx, name)?]);
    }
    let one = |n: ScenarioName, weight: usize| -> anyhow::Result<Scenario> {
        let (start, tx) = match n {
            ScenarioName::Rush => (
                on_start::<rush::RushUser>(ctx.clone(), n),
                tx!(ctx, "rush", rush, rush::attempt),
            ),
            ScenarioName::Purchase => (
                on_start::<()>(ctx.clone(), n),
                tx!(ctx, "purchase", purchase, purchase::purchase),
            ),
            ScenarioName::Browse => (
                on_start::<()>(ctx.clone(), n),
                tx!(ctx, "browse", browse, browse::browse),
            ),
            ScenarioName::Sse => (
                on_start::<sse::Watcher>(ctx.clone(), n),
                tx!(ctx, "watch", sse, sse::watch),
            ),
            ScenarioName::Holds => (
                on_start::<()>(ctx.clone(), n),
                tx!(ctx, "hold-release", holds, holds::hold_release),
            ),
            ScenarioName::Onsale => (
                on_start::<()>(ctx.clone(), n),
                tx!(ctx, "person", onsale, onsale_person),
            ),
            ScenarioName::Mix => anyhow::bail!("mix is not a scenario of its own"),
        };
        Ok(Scenario::new(&n.to_string())
            .set_weight(weight)
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .register_transaction(start)
            .register_transaction(tx))
    };
    match name {
        ScenarioName::Mix => MIX_WEIGHTS.iter().map(|(n, w)| one(*n, *w)).collect(),
        n => Ok(vec![one(n, 1)?]),
    }
}

/// The open model's goose scenario: each user takes the next scheduled
/// iteration, sleeps until its time, runs it as a new person (fresh state,
/// a random source from the run seed and the iteration's index) of the
/// scenario `name` names (in the mix, one drawn by weight), until the
/// schedule is used up (the run sets one goose iteration per user).
fn open_scenario(ctx: &Arc<RunCtx>, name: ScenarioName) -> anyhow::Result<Scenario> {
    if name == ScenarioName::Mix && MIX_WEIGHTS.is_empty() {
        anyhow::bail!("the mix has no scenario");
    }
    let ctx = ctx.clone();
    let tx = Transaction::new(Arc::new(move |user: &mut GooseUser| {
        let ctx = ctx.clone();
        Box::pin(async move {
            let Some(open) = ctx.open.clone() else {
                return Ok(());
            };
            let me = user.weighted_users_index;
            open.arrive().await;
            // Bounded: the schedule is finite, every resume is one step of
            // a person, and waits end by time.
            loop {
                match open.next() {
                    crate::open::Next::Run { index, at } => {
                        tokio::time::sleep_until(at).await;
                        open.begin(me, at);
                        let which = pick(name, &ctx, index);
                        if let Err(e) = iteration(&ctx, which, index, user).await {
                            tracing::debug!("open iteration {index} ({which}): {e:?}");
                        }
                        open.finish(me, at);
                    }
                    crate::open::Next::Resume { key, at } => {
                        tokio::time::sleep_until(at).await;
                        open.begin_resume(me, at);
                        if let Err(e) = resume(&ctx, key, user).await {
                            tracing::debug!("open resume {key}: {e:?}");
                        }
                        open.finish_resume(me);
                    }
                    crate::open::Next::Wait { until } => open.wait(until).await,
                    crate::open::Next::Done => break,
                }
            }
            Ok(())
        })
    }))
    .set_name("iteration");
    Ok(Scenario::new("open").register_transaction(tx))
}

/// The scenario iteration `index` of an open run is (the mix: by weight).
fn pick(name: ScenarioName, ctx: &RunCtx, index: u64) -> ScenarioName {
    use rand::Rng;
    if name != ScenarioName::Mix {
        return name;
    }
    let total: usize = MIX_WEIGHTS.iter().map(|(_, w)| w).sum();
    let mut roll = ctx.iteration_rng(index ^ 0x5EED).random_range(0..total);
    for (n, w) in MIX_WEIGHTS {
        if roll < w {
            return n;
        }
        roll -= w;
    }
    MIX_WEIGHTS[0].0
}

/// Installs a new person's state (`T` of its scenario) on the goose user.
fn person<T: Clone + Send + Sync + 'static>(ctx: &RunCtx, user: &mut GooseUser, index: u64) {
    shared::new_customer(ctx, user);
    user.set_session_data(UserState::<T> {
        number: index,
        rng: ctx.iteration_rng(index),
        own: None,
    });
}

/// One open-model iteration of scenario `n`.
async fn iteration(
    ctx: &RunCtx,
    n: ScenarioName,
    index: u64,
    user: &mut GooseUser,
) -> TransactionResult {
    let s = &ctx.shared;
    match n {
        ScenarioName::Rush => {
            person::<rush::RushUser>(ctx, user, index);
            match &ctx.rush {
                Some(r) => {
                    r.users.fetch_add(1, Ordering::Relaxed);
                    rush::attempt(s, r, user).await
                }
                None => Ok(()),
            }
        }
        ScenarioName::Purchase => {
            person::<()>(ctx, user, index);
            match &ctx.purchase {
                Some(p) => purchase::purchase(s, p, user).await,
                None => Ok(()),
            }
        }
        ScenarioName::Browse => {
            person::<()>(ctx, user, index);
            match &ctx.browse {
                Some(b) => browse::browse(s, b, user).await,
                None => Ok(()),
            }
        }
        ScenarioName::Sse => {
            person::<sse::Watcher>(ctx, user, index);
            match &ctx.sse {
                Some(w) => sse::watch(s, w, user).await,
                None => Ok(()),
            }
        }
        ScenarioName::Holds => {
            person::<()>(ctx, user, index);
            match &ctx.holds {
                Some(h) => holds::hold_release(s, h, user).await,
                None => Ok(()),
            }
        }
        ScenarioName::Onsale => {
            person::<()>(ctx, user, index);
            match (&ctx.onsale, &ctx.waiting) {
                (Some(o), Some(w)) => {
                    o.arrive();
                    join_as(s, o, user, index);
                    waiting::join(s, w, user, index).await
                }
                (Some(o), None) => onsale_person(s, o, user).await,
                _ => Ok(()),
            }
        }
        ScenarioName::Mix => Ok(()),
    }
}

/// One onsale arrival without a waiting room: a person, from arrival to a
/// terminal order (or giving up), or a scalper bot.
async fn onsale_person(
    ctx: &Shared,
    o: &onsale::OnsaleCtx,
    user: &mut GooseUser,
) -> TransactionResult {
    let arrived = o.arrive();
    match o.bot_account(user) {
        Some(account) => scalpers::scalp(ctx, o, user, account, None).await,
        None => onsale::shop(ctx, o, user, arrived, None).await,
    }
}

/// The customer arrival `index` joins the waiting room as: its bot
/// account's, or its own (the admission token names it, so the goose user
/// that later shops for the arrival must act for the same customer).
fn join_as(ctx: &Shared, o: &onsale::OnsaleCtx, user: &mut GooseUser, index: u64) {
    match o.bot_account(user) {
        Some(account) => shared::act_for(ctx, user, scalpers::account_name(ctx.seed, account)),
        None => shared::act_as_arrival(ctx, user, index),
    }
}

/// A step an iteration left for later: a waiting visitor's poll, and,
/// once admitted, the person's shopping (with the admission token).
async fn resume(ctx: &RunCtx, key: u64, user: &mut GooseUser) -> TransactionResult {
    let (Some(o), Some(w)) = (&ctx.onsale, &ctx.waiting) else {
        return Ok(());
    };
    let s = &ctx.shared;
    if let waiting::Polled::Admitted {
        arrival,
        joined,
        token,
    } = waiting::poll(s, w, user, key).await?
    {
        person::<()>(ctx, user, arrival);
        join_as(s, o, user, arrival);
        match o.bot_account(user) {
            Some(account) => scalpers::scalp(s, o, user, account, Some(&token)).await?,
            None => onsale::shop(s, o, user, joined, Some(&token)).await?,
        }
        if o.saw_sold_out() {
            w.mark_sold_out();
        }
    }
    Ok(())
}
