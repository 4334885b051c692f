//! The raw floor: the same stamped payloads written and read over a plain
//! Unix socket pair, no broker, no protocol beyond a 4-byte length.
//!
//! A writer thread on the load generator's core writes each message with
//! its own `write` (as the A.4 measurement of `benchmarks.md` did), a reader
//! thread on the broker's core reads 64 KiB at a time. Closed-loop the
//! socket buffer is the only window; open-loop the writer sleeps until each
//! message is due.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::flow::{FlowResult, Mode};
use crate::stamp::{self, Delivery, Receipts, Stamp};
use crate::{pin, sampler};

pub(crate) fn run(size: usize, mode: Mode, duration: Duration, pinned: bool) -> FlowResult {
    let (mut tx, mut rx) = UnixStream::pair().expect("socket pair");
    // The threads are gone when the run ends, and with them their
    // schedstat; /proc/<pid>/stat keeps the time of exited threads.
    let own_cpu = || sampler::sample(std::process::id()).map_or(0, |s| s.cpu.as_nanos() as u64);
    let own_before = own_cpu();
    let machine_before = sampler::machine_busy_ns();
    let measure_start = Instant::now();
    let started_ns = stamp::now_ns();
    let writer = std::thread::spawn(move || {
        pin::set_current(pinned.then_some(pin::LOAD_CPU));
        let size = size.max(stamp::HEADER);
        let mut frame = vec![0u8; 4 + size];
        frame[..4].copy_from_slice(&(size as u32).to_be_bytes());
        frame[4..].copy_from_slice(&stamp::payload(
            size,
            Stamp {
                publisher: 0,
                seq: 0,
                sent_ns: 0,
            },
        ));
        let started = Instant::now();
        let end = started + duration;
        let mut seq = 0u64;
        loop {
            let now = Instant::now();
            if now >= end {
                break;
            }
            if let Mode::Open { rate } = mode {
                let due = started + Duration::from_secs_f64(seq as f64 / rate as f64);
                if due > now {
                    std::thread::sleep(due - now);
                }
            }
            stamp::write_stamp(
                &mut frame[4..],
                Stamp {
                    publisher: 0,
                    seq,
                    sent_ns: stamp::now_ns(),
                },
            );
            tx.write_all(&frame).expect("write to socket pair");
            seq += 1;
        }
        seq
    });
    let reader = std::thread::spawn(move || {
        pin::set_current(pinned.then_some(pin::BROKER_CPU));
        let mut receipts = Receipts::new();
        let mut buf = vec![0u8; 64 * 1024 + 4 + size];
        let (mut start, mut end) = (0usize, 0usize);
        loop {
            // Whole frames in the buffer.
            while end - start >= 4 {
                let len = u32::from_be_bytes(buf[start..start + 4].try_into().unwrap()) as usize;
                if end - start < 4 + len {
                    break;
                }
                receipts.record(&buf[start + 4..start + 4 + len]);
                start += 4 + len;
            }
            if start == end {
                (start, end) = (0, 0);
            } else if buf.len() - end < 64 * 1024 {
                buf.copy_within(start..end, 0);
                (start, end) = (0, end - start);
            }
            match rx.read(&mut buf[end..]) {
                Ok(0) => break,
                Ok(n) => end += n,
                Err(e) => panic!("read from socket pair: {e}"),
            }
        }
        receipts
    });
    let sent = writer.join().expect("floor writer");
    let receipts = reader.join().expect("floor reader");
    let others = sampler::machine_busy_ns().saturating_sub(machine_before) as f64
        - own_cpu().saturating_sub(own_before) as f64;
    let other_cpu = (others / 1e9 / measure_start.elapsed().as_secs_f64()).max(0.0);
    let secs = Duration::from_nanos(receipts.last_ns.saturating_sub(started_ns))
        .max(duration)
        .as_secs_f64();
    let delivered = receipts.distinct();
    let mut delivery = Delivery::default();
    delivery.add(receipts.delivery(&[sent]));
    FlowResult {
        sent,
        delivered,
        published_per_sec: sent as f64 / secs,
        deliveries_per_sec: delivered as f64 / secs,
        latency: receipts.latency,
        delivery,
        publish_errors: 0,
        client_dropped: 0,
        broker_cpu: 0.0,
        load_cpu: 0.0,
        other_cpu,
        broker_ns_per_publish: 0.0,
        peak_rss_kib: 0,
    }
}
