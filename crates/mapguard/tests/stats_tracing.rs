//! Feature `tracing`: `TracingObserver` emits one TRACE event per write with its fields.
#![cfg(feature = "tracing")]

use std::sync::{Arc, Mutex};

use mapguard::ShardedMap;
use mapguard::stats::TracingObserver;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// One event: level, target and fields as text.
type Seen = (Level, String, Vec<(String, String)>);

/// Keeps every event.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<Seen>>>);

struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.push((field.name().to_owned(), value.to_string()));
    }
}

impl Subscriber for Events {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(Vec::new());
        event.record(&mut fields);
        let meta = event.metadata();
        self.0
            .lock()
            .unwrap()
            .push((*meta.level(), meta.target().to_owned(), fields.0));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

#[test]
fn one_trace_event_per_write_with_its_fields() {
    let events = Events::default();
    let map = ShardedMap::builder()
        .name("sessions")
        .shards(4)
        .observer(Arc::new(TracingObserver))
        .build()
        .unwrap();
    tracing::subscriber::with_default(events.clone(), || {
        let line = line!() + 1;
        map.insert(1u64, 1u64);
        map.get(&1); // a read: no event
        map.remove(&1);
        let seen = events.0.lock().unwrap();
        assert_eq!(seen.len(), 2, "{seen:?}");
        let (level, target, fields) = &seen[0];
        assert_eq!((*level, target.as_str()), (Level::TRACE, "mapguard"));
        let field = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("no field {name} in {fields:?}"))
        };
        assert_eq!(field("map"), "sessions");
        assert_eq!(field("op"), "insert");
        use std::hash::BuildHasher;
        // tracing records a present `Option` field as its value.
        assert_eq!(field("key_hash"), map.hasher().hash_one(1u64).to_string());
        assert!(field("shard").parse::<usize>().unwrap() < 4);
        assert_eq!(field("location"), format!("{}:{line}:13", file!()));
        assert!(seen[1].2.iter().any(|(n, v)| n == "op" && v == "remove"));
    });
}
