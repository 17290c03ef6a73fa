//! The `mapguard` command: parse, validate, run, and map errors to exit codes (2 for bad
//! input, as one line on stderr).

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Parser;
use clap::error::ErrorKind;
use indicatif::{ProgressBar, ProgressStyle};
use mapguard_cli::bench::compare::{self, Baseline};
use mapguard_cli::bench::export::{RunInfo, to_csv, to_json};
use mapguard_cli::bench::noise::{CpuSnapshot, TransferLog};
use mapguard_cli::bench::output::Outputs;
use mapguard_cli::bench::run::Progress;
use mapguard_cli::bench::{self, BenchConfig, alloc::CountingAlloc, html, report};
use mapguard_cli::cli::{BenchArgs, Cli, Command};
use mapguard_cli::demo::{self, Outcome};

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
    match cli.command {
        Command::Bench(args) => bench_command(&args),
        Command::Demo(args) => match args.scenario {
            None => {
                print!("{}", demo::listing());
                ExitCode::SUCCESS
            }
            Some(scenario) => match demo::run(scenario) {
                Outcome::Diagnosed => ExitCode::SUCCESS,
                Outcome::NotDiagnosed => ExitCode::FAILURE,
            },
        },
    }
}

fn bench_command(args: &BenchArgs) -> ExitCode {
    let config = match args.to_config() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(BAD_INPUT);
        }
    };
    let outputs = match Outputs::open(args.json.as_deref(), args.csv.as_deref(), args.report_dir())
    {
        Ok(outputs) => outputs,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(BAD_INPUT);
        }
    };
    let baseline = match args.baseline.as_deref().map(Baseline::load).transpose() {
        Ok(baseline) => baseline,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(BAD_INPUT);
        }
    };
    match run_bench(&config, outputs, baseline.as_ref()) {
        Ok(Finished::AllCells) => ExitCode::SUCCESS,
        // The results are printed and written; the failures are in them.
        Ok(Finished::SomeFailed) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Reports progress: a bar on a terminal, one plain line per sample otherwise.
enum Reporter {
    Bar(ProgressBar),
    Lines,
}

impl Reporter {
    fn new(total: usize) -> Self {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {bar:40.cyan/blue} {pos}/{len} {msg} (eta {eta})",
                )
                .expect("valid template")
                .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            Reporter::Bar(bar)
        } else {
            Reporter::Lines
        }
    }

    fn sample(&self, p: &Progress<'_>) {
        let result = match p.sample {
            Ok(sample) => format!("{:>7.1} Mops/s", sample.mops()),
            Err(why) => format!("FAILED: {}", report::short_failure(why, 80)),
        };
        match self {
            Reporter::Bar(bar) => {
                // Noisy cells add samples as the run goes.
                bar.set_length(p.total as u64);
                bar.set_position(p.done as u64);
                bar.set_message(format!(
                    "{} {} {}t: {result}",
                    p.workload.name,
                    p.map.name(),
                    p.threads,
                    result = result.trim_start(),
                ));
            }
            Reporter::Lines => eprintln!(
                "[{:>3}/{}] {:<10} {:<11} {:>2} threads  rep {}  {result}",
                p.done,
                p.total,
                p.workload.name,
                p.map.name(),
                p.threads,
                p.repetition + 1,
            ),
        }
    }

    fn finish(&self) {
        if let Reporter::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// How a run that printed its results ended.
enum Finished {
    AllCells,
    /// A map panicked in at least one cell (a `FAILED` cell): exit status 1.
    SomeFailed,
}

/// The banner of a `--quick` run, first and last on stdout.
const SMOKE_BANNER: &str = "SMOKE RUN (--quick): seconds long, one short sample per cell; \
                            check that everything runs, do not compare its figures";

fn run_bench(
    config: &BenchConfig,
    outputs: Outputs,
    baseline: Option<&Baseline>,
) -> Result<Finished> {
    let started = Instant::now();
    let cpu_before = CpuSnapshot::now();
    let reporter = Reporter::new(config.sample_count());
    // A panicking map is reported as a failed cell with its message; the default hook would
    // also print it over the progress output. Other panics are printed as usual.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !bench::run::CELL_RUNNING.load(std::sync::atomic::Ordering::SeqCst) {
            default_hook(info);
        }
    }));
    let mut transfer = TransferLog::default();
    transfer.measure("before the run");
    let results = bench::run::run_logged(config, |p| reporter.sample(p), &mut transfer);
    reporter.finish();
    let elapsed = started.elapsed().as_secs_f64();
    let foreign = cpu_before
        .zip(CpuSnapshot::now())
        .and_then(|(before, after)| before.foreign_share(&after));
    let clock_ns = bench::run::clock_overhead_ns();
    if config.smoke {
        println!("{SMOKE_BANNER}");
        println!();
    }
    let verdicts = report::verdicts(&results);
    if !verdicts.is_empty() {
        let ahead = verdicts.iter().filter(|v| v.ahead()).count();
        println!(
            "Verdict: mapguard's fastest map is ahead of the fastest peer in {ahead} of {} \
             workload × thread cells{}.",
            verdicts.len(),
            if verdicts.iter().any(|v| v.noisy) {
                "; (noisy): a cell's samples (! in the table), or the two cells' ratio from \
                 round to round, still spread more than 15 % after extra samples; rerun \
                 before quoting it"
            } else {
                ""
            }
        );
        println!("{}", report::verdict_table(&verdicts, &transfer));
        println!();
    }
    println!("{}", report::throughput_table(&results));
    println!();
    println!(
        "{} cells, {} sample(s) each (more where noisy), in {elapsed:.1} s. Mops/s \
         is the median sample, * the fastest map of its workload and thread count; vs peer: \
         over the fastest peer's Mops/s there; % limit: of the reference measured there (the \
         calibration map on a mix with writes, every thread reading one shared hashbrown table \
         on a read-only mix). Latency (p50, p99, \
         p99.9) in ns (µs where marked) times 1 op in {} and includes the clock's own \
         ~{clock_ns} ns. Only ratios within one run compare.",
        results.len(),
        config.repeat,
        bench::run::SAMPLE_EVERY,
    );
    if !config.maps.contains(&bench::MapKind::Calibration)
        && results.iter().any(|r| !r.workload.is_read_only())
    {
        println!(
            "% limit is - on the mixes with writes: their reference, the calibration map, was \
             not in --maps."
        );
    }
    let failed: Vec<_> = results.iter().filter(|r| r.failed()).collect();
    for r in &failed {
        println!(
            "FAILED {} / {} / {} threads: {}",
            r.workload.name,
            r.map,
            r.threads,
            r.failure.as_deref().unwrap_or("")
        );
    }
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
    if let Some(summary) = transfer.summary() {
        println!("{summary}");
    }
    if let Some(baseline) = baseline {
        let changes = compare::compare(baseline, &results, |r| {
            r.transfer_ns.and_then(|ns| transfer.state_of(ns))
        });
        println!();
        if changes.is_empty() {
            println!(
                "Against {}: no cell of this run is in it (other workloads, maps or thread \
                 counts).",
                baseline.path.display()
            );
        } else {
            let count = |v: &str| changes.iter().filter(|c| c.verdict() == v).count();
            println!(
                "Against {}: {} cells faster, {} slower, {} within noise (a cell's noise: the \
                 larger of 15 % and either run's spread).",
                baseline.path.display(),
                count("faster"),
                count("slower"),
                count("within noise"),
            );
            println!("{}", compare::comparison_table(&changes));
        }
    }
    let info = RunInfo::new(config, elapsed, clock_ns, foreign, transfer);
    if let Some(file) = outputs.json {
        file.write(&to_json(info.clone(), &results))?;
    }
    if let Some(file) = outputs.csv {
        file.write(&to_csv(&results))?;
    }
    if let Some(dir) = &outputs.report {
        let index = html::write_report(dir, info, &results)?;
        println!("Report with charts: {}", index.display());
    }
    if config.smoke {
        println!("{SMOKE_BANNER}");
    }
    Ok(if failed.is_empty() {
        Finished::AllCells
    } else {
        Finished::SomeFailed
    })
}
