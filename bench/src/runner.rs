//! The two processes of a run: vaekit's worker (this binary with `--worker`, rayon threads
//! set by the environment, pinned by `taskset`) and the PyTorch reference script, run one
//! after the other on the same cores.

use crate::report::{Report, WorkerLine};
use crate::timing::{Measurement, Protocol, measure};
use crate::workloads::{ALL, Workload};
use crate::{Cli, peak};
use anyhow::{Context, Result, bail};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// The workloads `--only` selects (all when empty); an unknown name is an error naming the
/// known ones.
pub fn selected(only: &[String]) -> Result<Vec<&'static Workload>> {
    if only.is_empty() {
        return Ok(ALL.iter().collect());
    }
    only.iter()
        .map(|name| {
            ALL.iter().find(|w| w.name == name).with_context(|| {
                let names: Vec<&str> = ALL.iter().map(|w| w.name).collect();
                format!("unknown workload {name:?}; workloads: {}", names.join(", "))
            })
        })
        .collect()
}

fn protocol(cli: &Cli) -> Protocol {
    Protocol {
        reps: cli.reps.max(1),
        warmup: cli.warmup,
        min_sample_s: cli.min_sample_s,
    }
}

/// Worker mode: the FMA peak, then every selected workload, one JSON line each on stdout.
///
/// # Errors
/// Workload errors.
pub fn worker(cli: &Cli) -> Result<()> {
    // As in `train-iaf`: the workloads run on vaekit's pool.
    vaekit_core::on_pool(|| worker_on_pool(cli))
}

fn worker_on_pool(cli: &Cli) -> Result<()> {
    let threads = cli.threads.unwrap_or(1);
    let device = vaekit_core::parse_device(&cli.device)?;
    let mut out = std::io::stdout().lock();
    // The CPU's FMA peak means nothing for a GPU run.
    let line = WorkerLine::Peak {
        gflops: if device.is_cpu() {
            peak::fma_peak_gflops(threads)
        } else {
            None
        },
    };
    writeln!(out, "{}", serde_json::to_string(&line)?)?;
    for w in selected(&cli.only)? {
        eprintln!("vaekit: {}", w.name);
        let mut step = (w.build)(&device).with_context(|| format!("building {}", w.name))?;
        let mut synced = || -> Result<()> {
            step()?;
            device.synchronize()?;
            Ok(())
        };
        // As the workload's library path runs it (see `Workload::awake`): the steps in one
        // region, as `Trainer` runs an epoch's.
        let mut run = || measure(w.name, protocol(cli), &mut synced);
        let m = if w.awake {
            vaekit_core::keep_awake(run)
        } else {
            run()
        }
        .with_context(|| format!("running {}", w.name))?;
        writeln!(out, "{}", serde_json::to_string(&WorkerLine::Result(m))?)?;
        out.flush()?;
    }
    Ok(())
}

fn has(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `cmd` and returns its stdout; stderr goes to the terminal.
fn output_of(mut cmd: Command, what: &str) -> Result<String> {
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("starting {what}"))?;
    if !out.status.success() {
        bail!("{what} failed ({})", out.status);
    }
    String::from_utf8(out.stdout).with_context(|| format!("{what} printed non-UTF-8"))
}

/// The bench directory (this crate's), where `torch_reference.py` and `.venv` live.
fn bench_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python to use and whether it imports torch; the reason when none does.
fn find_python(cli: &Cli) -> std::result::Result<PathBuf, String> {
    let candidates: Vec<PathBuf> = match &cli.python {
        Some(p) => vec![p.clone()],
        None => vec![
            bench_dir().join(".venv/bin/python"),
            PathBuf::from("python3"),
        ],
    };
    for p in &candidates {
        let ok = Command::new(p)
            .args(["-c", "import torch"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if ok {
            return Ok(p.clone());
        }
    }
    let tried: Vec<String> = candidates.iter().map(|p| p.display().to_string()).collect();
    Err(format!(
        "no Python with PyTorch found (tried {}); see docs/performance.md to install the reference",
        tried.join(", ")
    ))
}

fn parse_lines<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> Result<Vec<T>> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).with_context(|| format!("{what} printed {l:?}")))
        .collect()
}

fn cpu_list(threads: usize) -> String {
    format!("0-{}", threads.saturating_sub(1))
}

/// Runner mode: vaekit's worker, then PyTorch when found, then the table.
///
/// # Errors
/// A failing side, unparsable output, or an unknown workload.
pub fn run(cli: &Cli) -> Result<()> {
    let workloads = selected(&cli.only)?;
    // Fail here, with the reason, rather than in the worker.
    vaekit_core::parse_device(&cli.device).context("--device")?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = cli.threads.unwrap_or(cores).max(1);
    let pin = has("taskset", "--version");
    let exe = std::env::current_exe().context("locating this binary")?;
    let mut args: Vec<String> = vec![
        "--worker".into(),
        format!("--threads={threads}"),
        format!("--reps={}", cli.reps),
        format!("--min-sample-s={}", cli.min_sample_s),
        format!("--warmup={}", cli.warmup),
        format!("--device={}", cli.device),
    ];
    if !cli.only.is_empty() {
        args.push(format!("--only={}", cli.only.join(",")));
    }
    let mut cmd = if pin {
        let mut c = Command::new("taskset");
        c.arg("-c").arg(cpu_list(threads)).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    cmd.args(&args)
        .env("RAYON_NUM_THREADS", threads.to_string());
    eprintln!(
        "{} thread(s){}; {} workload(s), median of {}",
        threads,
        if pin {
            format!(", pinned to cores {}", cpu_list(threads))
        } else {
            " (taskset not found: not pinned)".to_string()
        },
        workloads.len(),
        cli.reps
    );
    let lines: Vec<WorkerLine> = parse_lines(&output_of(cmd, "the vaekit worker")?, "the worker")?;
    let mut report = Report::new(threads, pin);
    for line in lines {
        match line {
            WorkerLine::Peak { gflops } => report.peak_gflops = gflops,
            WorkerLine::Result(m) => report.vaekit.push(m),
        }
    }
    if cli.no_torch {
        report.torch_note = Some("PyTorch not run (--no-torch)".into());
    } else {
        match find_python(cli) {
            Ok(python) => {
                let mut cmd = Command::new(&python);
                cmd.arg(bench_dir().join("torch_reference.py"))
                    .args(&args[1..]);
                let torch: Vec<Measurement> =
                    parse_lines(&output_of(cmd, "torch_reference.py")?, "torch_reference.py")?;
                report.torch = torch;
                report.torch_note = Some(format!("PyTorch from {}", python.display()));
            }
            Err(why) => report.torch_note = Some(why),
        }
    }
    println!("{}", report.table(&workloads));
    if let Some(path) = &cli.json {
        write_json(path, &report)?;
    }
    Ok(())
}

fn write_json(path: &Path, report: &Report) -> Result<()> {
    let text = serde_json::to_string_pretty(report)?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
