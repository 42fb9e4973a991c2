//! Warm-up until throughput is stable: the same load as the measured window, unmeasured, in
//! 1-second windows, until the last `windows` windows agree within `tolerance` (or `max_s` has
//! passed). A JVM server (ZooKeeper) is several times faster after its JIT has compiled the
//! request path than in its first seconds; a native one (Warren) is stable at once. Measuring
//! both after a fixed second compares a cold JVM with a warm binary, so every system gets this
//! same rule, and the warm-up it took is recorded beside its figures.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::client::{self, Shared, Workload};

/// Seconds per window of the rule.
const WINDOW: Duration = Duration::from_secs(1);

/// The stability rule, shared by `run`, `sweep` and `curve`.
#[derive(clap::Args, Clone, Debug, PartialEq)]
pub struct StableArgs {
    /// Before measuring, run the same load until throughput is stable (see --stable-windows,
    /// --stable-tolerance, --stable-max); --warmup then still runs after it.
    #[arg(long)]
    pub warmup_until_stable: bool,
    #[command(flatten)]
    pub rule: StableRule,
}

/// When throughput counts as stable.
#[derive(clap::Args, Clone, Debug, PartialEq)]
pub struct StableRule {
    /// Stable: this many consecutive 1-second windows ...
    #[arg(long, default_value_t = 5)]
    pub stable_windows: usize,
    /// ... whose throughputs are within this fraction of their highest.
    #[arg(long, default_value_t = 0.05)]
    pub stable_tolerance: f64,
    /// Give up waiting for stability after this many seconds (and say so).
    #[arg(long, default_value_t = 60.0)]
    pub stable_max: f64,
}

impl StableArgs {
    pub fn validate(&self) -> Result<(), String> {
        self.rule.validate()
    }

    pub fn describe(&self) -> String {
        self.rule.describe()
    }
}

impl StableRule {
    pub fn validate(&self) -> Result<(), String> {
        if self.stable_windows < 2 {
            return Err("--stable-windows must be at least 2 (stability compares windows)".into());
        }
        if !(self.stable_tolerance > 0.0 && self.stable_tolerance < 1.0) {
            return Err(format!("--stable-tolerance {} must be within (0, 1)", self.stable_tolerance));
        }
        if !(self.stable_max >= self.stable_windows as f64 && self.stable_max.is_finite()) {
            return Err(format!("--stable-max {} must allow --stable-windows windows of 1 s", self.stable_max));
        }
        Ok(())
    }

    /// The rule in words, for pages that cite it.
    pub fn describe(&self) -> String {
        format!(
            "the measured load, unmeasured, until {} consecutive 1 s windows are within {:.0} % of the highest \
             of them (at most {:.0} s)",
            self.stable_windows,
            self.stable_tolerance * 100.0,
            self.stable_max
        )
    }
}

/// The stability rule: the last `windows` rates (ops/s per window) are all non-zero and within
/// `tolerance` of the highest of them.
pub fn is_stable(rates: &[f64], windows: usize, tolerance: f64) -> bool {
    if windows == 0 || rates.len() < windows {
        return false;
    }
    let last = &rates[rates.len() - windows..];
    let hi = last.iter().copied().fold(0.0, f64::max);
    let lo = last.iter().copied().fold(f64::INFINITY, f64::min);
    lo > 0.0 && (hi - lo) <= tolerance * hi
}

/// What a warm-up took.
#[derive(Clone, Debug, PartialEq)]
pub struct WarmUp {
    pub seconds: f64,
    /// False when --stable-max ran out first.
    pub stable: bool,
    /// Ops/s per window.
    pub rates: Vec<f64>,
}

impl WarmUp {
    pub fn json(&self) -> Value {
        json!({
            "seconds": (self.seconds * 10.0).round() / 10.0,
            "stable": self.stable,
            "window_ops_per_s": self.rates.iter().map(|r| r.round()).collect::<Vec<_>>(),
        })
    }

    /// `12 s` or `60 s (not stable)`.
    pub fn text(&self) -> String {
        format!("{:.0} s{}", self.seconds, if self.stable { "" } else { " (not stable)" })
    }
}

/// Runs `clients` sessions of workload `w` against `servers`, unmeasured, until `rule` holds.
pub fn until_stable(w: &Workload, clients: usize, servers: &[SocketAddr], rule: &StableRule) -> io::Result<WarmUp> {
    let max = Duration::from_secs_f64(rule.stable_max);
    // Nothing is measured: the measured window begins after the longest warm-up allowed.
    let sh = Shared::new(clients, max + WINDOW, Duration::ZERO);
    std::thread::scope(|scope| -> io::Result<WarmUp> {
        let sh = &sh;
        let handles: Vec<_> =
            (0..clients).map(|id| scope.spawn(move || client::client_loop(w, servers, id, sh))).collect();
        sh.go.wait();
        let mut rates = Vec::new();
        let (mut last_done, mut last_t) = (sh.done.load(Ordering::Relaxed), Instant::now());
        let stable = loop {
            std::thread::sleep(WINDOW.saturating_sub(last_t.elapsed()));
            let (done, now) = (sh.done.load(Ordering::Relaxed), Instant::now());
            rates.push((done - last_done) as f64 / (now - last_t).as_secs_f64());
            (last_done, last_t) = (done, now);
            if is_stable(&rates, rule.stable_windows, rule.stable_tolerance) {
                break true;
            }
            if sh.start.elapsed() >= max || crate::target::interrupted() {
                break false;
            }
        };
        let seconds = sh.start.elapsed().as_secs_f64();
        sh.stop.store(true, Ordering::Relaxed);
        for h in handles {
            h.join().map_err(|_| io::Error::other("client thread panicked"))?;
        }
        Ok(WarmUp { seconds, stable, rates })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stable_only_when_the_last_windows_agree() {
        // A JVM warming: rising, then flat within 5 %.
        let jvm = [3000.0, 8000.0, 15000.0, 21000.0, 24000.0, 24500.0, 23800.0, 24200.0, 24900.0];
        assert!(!is_stable(&jvm[..5], 3, 0.05), "still rising");
        assert!(!is_stable(&jvm[..6], 3, 0.05), "21k is more than 5 % below 24.5k");
        assert!(is_stable(&jvm[..7], 3, 0.05));
        assert!(!is_stable(&jvm, 6, 0.05), "six windows reach back to 21k");
        assert!(is_stable(&jvm, 5, 0.05));
    }

    #[test]
    fn edge_cases_of_the_rule() {
        assert!(!is_stable(&[], 3, 0.05));
        assert!(!is_stable(&[100.0, 100.0], 3, 0.05), "fewer windows than asked");
        assert!(!is_stable(&[0.0, 0.0, 0.0], 3, 0.05), "no progress is not stability");
        assert!(!is_stable(&[100.0, 100.0, 100.0], 0, 0.05));
        assert!(is_stable(&[100.0, 95.0, 100.0], 3, 0.05), "exactly 5 % below the highest");
        assert!(!is_stable(&[100.0, 94.9, 100.0], 3, 0.05));
        assert!(is_stable(&[1.0, 500.0, 100.0, 100.0], 2, 0.01), "only the last windows count");
    }

    #[test]
    fn rule_settings_are_checked() {
        let ok = StableRule { stable_windows: 5, stable_tolerance: 0.05, stable_max: 60.0 };
        assert!(ok.validate().is_ok());
        assert!(StableRule { stable_windows: 1, ..ok.clone() }.validate().unwrap_err().contains("stable-windows"));
        assert!(StableRule { stable_tolerance: 0.0, ..ok.clone() }.validate().unwrap_err().contains("tolerance"));
        assert!(StableRule { stable_max: 3.0, ..ok.clone() }.validate().unwrap_err().contains("stable-max"));
        assert!(ok.describe().contains("5 consecutive 1 s windows are within 5 %"));
        let w = WarmUp { seconds: 60.2, stable: false, rates: vec![1.4, 2.6] };
        assert_eq!(w.text(), "60 s (not stable)");
        assert_eq!(w.json()["window_ops_per_s"], json!([1.0, 3.0]));
    }
}
