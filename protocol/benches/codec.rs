//! Decode and encode throughput of the frame codec beside
//! `aws-smithy-eventstream`, in the same run so that both see the same
//! machine state.
//!
//! The message is what a subscriber receives most: a SubscribeToTopic event
//! with the five headers the server sends on it, at two payload sizes (a small
//! JSON event and a 64 KiB binary one). Both decoders start from a `Bytes`
//! holding exactly one frame, so both can slice rather than copy; both
//! encoders append to a buffer whose capacity survives between iterations.

use std::hint::black_box;

use aws_smithy_eventstream::frame::{read_message_from, write_message_to};
use bytes::{Bytes, BytesMut};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ggipc_protocol::frame::{self, DEFAULT_MAX_DECODE_LEN, DEFAULT_MAX_ENCODE_LEN};
use ggipc_protocol::{Message, StrBytes, rpc};

const SIZES: [(&str, usize); 2] = [("100B", 100), ("64KiB", 64 * 1024)];

fn event(payload_len: usize) -> Message {
    rpc::application_message(
        1,
        StrBytes::from_static("aws.greengrass#SubscriptionResponseMessage"),
        Bytes::from(vec![b'x'; payload_len]),
        false,
    )
}

fn decode(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode");
    for (label, payload_len) in SIZES {
        let bytes =
            frame::encode_to_bytes(&event(payload_len), DEFAULT_MAX_ENCODE_LEN).expect("encodable");
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_with_input(BenchmarkId::new("ggipc", label), &bytes, |b, bytes| {
            b.iter(|| frame::decode(black_box(bytes.clone()), DEFAULT_MAX_DECODE_LEN).unwrap());
        });
        group.bench_with_input(BenchmarkId::new("smithy", label), &bytes, |b, bytes| {
            b.iter(|| read_message_from(black_box(bytes.clone())).unwrap());
        });
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let mut group = c.benchmark_group("encode");
    for (label, payload_len) in SIZES {
        let ours = event(payload_len);
        let bytes = frame::encode_to_bytes(&ours, DEFAULT_MAX_ENCODE_LEN).expect("encodable");
        // The same message in smithy's types, by its own decoder.
        let theirs = read_message_from(bytes.clone()).expect("smithy decodes");
        group.throughput(Throughput::Bytes(bytes.len() as u64));
        group.bench_function(BenchmarkId::new("ggipc", label), |b| {
            let mut dst = BytesMut::with_capacity(bytes.len());
            b.iter(|| {
                dst.clear();
                frame::encode(black_box(&ours), DEFAULT_MAX_ENCODE_LEN, &mut dst).unwrap();
                black_box(&dst);
            });
        });
        group.bench_function(BenchmarkId::new("smithy", label), |b| {
            let mut dst = Vec::with_capacity(bytes.len());
            b.iter(|| {
                dst.clear();
                write_message_to(black_box(&theirs), &mut dst).unwrap();
                black_box(&dst);
            });
        });
    }
    group.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
