use clap::Parser;

use cramp_cds::config::{Cli, Command, ServeSettings};
use cramp_cds::startup::Application;
use cramp_cds::telemetry::{self, LogFormat};

/// A hook call allocates and frees thousands of small objects; glibc's
/// malloc spent a fifth of request parsing consolidating its free lists.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let log_format = match &cli.command {
        Some(Command::Serve(settings)) => settings.log_format,
        Some(Command::Evaluate(_)) => LogFormat::Text,
        None => cli.serve.log_format,
    };
    telemetry::init_logging(log_format);
    let result = match cli.command {
        Some(Command::Evaluate(args)) => cramp_cds::cli::evaluate(&args)
            .map(|out| print!("{out}"))
            .map_err(Into::into),
        Some(Command::Serve(settings)) => serve(settings),
        None => serve(cli.serve),
    };
    // Log lines are written in blocks: the last ones before the exit status.
    log::logger().flush();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("cramp-cds: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn serve(settings: ServeSettings) -> Result<(), Box<dyn std::error::Error>> {
    actix_web::rt::System::new().block_on(async {
        let app = Application::build(settings).await?;
        app.run_until_stopped().await?;
        Ok(())
    })
}
