//! Facts about the machine and the measured processes, read from Linux `/proc`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

/// Description of the machine that the benchmark ran on.
#[derive(Debug, Default)]
pub struct HostInfo {
    /// Host name from `/proc/sys/kernel/hostname`.
    pub hostname: Option<String>,
    /// Kernel name and release, as `uname -sr` prints them.
    pub kernel: Option<String>,
    /// First `model name` line of `/proc/cpuinfo`.
    pub cpu_model: Option<String>,
    /// Number of `processor` entries in `/proc/cpuinfo`, the logical CPUs.
    pub cpu_count: usize,
    /// `MemTotal` of `/proc/meminfo` in KiB.
    pub memory_kib: Option<u64>,
    /// Output of `rustc --version`, if rustc runs.
    pub rustc: Option<String>,
    /// 1, 5 and 15 minute load averages from `/proc/loadavg` when the run started.
    pub load_average: Option<String>,
}

impl HostInfo {
    /// Collects the host facts. A fact that cannot be read stays empty.
    pub fn collect() -> Self {
        let cpuinfo = read_proc("/proc/cpuinfo").unwrap_or_default();
        let meminfo = read_proc("/proc/meminfo").unwrap_or_default();
        let ostype = read_proc("/proc/sys/kernel/ostype");
        let osrelease = read_proc("/proc/sys/kernel/osrelease");
        let kernel = match (ostype, osrelease) {
            (Some(os), Some(release)) => Some(format!("{} {}", os.trim(), release.trim())),
            _ => None,
        };
        HostInfo {
            hostname: read_proc("/proc/sys/kernel/hostname").map(|name| name.trim().to_owned()),
            kernel,
            cpu_model: cpu_model(&cpuinfo),
            cpu_count: cpu_count(&cpuinfo),
            memory_kib: kib_field(&meminfo, "MemTotal"),
            rustc: rustc_version(),
            load_average: read_proc("/proc/loadavg").and_then(|text| load_average(&text)),
        }
    }
}

fn read_proc(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn rustc_version() -> Option<String> {
    let output = Command::new("rustc").arg("--version").output().ok()?;
    if !output.status.success() {
        return None;
    }
    let version = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (!version.is_empty()).then_some(version)
}

/// Returns the value of the first `model name` line of `/proc/cpuinfo` text.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_owned())
    })
}

/// Returns the number of `processor` entries in `/proc/cpuinfo` text.
pub fn cpu_count(cpuinfo: &str) -> usize {
    cpuinfo
        .lines()
        .filter_map(|line| line.split_once(':'))
        .filter(|(key, _)| key.trim() == "processor")
        .count()
}

/// Returns the three load averages, the first three fields of `/proc/loadavg` text.
pub fn load_average(loadavg: &str) -> Option<String> {
    let fields: Vec<&str> = loadavg.split_whitespace().take(3).collect();
    (fields.len() == 3).then(|| fields.join(" "))
}

/// Returns a `Name:   1234 kB` field of `/proc/meminfo` or `/proc/<pid>/status` text in KiB.
pub fn kib_field(text: &str, name: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        if key != name {
            return None;
        }
        value.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// Reads a KiB field such as `VmRSS` or `VmHWM` from `/proc/<pid>/status`.
///
/// # Errors
/// Fails if the file cannot be read (the process has exited) or has no such field.
pub fn process_kib(pid: u32, field: &str) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status =
        std::fs::read_to_string(&path).with_context(|| format!("failed to read {path}"))?;
    kib_field(&status, field).with_context(|| format!("{path} has no {field} line in kB"))
}

/// Resets `VmHWM` of process `pid` to its current RSS by writing `5` to
/// `/proc/<pid>/clear_refs` (Linux 4.0 and later, as proc(5) documents), so a later `VmHWM`
/// reading is the peak since this call.
///
/// # Errors
/// Fails if the file cannot be written: the process has exited, the kernel is older, or
/// this process may not write to another process's `clear_refs`.
pub fn reset_peak_rss(pid: u32) -> anyhow::Result<()> {
    let path = format!("/proc/{pid}/clear_refs");
    std::fs::write(&path, "5").with_context(|| format!("failed to write 5 to {path}"))
}

/// Returns the number of clock ticks per second that `/proc` CPU times count in
/// (`getconf CLK_TCK`), or 100 if getconf fails.
pub fn clock_ticks_per_second() -> u64 {
    let ticks = Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .and_then(|output| String::from_utf8_lossy(&output.stdout).trim().parse().ok());
    // NOTE: 100 is USER_HZ on every mainstream Linux architecture, but it is assumed
    // here, not read, when getconf is missing.
    ticks.filter(|&ticks| ticks > 0).unwrap_or(100)
}

/// Reads the CPU time that process `pid` and its exited threads have used, user plus
/// system, in clock ticks, from `/proc/<pid>/stat`.
///
/// # Errors
/// Fails if the file cannot be read (the process has exited) or has another form.
pub fn process_cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("failed to read {path}"))?;
    stat_cpu_ticks(&stat).with_context(|| format!("{path} has no utime and stime fields"))
}

/// Returns `utime + stime`, fields 14 and 15 of `/proc/<pid>/stat` text. The fields are
/// counted after the closing parenthesis of the command name, which may contain spaces.
pub fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    // Field 3 (state) is the first after the name, so utime is the 12th and stime the 13th.
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some(user + system)
}

/// CPU time of the whole machine, summed over all CPUs, in clock ticks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MachineTicks {
    /// Ticks spent on anything other than idle and I/O wait.
    pub busy: u64,
    /// All ticks, idle and I/O wait included.
    pub total: u64,
}

/// Reads the machine's CPU time from the first line of `/proc/stat`.
///
/// # Errors
/// Fails if `/proc/stat` cannot be read or has another form.
pub fn machine_cpu_ticks() -> anyhow::Result<MachineTicks> {
    let stat = std::fs::read_to_string("/proc/stat").context("failed to read /proc/stat")?;
    machine_ticks(&stat).context("/proc/stat has no cpu line with at least 5 numbers")
}

/// Parses the `cpu` line of `/proc/stat` text: user, nice, system, idle, iowait, irq,
/// softirq and steal, in ticks. Guest time is already part of user and nice, so it is
/// not added again.
pub fn machine_ticks(stat: &str) -> Option<MachineTicks> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    if values.len() < 5 {
        return None;
    }
    let total: u64 = values.iter().sum();
    let idle = values[3] + values[4];
    Some(MachineTicks {
        busy: total - idle,
        total,
    })
}

/// Returns the type of the file system that contains `path`, from `/proc/mounts`.
pub fn filesystem_type(path: &Path) -> Option<String> {
    let path = path.canonicalize().ok()?;
    let mounts = read_proc("/proc/mounts")?;
    mount_type(&mounts, &path)
}

/// Returns the type of the longest mount point in `/proc/mounts` text that contains `path`.
pub fn mount_type(mounts: &str, path: &Path) -> Option<String> {
    let mut best: Option<(PathBuf, &str)> = None;
    for line in mounts.lines() {
        let mut fields = line.split(' ');
        let (Some(_device), Some(mount_point), Some(kind)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let mount_point = PathBuf::from(unescape_octal(mount_point));
        let longer = best
            .as_ref()
            .is_none_or(|(known, _)| mount_point.as_os_str().len() >= known.as_os_str().len());
        if path.starts_with(&mount_point) && longer {
            best = Some((mount_point, kind));
        }
    }
    best.map(|(_, kind)| kind.to_owned())
}

/// Decodes the `\NNN` octal escapes that `/proc/mounts` uses for spaces and similar bytes.
fn unescape_octal(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = bytes.get(i + 1..i + 4).filter(|_| bytes[i] == b'\\');
        let value = escape
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| u8::from_str_radix(digits, 8).ok());
        match value {
            Some(byte) => {
                decoded.push(byte);
                i += 4;
            }
            None => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests;
