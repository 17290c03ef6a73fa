//! Feature `usdt`: the probes are in the binary as SystemTap SDT notes.
#![cfg(all(feature = "usdt", target_os = "linux"))]

use std::process::Command;

use mapguard::{LockedMap, ReadMostlyMap, ShardedMap};

#[test]
fn probe_notes_are_in_the_binary() {
    // Instantiate every probed path in this binary.
    let map = ShardedMap::new();
    map.insert(1u64, 1u64);
    assert!(map.get(&1).is_some());
    map.remove(&1);
    let locked = LockedMap::new();
    locked.insert(1u64, 1u64);
    locked.remove(&1);
    let read_mostly = ReadMostlyMap::new();
    read_mostly.insert(1u64, 1u64);
    read_mostly.remove(&1);

    let exe = std::env::current_exe().expect("the test binary's path");
    let output = match Command::new("readelf").arg("-n").arg(&exe).output() {
        Ok(output) => output,
        Err(err) => {
            println!("skipped: readelf could not run ({err}); install binutils to check probes");
            return;
        }
    };
    assert!(output.status.success(), "readelf failed: {output:?}");
    let notes = String::from_utf8_lossy(&output.stdout);
    assert!(
        notes.contains("stapsdt"),
        "no SDT notes in {}",
        exe.display()
    );
    for probe in ["insert", "remove", "write", "lock_contended"] {
        let found = notes
            .lines()
            .any(|line| line.trim() == format!("Name: {probe}"))
            && notes.contains("Provider: mapguard");
        assert!(
            found,
            "probe mapguard:{probe} missing from readelf -n output:\n{notes}"
        );
    }
}
