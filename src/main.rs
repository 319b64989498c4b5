//! `flowgate`: parses the command line, sets up logging, runs the library.

use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    flowgate::telemetry::init();
    let cli = flowgate::cli::Cli::parse();
    match flowgate::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flowgate: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
