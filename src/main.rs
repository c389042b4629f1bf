//! The `soc2-operator` binary.
#![forbid(unsafe_code)]

use clap::Parser;
use soc2_operator::cli::{Cli, Command, LogFormat, RunArgs};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

fn init_logs(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crd) => {
            print!("{}", soc2_operator::api::crd_yaml());
            std::process::ExitCode::SUCCESS
        }
        Some(Command::Docs) => {
            print!("{}", soc2_operator::commands::check::catalog_markdown());
            std::process::ExitCode::SUCCESS
        }
        Some(Command::Version) => {
            println!("soc2-operator {}", soc2_operator::VERSION);
            std::process::ExitCode::SUCCESS
        }
        Some(Command::Run(args)) => run(cli.log_format, *args).await,
        Some(Command::Check(args)) => check(args).await,
        Some(Command::Report(args)) => report(args).await,
        None => run(cli.log_format, RunArgs::default()).await,
    }
}

async fn run(format: LogFormat, args: RunArgs) -> std::process::ExitCode {
    init_logs(format);
    let client = match kube::Config::infer().await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "no Kubernetes client configuration (KUBECONFIG or in-cluster)");
            return std::process::ExitCode::from(2);
        }
    };
    let shutdown = CancellationToken::new();
    let signals = shutdown.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        signals.cancel();
    });
    if args.exit_with_parent {
        let parent = std::os::unix::process::parent_id();
        let token = shutdown.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                if std::os::unix::process::parent_id() != parent {
                    tracing::info!("parent process exited; shutting down");
                    token.cancel();
                    return;
                }
            }
        });
    }
    match soc2_operator::controller::run(client, args.config(), shutdown, None).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "operator stopped");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn check(args: soc2_operator::cli::CheckArgs) -> std::process::ExitCode {
    use soc2_operator::commands::check;
    use std::io::IsTerminal;
    let mut errors = Vec::new();
    let control_inputs = match &args.controls {
        None => check::BUILTIN_CONTROLS
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect(),
        Some(p) => match check::read_inputs(p) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("error: {e}");
                return std::process::ExitCode::from(2);
            }
        },
    };
    let (controls, errs) = check::controls_from(&control_inputs);
    errors.extend(errs);
    let snapshot = match &args.manifests {
        Some(p) => match check::read_inputs(p) {
            Ok(inputs) => {
                let (s, errs) = check::snapshot_from(&inputs, &args.namespace);
                errors.extend(errs);
                s
            }
            Err(e) => {
                eprintln!("error: {e}");
                return std::process::ExitCode::from(2);
            }
        },
        None => {
            let client = match kube::Client::try_default().await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!(
                        "error: no cluster to check (give --manifests, or a kubeconfig): {e}"
                    );
                    return std::process::ExitCode::from(2);
                }
            };
            match check::snapshot_from_cluster(&client, &controls).await {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("error: reading the cluster: {e}");
                    return std::process::ExitCode::from(2);
                }
            }
        }
    };
    let results = check::run(controls, &snapshot, jiff::Timestamp::now());
    let color = args.output == check::Output::Table && std::io::stdout().is_terminal();
    let gate = args.gate();
    print!(
        "{}",
        check::render(&results, &errors, args.output, color, gate)
    );
    for e in &errors {
        eprintln!("error: {e}");
    }
    std::process::ExitCode::from(check::exit_code(&results, &errors, gate))
}

async fn report(args: soc2_operator::cli::ReportArgs) -> std::process::ExitCode {
    use k8s_openapi::api::core::v1::Namespace;
    use soc2_operator::api::Control;
    use soc2_operator::commands::report;
    let fail = |msg: String| {
        eprintln!("error: {msg}");
        std::process::ExitCode::from(2)
    };
    let client = match kube::Client::try_default().await {
        Ok(c) => c,
        Err(e) => return fail(format!("no cluster (kubeconfig or in-cluster): {e}")),
    };
    let controls = match kube::Api::<Control>::all(client.clone())
        .list(&Default::default())
        .await
    {
        Ok(l) => l.items,
        Err(e) => return fail(format!("listing Controls: {e}")),
    };
    let cluster_uid = match kube::Api::<Namespace>::all(client).get("kube-system").await {
        Ok(ns) => ns.metadata.uid.unwrap_or_default(),
        Err(e) => return fail(format!("reading the kube-system namespace: {e}")),
    };
    let period = match &args.prometheus {
        None => None,
        Some(url) => {
            let (url, period) = (url.clone(), args.period.clone());
            match tokio::task::spawn_blocking(move || report::period_stats(&url, &period)).await {
                Ok(Ok(stats)) => Some((args.period.clone(), stats)),
                Ok(Err(e)) => return fail(e),
                Err(e) => return fail(e.to_string()),
            }
        }
    };
    let input = report::ReportInput {
        controls,
        cluster_uid,
        generated: jiff::Timestamp::now(),
        period,
    };
    print!("{}", report::render(&input, args.format));
    std::process::ExitCode::SUCCESS
}
