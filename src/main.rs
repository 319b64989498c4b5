//! `flowgate`: parses the command line, sets up logging, runs the library.

use clap::Parser;

/// `e` and its causes on one line, leaving out a cause whose text is already there (many
/// errors repeat their source's message in their own).
fn one_line(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if out.contains(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    flowgate::telemetry::init();
    let cli = flowgate::cli::Cli::parse();
    match flowgate::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flowgate: {}", one_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}
