//! The standard process family (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! `process_open_fds`, `process_start_time_seconds`), read from `/proc/self` at scrape time.
//! Linux only: elsewhere the family is left out rather than reported as zeros.

use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;

/// What `/proc/self` says now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcessStats {
    pub cpu_seconds: f64,
    pub resident_bytes: u64,
    pub open_fds: u64,
    pub start_time_seconds: f64,
}

/// Clock ticks per second of `/proc/*/stat` times: 100 on every Linux architecture hata
/// builds for (`USER_HZ`; the kernel reports in it whatever its internal `HZ`).
const TICKS_PER_SECOND: f64 = 100.0;

/// Reads the process's figures; `None` where `/proc` is not there.
pub fn read() -> Option<ProcessStats> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let boot = std::fs::read_to_string("/proc/stat").ok()?;
    let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count() as u64;
    parse(&stat, &status, &boot, open_fds)
}

fn parse(stat: &str, status: &str, proc_stat: &str, open_fds: u64) -> Option<ProcessStats> {
    // The command name (field 2) is in parentheses and may hold spaces: fields are counted
    // from the last `)`. After it, field 3 (state) is index 0.
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let start_ticks: f64 = fields.get(19)?.parse().ok()?;
    // `VmRSS` is in kB whatever the page size.
    let resident_kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let boot_time: f64 = proc_stat
        .lines()
        .find_map(|line| line.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    Some(ProcessStats {
        cpu_seconds: (utime + stime) / TICKS_PER_SECOND,
        resident_bytes: resident_kb * 1024,
        open_fds,
        start_time_seconds: boot_time + start_ticks / TICKS_PER_SECOND,
    })
}

pub fn encode(encoder: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
    let Some(p) = read() else {
        return Ok(());
    };
    ConstCounter::new(p.cpu_seconds).encode(encoder.encode_descriptor(
        "process_cpu_seconds",
        "User and system CPU time spent, in seconds",
        None,
        MetricType::Counter,
    )?)?;
    let gauges = [
        (
            "process_resident_memory_bytes",
            "Resident memory size, in bytes",
            p.resident_bytes as f64,
        ),
        (
            "process_open_fds",
            "Open file descriptors",
            p.open_fds as f64,
        ),
        (
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch, in seconds",
            p.start_time_seconds,
        ),
    ];
    for (name, help, value) in gauges {
        ConstGauge::new(value).encode(encoder.encode_descriptor(
            name,
            help,
            None,
            MetricType::Gauge,
        )?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_files_parse() {
        let stat = "4242 (hata serve) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 \
                    12 0 360000 123456789 2048 18446744073709551615";
        let status = "Name:\thata\nVmRSS:\t    8192 kB\nThreads:\t12\n";
        let proc_stat = "cpu  1 2 3\nbtime 1700000000\nprocesses 5\n";
        let p = parse(stat, status, proc_stat, 17).expect("parses");
        assert_eq!(p.cpu_seconds, 3.0);
        assert_eq!(p.resident_bytes, 8192 * 1024);
        assert_eq!(p.open_fds, 17);
        assert_eq!(p.start_time_seconds, 1_700_003_600.0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_reads() {
        let p = read().expect("/proc/self on Linux");
        assert!(p.resident_bytes > 0 && p.open_fds > 0 && p.start_time_seconds > 1.6e9);
    }
}
