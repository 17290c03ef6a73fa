//! The `mapguard` command: parse, validate, run, and map errors to exit codes (2 for bad
//! input, as one line on stderr).

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::Parser;
use clap::error::ErrorKind;
use mapguard_cli::bench::noise::CpuSnapshot;
use mapguard_cli::bench::{self, BenchConfig, alloc::CountingAlloc, report};
use mapguard_cli::cli::{Cli, Command};

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

const BAD_INPUT: u8 = 2;

/// Share of the machine's CPU that other processes may take before the run is called noisy.
const NOISY_SHARE: f64 = 0.10;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            e.exit()
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => e.exit(),
        Err(e) => {
            let text = e.render().to_string();
            eprintln!("{}", text.lines().next().unwrap_or("error: bad arguments"));
            return ExitCode::from(BAD_INPUT);
        }
    };
    let Command::Bench(args) = cli.command;
    let config = match args.to_config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(BAD_INPUT);
        }
    };
    match run_bench(&config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_bench(config: &BenchConfig) -> Result<()> {
    let started = Instant::now();
    let cpu_before = CpuSnapshot::now();
    let results = bench::run(config, |p| {
        eprintln!(
            "[{:>3}/{}] {:<10} {:<10} {:>2} threads  rep {}  {:>7.1} Mops/s",
            p.done,
            p.total,
            p.workload.name,
            p.map.name(),
            p.threads,
            p.repetition + 1,
            p.sample.mops()
        );
    });
    let foreign = cpu_before
        .zip(CpuSnapshot::now())
        .and_then(|(before, after)| before.foreign_share(&after));
    println!("{}", report::throughput_table(&results));
    println!();
    println!("{}", report::memory_table(&results));
    println!();
    println!(
        "{} cells, {} sample(s) each ({} for the hashbrown baseline), in {:.1} s. Mops/s is the \
         median sample; latency times 1 op in {} and includes the clock's own ~{} ns. Only \
         ratios within one run compare.",
        results.len(),
        config.repeat,
        config.repeat * bench::run::BASELINE_SAMPLES_PER_REPETITION,
        started.elapsed().as_secs_f64(),
        bench::run::SAMPLE_EVERY,
        bench::run::clock_overhead_ns(),
    );
    if let Some(share) = foreign {
        let verdict = if share > NOISY_SHARE {
            "numbers are unreliable; rerun on a quiet machine"
        } else {
            "quiet enough"
        };
        println!(
            "Other processes used {:.0} % of the machine's CPU during the run: {verdict}.",
            100.0 * share
        );
    }
    Ok(())
}
