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

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};
    use serde_json::{Value, json};

    use super::*;

    /// Version 3; version 1 had `name`, version 2 renamed it `title`, and 3
    /// added `pages`. Its upgrade chains the steps.
    #[derive(Debug, Serialize, Deserialize)]
    struct Report {
        title: String,
        pages: u32,
    }

    impl Job for Report {
        const KIND: &'static str = "report";
        const VERSION: u32 = 3;
        fn upgrade(from: u32, mut old: Value) -> Result<Value, BoxError> {
            if from == 1 {
                old = json!({ "title": old["name"] });
            }
            if from <= 2 {
                old["pages"] = json!(1);
            }
            Ok(old)
        }
        async fn run(self, _ctx: JobContext) -> Result<(), BoxError> {
            Ok(())
        }
    }

    #[derive(Debug, Serialize, Deserialize)]
    struct Plain {
        n: u32,
    }

    impl Job for Plain {
        const KIND: &'static str = "plain";
        async fn run(self, _ctx: JobContext) -> Result<(), BoxError> {
            Ok(())
        }
    }

    fn unreadable<J: Job + std::fmt::Debug>(payload: &str, version: u32) -> String {
        match decode::<J>(payload, version) {
            Err(Undecodable::Unreadable(message)) => message,
            other => panic!("expected Unreadable, got {other:?}"),
        }
    }

    #[test]
    fn every_older_version_is_upgraded_by_the_kinds_chain() {
        let v1: Report = decode(r#"{"name":"Q3"}"#, 1).expect("v1");
        let v2: Report = decode(r#"{"title":"Q3"}"#, 2).expect("v2");
        let v3: Report = decode(r#"{"title":"Q3","pages":9}"#, 3).expect("v3");
        assert_eq!((v1.title.as_str(), v1.pages), ("Q3", 1));
        assert_eq!((v2.title.as_str(), v2.pages), ("Q3", 1));
        assert_eq!((v3.title.as_str(), v3.pages), ("Q3", 9));
    }

    #[test]
    fn a_newer_version_is_not_read_at_all() {
        assert!(matches!(
            decode::<Report>(r#"{"title":"Q3","pages":1}"#, 4),
            Err(Undecodable::Newer {
                stored: 4,
                current: 3
            })
        ));
    }

    #[test]
    fn what_cannot_be_read_names_kind_version_and_reason() {
        let m = unreadable::<Report>(r#"{"nom":"Q3"}"#, 1);
        assert!(
            m.contains("`report` (version 1), upgraded to version 3"),
            "{m}"
        );
        assert!(m.contains("invalid type: null"), "{m}");
        let m = unreadable::<Report>("{not json", 2);
        assert!(m.contains("(version 2) is not JSON"), "{m}");
        // A kind without an upgrade refuses every older version (here 0,
        // a row written by hand: stores refuse it on enqueue).
        let m = unreadable::<Plain>(r#"{"n":1}"#, 0);
        assert!(
            m.contains("cannot be upgraded to version 1: no upgrade from payload version 0 to 1"),
            "{m}"
        );
        let m = unreadable::<Plain>(r#"{"n":"x"}"#, 1);
        assert!(m.contains("`plain` (version 1) does not decode"), "{m}");
    }
}
