//! Logging: `RUST_LOG` filters, `FLOWGATE_LOG_FORMAT=json` switches to JSON lines. Colour
//! only when standard error is a terminal and `NO_COLOR` is unset, so logs sent to a file or
//! a collector carry no escape codes.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber (once; later calls are ignored).
pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let json = std::env::var("FLOWGATE_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(crate::term::stderr_color())
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
