//! The worker's readiness: it is ready while it can both claim jobs and
//! write their outcomes. Either alone is not enough for `/readyz`: a worker
//! whose outcomes pile up unwritten runs jobs whose results may be lost.

use std::sync::atomic::{AtomicBool, Ordering};

use crate::Context;

pub(crate) struct Readiness {
    ctx: Context,
    claims: AtomicBool,
    outcomes: AtomicBool,
}

impl Readiness {
    pub(crate) fn new(ctx: &Context) -> Self {
        Readiness {
            ctx: ctx.clone(),
            claims: AtomicBool::new(true),
            outcomes: AtomicBool::new(true),
        }
    }

    /// Whether the last claim succeeded.
    pub(crate) fn claims(&self, ok: bool) {
        if self.claims.swap(ok, Ordering::Relaxed) != ok || ok {
            self.publish();
        }
    }

    /// Whether the last outcome write succeeded. Called per batch, so it
    /// publishes only on a change.
    pub(crate) fn outcomes(&self, ok: bool) {
        if self.outcomes.swap(ok, Ordering::Relaxed) != ok {
            self.publish();
        }
    }

    fn publish(&self) {
        let ready = self.claims.load(Ordering::Relaxed) && self.outcomes.load(Ordering::Relaxed);
        self.ctx.set_ready(ready);
    }
}
