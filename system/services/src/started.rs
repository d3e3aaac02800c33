//! What a service's `start` function returns: its routers and its named
//! background workers, not yet running. Every assembly — the embedded
//! system, one service per process, the simulator's hosts — calls the same
//! `start` and decides only where the routers listen and where the workers
//! are spawned; the bug zoo swaps one worker by name.
//!
//! Layer: plumbing (beside `http` and `worker`); imports no module of this
//! crate.

use axum::Router;
use std::future::Future;
use std::pin::Pin;

/// A background loop of a service; it ends when the service's shutdown
/// token is cancelled.
pub type WorkerTask = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// A background loop and its name (unique within its service).
pub struct NamedWorker {
    pub name: &'static str,
    pub task: WorkerTask,
}

impl NamedWorker {
    pub fn new(name: &'static str, task: impl Future<Output = ()> + Send + 'static) -> Self {
        Self {
            name,
            task: Box::pin(task),
        }
    }
}

impl std::fmt::Debug for NamedWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedWorker")
            .field("name", &self.name)
            .finish()
    }
}

/// A service, built but not running.
#[derive(Debug)]
pub struct Started {
    /// The service's name (`catalog`, `reservation`, `order`, `payment`).
    pub service: &'static str,
    /// Routes the gateway sends public traffic to (may be empty).
    pub public: Router,
    /// `/internal/...` routes: never on a public listener.
    pub internal: Router,
    /// Background loops, in the order they are to be spawned.
    pub workers: Vec<NamedWorker>,
}

impl Started {
    /// Public and internal routes together: one service on its own port,
    /// which only the gateway (public prefixes) and the internal network reach.
    pub fn all_routes(&self) -> Router {
        self.public.clone().merge(self.internal.clone())
    }

    /// The names of the workers, in spawn order.
    pub fn worker_names(&self) -> Vec<&'static str> {
        self.workers.iter().map(|w| w.name).collect()
    }

    /// Replaces the worker called `name` (the bug zoo's seam). Fails if the
    /// service has no such worker, so a renamed worker cannot silently
    /// leave the zoo testing the correct code.
    pub fn replace_worker(
        &mut self,
        name: &str,
        task: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let names = self.worker_names();
        let w = self
            .workers
            .iter_mut()
            .find(|w| w.name == name)
            .ok_or_else(|| {
                anyhow::anyhow!("{} has no worker {name} (it has {names:?})", self.service)
            })?;
        w.task = Box::pin(task);
        Ok(())
    }
}
