//! The processes of a run: vaekit's worker (this binary with `--worker`, rayon threads set by
//! the environment, pinned by `taskset`) and the PyTorch and JAX reference scripts, all on the
//! same cores and all serving workloads by name, so that the runner interleaves them
//! workload by workload (only one side works at a time).

use crate::Cli;
use crate::report::{Report, WorkerLine};
use crate::timing::{Measurement, Protocol, measure};
use crate::workloads::{ALL, Workload};
use anyhow::{Context, Result, bail};
use candle::Device;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

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

/// Worker mode: the FMA peak, then the workloads, one JSON line each on stdout: the
/// selected ones in order, or with `--serve` each name read from stdin, until stdin closes.
///
/// # Errors
/// Workload errors; an unknown name.
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
            vaekit_ops::fma_peak_gflops(threads)
        } else {
            None
        },
    };
    writeln!(out, "{}", serde_json::to_string(&line)?)?;
    out.flush()?;
    let mut answer = |w: &Workload| -> Result<()> {
        let m = time_workload(w, &device, protocol(cli))?;
        writeln!(out, "{}", serde_json::to_string(&WorkerLine::Result(m))?)?;
        out.flush()?;
        Ok(())
    };
    if cli.serve {
        for line in std::io::stdin().lock().lines() {
            let name = line.context("reading a workload name")?;
            let name = name.trim();
            if !name.is_empty() {
                answer(selected(&[name.to_string()])?[0])?;
            }
        }
    } else {
        for w in selected(&cli.only)? {
            answer(w)?;
        }
    }
    Ok(())
}

/// Builds `w` on `device` and times it.
fn time_workload(w: &Workload, device: &Device, protocol: Protocol) -> Result<Measurement> {
    eprintln!("vaekit: {}", w.name);
    let mut step = (w.build)(device).with_context(|| format!("building {}", w.name))?;
    let mut synced = || -> Result<()> {
        step()?;
        device.synchronize()?;
        Ok(())
    };
    // As the workload's library path runs it (see `Workload::awake`): the steps in one
    // region, as `Trainer` runs an epoch's.
    let mut run = || measure(w.name, protocol, &mut synced);
    if w.awake {
        vaekit_core::keep_awake(run)
    } else {
        run()
    }
    .with_context(|| format!("running {}", w.name))
}

/// One side of a run, a process serving workloads: a name on its stdin, one JSON line back.
struct Side {
    what: &'static str,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl Side {
    /// Starts `cmd` (stderr goes to the terminal).
    fn spawn(mut cmd: Command, what: &'static str) -> Result<Self> {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {what}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().context("no stdout pipe")?;
        Ok(Self {
            what,
            child,
            stdin,
            stdout: BufReader::new(stdout),
        })
    }

    /// The next line the side prints, parsed; an error (with the exit status) at its end.
    fn read<T: serde::de::DeserializeOwned>(&mut self) -> Result<T> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.stdout.read_line(&mut line)? == 0 {
                drop(self.stdin.take());
                let status = self.child.wait()?;
                bail!("{} stopped before answering ({status})", self.what);
            }
            if !line.trim().is_empty() {
                return serde_json::from_str(line.trim())
                    .with_context(|| format!("{} printed {:?}", self.what, line.trim()));
            }
        }
    }

    /// Times workload `name` on this side.
    fn ask<T: serde::de::DeserializeOwned>(&mut self, name: &str) -> Result<T> {
        let stdin = self.stdin.as_mut().context("stdin already closed")?;
        if let Err(e) = writeln!(stdin, "{name}").and_then(|()| stdin.flush()) {
            // The child may not be reapable the instant its pipe breaks: ask a few times.
            let mut status = String::new();
            for _ in 0..20 {
                if let Ok(Some(s)) = self.child.try_wait() {
                    status = format!(" ({s})");
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            bail!("sending {name} to {}{status}: {e}", self.what);
        }
        self.read()
    }

    /// Closes stdin and waits for a clean exit.
    fn finish(mut self) -> Result<()> {
        drop(self.stdin.take());
        let status = self.child.wait()?;
        if !status.success() {
            bail!("{} failed ({status})", self.what);
        }
        Ok(())
    }
}

impl Drop for Side {
    /// A side left running when the run stops early (the other side failed) is stopped.
    fn drop(&mut self) {
        drop(self.stdin.take());
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn has(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The bench directory (this crate's), where `torch_reference.py` and `.venv` live.
fn bench_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The Python to use for a peer: the first candidate that imports `module` (`torch`,
/// `jax`); the reason when none does.
fn find_python(cli: &Cli, module: &str) -> std::result::Result<PathBuf, String> {
    let candidates: Vec<PathBuf> = match &cli.python {
        Some(p) => vec![p.clone()],
        None => vec![
            bench_dir().join(".venv/bin/python"),
            PathBuf::from("python3"),
        ],
    };
    for p in &candidates {
        let ok = Command::new(p)
            .args(["-c", &format!("import {module}")])
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
        "no Python with {module} found (tried {}); see docs/performance.md to install the reference",
        tried.join(", ")
    ))
}

/// A peer's reference script started in serving mode, once it says it is ready; `None` with
/// the reason (written to `note`) when it is turned off or its Python is missing.
fn start_peer(
    cli: &Cli,
    off: bool,
    label: &str,
    module: &str,
    script: &'static str,
    args: &[String],
    note: &mut Option<String>,
) -> Result<Option<Side>> {
    if off {
        *note = Some(format!("{label} not run (--no-{module})"));
        return Ok(None);
    }
    match find_python(cli, module) {
        Ok(python) => {
            let mut cmd = Command::new(&python);
            cmd.arg(bench_dir().join(script)).args(args);
            let mut side = Side::spawn(cmd, script)?;
            let _ready: serde_json::Value = side.read()?;
            *note = Some(format!("{label} from {}", python.display()));
            Ok(Some(side))
        }
        Err(why) => {
            *note = Some(why);
            Ok(None)
        }
    }
}

fn cpu_list(threads: usize) -> String {
    format!("0-{}", threads.saturating_sub(1))
}

/// Runner mode: vaekit's worker and, when found, PyTorch's and JAX's scripts, all serving;
/// `--rounds` times over, each workload on one side and then at once on the others, the first
/// side rotating from round to round, so that the sides of a ratio are timed in the same
/// minutes; then the table.
///
/// # Errors
/// A failing side, unparsable output, or an unknown workload.
pub fn run(cli: &Cli) -> Result<()> {
    let workloads = selected(&cli.only)?;
    // Fail here, with the reason, rather than in the worker.
    vaekit_core::parse_device(&cli.device).context("--device")?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = cli.threads.unwrap_or(cores).max(1);
    let rounds = cli.rounds.max(1);
    let pin = has("taskset", "--version");
    let exe = std::env::current_exe().context("locating this binary")?;
    let args: Vec<String> = vec![
        format!("--threads={threads}"),
        format!("--reps={}", cli.reps),
        format!("--min-sample-s={}", cli.min_sample_s),
        format!("--warmup={}", cli.warmup),
        format!("--device={}", cli.device),
        "--serve".into(),
    ];
    let mut cmd = if pin {
        let mut c = Command::new("taskset");
        c.arg("-c").arg(cpu_list(threads)).arg(&exe);
        c
    } else {
        Command::new(&exe)
    };
    cmd.arg("--worker")
        .args(&args)
        .env("RAYON_NUM_THREADS", threads.to_string());
    eprintln!(
        "{} thread(s){}; {} workload(s), {} round(s) of {} samples, the sides interleaved",
        threads,
        if pin {
            format!(", pinned to cores {}", cpu_list(threads))
        } else {
            " (taskset not found: not pinned)".to_string()
        },
        workloads.len(),
        rounds,
        cli.reps
    );
    let mut report = Report::new(threads, pin, rounds);
    let mut vaekit = Side::spawn(cmd, "the vaekit worker")?;
    match vaekit.read()? {
        WorkerLine::Peak { gflops } => report.peak_gflops = gflops,
        WorkerLine::Result(_) => bail!("the vaekit worker answered before being asked"),
    }
    let mut torch = start_peer(
        cli,
        cli.no_torch,
        "PyTorch",
        "torch",
        "torch_reference.py",
        &args,
        &mut report.torch_note,
    )?;
    // JAX has no GPU twin here: its side runs on the CPU only.
    let mut jax = if cli.device != "cpu" {
        report.jax_note = Some(format!("JAX not run (CPU only; --device {})", cli.device));
        None
    } else {
        start_peer(
            cli,
            cli.no_jax,
            "JAX",
            "jax",
            "jax_reference.py",
            &args,
            &mut report.jax_note,
        )?
    };
    for round in 0..rounds {
        for w in &workloads {
            // The running sides in turn, the first rotating from round to round, so that each
            // goes first, second and last equally often over a multiple of their number.
            let mut order: Vec<usize> =
                [Some(0), torch.as_ref().map(|_| 1), jax.as_ref().map(|_| 2)]
                    .into_iter()
                    .flatten()
                    .collect();
            let n = order.len();
            order.rotate_left(round % n);
            for side in order {
                match side {
                    0 => match vaekit.ask(w.name)? {
                        WorkerLine::Result(m) => report.vaekit.push(m),
                        WorkerLine::Peak { .. } => bail!("the vaekit worker sent a second peak"),
                    },
                    1 => {
                        if let Some(t) = torch.as_mut() {
                            report.torch.push(t.ask(w.name)?);
                        }
                    }
                    _ => {
                        if let Some(j) = jax.as_mut() {
                            report.jax.push(j.ask(w.name)?);
                        }
                    }
                }
            }
        }
    }
    vaekit.finish()?;
    for peer in [torch, jax].into_iter().flatten() {
        peer.finish()?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    /// A serving side answers each name with its line; one that has exited is an error
    /// naming it, with its exit status, not a hang.
    #[test]
    fn sides_answer_or_fail_with_their_status() -> Result<()> {
        let echo = r#"while read n; do echo "{\"name\":\"$n\",\"median_ms\":1.5,\"samples_ms\":[1.5],\"iterations\":2}"; done"#;
        let mut side = Side::spawn(sh(echo), "echo side")?;
        for name in ["a", "b"] {
            let m: Measurement = side.ask(name)?;
            assert_eq!((m.name.as_str(), m.median_ms), (name, 1.5));
        }
        side.finish()?;
        let mut dead = Side::spawn(sh("exit 3"), "dead side")?;
        let err = dead
            .ask::<Measurement>("a")
            .expect_err("a side that exited cannot answer");
        let text = format!("{err:#}");
        assert!(text.contains("dead side"), "{text}");
        assert!(text.contains("exit status: 3"), "{text}");
        Ok(())
    }
}
