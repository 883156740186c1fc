//! `/metrics`: the server's figures in the Prometheus/OpenMetrics text format, for operators.
//!
//! Requests by endpoint and status with latency histograms, the core lock's hold times (and
//! the longest), group commits (batches per commit, commit latency), kudos moved by kind and
//! minted by the horde, and — read at scrape time — queue depth per model and workers online.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// A request's labels.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route, as declared (`/api/v2/generate/text/status/{id}`), so ids do not multiply
    /// the series.
    pub endpoint: String,
    /// The HTTP method.
    pub method: String,
    /// The status code.
    pub status: u16,
}

/// An endpoint's labels (latency).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabels {
    /// The route.
    pub endpoint: String,
}

/// A posting kind's label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `generation`, `uptime`, `transfer`, `admin` or `release`.
    pub kind: String,
}

/// The `model` label of the queue depth of every model no worker serves and the reference
/// does not know.
const OTHER_MODELS: &str = "other";

/// A model's label.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    /// The model name.
    pub model: String,
}

type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    // 0.1 ms to ~3 s.
    Histogram::new(exponential_buckets(0.0001, 2.0, 16))
}

/// Every figure the server keeps.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Histograms<EndpointLabels>,
    lock_hold: Histogram,
    lock_hold_max_us: AtomicU64,
    lock_hold_max: Gauge<f64, AtomicU64>,
    commit_batches: Histogram,
    commit_latency: Histogram,
    kudos_moved: Family<KindLabels, Counter<f64, AtomicU64>>,
    kudos_minted: Family<KindLabels, Counter<f64, AtomicU64>>,
    queue_depth: Family<ModelLabels, Gauge>,
    queued_total: Gauge,
    workers_online: Gauge,
    threads_online: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Fresh figures, registered under the `horde` prefix.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("horde");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by endpoint, method and status",
            requests.clone(),
        );
        let latency: Histograms<EndpointLabels> = Family::new_with_constructor(latency_histogram);
        registry.register(
            "http_request_seconds",
            "HTTP request latency by endpoint",
            latency.clone(),
        );
        let lock_hold = latency_histogram();
        registry.register(
            "core_lock_hold_seconds",
            "How long each call held the core lock",
            lock_hold.clone(),
        );
        let lock_hold_max = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "core_lock_hold_max_seconds",
            "The longest hold of the core lock since start",
            lock_hold_max.clone(),
        );
        let commit_batches = Histogram::new(exponential_buckets(1.0, 2.0, 13));
        registry.register(
            "commit_batches",
            "Requests' batches written by one group commit",
            commit_batches.clone(),
        );
        let commit_latency = latency_histogram();
        registry.register(
            "commit_seconds",
            "Time to write and commit one group",
            commit_latency.clone(),
        );
        let kudos_moved = Family::<KindLabels, Counter<f64, AtomicU64>>::default();
        registry.register(
            "kudos_moved",
            "Kudos moved by postings, by kind",
            kudos_moved.clone(),
        );
        let kudos_minted = Family::<KindLabels, Counter<f64, AtomicU64>>::default();
        registry.register(
            "kudos_minted",
            "Kudos paid out by the horde account (uptime, admin), by kind",
            kudos_minted.clone(),
        );
        let queue_depth = Family::<ModelLabels, Gauge>::default();
        registry.register(
            "queued_generations_by_model",
            "Waiting generations that name a model",
            queue_depth.clone(),
        );
        let queued_total = Gauge::default();
        registry.register(
            "queued_generations",
            "Waiting generations",
            queued_total.clone(),
        );
        let workers_online = Gauge::default();
        registry.register("workers_online", "Workers online", workers_online.clone());
        let threads_online = Gauge::default();
        registry.register(
            "threads_online",
            "Threads of the workers online",
            threads_online.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            lock_hold,
            lock_hold_max_us: AtomicU64::new(0),
            lock_hold_max,
            commit_batches,
            commit_latency,
            kudos_moved,
            kudos_minted,
            queue_depth,
            queued_total,
            workers_online,
            threads_online,
        }
    }

    /// Counts a finished HTTP request.
    pub fn request(&self, labels: RequestLabels, elapsed: Duration) {
        self.latency
            .get_or_create(&EndpointLabels {
                endpoint: labels.endpoint.clone(),
            })
            .observe(elapsed.as_secs_f64());
        self.requests.get_or_create(&labels).inc();
    }

    /// Records one hold of the core lock.
    pub fn lock_held(&self, held: Duration) {
        self.lock_hold.observe(held.as_secs_f64());
        let micros = u64::try_from(held.as_micros()).unwrap_or(u64::MAX);
        let before = self.lock_hold_max_us.fetch_max(micros, Ordering::Relaxed);
        if micros > before {
            self.lock_hold_max.set(micros as f64 / 1e6);
        }
    }

    /// Records one group commit.
    pub fn committed(&self, batches: usize, elapsed: Duration) {
        self.commit_batches.observe(batches as f64);
        self.commit_latency.observe(elapsed.as_secs_f64());
    }

    /// Records a posting.
    pub fn posted(&self, posting: &horde_core::Posting) {
        let kind = match posting.kind {
            horde_core::PostingKind::Generation => "generation",
            horde_core::PostingKind::Uptime => "uptime",
            horde_core::PostingKind::Transfer => "transfer",
            horde_core::PostingKind::Admin => "admin",
            horde_core::PostingKind::Award => "award",
            horde_core::PostingKind::Release => "release",
            horde_core::PostingKind::Forfeit => "forfeit",
        };
        let labels = KindLabels { kind: kind.into() };
        let amount = posting.amount.as_f64();
        self.kudos_moved.get_or_create(&labels).inc_by(amount);
        if posting.from == horde_core::Account::Horde {
            self.kudos_minted.get_or_create(&labels).inc_by(amount);
        }
    }

    /// Sets the gauges read from the core (under its lock; O(models)).
    pub fn observe_core(&self, horde: &horde_core::Horde, now: horde_core::Timestamp) {
        let (workers, threads) = horde.online_capacity(now);
        self.workers_online
            .set(i64::try_from(workers).unwrap_or(i64::MAX));
        self.threads_online
            .set(i64::try_from(threads).unwrap_or(i64::MAX));
        let (queued, _) = horde.queued_totals();
        self.queued_total
            .set(i64::try_from(queued).unwrap_or(i64::MAX));
        self.queue_depth.clear();
        // One series per model a worker serves or the reference knows, and one (`other`) for
        // names only requests give: clients cannot multiply the series.
        let (listed, other) = horde.listed_model_stats(now);
        let depths = listed
            .into_iter()
            .map(|stats| (stats.name.to_string(), stats.queued))
            .chain(std::iter::once((OTHER_MODELS.to_owned(), other.queued)));
        for (model, queued) in depths {
            if queued > 0 {
                self.queue_depth
                    .get_or_create(&ModelLabels { model })
                    .set(i64::try_from(queued).unwrap_or(i64::MAX));
            }
        }
    }

    /// The text exposition (outside the core's lock).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}
