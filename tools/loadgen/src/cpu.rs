//! CPU seconds spent per phase: this process (the daemon and the load
//! clients) and the Tansu process, from `/proc` (Linux; 0 elsewhere), and
//! optionally per thread name.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::Instant;

/// User+system seconds of a process (`self` or a pid).
fn cpu_seconds(pid: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| parse_stat(&s).map(|(_, c)| c))
        .unwrap_or(0.0)
}

/// (comm, cpu seconds) from a /proc stat line; assumes 100 ticks/s.
fn parse_stat(s: &str) -> Option<(String, f64)> {
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let comm = s[open + 1..close].to_owned();
    let f: Vec<&str> = s.get(close + 2..)?.split(' ').collect();
    let ut: f64 = f.get(11)?.parse().ok()?;
    let st: f64 = f.get(12)?.parse().ok()?;
    Some((comm, (ut + st) / 100.0))
}

/// CPU seconds per thread name (numbers stripped) of this process.
fn thread_cpu() -> HashMap<String, f64> {
    let mut out = HashMap::new();
    let Ok(rd) = std::fs::read_dir("/proc/self/task") else {
        return out;
    };
    for e in rd.flatten() {
        let Ok(s) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        if let Some((comm, c)) = parse_stat(&s) {
            let name = comm.trim_end_matches(|ch: char| ch.is_ascii_digit());
            *out.entry(name.to_owned()).or_default() += c;
        }
    }
    out
}

/// The clocks at the start of a phase.
pub struct CpuMark {
    pub at: Instant,
    me: f64,
    tansu: f64,
    threads: HashMap<String, f64>,
}

impl CpuMark {
    pub fn new(tansu: Option<u32>) -> CpuMark {
        CpuMark {
            at: Instant::now(),
            me: cpu_seconds("self"),
            tansu: tansu.map_or(0.0, |p| cpu_seconds(&p.to_string())),
            threads: thread_cpu(),
        }
    }

    /// "loadgen+newswatch 1.23 s CPU (85% of a core), tansu 0.80 s (55%)"
    /// since the mark, and the busiest threads when `show_threads`.
    pub fn report(&self, tansu: Option<u32>, show_threads: bool) -> String {
        let wall = self.at.elapsed().as_secs_f64().max(1e-9);
        let me = cpu_seconds("self") - self.me;
        let mut s = format!(
            "loadgen+newswatch {me:.2} s CPU ({:.0}% of a core)",
            me / wall * 100.0
        );
        if let Some(p) = tansu {
            let t = cpu_seconds(&p.to_string()) - self.tansu;
            write!(s, ", tansu {t:.2} s ({:.0}%)", t / wall * 100.0).ok();
        }
        if show_threads {
            let mut v: Vec<(String, f64)> = thread_cpu()
                .into_iter()
                .map(|(k, c)| {
                    let d = c - self.threads.get(&k).copied().unwrap_or(0.0);
                    (k, d)
                })
                .filter(|(_, d)| *d > 0.005)
                .collect();
            v.sort_by(|a, b| b.1.total_cmp(&a.1));
            s.push_str("\n      threads:");
            for (k, d) in v.iter().take(12) {
                write!(s, " {k}={d:.2}s").ok();
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines() {
        let check = |line: &str, expected: Option<(&str, f64)>| {
            let got = parse_stat(line);
            assert_eq!(
                got.as_ref().map(|(c, s)| (c.as_str(), *s)),
                expected,
                "{line:?}"
            );
        };
        let tail = "S 1 2 3 4 5 6 7 8 9 10 250 50 0 0";
        check(&format!("42 (tokio-rt) {tail}"), Some(("tokio-rt", 3.0)));
        // A thread name may hold spaces and parentheses.
        check(&format!("42 (a (b) c) {tail}"), Some(("a (b) c", 3.0)));
        check("42 (short) S 1", None);
        check("garbage", None);
    }
}
