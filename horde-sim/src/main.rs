//! `horde-sim --config horde.toml --days 7 --seed 1 --out report/`: simulates the economy and
//! writes a report; exits with status 1 if an invariant failed.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use horde_core::HordeConfig;

/// Simulates a horde's economy with honest workers, farmers and requesters.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// The server's configuration file (its `[horde]` table is used), or a file of the
    /// `[horde]` settings alone. Default: the default rules.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Simulated days.
    #[arg(long, default_value_t = 7.0)]
    days: f64,
    /// Seed of the simulation's randomness.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// How busy arrivals keep the honest workers (1.0: as fast as they serve).
    #[arg(long, default_value_t = 0.8)]
    load: f64,
    /// The longest wait allowed, seconds.
    #[arg(long, default_value_t = 600)]
    wait_bound: u64,
    /// Where the report goes.
    #[arg(long, default_value = "report")]
    out: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let config = match args.config.as_deref().map(load) {
        None => HordeConfig::default(),
        Some(Ok(config)) => config,
        Some(Err(e)) => {
            eprintln!("horde-sim: {e}");
            return ExitCode::from(2);
        }
    };
    let days_ok = args.days > 0.0 && args.days <= 365.0;
    let load_ok = args.load > 0.0 && args.load <= 10.0;
    if !days_ok || !load_ok {
        eprintln!("horde-sim: --days must be in (0, 365] and --load in (0, 10]");
        return ExitCode::from(2);
    }
    let seconds = (args.days * 86_400.0).round() as u64;
    let mut world = horde_sim::World::new(config, args.load, args.seed);
    let step = 86_400 / 4;
    let mut done = 0;
    while done < seconds {
        let chunk = step.min(seconds - done);
        world.run_chunk(chunk);
        done += chunk;
        eprintln!(
            "horde-sim: {:.2} of {:.2} days simulated",
            done as f64 / 86_400.0,
            args.days
        );
    }
    world.finish();
    let report = horde_sim::Report::of(&world, args.seed, args.load, args.wait_bound);
    if let Err(e) = report.write(&args.out) {
        eprintln!("horde-sim: cannot write {}: {e}", args.out.display());
        return ExitCode::from(2);
    }
    println!("{}", report.markdown());
    if report.passed() {
        ExitCode::SUCCESS
    } else {
        eprintln!("horde-sim: an invariant failed (see the report)");
        ExitCode::FAILURE
    }
}

/// The `[horde]` table of a server configuration file, or the file itself as one.
fn load(path: &std::path::Path) -> Result<HordeConfig, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let value: toml::Table =
        toml::from_str(&text).map_err(|e| format!("{} is not TOML: {e}", path.display()))?;
    let table = match value.get("horde") {
        Some(toml::Value::Table(horde)) => horde.clone(),
        _ => value,
    };
    table
        .try_into()
        .map_err(|e| format!("{}: {e}", path.display()))
}
