//! What a run shows: earnings per worker, waits per requester class, the kudos supply, and
//! the invariants the economy must keep; written as markdown with SVG plots.

use std::fmt::Write;
use std::path::Path;

use horde_core::Kudos;

use crate::svg;
use crate::world::{Behaviour, World, CLASSES};

/// One worker's outcome.
#[derive(Debug, Clone)]
pub struct WorkerLine {
    /// Its name.
    pub name: String,
    /// Its class ("honest 8B", "farmer: claims", …).
    pub class: String,
    /// What it really runs, in billions (0: nothing).
    pub real_b: f64,
    /// Its owner's holdings at the end (the claims workers share one owner).
    pub earned: Kudos,
    /// Its suspicion.
    pub suspicion: u32,
    /// Paused by the horde.
    pub paused: bool,
    /// Honest.
    pub honest: bool,
}

/// Waits of one requester class.
#[derive(Debug, Clone)]
pub struct ClassWaits {
    /// The class.
    pub class: &'static str,
    /// Requests started.
    pub served: usize,
    /// Requests never started (expired, or still waiting at the end).
    pub unserved: usize,
    /// Median, 95th percentile and longest wait, seconds.
    pub p50: u64,
    /// 95th percentile.
    pub p95: u64,
    /// Longest.
    pub max: u64,
}

/// An invariant and whether the run kept it.
#[derive(Debug, Clone)]
pub struct Invariant {
    /// What must hold.
    pub rule: String,
    /// Whether it held.
    pub held: bool,
    /// The figures.
    pub detail: String,
}

/// A run's report.
#[derive(Debug, Clone)]
pub struct Report {
    /// Simulated hours.
    pub hours: f64,
    /// The seed.
    pub seed: u64,
    /// The load on the honest workers.
    pub load: f64,
    /// Workers' outcomes.
    pub workers: Vec<WorkerLine>,
    /// Waits by requester class.
    pub waits: Vec<ClassWaits>,
    /// (hour, kudos the horde's account has given out, net).
    pub supply: Vec<(u64, Kudos)>,
    /// The invariants.
    pub invariants: Vec<Invariant>,
}

impl Report {
    /// The report of `world` after its run; `bound_secs` is the longest wait allowed.
    pub fn of(world: &World, seed: u64, load: f64, bound_secs: u64) -> Report {
        let workers: Vec<WorkerLine> = world
            .agents
            .iter()
            .map(|agent| {
                let worker = world.horde.worker_by_name(&agent.name);
                WorkerLine {
                    name: agent.name.clone(),
                    class: agent.class.clone(),
                    real_b: agent.real_b,
                    earned: world.earned(agent),
                    suspicion: worker.map_or(0, |w| w.suspicion),
                    paused: worker.is_some_and(|w| w.maintenance),
                    honest: agent.behaviour == Behaviour::Honest,
                }
            })
            .collect();
        let waits = CLASSES
            .iter()
            .enumerate()
            .map(|(i, class)| {
                let mut served: Vec<u64> = world
                    .record
                    .waits
                    .iter()
                    .filter(|w| w.class == i)
                    .filter_map(|w| w.secs)
                    .collect();
                let unserved = world
                    .record
                    .waits
                    .iter()
                    .filter(|w| w.class == i && w.secs.is_none())
                    .count();
                served.sort_unstable();
                let at = |q: f64| {
                    if served.is_empty() {
                        0
                    } else {
                        served[((served.len() - 1) as f64 * q).round() as usize]
                    }
                };
                ClassWaits {
                    class,
                    served: served.len(),
                    unserved,
                    p50: at(0.5),
                    p95: at(0.95),
                    max: served.last().copied().unwrap_or(0),
                }
            })
            .collect();
        let mut report = Report {
            hours: world.secs as f64 / 3600.0,
            seed,
            load,
            workers,
            waits,
            supply: world.record.supply.clone(),
            invariants: Vec::new(),
        };
        report.invariants = report.check(world, bound_secs);
        report
    }

    fn check(&self, world: &World, bound_secs: u64) -> Vec<Invariant> {
        let ledger = world.horde.ledger();
        let held: i128 = ledger
            .accounts()
            .map(|(_, a)| i128::from(a.balance.milli()) + i128::from(a.escrow.milli()))
            .sum();
        let granted = -i128::from(ledger.horde_balance().milli());
        let mut invariants = vec![Invariant {
            rule: "the sum of all accounts equals what the horde granted".into(),
            held: held == granted,
            detail: format!("{} held, {} granted (thousandths)", held, granted),
        }];
        let honest_best = |real_b: f64| {
            self.workers
                .iter()
                .filter(|w| w.honest && w.real_b >= real_b && !w.class.contains("trusted"))
                .map(|w| w.earned)
                .min()
                .unwrap_or(Kudos::ZERO)
        };
        for farmer in self.workers.iter().filter(|w| !w.honest) {
            let bound = if farmer.real_b > 0.0 {
                honest_best(farmer.real_b)
            } else {
                Kudos::ZERO
            };
            invariants.push(Invariant {
                rule: format!(
                    "{} ({}) earns at most an honest worker of its real capacity",
                    farmer.name, farmer.class
                ),
                held: farmer.earned <= bound,
                detail: format!("earned {}, bound {}", farmer.earned, bound),
            });
        }
        let suspected: Vec<&str> = self
            .workers
            .iter()
            .filter(|w| w.honest && (w.suspicion > 0 || w.paused))
            .map(|w| w.name.as_str())
            .collect();
        invariants.push(Invariant {
            rule: "no honest worker is ever suspected".into(),
            held: suspected.is_empty(),
            detail: if suspected.is_empty() {
                "none".into()
            } else {
                suspected.join(", ")
            },
        });
        for waits in self.waits.iter().filter(|w| w.class != "hoarder") {
            invariants.push(Invariant {
                rule: format!("every {} request starts within {bound_secs} s", waits.class),
                held: waits.max <= bound_secs && waits.unserved == 0,
                detail: format!("longest {} s, {} never started", waits.max, waits.unserved),
            });
        }
        invariants
    }

    /// Returns true if and only if every invariant held.
    pub fn passed(&self) -> bool {
        self.invariants.iter().all(|i| i.held)
    }

    /// The markdown summary.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "# horde-sim report\n\n{:.1} simulated hours, seed {}, honest workers {:.0}% busy \
             by arrivals.\n",
            self.hours,
            self.seed,
            self.load * 100.0
        );
        let _ = writeln!(
            md,
            "## Invariants\n\n| held | rule | figures |\n|---|---|---|"
        );
        for i in &self.invariants {
            let mark = if i.held { "yes" } else { "**NO**" };
            let _ = writeln!(md, "| {mark} | {} | {} |", i.rule, i.detail);
        }
        let _ = writeln!(
            md,
            "\n## Earnings per worker\n\n![earnings](earnings.svg)\n\n\
             | worker | class | earned (kudos) | suspicion | paused |\n|---|---|---|---|---|"
        );
        for w in &self.workers {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} |",
                w.name, w.class, w.earned, w.suspicion, w.paused
            );
        }
        let _ = writeln!(
            md,
            "\n## Waits per requester class\n\n![waits](waits.svg)\n\n\
             Seconds from queueing to a worker starting the request.\n\n\
             | class | started | never started | median | 95th percentile | longest |\n\
             |---|---|---|---|---|---|"
        );
        for w in &self.waits {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} s | {} s | {} s |",
                w.class, w.served, w.unserved, w.p50, w.p95, w.max
            );
        }
        let _ = writeln!(
            md,
            "\n## Kudos supply\n\n![supply](supply.svg)\n\nWhat the horde's account has \
             given out, net (uptime, spot checks and grants, less forfeits)."
        );
        if let Some((hour, supply)) = self.supply.last() {
            let _ = writeln!(md, "\nAfter {hour} hours: {supply} kudos.");
        }
        md
    }

    /// Writes `report.md` and its plots into `dir`.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join("report.md"), self.markdown())?;
        let points: Vec<(f64, f64)> = self
            .supply
            .iter()
            .map(|(h, k)| (*h as f64, k.milli() as f64 / 1000.0))
            .collect();
        std::fs::write(
            dir.join("supply.svg"),
            svg::line("Kudos supply", "hours", "kudos", &points),
        )?;
        let rows: Vec<(String, Vec<f64>)> = self
            .workers
            .iter()
            .map(|w| (w.name.clone(), vec![w.earned.milli() as f64 / 1000.0]))
            .collect();
        std::fs::write(
            dir.join("earnings.svg"),
            svg::bars("Earnings per worker", "kudos", &rows, &["steelblue"]),
        )?;
        let rows: Vec<(String, Vec<f64>)> = self
            .waits
            .iter()
            .map(|w| {
                (
                    w.class.to_string(),
                    vec![w.p50 as f64, w.p95 as f64, w.max as f64],
                )
            })
            .collect();
        std::fs::write(
            dir.join("waits.svg"),
            svg::bars(
                "Waits per class: median, 95th percentile, longest",
                "s",
                &rows,
                &["seagreen", "goldenrod", "firebrick"],
            ),
        )?;
        Ok(())
    }
}
