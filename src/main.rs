use clap::Parser;

use cramp_cds::config::{Cli, Command, ServeSettings};
use cramp_cds::startup::Application;

fn main() -> std::process::ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Evaluate(args)) => cramp_cds::cli::evaluate(&args).map(|out| print!("{out}")),
        Some(Command::Serve(settings)) => serve(settings),
        None => serve(cli.serve),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("cramp-cds: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn serve(settings: ServeSettings) -> Result<(), String> {
    actix_web::rt::System::new().block_on(async {
        let app = Application::build(settings)?;
        app.run_until_stopped().await.map_err(|e| e.to_string())
    })
}
