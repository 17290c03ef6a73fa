//! Feature `metrics`: handles registered with the `metrics` facade when a map is built.

use metrics::{Counter, Gauge, counter, gauge};

use super::StatsSnapshot;

/// Every handle of one map, labelled `map = <name>`.
pub(super) struct Handles {
    gets_hit: Counter,
    gets_miss: Counter,
    inserts: Counter,
    overwrites: Counter,
    removes_hit: Counter,
    removes_miss: Counter,
    computes: Counter,
    clears: Counter,
    entries: Gauge,
    capacity: Gauge,
    hit_ratio: Gauge,
    contended: Option<Counter>,
    wait_seconds: Option<Gauge>,
    shard_skew: Option<Gauge>,
}

impl Handles {
    pub(super) fn new(map: &str, sharded: bool) -> Self {
        let map = map.to_owned();
        Self {
            gets_hit: counter!("mapguard_gets_total", "map" => map.clone(), "result" => "hit"),
            gets_miss: counter!("mapguard_gets_total", "map" => map.clone(), "result" => "miss"),
            inserts: counter!("mapguard_inserts_total", "map" => map.clone()),
            overwrites: counter!("mapguard_overwrites_total", "map" => map.clone()),
            removes_hit: counter!("mapguard_removes_total", "map" => map.clone(), "result" => "hit"),
            removes_miss: counter!("mapguard_removes_total", "map" => map.clone(), "result" => "miss"),
            computes: counter!("mapguard_computes_total", "map" => map.clone()),
            clears: counter!("mapguard_clears_total", "map" => map.clone()),
            entries: gauge!("mapguard_entries", "map" => map.clone()),
            capacity: gauge!("mapguard_capacity", "map" => map.clone()),
            hit_ratio: gauge!("mapguard_hit_ratio", "map" => map.clone()),
            contended: sharded.then(|| counter!("mapguard_contended_total", "map" => map.clone())),
            wait_seconds: sharded
                .then(|| gauge!("mapguard_wait_seconds_total", "map" => map.clone())),
            shard_skew: sharded.then(|| gauge!("mapguard_shard_skew", "map" => map.clone())),
        }
    }

    pub(super) fn publish(&self, s: &StatsSnapshot) {
        self.gets_hit.absolute(s.gets_hit);
        self.gets_miss.absolute(s.gets_miss);
        self.inserts.absolute(s.inserts);
        self.overwrites.absolute(s.overwrites);
        self.removes_hit.absolute(s.removes_hit);
        self.removes_miss.absolute(s.removes_miss);
        self.computes.absolute(s.computes);
        self.clears.absolute(s.clears);
        self.entries.set(s.len as f64);
        self.capacity.set(s.capacity as f64);
        self.hit_ratio.set(s.hit_rate());
        if let Some(c) = &self.contended {
            c.absolute(s.contended());
        }
        if let Some(g) = &self.wait_seconds {
            g.set(s.wait_ns() as f64 / 1e9);
        }
        if let Some(g) = &self.shard_skew {
            g.set(s.hottest_shard().map_or(1.0, |(_, skew)| skew));
        }
    }
}
