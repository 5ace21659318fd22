//! The watcher only produces events: "something the snapshot depends on
//! changed". It debounces bursts (editors write several times per save),
//! survives save-by-rename, re-adds its watches when watched directories are
//! replaced, and rebuilds itself when the backend reports an error.
//! `--watch poll` uses polling for filesystems without inotify.

use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::{Duration, Instant};

use notify::{Config, Event, EventKind, PollWatcher, RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc;

/// Quiet time that ends a burst of writes. Editors finish a save (temp file,
/// rename, backup removal) well within this.
const DEBOUNCE: Duration = Duration::from_millis(60);
/// Upper bound on waiting for quiet, so a constantly written file still
/// reloads.
const MAX_DELAY: Duration = Duration::from_millis(250);
/// How often `--watch poll` scans.
pub const POLL_INTERVAL: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum WatchMode {
    /// inotify (or the platform's native events).
    #[default]
    Events,
    /// Scan for changes; for network or FUSE filesystems without events.
    Poll,
    /// Do not watch; reload only on SIGHUP.
    Off,
}

/// What to watch: directories recursively, single files through their parent.
#[derive(Debug, Clone)]
pub struct WatchSet {
    pub dirs: Vec<PathBuf>,
    pub files: Vec<PathBuf>,
    /// Changes under these are ignored (the state directory lives in the root).
    pub ignore: Vec<PathBuf>,
}

impl WatchSet {
    fn interesting(&self, p: &Path) -> bool {
        if self.ignore.iter().any(|i| p.starts_with(i)) {
            return false;
        }
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        // Editor droppings: vim swap/backup and its 4913 probe, emacs locks.
        let junk = name.ends_with(".swp")
            || name.ends_with(".swx")
            || name.ends_with('~')
            || name == "4913"
            || name.starts_with(".#");
        if junk {
            return false;
        }
        self.dirs.iter().any(|d| p.starts_with(d)) || self.files.iter().any(|f| p == f)
            // a watched directory itself appearing or being replaced
            || self.dirs.iter().any(|d| d == p)
    }
}

/// Start the watcher. Watches are in place when this returns (so a save
/// right after start-up is seen); events are read on a thread. Each
/// debounced burst sends one `()` on `tx`.
pub fn spawn(set: WatchSet, mode: WatchMode, tx: mpsc::Sender<()>) {
    if mode == WatchMode::Off {
        return;
    }
    let mut first = Some(start_watching(&set, mode));
    std::thread::Builder::new()
        .name("ztpd-watch".into())
        .spawn(move || loop {
            let started = first.take().unwrap_or_else(|| start_watching(&set, mode));
            match started.and_then(|w| watch_until_broken(w, &set, &tx)) {
                Ok(()) => return, // receiver gone: daemon is stopping
                Err(e) => {
                    tracing::warn!("file watcher failed ({e}); rebuilding it");
                    std::thread::sleep(Duration::from_millis(500));
                    // Something may have changed while we were blind.
                    if !notify_reload(&tx) {
                        return;
                    }
                }
            }
        })
        .expect("spawn watcher thread");
}

/// A watcher with its watches added and the channel its events arrive on.
struct Running {
    watcher: Box<dyn Watcher + Send>,
    events: std_mpsc::Receiver<notify::Result<Event>>,
    watched: Vec<PathBuf>,
}

fn start_watching(set: &WatchSet, mode: WatchMode) -> Result<Running, String> {
    let (raw_tx, events) = std_mpsc::channel();
    let mut watcher = make_watcher(mode, raw_tx).map_err(|e| e.to_string())?;
    let watched = add_watches(watcher.as_mut(), set);
    Ok(Running {
        watcher,
        events,
        watched,
    })
}

/// Ask for a reload; a full channel means one is already pending, which
/// covers this change too. False when the daemon is gone.
fn notify_reload(tx: &mpsc::Sender<()>) -> bool {
    !matches!(tx.try_send(()), Err(mpsc::error::TrySendError::Closed(_)))
}

fn make_watcher(
    mode: WatchMode,
    raw_tx: std_mpsc::Sender<notify::Result<Event>>,
) -> notify::Result<Box<dyn Watcher + Send>> {
    Ok(match mode {
        WatchMode::Poll => Box::new(PollWatcher::new(
            raw_tx,
            Config::default()
                .with_poll_interval(POLL_INTERVAL)
                .with_compare_contents(true),
        )?),
        _ => Box::new(RecommendedWatcher::new(raw_tx, Config::default())?),
    })
}

/// Watch the roots that exist; parents stand in for missing ones so their
/// creation is seen.
fn add_watches(w: &mut dyn Watcher, set: &WatchSet) -> Vec<PathBuf> {
    let mut watched = Vec::new();
    let mut parents: Vec<PathBuf> = Vec::new();
    for d in &set.dirs {
        if d.is_dir() {
            if w.watch(d, RecursiveMode::Recursive).is_ok() {
                watched.push(d.clone());
            }
        } else if let Some(p) = d.parent() {
            parents.push(p.to_path_buf());
        }
    }
    for f in &set.files {
        if let Some(p) = f.parent() {
            parents.push(p.to_path_buf());
        }
    }
    parents.sort();
    parents.dedup();
    for p in parents {
        if p.is_dir()
            && !watched.iter().any(|w| p.starts_with(w))
            && w.watch(&p, RecursiveMode::NonRecursive).is_ok()
        {
            watched.push(p);
        }
    }
    watched
}

fn watch_until_broken(run: Running, set: &WatchSet, tx: &mpsc::Sender<()>) -> Result<(), String> {
    let Running {
        watcher: mut w,
        events: raw_rx,
        mut watched,
    } = run;
    loop {
        let first = match raw_rx.recv() {
            Ok(ev) => ev,
            Err(_) => return Err("event channel closed".into()),
        };
        let mut relevant = false;
        let mut rewatch = false;
        let mut handle = |ev: notify::Result<Event>| -> Result<(), String> {
            let ev = ev.map_err(|e| e.to_string())?;
            if matches!(ev.kind, EventKind::Access(_)) {
                return Ok(());
            }
            for p in &ev.paths {
                if set.interesting(p) {
                    relevant = true;
                }
                // A watched root replaced or created: watches must be re-added.
                if set.dirs.iter().any(|d| d == p)
                    || (matches!(ev.kind, EventKind::Remove(_)) && watched.iter().any(|w| w == p))
                {
                    rewatch = true;
                }
            }
            Ok(())
        };
        handle(first)?;
        let start = Instant::now();
        loop {
            let left = MAX_DELAY.saturating_sub(start.elapsed());
            match raw_rx.recv_timeout(DEBOUNCE.min(left)) {
                Ok(ev) => {
                    handle(ev)?;
                    if start.elapsed() >= MAX_DELAY {
                        break;
                    }
                }
                Err(std_mpsc::RecvTimeoutError::Timeout) => break,
                Err(std_mpsc::RecvTimeoutError::Disconnected) => {
                    return Err("event channel closed".into())
                }
            }
        }
        if rewatch
            || watched.iter().any(|p| !p.exists())
            || set.dirs.iter().any(|d| d.is_dir() && !watched.contains(d))
        {
            for p in &watched {
                let _ = w.unwatch(p);
            }
            watched = add_watches(w.as_mut(), set);
            relevant = true;
        }
        if relevant && !notify_reload(tx) {
            return Ok(());
        }
    }
}
