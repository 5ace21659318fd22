//! The rollouts of a running daemon: created and changed through the API,
//! moved on by the runner ([`super::runner`]). One async lock orders every
//! change; each change is persisted before it is announced.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::{broadcast, Notify};

use super::batches;
use super::create::{self, NewRollout};
use super::decide::{self, Decision, Now, Observed, Operator};
use super::groups::GroupStore;
use super::model::{Rollout, State};
use super::store::RolloutStore;
use crate::broker::LocalHub;
use crate::snapshot::SnapshotHandle;
use crate::state::{StateError, StateStore};
use crate::topology::Tiers;
use crate::ztp::state::Record;
use crate::ztp::Ztp;

/// Where the rollouts read the time; tests inject their own.
pub trait Clock: Send + Sync {
    fn now(&self) -> Now;
}

/// The daemon's clock for rollouts. `ms`, which times `pause_between` and
/// `device_timeout` and stamps the rollout, is the wall clock as read at
/// the first call, advanced by the monotonic clock: a wall clock set forward
/// (NTP catching up, an operator) fires no timer early, and one set back
/// holds none for the size of the jump. `local`, for windows, is the wall
/// clock read each time: a window is a time of day, and opens when the
/// clock says so. A restart reads the wall clock afresh.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Now {
        static ANCHOR: std::sync::OnceLock<(u64, std::time::Instant)> = std::sync::OnceLock::new();
        let (wall, at) =
            *ANCHOR.get_or_init(|| (crate::clock::unix_millis(), std::time::Instant::now()));
        let elapsed = u64::try_from(at.elapsed().as_millis()).unwrap_or(u64::MAX);
        Now {
            ms: wall.saturating_add(elapsed),
            local: chrono::Local::now().naive_local(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    NotFound(String),
    #[error("state not saved: {0}")]
    Write(#[from] crate::state::WriteError),
}

struct Entry {
    seq: i64,
    rollout: Rollout,
}

pub struct Rollouts {
    pub(super) ztp: Arc<Ztp>,
    /// The local hub, which `method` rollouts call through; `None` when
    /// `[broker] enabled = false`.
    pub(super) hub: Option<Arc<LocalHub>>,
    /// Calls decided on and not yet started by the runner.
    pub(super) calls: Mutex<Vec<super::calls::Call>>,
    pub(super) snapshot: SnapshotHandle,
    groups: Arc<GroupStore>,
    store: RolloutStore,
    pub(super) clock: Arc<dyn Clock>,
    all: Mutex<Vec<Entry>>,
    /// Orders changes: API requests and runner ticks.
    pub(super) changing: tokio::sync::Mutex<()>,
    /// Wakes the runner (a new rollout, an operator action).
    pub(super) wake: Notify,
    events: broadcast::Sender<Value>,
}

/// `r<seq>-<random>`: ordered by creation, not guessable across databases.
fn rollout_id(seq: i64) -> String {
    use rand::RngCore;
    let mut b = [0u8; 3];
    rand::rngs::OsRng.fill_bytes(&mut b);
    format!("r{seq}-{:02x}{:02x}{:02x}", b[0], b[1], b[2])
}

/// What the decision reads of a ZTP record.
pub fn observed(r: &Record) -> Observed {
    let at = chrono::DateTime::parse_from_rfc3339(&r.at)
        .map(|t| t.timestamp_millis().max(0) as u64)
        .unwrap_or(0);
    Observed {
        stage: r.stage,
        version: r.software_version.clone(),
        action: r.last_action.clone(),
        at,
        message: r.message.clone(),
        problems: r.problems.clone(),
    }
}

impl Rollouts {
    pub fn open(
        state: &StateStore,
        ztp: Arc<Ztp>,
        hub: Option<Arc<LocalHub>>,
        snapshot: SnapshotHandle,
        groups: Arc<GroupStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Rollouts>, StateError> {
        let (store, stored) = RolloutStore::open(state)?;
        // Stored seqs, not positions: with finished rollouts deleted, the
        // next seq must still come after every kept one.
        let all = stored
            .into_iter()
            .map(|(seq, rollout)| Entry { seq, rollout })
            .collect();
        let (events, _) = broadcast::channel(1024);
        Ok(Arc::new(Rollouts {
            ztp,
            hub,
            calls: Mutex::default(),
            snapshot,
            groups,
            store,
            clock,
            all: Mutex::new(all),
            changing: tokio::sync::Mutex::new(()),
            wake: Notify::new(),
            events,
        }))
    }

    /// `rollout` events: the rollout's JSON after each change.
    pub fn subscribe(&self) -> broadcast::Receiver<Value> {
        self.events.subscribe()
    }

    pub fn list(&self) -> Vec<Rollout> {
        self.all
            .lock()
            .map(|a| a.iter().map(|e| e.rollout.clone()).collect())
            .unwrap_or_default()
    }

    pub fn get(&self, id: &str) -> Option<Rollout> {
        self.list().into_iter().find(|r| r.id == id)
    }

    pub(super) fn active(&self) -> Vec<(i64, Rollout)> {
        self.all
            .lock()
            .map(|a| {
                a.iter()
                    .filter(|e| e.rollout.state.active())
                    .map(|e| (e.seq, e.rollout.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Persist, keep and announce a changed rollout.
    pub(super) async fn store(&self, seq: i64, r: Rollout) -> Result<(), RolloutError> {
        self.keep(seq, r, true).await
    }

    /// Keep and announce `r`; persist it when `durable`. Progress within a
    /// device's action (`in_progress` and its stage) need not be: the next
    /// tick derives it again from the device records, also after a restart.
    async fn keep(&self, seq: i64, r: Rollout, durable: bool) -> Result<(), RolloutError> {
        if durable {
            self.store.save(seq, &r).await?;
        }
        if let Ok(mut all) = self.all.lock() {
            match all.iter_mut().find(|e| e.rollout.id == r.id) {
                Some(e) => e.rollout = r.clone(),
                None => all.push(Entry {
                    seq,
                    rollout: r.clone(),
                }),
            }
        }
        // The JSON of a large rollout is not free: only when someone listens.
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(r.to_json());
        }
        if durable && !r.state.active() {
            self.forget_finished().await;
        }
        Ok(())
    }

    /// Delete the finished rollouts older than the newest
    /// `limits.finished_rollouts`, from memory and the state store.
    async fn forget_finished(&self) {
        let keep = self
            .snapshot
            .load()
            .resolved
            .settings
            .limits
            .finished_rollouts;
        let old: Vec<String> = match self.all.lock() {
            Ok(mut all) => {
                let mut finished: Vec<(i64, String)> = all
                    .iter()
                    .filter(|e| !e.rollout.state.active())
                    .map(|e| (e.seq, e.rollout.id.clone()))
                    .collect();
                finished.sort();
                let over = finished.len().saturating_sub(keep);
                let old: Vec<String> = finished.into_iter().take(over).map(|(_, id)| id).collect();
                all.retain(|e| !old.contains(&e.rollout.id));
                old
            }
            Err(_) => return,
        };
        if old.is_empty() {
            return;
        }
        if let Err(e) = self.store.delete(old).await {
            tracing::warn!("finished rollouts past the retention not deleted: {e}");
        }
    }

    /// Check a request, plan every batch and store the rollout.
    pub async fn create(&self, req: NewRollout) -> Result<Rollout, RolloutError> {
        let snap = self.snapshot.load();
        let group = self.groups.get(&snap.model, &req.group).ok_or_else(|| {
            let known: Vec<String> = self
                .groups
                .list(&snap.model)
                .into_iter()
                .map(|g| g.name)
                .collect();
            RolloutError::Invalid(format!(
                "unknown group `{}`; expected one of: {}",
                req.group,
                known.join(", ")
            ))
        })?;
        let checked = create::check(&snap, &group, &req).map_err(RolloutError::Invalid)?;
        if checked.kind == super::model::Kind::Method && self.hub.is_none() {
            return Err(RolloutError::Invalid(
                "a method rollout calls through the local hub, which does not run \
                 ([broker] enabled = false)"
                    .into(),
            ));
        }
        let _guard = self.changing.lock().await;
        for (_, r) in self.active() {
            if let Some(d) = checked.members.iter().find(|m| r.device(&m.name).is_some()) {
                return Err(RolloutError::Conflict(format!(
                    "rollout {} ({}) already holds {}: abort it or wait until it is done",
                    r.id,
                    serde_json::to_value(r.state).unwrap_or_default(),
                    d.name
                )));
            }
        }
        let roots: Vec<&str> = snap
            .model
            .devices()
            .filter(|(_, d)| d.role == crate::plan::model::Role::Root)
            .map(|(_, d)| d.name.as_str())
            .collect();
        let tiers = Tiers::new(&snap.topology, &roots);
        let now = self.clock.now().ms;
        let (batches, devices) = batches::plan(
            &checked.policy,
            &checked.members,
            &snap.topology,
            &tiers,
            now,
        );
        let seq = self
            .all
            .lock()
            .map(|a| a.iter().map(|e| e.seq).max().unwrap_or(0) + 1)
            .unwrap_or(1);
        let r = Rollout {
            id: rollout_id(seq),
            group: group.name.clone(),
            kind: checked.kind,
            target: checked.target,
            state: State::Running,
            reason: None,
            policy: checked.policy,
            created_at: now,
            updated_at: now,
            batches,
            devices,
            accepted_failures: 0,
            method: checked.method,
        };
        self.store(seq, r.clone()).await?;
        self.wake.notify_one();
        Ok(r)
    }

    /// Rollout `id` with its seq.
    pub(super) fn entry(&self, id: &str) -> Option<(i64, Rollout)> {
        let all = self.all.lock().ok()?;
        all.iter()
            .find(|e| e.rollout.id == id)
            .map(|e| (e.seq, e.rollout.clone()))
    }

    /// Pause, resume or abort.
    pub async fn operate(&self, id: &str, op: Operator) -> Result<Rollout, RolloutError> {
        let _guard = self.changing.lock().await;
        let (seq, mut r) = self
            .entry(id)
            .ok_or_else(|| RolloutError::NotFound(format!("no rollout {id}")))?;
        decide::operate(&mut r, op, self.clock.now().ms).map_err(RolloutError::Conflict)?;
        if op == Operator::Abort {
            // Devices that have not started their action are not to start it.
            for d in r
                .devices
                .iter()
                .filter(|d| d.state == super::model::DeviceState::Notified)
            {
                if let Some(id) = &d.action {
                    self.ztp.actions.withdraw(&d.name, id).await?;
                }
            }
        }
        self.store(seq, r.clone()).await?;
        self.wake.notify_one();
        Ok(r)
    }

    /// Decide and apply for every active rollout; returns when to look again.
    pub async fn tick(&self) -> Option<u64> {
        let _guard = self.changing.lock().await;
        let now = self.clock.now();
        let mut wake: Option<u64> = None;
        for (seq, mut r) in self.active() {
            // A method rollout's devices answer their call, not in ZTP records.
            let obs: HashMap<String, Observed> = match r.kind {
                super::model::Kind::Method => HashMap::new(),
                _ => self.observe(&r),
            };
            let out = decide::decide(&r, &obs, &now);
            if let Some(w) = out.wake_at {
                wake = Some(wake.map_or(w, |x: u64| x.min(w)));
            }
            if out.decisions.is_empty() {
                continue;
            }
            let mut notify = Vec::new();
            for d in &out.decisions {
                decide::apply(&mut r, d, now.ms);
                log_decision(&r, d);
                if let Decision::Notify(n) = d {
                    notify.push(n.clone());
                }
            }
            if !notify.is_empty() {
                let t = std::time::Instant::now();
                self.notify(&mut r, &notify).await;
                // Read by benches/rollout_bench.sh (batch-to-batch overhead).
                tracing::info!(
                    rollout = %r.id,
                    "{} action(s) queued at {} ms ({:.1} ms)",
                    notify.len(),
                    crate::clock::unix_millis(),
                    t.elapsed().as_secs_f64() * 1e3
                );
            }
            let durable = out.decisions.iter().any(|d| {
                !matches!(
                    d,
                    Decision::Device {
                        state: super::model::DeviceState::InProgress,
                        ..
                    }
                )
            });
            if let Err(e) = self.keep(seq, r, durable).await {
                tracing::error!("rollout not saved: {e}");
            }
        }
        wake
    }

    /// What the decision reads of the ZTP records of `r`'s devices in flight.
    fn observe(&self, r: &Rollout) -> HashMap<String, Observed> {
        self.ztp
            .tracker
            .with_records(|recs| {
                r.devices
                    .iter()
                    .filter(|d| d.state.in_flight())
                    .filter_map(|d| recs.get(&d.name).map(|x| (d.name.clone(), observed(x))))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Queue the action of each device (concurrently: one group commit).
    async fn notify(&self, r: &mut Rollout, names: &[String]) {
        if names.is_empty() {
            return;
        }
        let Some(kind) = create::action_type(r.kind) else {
            self.start_calls(r, names);
            return;
        };
        let snap = self.snapshot.load();
        let rollout_id = r.id.clone();
        let queued = futures_util::future::join_all(names.iter().map(|n| {
            let fields = create::action_fields(&snap, &r.id, r.kind, &r.target, n);
            // The action and the rollout are committed apart: a crash between
            // the two leaves this rollout's action pending while the rollout
            // still says "to notify". That action is adopted, not queued again
            // (a new one would supersede what the device may already hold).
            let adopted = self
                .ztp
                .actions
                .pending(n)
                .into_iter()
                .find(|a| a["type"] == kind && a["rollout"] == rollout_id.as_str());
            async move {
                match adopted {
                    Some(a) => Ok(a),
                    None => self.ztp.queue_action(n, kind, fields).await,
                }
            }
        }))
        .await;
        for (n, q) in names.iter().zip(queued) {
            let Some(d) = r.device_mut(n) else { continue };
            match q {
                Ok(a) => d.action = a["id"].as_str().map(str::to_string),
                Err(e) => {
                    tracing::warn!(device = %n, "action not queued: {e}; retried");
                    // Back to pending: the next tick notifies it again.
                    d.state = super::model::DeviceState::Pending;
                    d.notified_at = None;
                }
            }
        }
    }
}

/// The rollout's story at `info`: batches starting and finishing, and the
/// rollout's own state changes (paused, done, aborted, with why).
fn log_decision(r: &super::model::Rollout, d: &Decision) {
    let batch = |i: &usize| {
        r.batches.get(*i).map(|b| {
            let what = if b.canary {
                "canary batch".to_string()
            } else {
                format!("batch {}/{}", i + 1, r.batches.len())
            };
            (what, b.devices.join(", "))
        })
    };
    match d {
        Decision::StartBatch(i) => {
            if let Some((what, devices)) = batch(i) {
                tracing::info!(
                    "rollout {} of group {}: {what} started: {devices}",
                    r.id,
                    r.group
                );
            }
        }
        Decision::FinishBatch(i) => {
            if let Some((what, _)) = batch(i) {
                tracing::info!("rollout {} of group {}: {what} finished", r.id, r.group);
            }
        }
        Decision::State { state, reason } => tracing::info!(
            "rollout {} of group {}: {}{}",
            r.id,
            r.group,
            serde_json::to_value(state)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_else(|| format!("{state:?}")),
            reason
                .as_deref()
                .map(|w| format!(": {w}"))
                .unwrap_or_default()
        ),
        Decision::Device { .. } | Decision::Notify(_) | Decision::Answered { .. } => {}
    }
}
