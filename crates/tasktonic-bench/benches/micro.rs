//! Criterion micro-benchmarks of the hot paths: codec encode/decode, timer arm/cancel with 0 and
//! 1M live timers, sparkle enqueue/dequeue.
#![allow(missing_docs)]

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{Criterion, criterion_group, criterion_main};
use tasktonic_core::{Contract, Ctx, Distiller, Timer, Tonic};
use tasktonic_net::codec::{Decoder, Encoder, LengthDelimited, Lines};

fn codecs(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");
    for size in [64usize, 4096] {
        let payload = Bytes::from(vec![7u8; size]);
        g.bench_function(format!("u32 encode+decode {size} B"), |b| {
            let mut codec = LengthDelimited::new();
            let mut buf = BytesMut::with_capacity(64 * 1024);
            b.iter(|| {
                codec.encode(&payload, &mut buf).expect("encodable");
                std::hint::black_box(codec.decode(&mut buf).expect("decodes"));
            });
        });
    }
    g.bench_function("lines encode+decode 64 B", |b| {
        let mut codec = Lines::new();
        let line = "x".repeat(64);
        let mut buf = BytesMut::with_capacity(64 * 1024);
        b.iter(|| {
            codec.encode(&line, &mut buf).expect("encodable");
            std::hint::black_box(codec.decode(&mut buf).expect("decodes"));
        });
    });
    g.finish();
}

struct Idle;
impl Tonic for Idle {
    type State = ();
}

fn timers(c: &mut Criterion) {
    let mut g = c.benchmark_group("timer");
    for live in [0u64, 1_000_000] {
        let mut d = Distiller::new();
        let h = d.spawn(Idle);
        d.run(Contract::new().sparkles(1));
        d.inspect(&h, |_, ctx| {
            for i in 0..live {
                ctx.timer(Timer::once(
                    Duration::from_secs(3600) + Duration::from_nanos(i),
                ));
            }
        });
        g.bench_function(format!("arm+cancel with {live} live"), |b| {
            b.iter(|| {
                d.inspect(&h, |_, ctx| {
                    let id = ctx.timer(Timer::once(Duration::from_secs(1800)));
                    ctx.cancel_timer(id);
                })
            });
        });
    }
    g.finish();
}

#[derive(Default)]
struct Counter(u64);
impl Tonic for Counter {
    type State = ();
}

fn sparkles(c: &mut Criterion) {
    let mut d = Distiller::new();
    let h = d.spawn(Counter::default());
    d.run(Contract::new().sparkles(1));
    c.bench_function("sparkle enqueue+run (same thread)", |b| {
        b.iter(|| {
            let _ = h.sparkle(|c: &mut Counter, _: &mut Ctx<Counter>| c.0 += 1);
            d.run(Contract::new().sparkles(1));
        });
    });
}

criterion_group!(benches, codecs, timers, sparkles);
criterion_main!(benches);
