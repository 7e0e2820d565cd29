//! Heap bytes held by one model core of 20 numeric features after 2,500 events, part by part.
//!
//!     cargo run --release --no-default-features --example model_heap
//!
//! A counting allocator measures what each part keeps allocated (what `benchmarks.memory`
//! cannot separate from Python's objects and the allocator's free lists).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Arc;

use _native::decode::{Decoder, Limits, Prediction};
use _native::detectors::SignalKind;
use _native::features::{Kind, NumericRef, Reference};
use _native::model::{Config, ModelCore, Pause};
use _native::windows::Windows;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

const FEATURES: usize = 20;

/// A deterministic value in [-3, 3) for event `i`, feature `j`.
fn value(i: u64, j: u64) -> f64 {
    let mut x =
        i.wrapping_mul(6_364_136_223_846_793_005) ^ j.wrapping_mul(1_442_695_040_888_963_407);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    (x >> 11) as f64 / (1u64 << 53) as f64 * 6.0 - 3.0
}

fn reference() -> Reference {
    let edges: Vec<f64> = (1..100)
        .map(|p| -3.0 + 6.0 * f64::from(p) / 100.0)
        .collect();
    let coarse_of: Vec<u32> = (0..100).map(|b| b / 10).collect();
    let reference = NumericRef::new(edges, &[10.0; 100], &coarse_of, (-3.0, 3.0, 1.7));
    Reference::Numeric(Arc::new(reference.expect("a consistent reference")))
}

fn main() {
    let names: Vec<String> = (0..FEATURES).map(|j| format!("n{j}")).collect();
    let events: Vec<Prediction> = (0..2_500u64)
        .map(|i| {
            let features: Vec<String> = names
                .iter()
                .enumerate()
                .map(|(j, n)| format!("\"{n}\":{}", value(i, j as u64)))
                .collect();
            let text = format!(
                r#"{{"event_id":"e{i}","model_id":"m","timestamp":{},"features":{{{}}},"prediction":1,"score":{},"latency_ms":{}}}"#,
                1_795_800_000_000 + i,
                features.join(","),
                (value(i, 99) + 3.0) / 6.0,
                1.0 + (value(i, 98) + 3.0) * 10.0,
            );
            Decoder::default()
                .decode(text.as_bytes(), &Limits::default())
                .expect("a valid event")
        })
        .collect();
    let refs: Vec<&Prediction> = events.iter().collect();
    let types: Vec<(String, Kind)> = names.iter().map(|n| (n.clone(), Kind::Numeric)).collect();
    let config = Config {
        warmup_events: 1_000,
        categorical: vec![],
        detector_names: if std::env::var_os("NO_DETECTORS").is_some() {
            vec![]
        } else {
            vec!["adwin".into()]
        },
        detector_delta: 0.002,
        detector_block: 1,
    };
    let windows = Windows::Count {
        size: 1_000,
        index: 0,
        count: 0,
        first: None,
        last: None,
    };
    let start = live();
    let references: Vec<Option<Reference>> = (0..FEATURES).map(|_| Some(reference())).collect();
    let prediction = reference();
    let reference_bytes = live() - start;
    let mut core = ModelCore::new(config, windows, types);
    let detectors = (0..=FEATURES)
        .map(|j| if j < FEATURES { Some(j) } else { None })
        .collect();
    let before_reference = live();
    let types = names.iter().map(|n| (n.clone(), Kind::Numeric)).collect();
    core.set_reference(
        types,
        references,
        SignalKind::Score,
        Some((Kind::Numeric, prediction)),
        detectors,
    );
    let with_reference = live();
    let mut runs = Vec::new();
    for batch in refs.chunks(500) {
        core.begin();
        loop {
            match core.step(batch, &mut runs) {
                Pause::Done => break,
                Pause::Close { .. } | Pause::Warmup(_) => {}
            }
        }
        runs.clear();
    }
    runs.shrink_to_fit();
    let after = live();
    let window_bytes = {
        let (window, _) = core.take_window(core.open[0].0);
        let before = live();
        drop(window);
        before - live()
    };
    println!("references (21 numeric): {reference_bytes} B");
    println!(
        "core, empty: {} B",
        before_reference - start - reference_bytes
    );
    println!("detectors, fresh: {} B", with_reference - before_reference);
    println!(
        "after 2,500 events (detectors, open window, ...): {} B",
        after - with_reference
    );
    println!("  of which the open window: {window_bytes} B");
    println!("total: {} B", after - start);
    println!(
        "sizes: Acc {} B, Detector {} B, Signal {} B, Window {} B",
        std::mem::size_of::<_native::window_acc::Acc>(),
        std::mem::size_of::<_native::detectors::Detector>(),
        std::mem::size_of::<_native::detectors::Signal>(),
        std::mem::size_of::<_native::windows::Window>(),
    );
}
