//! Job kinds the worker knows: how to decode each payload and which defaults
//! apply.

use std::collections::HashMap;

use futures::future::BoxFuture;

use super::{Job, JobContext, JobOptions};
use crate::BoxError;
use crate::error::error_chain;

type RunFn =
    fn(&str, u32, JobContext) -> Result<BoxFuture<'static, Result<(), BoxError>>, Undecodable>;

/// Why a claimed job's payload could not become its typed job.
#[derive(Debug)]
pub(crate) enum Undecodable {
    /// Stored at a version newer than the registered type's: written by a
    /// newer release (a rolling deploy, this worker not replaced yet). A
    /// worker of that release can run it, so the attempt is retried.
    Newer {
        /// The version stored with the job.
        stored: u32,
        /// The registered type's `VERSION`.
        current: u32,
    },
    /// No version of this code can read it: the upgrade refused it, or it
    /// does not decode (after any upgrade). Retrying cannot help.
    Unreadable(String),
}

pub(crate) struct Entry {
    pub(crate) options: JobOptions,
    run: RunFn,
}

impl Entry {
    /// Decodes the payload (upgrading it from an older `version` first) and
    /// starts the job; a payload that cannot be read is an error for this
    /// job only.
    pub(crate) fn start(
        &self,
        payload: &str,
        version: u32,
        ctx: JobContext,
    ) -> Result<BoxFuture<'static, Result<(), BoxError>>, Undecodable> {
        (self.run)(payload, version, ctx)
    }
}

fn run_typed<J: Job>(
    payload: &str,
    version: u32,
    ctx: JobContext,
) -> Result<BoxFuture<'static, Result<(), BoxError>>, Undecodable> {
    Ok(Box::pin(decode::<J>(payload, version)?.run(ctx)))
}

/// The typed job in `payload`, stored at `version`. The current version
/// decodes straight from the text, as before versions existed: the hot path
/// pays nothing for them. Only an older one goes through a
/// [`serde_json::Value`] and [`Job::upgrade`].
fn decode<J: Job>(payload: &str, version: u32) -> Result<J, Undecodable> {
    let kind = J::KIND;
    let current = J::VERSION;
    if version == current {
        return serde_json::from_str(payload).map_err(|err| {
            Undecodable::Unreadable(format!(
                "the payload of job kind `{kind}` (version {version}) does not decode: {err}"
            ))
        });
    }
    if version > current {
        return Err(Undecodable::Newer {
            stored: version,
            current,
        });
    }
    let value: serde_json::Value = serde_json::from_str(payload).map_err(|err| {
        Undecodable::Unreadable(format!(
            "the payload of job kind `{kind}` (version {version}) is not JSON: {err}"
        ))
    })?;
    let upgraded = J::upgrade(version, value).map_err(|err| {
        Undecodable::Unreadable(format!(
            "the payload of job kind `{kind}` (version {version}) cannot be upgraded to \
             version {current}: {}",
            error_chain(err.as_ref())
        ))
    })?;
    serde_json::from_value(upgraded).map_err(|err| {
        Undecodable::Unreadable(format!(
            "the payload of job kind `{kind}` (version {version}), upgraded to version \
             {current}, does not decode: {err}"
        ))
    })
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
