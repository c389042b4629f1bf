//! The `soc2-operator` binary.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};

/// SOC 2 controls as code for Kubernetes.
#[derive(Parser, Debug)]
#[command(name = "soc2-operator", version = soc2_operator::VERSION)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the Control CustomResourceDefinition as YAML.
    Crd,
    /// Print the version.
    Version,
}

fn main() {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Crd) => print!("{}", soc2_operator::api::crd_yaml()),
        Some(Command::Version) | None => println!("soc2-operator {}", soc2_operator::VERSION),
    }
}
