//! Job kinds the worker knows: how to decode each payload and which defaults
//! apply.

use std::collections::HashMap;

use futures::future::BoxFuture;

use super::{Job, JobContext, JobOptions};
use crate::BoxError;

type RunFn =
    fn(&str, JobContext) -> Result<BoxFuture<'static, Result<(), BoxError>>, serde_json::Error>;

pub(crate) struct Entry {
    pub(crate) options: JobOptions,
    run: RunFn,
}

impl Entry {
    /// Decodes the payload and starts the job; a payload that no longer
    /// matches the type is an error for this job only.
    pub(crate) fn start(
        &self,
        payload: &str,
        ctx: JobContext,
    ) -> Result<BoxFuture<'static, Result<(), BoxError>>, serde_json::Error> {
        (self.run)(payload, ctx)
    }
}

fn run_typed<J: Job>(
    payload: &str,
    ctx: JobContext,
) -> Result<BoxFuture<'static, Result<(), BoxError>>, serde_json::Error> {
    let job: J = serde_json::from_str(payload)?;
    Ok(Box::pin(job.run(ctx)))
}

/// The kinds a worker can run.
#[derive(Default)]
pub(crate) struct Registry {
    kinds: HashMap<&'static str, Entry>,
}

impl Registry {
    pub(crate) fn register<J: Job>(&mut self) -> bool {
        self.kinds
            .insert(
                J::KIND,
                Entry {
                    options: J::options(),
                    run: run_typed::<J>,
                },
            )
            .is_none()
    }

    pub(crate) fn get(&self, kind: &str) -> Option<&Entry> {
        self.kinds.get(kind)
    }

    /// Every kind with the queue its jobs go to by default.
    pub(crate) fn queues(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.kinds
            .iter()
            .map(|(kind, e)| (*kind, e.options.queue.as_str()))
    }

    /// The registered kinds, sorted (for a claim's filter).
    pub(crate) fn kinds(&self) -> Vec<String> {
        let mut kinds: Vec<String> = self.kinds.keys().map(|k| (*k).to_string()).collect();
        kinds.sort_unstable();
        kinds
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.kinds.is_empty()
    }
}
