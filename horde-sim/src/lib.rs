//! `horde-sim`: the kudos economy as a simulation.
//!
//! The real `horde-core` runs with a simulated clock (one step a second) and agents: honest
//! workers of several sizes at realistic speeds, farmers of every kind the horde defends
//! against, and requesters of each class at a chosen load. A run writes a report (markdown and
//! SVG plots) and checks the economy's invariants. Deterministic for a seed.
//!
//! ```
//! let report = horde_sim::simulate(horde_core::HordeConfig::default(), 600, 1, 0.8, 600);
//! assert!(report.hours > 0.1);
//! ```

#![forbid(unsafe_code)]

pub mod report;
mod svg;
mod text;
pub mod world;

pub use report::Report;
pub use world::World;

/// Runs `seconds` of a horde on `config` with `seed`, arrivals keeping its honest workers
/// `load` busy; `bound_secs` is the longest wait the invariants allow.
pub fn simulate(
    config: horde_core::HordeConfig,
    seconds: u64,
    seed: u64,
    load: f64,
    bound_secs: u64,
) -> Report {
    let mut world = World::new(config, load, seed);
    world.run(seconds);
    Report::of(&world, seed, load, bound_secs)
}
