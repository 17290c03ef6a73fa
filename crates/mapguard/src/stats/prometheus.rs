//! [`StatsSnapshot::to_prometheus`]: the Prometheus text exposition format, by hand.

use std::fmt::Write;

use super::StatsSnapshot;

/// Escapes a label value: backslash, double quote and line feed.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

struct Out {
    text: String,
    map: String,
}

impl Out {
    fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP mapguard_{name} {help}");
        let _ = writeln!(self.text, "# TYPE mapguard_{name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, String)], value: impl std::fmt::Display) {
        let _ = write!(self.text, "mapguard_{name}{{map=\"{}\"", self.map);
        for (key, val) in labels {
            let _ = write!(self.text, ",{key}=\"{}\"", escape(val));
        }
        let _ = writeln!(self.text, "}} {value}");
    }
}

impl StatsSnapshot {
    /// The snapshot in the Prometheus text exposition format (version 0.0.4), every sample
    /// labelled `map="<name>"` (`"unnamed"` without a name) and named `mapguard_*`; serve it
    /// with `Content-Type: text/plain; version=0.0.4` from any HTTP framework.
    ///
    /// Families: `gets_total{result}`, `inserts_total`, `overwrites_total`,
    /// `removes_total{result}`, `computes_total`, `clears_total`, `entries`, `capacity`,
    /// `hit_ratio`, `shard_entries{shard}`, `shard_write_locks_total{shard}`,
    /// `shard_read_locks_estimate{shard}`, `shard_contended_total{shard}`,
    /// `shard_wait_seconds_total{shard}`, `shard_skew`, `hot_key_accesses_estimate{rank,hash,key}`.
    ///
    /// # Examples
    /// ```
    /// let map = mapguard::ShardedMap::builder().name("sessions").stats(true).build()?;
    /// map.insert(1, 1);
    /// let text = map.stats().unwrap().to_prometheus();
    /// assert!(text.contains("mapguard_inserts_total{map=\"sessions\"} 1\n"));
    /// # Ok::<(), mapguard::BuildError>(())
    /// ```
    pub fn to_prometheus(&self) -> String {
        let mut out = Out {
            text: String::new(),
            map: escape(self.name.as_deref().unwrap_or("unnamed")),
        };
        let hit = || vec![("result", "hit".to_owned())];
        let miss = || vec![("result", "miss".to_owned())];
        out.family(
            "gets_total",
            "counter",
            "Lookups, by whether the key was found.",
        );
        out.sample("gets_total", &hit(), self.gets_hit);
        out.sample("gets_total", &miss(), self.gets_miss);
        let plain: [(&str, u64, &str); 4] = [
            ("inserts_total", self.inserts, "Writes that added a key."),
            (
                "overwrites_total",
                self.overwrites,
                "Inserts that replaced a value.",
            ),
            ("computes_total", self.computes, "Read-modify-write calls."),
            ("clears_total", self.clears, "Clear calls."),
        ];
        for (name, value, help) in plain {
            out.family(name, "counter", help);
            out.sample(name, &[], value);
        }
        out.family(
            "removes_total",
            "counter",
            "Removals, by whether an entry was removed.",
        );
        out.sample("removes_total", &hit(), self.removes_hit);
        out.sample("removes_total", &miss(), self.removes_miss);
        out.family("entries", "gauge", "Entries in the map.");
        out.sample("entries", &[], self.len);
        out.family(
            "capacity",
            "gauge",
            "Entries the map holds before it grows.",
        );
        out.sample("capacity", &[], self.capacity);
        out.family(
            "hit_ratio",
            "gauge",
            "Share of lookups that found their key.",
        );
        out.sample("hit_ratio", &[], self.hit_rate());
        if !self.shards.is_empty() {
            type Figure = fn(&super::ShardStats) -> String;
            let per_shard: [(&str, &str, &str, Figure); 5] = [
                ("shard_entries", "gauge", "Entries in the shard.", |s| {
                    s.entries.to_string()
                }),
                (
                    "shard_write_locks_total",
                    "counter",
                    "Write-lock acquisitions (exact).",
                    |s| s.write_locks.to_string(),
                ),
                (
                    "shard_read_locks_estimate",
                    "gauge",
                    "Read-lock acquisitions, estimated from samples.",
                    |s| s.read_locks_estimate.to_string(),
                ),
                (
                    "shard_contended_total",
                    "counter",
                    "Acquisitions that waited.",
                    |s| s.contended.to_string(),
                ),
                (
                    "shard_wait_seconds_total",
                    "counter",
                    "Time spent waiting.",
                    |s| (s.wait_ns as f64 / 1e9).to_string(),
                ),
            ];
            for (name, kind, help, figure) in per_shard {
                out.family(name, kind, help);
                for shard in &self.shards {
                    out.sample(name, &[("shard", shard.index.to_string())], figure(shard));
                }
            }
            out.family(
                "shard_skew",
                "gauge",
                "Operations of the hottest shard over the mean.",
            );
            out.sample(
                "shard_skew",
                &[],
                self.hottest_shard().map_or(1.0, |(_, skew)| skew),
            );
        }
        if !self.hot_keys.is_empty() {
            out.family(
                "hot_key_accesses_estimate",
                "gauge",
                "Estimated accesses of the most accessed keys (sampled).",
            );
            for (rank, hot) in self.hot_keys.iter().enumerate() {
                let mut labels = vec![
                    ("rank", (rank + 1).to_string()),
                    ("hash", format!("{:016x}", hot.hash)),
                ];
                if let Some(key) = &hot.key {
                    labels.push(("key", key.clone()));
                }
                out.sample("hot_key_accesses_estimate", &labels, hot.count);
            }
        }
        out.text
    }
}
