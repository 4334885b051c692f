//! Publishers and subscribers through a broker: open-loop at a fixed rate
//! or closed-loop at maximum with an in-flight window; latency, loss,
//! duplication and reordering per publisher; broker CPU and peak RSS.
//!
//! Every client runs in the calling thread's runtime (a current-thread
//! runtime pinned to the load generator's core), so coordination between
//! publishers and subscribers costs no cross-core wake-ups.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use tokio::sync::{Notify, watch};
use tokio::time::Instant;

use crate::sampler::{self, PeakSampler};
use crate::servers::{Held, Publisher, Server, Subscriber};
use crate::stamp::{self, Delivery, Receipts, Stamp};

/// How publishers pace themselves.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Mode {
    /// Each publisher sends `rate` messages a second on a schedule, never
    /// waiting for the broker. The send time stamped is when the message
    /// was handed to the client, so neither the client's queue nor a slow
    /// broker hides latency (no coordinated omission).
    Open { rate: u64 },
    /// Each publisher keeps at most `window` messages in flight: sent and
    /// not yet both acknowledged (ggipc's response) and delivered to every
    /// live subscriber. The end-to-end part applies the same flow control
    /// to MQTT QoS 0, which has no acknowledgement, and keeps the brokers'
    /// queues short so that neither drops.
    Closed { window: u64 },
}

/// One flow scenario.
#[derive(Clone, Debug)]
pub(crate) struct FlowSpec {
    pub(crate) publishers: usize,
    pub(crate) subscribers: usize,
    /// Payload bytes (at least [`stamp::HEADER`]).
    pub(crate) size: usize,
    pub(crate) mode: Mode,
    /// How long publishers publish.
    pub(crate) duration: Duration,
    /// Also subscribe one connection that never reads.
    pub(crate) stalled_subscriber: bool,
    pub(crate) topic: String,
    /// Raw protocol clients instead of the client libraries.
    pub(crate) raw: bool,
}

/// What one run measured.
#[derive(Debug)]
pub(crate) struct FlowResult {
    pub(crate) sent: u64,
    /// Distinct deliveries to the live subscribers together.
    pub(crate) delivered: u64,
    pub(crate) published_per_sec: f64,
    pub(crate) deliveries_per_sec: f64,
    pub(crate) latency: Histogram<u64>,
    pub(crate) delivery: Delivery,
    pub(crate) publish_errors: u64,
    /// Events ggipc-client dropped inside the benchmark (should be 0).
    pub(crate) client_dropped: u64,
    /// Share of one core the broker used while messages flowed.
    pub(crate) broker_cpu: f64,
    /// Share of one core the load generator (this process) used.
    pub(crate) load_cpu: f64,
    /// Cores' worth of CPU that other processes of the machine used during
    /// the run: other sessions' builds take the pinned CPUs from the
    /// broker and the load generator.
    pub(crate) other_cpu: f64,
    /// Broker CPU time per published message.
    pub(crate) broker_ns_per_publish: f64,
    pub(crate) peak_rss_kib: u64,
}

/// Deliveries so far, per live subscriber and publisher; publishers wait on
/// it when their window is full.
#[derive(Debug)]
struct Progress {
    /// `delivered[subscriber][publisher]`.
    delivered: Vec<Vec<AtomicU64>>,
    /// One per publisher, notified on each delivery of its messages.
    wake: Vec<Notify>,
}

impl Progress {
    fn new(subscribers: usize, publishers: usize) -> Self {
        Self {
            delivered: (0..subscribers)
                .map(|_| (0..publishers).map(|_| AtomicU64::new(0)).collect())
                .collect(),
            wake: (0..publishers).map(|_| Notify::new()).collect(),
        }
    }

    /// Messages of `publisher` delivered to every subscriber.
    fn delivered_to_all(&self, publisher: usize) -> u64 {
        self.delivered
            .iter()
            .map(|s| s[publisher].load(Ordering::Relaxed))
            .min()
            .unwrap_or(u64::MAX)
    }

    fn record(&self, subscriber: usize, publisher: usize) {
        if let Some(c) = self.delivered[subscriber].get(publisher) {
            c.fetch_add(1, Ordering::Relaxed);
            self.wake[publisher].notify_one();
        }
    }
}

struct PublisherOutcome {
    sent: u64,
    errors: u64,
    /// Kept open until the subscribers are done: rumqttc may still hold
    /// queued QoS 0 messages when its publish futures have completed.
    publisher: Publisher,
}

async fn publish_loop(
    mut publisher: Publisher,
    index: usize,
    spec: Arc<FlowSpec>,
    progress: Arc<Progress>,
    end: Instant,
) -> PublisherOutcome {
    let mut seq = 0u64;
    let stamp = |seq: u64| Stamp {
        publisher: index as u32,
        seq,
        sent_ns: stamp::now_ns(),
    };
    match spec.mode {
        Mode::Closed { window } => loop {
            if Instant::now() >= end {
                break;
            }
            let undelivered = seq.saturating_sub(progress.delivered_to_all(index));
            let room = window.saturating_sub(publisher.unanswered().max(undelivered));
            for _ in 0..room {
                publisher.queue(stamp(seq));
                seq += 1;
            }
            publisher.flush().await;
            if room == 0 || publisher.unanswered() >= window {
                tokio::select! {
                    () = progress.wake[index].notified() => {}
                    () = publisher.answer() => {}
                    () = tokio::time::sleep_until(end) => {}
                }
            } else {
                tokio::task::yield_now().await;
            }
        },
        Mode::Open { rate } => {
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            loop {
                tokio::select! {
                    now = tick.tick() => {
                        if now >= end {
                            break;
                        }
                        publisher.queue(stamp(seq));
                        seq += 1;
                        publisher.flush().await;
                    }
                    () = publisher.answer() => {}
                }
            }
        }
    }
    let errors = publisher.finish().await;
    PublisherOutcome {
        sent: seq,
        errors,
        publisher,
    }
}

/// After the publishers: how many messages each subscriber should get, and
/// until when to wait for them.
type Finish = Option<(u64, Instant)>;

async fn subscribe_loop(
    mut sub: Subscriber,
    index: usize,
    progress: Arc<Progress>,
    mut finish: watch::Receiver<Finish>,
) -> (Receipts, u64) {
    let mut receipts = Receipts::new();
    let on_message = |receipts: &mut Receipts, payload: &[u8]| {
        if let Some(s) = receipts.record(payload) {
            progress.record(index, s.publisher as usize);
        }
    };
    // While publishers run.
    let (expected, until) = loop {
        tokio::select! {
            biased;
            m = sub.next() => match m {
                Some(p) => on_message(&mut receipts, &p),
                None => return (receipts, sub.client_dropped()),
            },
            _ = finish.changed() => {
                if let Some(f) = *finish.borrow() {
                    break f;
                }
            }
        }
    };
    // Draining what is still on its way.
    let _ = tokio::time::timeout_at(until, async {
        while receipts.distinct() < expected {
            match sub.next().await {
                Some(p) => on_message(&mut receipts, &p),
                None => break,
            }
        }
    })
    .await;
    let dropped = sub.client_dropped();
    (receipts, dropped)
}

/// Runs `spec` once against `server`.
pub(crate) async fn run(server: &Server, spec: &FlowSpec) -> FlowResult {
    let spec = Arc::new(spec.clone());
    let pid = server.pid();
    let peak = PeakSampler::start(pid, Duration::from_millis(50));
    let mut subs = Vec::with_capacity(spec.subscribers);
    for _ in 0..spec.subscribers {
        subs.push(server.subscriber(spec.raw, &spec.topic).await);
    }
    let _stalled: Option<Held> = if spec.stalled_subscriber {
        Some(server.stalled_subscriber(&spec.topic).await)
    } else {
        None
    };
    let mut pubs = Vec::with_capacity(spec.publishers);
    for _ in 0..spec.publishers {
        pubs.push(server.publisher(spec.raw, &spec.topic, spec.size).await);
    }
    let progress = Arc::new(Progress::new(spec.subscribers, spec.publishers));
    let (finish_tx, finish_rx) = watch::channel::<Finish>(None);

    let cpu_before = sampler::cpu_ns(pid);
    let own_before = sampler::cpu_ns(std::process::id());
    let machine_before = sampler::machine_busy_ns();
    let started_ns = stamp::now_ns();
    let started = Instant::now();
    let end = started + spec.duration;
    let sub_tasks: Vec<_> = subs
        .into_iter()
        .enumerate()
        .map(|(i, s)| tokio::spawn(subscribe_loop(s, i, progress.clone(), finish_rx.clone())))
        .collect();
    let pub_tasks: Vec<_> = pubs
        .into_iter()
        .enumerate()
        .map(|(i, p)| tokio::spawn(publish_loop(p, i, spec.clone(), progress.clone(), end)))
        .collect();
    let mut sent = Vec::with_capacity(pub_tasks.len());
    let mut publish_errors = 0;
    let mut publishers = Vec::with_capacity(pub_tasks.len());
    for t in pub_tasks {
        let o = t.await.expect("publisher task");
        sent.push(o.sent);
        publish_errors += o.errors;
        publishers.push(o.publisher);
    }
    let total_sent: u64 = sent.iter().sum();
    // Give stragglers time in proportion to what may be queued.
    let drain = Duration::from_secs(2);
    finish_tx.send_replace(Some((total_sent, Instant::now() + drain)));
    let mut latency = stamp::latency_histogram();
    let mut delivery = Delivery::default();
    let mut delivered = 0;
    let mut client_dropped = 0;
    let mut last_ns = started_ns;
    for t in sub_tasks {
        let (receipts, dropped) = t.await.expect("subscriber task");
        latency
            .add(&receipts.latency)
            .expect("same histogram bounds");
        delivery.add(receipts.delivery(&sent));
        delivered += receipts.distinct();
        client_dropped += dropped;
        last_ns = last_ns.max(receipts.last_ns);
    }
    let cpu_after = sampler::cpu_ns(pid);
    let own_after = sampler::cpu_ns(std::process::id());
    let machine_after = sampler::machine_busy_ns();
    drop(publishers);
    let wall = Duration::from_nanos(last_ns.saturating_sub(started_ns)).max(spec.duration);
    // CPU is counted until now, time until the last delivery; the drain
    // wait in between is idle.
    let measured = started.elapsed().as_secs_f64();
    let others = (machine_after - machine_before) as f64
        - (cpu_after - cpu_before) as f64
        - (own_after - own_before) as f64;
    let secs = wall.as_secs_f64();
    FlowResult {
        sent: total_sent,
        delivered,
        published_per_sec: total_sent as f64 / secs,
        deliveries_per_sec: delivered as f64 / secs,
        latency,
        delivery,
        publish_errors,
        client_dropped,
        broker_cpu: (cpu_after - cpu_before) as f64 / 1e9 / secs,
        load_cpu: (own_after - own_before) as f64 / 1e9 / secs,
        other_cpu: (others / 1e9 / measured).max(0.0),
        broker_ns_per_publish: (cpu_after - cpu_before) as f64 / total_sent.max(1) as f64,
        peak_rss_kib: peak.finish(),
    }
}
