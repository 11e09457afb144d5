//! The orchestrator behind `just bench`: starts each target as a child process, loads it,
//! reads its memory use and prints the results table.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use clap::Args;
use http::{HeaderMap, Method, StatusCode};

use crate::baseline::Mode;
use crate::load::{self, DEFAULT_BODY, LoadSpec};
use crate::report::{self, Row, RunSettings};
use crate::sysinfo::{self, HostInfo};

/// Path that the load targets on every server, the webhook URL of docs/examples/hubkit.toml.
const WEBHOOK_PATH: &str = "/webhook/urls/sensor-data";
/// Time a baseline may take to print its listening address.
const BASELINE_START_TIMEOUT: Duration = Duration::from_secs(30);
/// Time hubkitd may take until `/healthz` returns 200.
const HUBKITD_START_TIMEOUT: Duration = Duration::from_secs(30);
/// Time allowed for one `/healthz` request while waiting for hubkitd.
const HEALTH_PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between two `/healthz` requests.
const HEALTH_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Idle time between readiness and the idle RSS reading.
pub(crate) const SETTLE_TIME: Duration = Duration::from_secs(1);
/// Warm-up of every slice after a target's first, long enough to open the TLS
/// connections again.
const SLICE_WARMUP: Duration = Duration::from_millis(500);

/// Command-line arguments of `hubkit-bench run`.
#[derive(Args, Debug)]
pub struct RunArgs {
    /// Path of the hubkitd binary to measure.
    #[arg(long, required_unless_present = "baselines_only")]
    pub hubkitd: Option<PathBuf>,
    /// Path of the hubkitd configuration file; it must define the webhook URL
    /// /webhook/urls/sensor-data.
    #[arg(long, required_unless_present = "baselines_only")]
    pub config: Option<PathBuf>,
    /// Measured time per target in seconds, after the warm-up.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub duration_secs: u64,
    /// Warm-up time per target in seconds, whose requests are not counted.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(0..=600))]
    pub warmup_secs: u64,
    /// Number of slices in which the SQLite FULL baseline and hubkitd take turns within a
    /// round. Both run side by side and get the load alternately, so a slow phase of a
    /// shared disk or CPU affects both; 1 measures them one after the other.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=60))]
    pub slices: u32,
    /// Number of times the whole sequence of targets runs.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub rounds: u32,
    /// Number of keep-alive connections of the load generator.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub connections: u16,
    /// Skips the SQLite baseline with `synchronous = NORMAL`.
    #[arg(long)]
    pub skip_normal: bool,
    /// Measures the baselines only, without hubkitd.
    #[arg(long)]
    pub baselines_only: bool,
    /// Directory under which each target gets a fresh data directory (default: the system
    /// temporary directory). Its file system sets the cost of an fsync.
    #[arg(long)]
    pub data_root: Option<PathBuf>,
}

/// A server under test.
#[derive(Clone, Debug)]
enum TargetKind {
    Baseline(Mode),
    Hubkitd { binary: PathBuf, config: PathBuf },
}

impl TargetKind {
    fn name(&self) -> String {
        match self {
            TargetKind::Baseline(mode) => format!("baseline {}", mode.as_str()),
            TargetKind::Hubkitd { .. } => "hubkitd".to_owned(),
        }
    }
}

/// A started target: the child process, its output file and its load URL.
pub(crate) struct Running {
    pub(crate) child: ChildGuard,
    pub(crate) output: PathBuf,
    pub(crate) url: String,
    /// Bearer token of hubkitd's admin API; `None` for a baseline.
    pub(crate) admin_token: Option<String>,
}

/// Kills and reaps the child process when dropped, so an early return leaves no server behind.
pub(crate) struct ChildGuard(Child);

impl ChildGuard {
    /// Takes ownership of a spawned child process.
    pub(crate) fn new(child: Child) -> Self {
        ChildGuard(child)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.0.id()
    }

    /// Returns the exit status if the child has exited, without waiting.
    pub(crate) fn try_wait(&mut self) -> std::io::Result<Option<std::process::ExitStatus>> {
        self.0.try_wait()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // The child may have exited already, and then both calls fail harmlessly.
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Runs `hubkit-bench run`: measures every target and prints the header and the table.
///
/// Returns failure when any target had non-2xx responses or errors.
///
/// # Errors
/// Fails if a target cannot be started or measured.
pub fn run(args: &RunArgs) -> anyhow::Result<ExitCode> {
    let targets = targets(args)?;
    let data_root = args.data_root.clone().unwrap_or_else(std::env::temp_dir);
    let settings = RunSettings {
        command: std::env::args().collect(),
        connections: args.connections,
        warmup: Duration::from_secs(args.warmup_secs),
        duration: Duration::from_secs(args.duration_secs),
        slices: args.slices,
        rounds: args.rounds,
        data_filesystem: sysinfo::filesystem_type(&data_root),
        data_root: data_root.clone(),
    };
    print_stdout(&report::render_header(&HostInfo::collect(), &settings))?;

    let (alone, paired) = split_pair(&targets);
    let mut rows = Vec::new();
    for round in 1..=args.rounds {
        for target in alone {
            eprintln!("round {round}/{}: measuring {}", args.rounds, target.name());
            let row =
                measure(std::slice::from_ref(target), round, &settings, &data_root)?.remove(0);
            eprintln!("  {:.0} req/s", row.load.requests_per_sec());
            rows.push(row);
        }
        if !paired.is_empty() {
            let names: Vec<String> = paired.iter().map(|target| target.name()).collect();
            eprintln!(
                "round {round}/{}: measuring {} in {} alternating slices",
                args.rounds,
                names.join(" and "),
                settings.slices
            );
            for row in measure(paired, round, &settings, &data_root)? {
                eprintln!("  {}: {:.0} req/s", row.target, row.load.requests_per_sec());
                rows.push(row);
            }
        }
    }
    print_stdout(&report::render_table(&rows, args.rounds > 1))?;

    let failures = report::failures(&rows);
    if failures.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for failure in &failures {
        eprintln!("{failure}");
    }
    Ok(ExitCode::FAILURE)
}

pub(crate) fn print_stdout(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("failed to write to stdout")
}

fn targets(args: &RunArgs) -> anyhow::Result<Vec<TargetKind>> {
    let mut targets = vec![TargetKind::Baseline(Mode::Tls)];
    if !args.skip_normal {
        targets.push(TargetKind::Baseline(Mode::TlsSqliteNormal));
    }
    targets.push(TargetKind::Baseline(Mode::TlsSqliteFull));
    if args.baselines_only {
        return Ok(targets);
    }
    let (Some(binary), Some(config)) = (&args.hubkitd, &args.config) else {
        bail!("--hubkitd and --config are required unless --baselines-only is given");
    };
    if !binary.is_file() {
        bail!(
            "hubkitd binary {} not found; build it first",
            binary.display()
        );
    }
    if !config.is_file() {
        bail!("config file {} not found", config.display());
    }
    targets.push(TargetKind::Hubkitd {
        binary: binary.clone(),
        config: config.clone(),
    });
    Ok(targets)
}

/// Splits the targets into those measured alone and the SQLite FULL baseline and
/// hubkitd, which are measured together in alternating slices.
fn split_pair(targets: &[TargetKind]) -> (&[TargetKind], &[TargetKind]) {
    let first_paired = targets
        .iter()
        .position(|target| matches!(target, TargetKind::Baseline(Mode::TlsSqliteFull)))
        .unwrap_or(targets.len());
    targets.split_at(first_paired)
}

/// Starts the targets side by side, measures their idle RSS, loads them in turn, reads
/// their peak RSS, then stops them. Returns one row per target, in the given order.
///
/// The measured time of each target is split into `settings.slices` slices. Slice `i`
/// loads the targets in order when `i` is even and in reverse when odd, so no target
/// always follows the same one. The first slice of a target has the full warm-up, later
/// ones [`SLICE_WARMUP`] to open their connections.
fn measure(
    targets: &[TargetKind],
    round: u32,
    settings: &RunSettings,
    data_root: &Path,
) -> anyhow::Result<Vec<Row>> {
    let mut started = Vec::with_capacity(targets.len());
    for target in targets {
        let work_dir = tempfile::Builder::new()
            .prefix("hubkit-bench-")
            .tempdir_in(data_root)
            .with_context(|| format!("failed to make a directory in {}", data_root.display()))?;
        let running = match target {
            TargetKind::Baseline(mode) => start_baseline(*mode, work_dir.path(), WEBHOOK_PATH)?,
            TargetKind::Hubkitd { binary, config } => {
                start_hubkitd(binary, config, work_dir.path(), WEBHOOK_PATH)?
            }
        };
        started.push((target, running, work_dir));
    }
    thread::sleep(SETTLE_TIME);

    let exited = |target: &TargetKind| format!("{} exited during the run", target.name());
    let mut idle = Vec::with_capacity(started.len());
    for (target, running, _) in &started {
        let rss = sysinfo::process_kib(running.child.pid(), "VmRSS")
            .map_err(|err| with_output(&exited(target), &err, &running.output))?;
        idle.push(rss);
    }

    let slices = if targets.len() > 1 {
        settings.slices
    } else {
        1
    };
    let slice_duration = settings.duration / slices;
    let mut loads: Vec<Option<load::LoadReport>> = started.iter().map(|_| None).collect();
    for slice in 0..slices {
        let mut order: Vec<usize> = (0..started.len()).collect();
        if slice % 2 == 1 {
            order.reverse();
        }
        for index in order {
            let mut spec = load_spec(&started[index].1.url, settings)?;
            spec.duration = slice_duration;
            if slice > 0 {
                spec.warmup = SLICE_WARMUP.min(settings.warmup);
            }
            let report = load::run_load(&spec)?;
            match &mut loads[index] {
                Some(total) => total.append(report)?,
                empty @ None => *empty = Some(report),
            }
        }
    }

    let mut rows = Vec::with_capacity(started.len());
    for (((target, running, _work_dir), idle_rss_kib), load) in started.iter().zip(idle).zip(loads)
    {
        let peak_rss_kib = sysinfo::process_kib(running.child.pid(), "VmHWM")
            .map_err(|err| with_output(&exited(target), &err, &running.output))?;
        let load = load.context("every target gets at least one slice")?;
        rows.push(Row {
            target: target.name(),
            is_reference: matches!(target, TargetKind::Baseline(Mode::TlsSqliteFull)),
            round,
            load,
            idle_rss_kib,
            peak_rss_kib,
        });
    }
    Ok(rows)
}

/// Builds an error that states what failed, why, and what the child process printed.
pub(crate) fn with_output(failure: &str, err: &anyhow::Error, output: &Path) -> anyhow::Error {
    let log = read_output(output);
    anyhow::anyhow!("{failure}: {err:#}\n--- output of the child process ---\n{log}")
}

/// Builds an error that states what failed, why, and what each named child process printed.
pub(crate) fn with_outputs(
    failure: &str,
    err: &anyhow::Error,
    outputs: &[(&str, &Path)],
) -> anyhow::Error {
    let mut message = format!("{failure}: {err:#}");
    for (name, output) in outputs {
        let log = read_output(output);
        message.push_str(&format!("\n--- output of {name} ---\n{log}"));
    }
    anyhow::anyhow!(message)
}

fn load_spec(url: &str, settings: &RunSettings) -> anyhow::Result<LoadSpec> {
    let (target, uri) = load::parse_target(url)?;
    let body = Bytes::from_static(DEFAULT_BODY.as_bytes());
    Ok(LoadSpec {
        target,
        request: load::request_template(&uri, Method::POST, HeaderMap::new(), body)?,
        connections: settings.connections,
        warmup: settings.warmup,
        duration: settings.duration,
    })
}

/// Opens the file that receives a child's stdout and stderr.
fn open_output(work_dir: &Path) -> anyhow::Result<(PathBuf, File, File)> {
    let path = work_dir.join("output.log");
    let file = File::create(&path)
        .with_context(|| format!("failed to create output file {}", path.display()))?;
    let copy = file
        .try_clone()
        .context("failed to duplicate the output file handle")?;
    Ok((path, file, copy))
}

fn read_output(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|err| format!("(failed to read {}: {err})", path.display()))
}

/// Starts a baseline in `mode` with its SQLite file and output in `work_dir`, and returns it
/// once it has printed its address, with the URL of `webhook_path` as its load URL.
pub(crate) fn start_baseline(
    mode: Mode,
    work_dir: &Path,
    webhook_path: &str,
) -> anyhow::Result<Running> {
    let exe = std::env::current_exe().context("failed to find the hubkit-bench binary")?;
    let (output, stderr, _) = open_output(work_dir)?;
    let mut child = Command::new(exe)
        .args([
            "baseline",
            "--mode",
            mode.as_str(),
            "--listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(work_dir)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .context("failed to start the baseline process")?;
    let stdout = child.stdout.take();
    let child = ChildGuard(child);
    let addr = stdout
        .context("the baseline's stdout is piped")
        .and_then(read_listen_addr)
        .map_err(|err| {
            let failure = format!("baseline {} did not start", mode.as_str());
            with_output(&failure, &err, &output)
        })?;
    Ok(Running {
        child,
        output,
        url: format!("https://{addr}{webhook_path}"),
        admin_token: None,
    })
}

/// Waits for the `listening on <addr>` line and then keeps draining the pipe in a thread.
fn read_listen_addr(stdout: ChildStdout) -> anyhow::Result<SocketAddr> {
    let (sender, receiver) = mpsc::channel();
    thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let _ = sender.send(lines.next());
        lines.for_each(drop);
    });
    let line = match receiver.recv_timeout(BASELINE_START_TIMEOUT) {
        Ok(Some(Ok(line))) => line,
        Ok(Some(Err(err))) => return Err(err).context("failed to read the baseline's stdout"),
        Ok(None) | Err(mpsc::RecvTimeoutError::Disconnected) => {
            bail!("the baseline exited before printing its address")
        }
        Err(mpsc::RecvTimeoutError::Timeout) => {
            bail!("the baseline printed no address within {BASELINE_START_TIMEOUT:?}")
        }
    };
    parse_listen_line(&line)
}

/// Parses the `listening on <addr>` line that a baseline prints once bound.
///
/// # Errors
/// Fails if the line has another form.
pub fn parse_listen_line(line: &str) -> anyhow::Result<SocketAddr> {
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .with_context(|| format!("expected \"listening on <addr>\", got {line:?}"))?;
    addr.parse()
        .with_context(|| format!("address {addr:?} is not a socket address"))
}

/// Starts hubkitd with the data directory `work_dir/data` and returns it once `/healthz`
/// returns 200, with the URL of `webhook_path` as its load URL.
pub(crate) fn start_hubkitd(
    binary: &Path,
    config: &Path,
    work_dir: &Path,
    webhook_path: &str,
) -> anyhow::Result<Running> {
    let data_dir = work_dir.join("data");
    std::fs::create_dir(&data_dir)
        .with_context(|| format!("failed to create data directory {}", data_dir.display()))?;
    let port = free_port()?;
    let (output, stdout, stderr) = open_output(work_dir)?;
    let admin_token = random_token()?;
    let child = Command::new(binary)
        .arg("--config")
        .arg(config)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(&data_dir)
        .env("HUBKITD_ADMIN_TOKEN", &admin_token)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .with_context(|| format!("failed to start {}", binary.display()))?;
    let mut child = ChildGuard(child);
    wait_healthy(&mut child, port)
        .map_err(|err| with_output("hubkitd did not become ready", &err, &output))?;
    Ok(Running {
        child,
        output,
        url: format!("https://127.0.0.1:{port}{webhook_path}"),
        admin_token: Some(admin_token),
    })
}

/// Polls `/healthz` until it returns 200, the child exits or the start timeout passes.
fn wait_healthy(child: &mut ChildGuard, port: u16) -> anyhow::Result<()> {
    let url = format!("https://127.0.0.1:{port}/healthz");
    let deadline = Instant::now() + HUBKITD_START_TIMEOUT;
    let mut last = String::from("no response yet");
    while Instant::now() < deadline {
        if let Some(status) = child.0.try_wait().context("failed to poll hubkitd")? {
            bail!("hubkitd exited with {status}");
        }
        match load::probe(&url, HEALTH_PROBE_TIMEOUT) {
            Ok(StatusCode::OK) => return Ok(()),
            Ok(status) => last = format!("status {status}"),
            Err(err) => last = format!("{err:#}"),
        }
        thread::sleep(HEALTH_POLL_INTERVAL);
    }
    bail!("GET {url} did not return 200 within {HUBKITD_START_TIMEOUT:?}; last result: {last}")
}

/// Returns a port that was free on 127.0.0.1 a moment ago.
pub(crate) fn free_port() -> anyhow::Result<u16> {
    // NOTE: another process may take the port between this drop and hubkitd's bind.
    let listener = TcpListener::bind("127.0.0.1:0").context("failed to bind 127.0.0.1:0")?;
    let port = listener
        .local_addr()
        .context("failed to read the bound port")?
        .port();
    Ok(port)
}

/// Returns 40 random hexadecimal characters (160 bits) for `HUBKITD_ADMIN_TOKEN`.
pub(crate) fn random_token() -> anyhow::Result<String> {
    let mut bytes = [0_u8; 20];
    getrandom::fill(&mut bytes)
        .map_err(|err| anyhow::anyhow!("failed to read random bytes from the OS: {err}"))?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_line_parses_address() {
        let addr = parse_listen_line("listening on 127.0.0.1:4433\n").expect("valid line");
        assert_eq!(addr, SocketAddr::from(([127, 0, 0, 1], 4433)));
    }

    #[test]
    fn listen_line_rejects_other_text() {
        assert!(parse_listen_line("ready").is_err());
    }

    #[test]
    fn random_token_is_40_hex_characters() {
        let token = random_token().expect("OS random source works");
        assert_eq!(token.len(), 40);
        assert!(token.chars().all(|c| c.is_ascii_hexdigit()), "{token}");
    }
}
