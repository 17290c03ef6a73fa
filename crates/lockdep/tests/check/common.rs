//! Helpers: run a body with a timeout, collect the reports raised on its thread.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lockdep::{Config, Reaction, Report, ReportKind};

/// The configuration every test uses: a short deadlock timeout, hold times on.
pub(crate) fn init() {
    lockdep::configure(Config {
        deadlock_timeout: Some(Duration::from_millis(150)),
        hold_times: true,
        ..Config::default()
    })
    .unwrap();
}

/// Reports collected by a thread's callback reaction.
#[derive(Clone, Default)]
pub(crate) struct Collected(Arc<Mutex<Vec<Report>>>);

impl Collected {
    pub(crate) fn all(&self) -> Vec<Report> {
        self.0.lock().unwrap().clone()
    }

    pub(crate) fn kinds(&self) -> Vec<ReportKind> {
        self.all().iter().map(Report::kind).collect()
    }

    pub(crate) fn only(&self, kind: ReportKind) -> Report {
        let all = self.all();
        let found: Vec<_> = all.iter().filter(|r| r.kind() == kind).collect();
        assert_eq!(
            found.len(),
            1,
            "expected one {kind:?} report, got kinds {:?}",
            self.kinds()
        );
        found[0].clone()
    }

    /// Makes the calling thread record its reports; `stop_on` kinds also panic (to unwind
    /// out of an acquisition that would otherwise block forever).
    pub(crate) fn install(&self, stop_on: &'static [ReportKind]) {
        let sink = Arc::clone(&self.0);
        lockdep::set_thread_reaction(Some(Reaction::Callback(Arc::new(move |r: &Report| {
            sink.lock().unwrap().push(r.clone());
            if stop_on.contains(&r.kind()) {
                panic!("stopping after {:?}", r.kind());
            }
        }))));
    }
}

/// Runs `body` on a fresh thread; fails the test if it has not finished after `secs`.
pub(crate) fn with_timeout<T: Send + 'static>(
    secs: u64,
    body: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Box<dyn Any + Send>> {
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("body".into())
        .spawn(move || {
            let result = catch_unwind(AssertUnwindSafe(body));
            let _ = tx.send(result);
        })
        .unwrap();
    rx.recv_timeout(Duration::from_secs(secs))
        .expect("the test body hung: lockdep did not report before blocking")
}

/// Runs `body` with a recording reaction that panics on every report; returns the reports.
pub(crate) fn reports_of(body: impl FnOnce() + Send + 'static) -> Vec<Report> {
    let collected = Collected::default();
    let inner = collected.clone();
    let _ = with_timeout(10, move || {
        inner.install(ALL_KINDS);
        body();
    });
    collected.all()
}

pub(crate) const ALL_KINDS: &[ReportKind] = &[
    ReportKind::LockOrderInversion,
    ReportKind::SelfDeadlock,
    ReportKind::RecursiveRead,
    ReportKind::SameClassNesting,
    ReportKind::Deadlock,
    ReportKind::HeldAtThreadExit,
    ReportKind::NotHeld,
    ReportKind::UnexpectedlyHeld,
];

/// Runs the named test of this binary in a child process (for tests that change global
/// state); returns whether it passed, and its output. Kills it after `secs`.
pub(crate) fn run_in_child(test: &str, secs: u64) -> (bool, String) {
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new(exe)
        .args([test, "--exact", "--nocapture", "--test-threads=1"])
        .env("LOCKDEP_TEST_CHILD", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let text = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            return (status.success(), text);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return (false, format!("child test {test} hung and was killed"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Whether this process is a child started by [`run_in_child`].
pub(crate) fn is_child() -> bool {
    std::env::var_os("LOCKDEP_TEST_CHILD").is_some()
}
