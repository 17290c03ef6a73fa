//! Feature `metrics`: handles are registered when the map is built, values flow on
//! `publish_metrics()`.
#![cfg(feature = "metrics")]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder, SharedString,
    Unit,
};

/// One registered series: its value as last set (gauges as f64 bits).
#[derive(Default)]
struct Cell(AtomicU64);

impl CounterFn for Cell {
    fn increment(&self, value: u64) {
        self.0.fetch_add(value, Ordering::Relaxed);
    }
    fn absolute(&self, value: u64) {
        self.0.store(value, Ordering::Relaxed);
    }
}

impl GaugeFn for Cell {
    fn increment(&self, _: f64) {}
    fn decrement(&self, _: f64) {}
    fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }
}

/// Records every registration: `"name{label=value,...}"` to its cell.
#[derive(Default)]
struct Capture(Mutex<BTreeMap<String, Arc<Cell>>>);

impl Capture {
    fn cell(&self, key: &Key) -> Arc<Cell> {
        let labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        let name = format!("{}{{{}}}", key.name(), labels.join(","));
        self.0.lock().unwrap().entry(name).or_default().clone()
    }

    fn value(&self, name: &str) -> u64 {
        let series = self.0.lock().unwrap();
        let cell = series
            .get(name)
            .unwrap_or_else(|| panic!("{name} not in {:?}", series.keys()));
        cell.0.load(Ordering::Relaxed)
    }
}

impl Recorder for Capture {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.cell(key))
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.cell(key))
    }
    fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::noop()
    }
}

#[test]
fn handles_are_registered_at_build_and_set_on_publish() {
    let capture = Capture::default();
    let map = metrics::with_local_recorder(&capture, || {
        mapguard::ShardedMap::builder()
            .name("sessions")
            .stats(true)
            .build()
            .unwrap()
    });
    let registered = capture.0.lock().unwrap().len();
    assert!(registered >= 11, "{registered} series registered at build");
    // Operations touch no handle: nothing moves until publish.
    map.insert(1, 1);
    map.insert(2, 2);
    map.get(&3);
    assert_eq!(capture.value("mapguard_inserts_total{map=sessions}"), 0);
    let snapshot = map.publish_metrics().unwrap();
    assert_eq!(
        capture.0.lock().unwrap().len(),
        registered,
        "publish registers nothing new"
    );
    assert_eq!(capture.value("mapguard_inserts_total{map=sessions}"), 2);
    assert_eq!(
        capture.value("mapguard_gets_total{map=sessions,result=miss}"),
        1
    );
    assert_eq!(
        f64::from_bits(capture.value("mapguard_entries{map=sessions}")),
        2.0
    );
    assert_eq!(snapshot.inserts, 2);
    // Without statistics nothing is registered.
    let quiet = Capture::default();
    let map = metrics::with_local_recorder(&quiet, mapguard::ShardedMap::<u8, u8>::new);
    assert!(map.publish_metrics().is_none());
    assert!(quiet.0.lock().unwrap().is_empty());
}
