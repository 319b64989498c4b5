//! Workflow runtime settings from the command line, each with an environment variable
//! (turned into options by `runtime::config`).

use clap::Args;

/// Flags of the workflow runtime (flattened into `flowgate serve`).
#[derive(Debug, Clone, Args)]
pub struct RuntimeConfig {
    /// Executor id of this process; keep it stable across restarts to resume its own runs
    /// at once (default: random per start, so silent executors are taken over instead).
    #[arg(long, env = "FLOWGATE_EXECUTOR_ID")]
    pub executor_id: Option<String>,

    /// Seconds between executor heartbeats (and checks for runs of silent executors).
    #[arg(long, env = "FLOWGATE_EXECUTOR_HEARTBEAT", default_value_t = 5.0)]
    pub executor_heartbeat: f64,

    /// Seconds of silence after which an executor's runs are taken over.
    #[arg(long, env = "FLOWGATE_EXECUTOR_DEAD_AFTER", default_value_t = 30.0)]
    pub executor_dead_after: f64,

    /// Starts of one run before it is marked ERROR as crashing.
    #[arg(long, env = "FLOWGATE_MAX_ATTEMPTS", default_value_t = 10)]
    pub max_attempts: i32,

    /// Seconds between safety re-checks of the queues (wake-ups come from notes).
    #[arg(long, env = "FLOWGATE_QUEUE_RECHECK", default_value_t = 30.0)]
    pub queue_recheck: f64,

    /// Threads for CPU-heavy steps (default: the number of cores).
    #[arg(long, env = "FLOWGATE_BLOCKING_THREADS")]
    pub blocking_threads: Option<usize>,

    /// Queues served, `name:per_process[:global]`, comma-separated or repeated; each
    /// replaces the registered queue of that name (`default` is `default:8` unless set).
    #[arg(long = "queue", env = "FLOWGATE_QUEUES", value_delimiter = ',')]
    pub queues: Vec<String>,

    /// Also register the hidden workflows the integration tests drive.
    #[arg(long, env = "FLOWGATE_TEST_WORKFLOWS", hide = true)]
    pub test_workflows: bool,
}

impl Default for RuntimeConfig {
    /// The flags' defaults, as `flowgate serve` has them with nothing set.
    fn default() -> Self {
        super::clap_defaults()
    }
}
