//! `steward nodes`: the live processes that run workers on a store, each with
//! its queues and its host's services (a failing service's restarts and last
//! error included); `steward nodes show ID` for one of them.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Subcommand};
use serde::Serialize;
use steward::store::{NodeRecord, NodeService, Store};

use crate::job_view::format_time;
use crate::store_url::{self, DEFAULT_STORE, NotFound};

/// Options of `steward nodes`.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  steward nodes\n  steward nodes --json\n  steward nodes show web-1:4242:lq3k2p"
)]
pub struct NodesArgs {
    #[command(subcommand)]
    command: Option<NodesCommand>,
    #[command(flatten)]
    common: Common,
}

/// `steward nodes` subcommands.
#[derive(Subcommand)]
enum NodesCommand {
    /// One live node with its queues and services; exit 3 if there is none
    /// with this id (it stopped, or expired).
    #[command(after_help = "Example:\n  steward nodes show web-1:4242:lq3k2p --json")]
    Show(ShowArgs),
}

/// Options of `steward nodes show`.
#[derive(Args)]
struct ShowArgs {
    /// The node's id, as `steward nodes` lists it.
    id: String,
}

/// Options every `nodes` command has (before or after `show`).
#[derive(Args)]
struct Common {
    /// Print JSON: an array of nodes, or one node with `show`.
    #[arg(long, global = true, env = "STEWARD_JSON", value_parser = clap::builder::BoolishValueParser::new())]
    json: bool,
    /// The store: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB[?schema=NAME]`.
    #[arg(long, global = true, default_value = DEFAULT_STORE, env = "STEWARD_STORE")]
    store: String,
}

/// Runs `steward nodes` or one of its subcommands.
pub async fn run(args: NodesArgs) -> anyhow::Result<ExitCode> {
    // Never makes a database, like `jobs`: a mistyped path is "no database".
    let store = store_url::open_existing(&args.common.store).await?;
    let result = run_with(Arc::clone(&store), args).await;
    store.close().await;
    result
}

async fn run_with<S: Store>(store: Arc<S>, args: NodesArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        None => {
            let views: Vec<NodeView> = store
                .nodes()
                .await?
                .into_iter()
                .map(NodeView::from)
                .collect();
            if args.common.json {
                println!("{}", serde_json::to_string_pretty(&views)?);
            } else if views.is_empty() {
                println!("no live nodes");
            } else {
                let blocks: Vec<String> = views.iter().map(NodeView::text).collect();
                print!("{}", blocks.join("\n"));
            }
        }
        Some(NodesCommand::Show(show)) => {
            let Some(node) = store.node(&show.id).await? else {
                anyhow::bail!(NotFound(format!(
                    "no live node `{}`: it stopped, or expired (`steward nodes` lists the live ones)",
                    show.id
                )));
            };
            let view = NodeView::from(node);
            if args.common.json {
                println!("{}", serde_json::to_string_pretty(&view)?);
            } else {
                print!("{}", view.text());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One node as printed; the JSON keys are [`NodeRecord`]'s field names,
/// times in the CLI's one format.
#[derive(Serialize)]
struct NodeView {
    id: String,
    host: String,
    pid: u32,
    version: String,
    queues: Vec<QueueView>,
    running: u32,
    services: Vec<ServiceView>,
    started_at: String,
    last_seen: String,
    expires_at: String,
}

#[derive(Serialize)]
struct QueueView {
    name: String,
    concurrency: u32,
}

#[derive(Serialize)]
struct ServiceView {
    name: String,
    state: String,
    restarts: u32,
    last_error: Option<ErrorView>,
}

#[derive(Serialize)]
struct ErrorView {
    message: String,
    at: String,
}

impl From<NodeRecord> for NodeView {
    fn from(n: NodeRecord) -> NodeView {
        NodeView {
            id: n.info.id,
            host: n.info.host,
            pid: n.info.pid,
            version: n.info.version,
            queues: n
                .info
                .queues
                .into_iter()
                .map(|q| QueueView {
                    name: q.name,
                    concurrency: q.concurrency,
                })
                .collect(),
            running: n.info.running,
            services: n.info.services.into_iter().map(ServiceView::from).collect(),
            started_at: format_time(n.started_at),
            last_seen: format_time(n.last_seen),
            expires_at: format_time(n.expires_at),
        }
    }
}

impl From<NodeService> for ServiceView {
    fn from(s: NodeService) -> ServiceView {
        ServiceView {
            name: s.name,
            state: s.state,
            restarts: s.restarts,
            last_error: s.last_error.map(|e| ErrorView {
                message: e.message,
                at: format_time(e.at),
            }),
        }
    }
}

impl NodeView {
    /// The node for people: a line about the process, then one line per
    /// service, aligned, with its last error (on one line) if it had one.
    fn text(&self) -> String {
        let queues: Vec<String> = self
            .queues
            .iter()
            .map(|q| format!("{}={}", q.name, q.concurrency))
            .collect();
        let mut out = format!(
            "{}  host {}  pid {}  version {}\n  queues {}  running {}  started {}  last seen {}\n",
            self.id,
            self.host,
            self.pid,
            if self.version.is_empty() {
                "-"
            } else {
                &self.version
            },
            if queues.is_empty() {
                "-".to_string()
            } else {
                queues.join(",")
            },
            self.running,
            self.started_at,
            self.last_seen,
        );
        let width = self
            .services
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(0);
        let state_width = self
            .services
            .iter()
            .map(|s| s.state.len())
            .max()
            .unwrap_or(0);
        for s in &self.services {
            let _ = write!(
                out,
                "  {:width$}  {:state_width$}  restarts {}",
                s.name, s.state, s.restarts
            );
            if let Some(e) = &s.last_error {
                let message = e.message.replace(['\n', '\r'], " ");
                let _ = write!(out, "  last error {} {message}", e.at);
            }
            out.push('\n');
        }
        out
    }
}
