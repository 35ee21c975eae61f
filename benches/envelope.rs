//! The envelope's own cost: decoding what a spoke sends, encoding what the hub sends.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use wshub::Event;

fn envelope(c: &mut Criterion) {
    let mut group = c.benchmark_group("envelope");
    for (name, payload) in [
        ("64B", json!({"text": "x".repeat(30)})),
        ("4KiB", json!({"text": "x".repeat(4000)})),
        ("nested", json!({"a": [1, 2.5, {"b": [true, null, "c"]}], "n": 12345678901234567890u64})),
    ] {
        let event = Event::new("chat.message", "room-1", payload);
        let text = event.to_json();
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(format!("encode/{name}"), |b| b.iter(|| black_box(&event).to_json()));
        group.bench_function(format!("decode/{name}"), |b| b.iter(|| Event::from_json(black_box(text.as_bytes()))));
    }
    group.finish();
}

criterion_group!(benches, envelope);
criterion_main!(benches);
