//! The per-device ZTP state machine (SPEC §7, issue 5):
//!
//! planned → dhcp → hello → (topology_mismatch | pending_approval | approved)
//! → downloading → installing → rebooting → deployed | failed
//!
//! Memory holds the current record of every device that has done anything;
//! each change is written (row upsert + event row) through the state store's
//! group-commit writer and the caller waits for the commit, so a reply never
//! claims a state a crash would lose. Rows carry a version so a late commit
//! of an older change can never overwrite a newer one.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::limits::RateLimitedLog;
use crate::state::{StateError, StateStore, WriteError, Writer};

/// A device's stage: the one list of stage names. The API, the state store
/// and the GUI (through `GET /api/v1/stages`) all take the names from here,
/// so they cannot drift apart (the GUI's copy once did).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(into = "&'static str", try_from = "String")]
pub enum Stage {
    Planned,
    Dhcp,
    Hello,
    TopologyMismatch,
    PendingApproval,
    /// A new box (new serial) says hello at the device's place and waits
    /// for `ztpd replace` (SPEC §12).
    ReplacementPending,
    Approved,
    Downloading,
    Installing,
    Rebooting,
    Deployed,
    Failed,
}

impl Stage {
    pub const ALL: [Stage; 12] = [
        Stage::Planned,
        Stage::Dhcp,
        Stage::Hello,
        Stage::TopologyMismatch,
        Stage::PendingApproval,
        Stage::ReplacementPending,
        Stage::Approved,
        Stage::Downloading,
        Stage::Installing,
        Stage::Rebooting,
        Stage::Deployed,
        Stage::Failed,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Planned => "planned",
            Stage::Dhcp => "dhcp",
            Stage::Hello => "hello",
            Stage::TopologyMismatch => "topology_mismatch",
            Stage::PendingApproval => "pending_approval",
            Stage::ReplacementPending => "replacement_pending",
            Stage::Approved => "approved",
            Stage::Downloading => "downloading",
            Stage::Installing => "installing",
            Stage::Rebooting => "rebooting",
            Stage::Deployed => "deployed",
            Stage::Failed => "failed",
        }
    }
    /// The stage of a planned device ztpd holds no record of: a root is
    /// deployed already (SPEC §3: ztpd does not provision it), any other
    /// device is planned.
    pub fn unrecorded(role: crate::plan::model::Role) -> Stage {
        match role {
            crate::plan::model::Role::Root => Stage::Deployed,
            crate::plan::model::Role::Device => Stage::Planned,
        }
    }
    pub fn parse(s: &str) -> Option<Stage> {
        Stage::ALL.into_iter().find(|st| st.as_str() == s)
    }
    /// How the GUI shows the stage: `idle` (nothing happened yet), `wait`
    /// (an operator or the device must act), `busy` (installing), `ok`,
    /// `bad`. The GUI colours tones, never stage names.
    pub fn tone(self) -> &'static str {
        match self {
            Stage::Planned | Stage::Dhcp => "idle",
            Stage::Hello | Stage::PendingApproval | Stage::ReplacementPending => "wait",
            Stage::Approved | Stage::Downloading | Stage::Installing | Stage::Rebooting => "busy",
            Stage::Deployed => "ok",
            Stage::TopologyMismatch | Stage::Failed => "bad",
        }
    }
    /// The stages a device may report, as the error message lists them.
    pub fn reportable_names() -> String {
        let names: Vec<&str> = Stage::ALL
            .into_iter()
            .filter(|s| s.reportable())
            .map(Stage::as_str)
            .collect();
        names.join(", ")
    }
    /// The stages a device may report itself (SPEC §7).
    pub fn reportable(self) -> bool {
        matches!(
            self,
            Stage::Dhcp
                | Stage::Hello
                | Stage::Downloading
                | Stage::Installing
                | Stage::Rebooting
                | Stage::Deployed
                | Stage::Failed
        )
    }
    fn install_rank(self) -> Option<u8> {
        match self {
            Stage::Approved => Some(0),
            Stage::Downloading => Some(1),
            Stage::Installing => Some(2),
            Stage::Rebooting => Some(3),
            Stage::Deployed => Some(4),
            _ => None,
        }
    }
}

impl From<Stage> for &'static str {
    fn from(s: Stage) -> &'static str {
        s.as_str()
    }
}

impl TryFrom<String> for Stage {
    type Error = String;
    fn try_from(s: String) -> Result<Stage, String> {
        Stage::parse(&s).ok_or_else(|| format!("unknown stage {s:?}"))
    }
}

impl std::fmt::Display for Stage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `from -> to` is a move of the state machine. Installation stages
/// only go forward from an approval (repeating one updates its percent);
/// `failed` is reachable from anywhere; a device starting over (DHCP or a
/// new hello) may do so from any state.
pub fn allowed(from: Stage, to: Stage) -> bool {
    use Stage::*;
    match to {
        Planned => false,
        // A new box can arrive at a place whatever the old one was doing.
        Failed | Dhcp | Hello | ReplacementPending => true,
        TopologyMismatch | PendingApproval => from == Hello,
        Approved => matches!(from, Hello | PendingApproval),
        Downloading | Installing | Rebooting | Deployed => {
            match (from.install_rank(), to.install_rank()) {
                (Some(a), Some(b)) => b >= a && !(from == Deployed && to != Deployed),
                _ => false,
            }
        }
    }
}

/// Whether an action's report may move `from -> to` outside the first
/// install: any install stage, from a device that was approved before.
pub fn restarts_install(from: Stage, to: Stage) -> bool {
    let was_approved = from.install_rank().is_some() || from == Stage::Failed;
    was_approved
        && matches!(
            to,
            Stage::Downloading | Stage::Installing | Stage::Rebooting | Stage::Deployed
        )
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub at: String,
    pub device: String,
    pub from: Stage,
    pub stage: Stage,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub percent: Option<u8>,
    /// Why the transition happened.
    pub message: String,
}

/// Addresses kept in [`Record::pending_claims`]: enough to show an operator
/// that several hosts claim one serial, bounded against a flood of them.
pub const MAX_CLAIMS: usize = 8;

/// The current state of one device.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    pub name: String,
    pub serial: String,
    pub stage: Stage,
    pub percent: Option<u8>,
    pub message: String,
    pub at: String,
    /// Approved by an operator or automatically; cleared by a topology mismatch.
    pub approved: bool,
    /// Either family (an IPv6-only device says hello over IPv6).
    pub hello_ip: Option<std::net::IpAddr>,
    /// Other addresses whose hello claimed this device's serial while it was
    /// pending approval, oldest first (at most [`MAX_CLAIMS`]); cleared by an
    /// approval. Shown in the API so an operator sees the conflict.
    pub pending_claims: Vec<std::net::IpAddr>,
    pub leased_ip: Option<Ipv4Addr>,
    pub reported_model: Option<String>,
    /// Topology problems of the last hello (SPEC §10 problem objects).
    pub problems: Vec<serde_json::Value>,
    /// Neighbours the device (or, for a root, its reports) said it sees.
    pub observed: Vec<serde_json::Value>,
    /// The software version the device last said it runs (hello or progress).
    pub software_version: Option<String>,
    /// The action the device's last progress report named (SPEC §7 `action`).
    pub last_action: Option<String>,
    /// A new box waiting at this device's place (`replacement_pending`).
    pub replacement: Option<PendingReplacement>,
    #[serde(skip)]
    version: i64,
}

/// A hello with an unknown serial that matched this device's place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingReplacement {
    pub serial: String,
    pub mac: Option<String>,
    pub address: Option<std::net::IpAddr>,
    pub at: String,
}

impl Record {
    fn new(name: &str, serial: &str) -> Record {
        Record {
            name: name.to_string(),
            serial: serial.to_string(),
            stage: Stage::Planned,
            percent: None,
            message: String::new(),
            at: crate::clock::rfc3339_micros(),
            approved: false,
            hello_ip: None,
            pending_claims: Vec::new(),
            leased_ip: None,
            reported_model: None,
            problems: Vec::new(),
            observed: Vec::new(),
            software_version: None,
            last_action: None,
            replacement: None,
            version: 0,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("{device} is {from}; it cannot move to {to}")]
    Invalid {
        device: String,
        from: Stage,
        to: Stage,
    },
    #[error(transparent)]
    Write(#[from] WriteError),
}

const MIGRATIONS: &[&str] = &["CREATE TABLE ztp_devices (
        name TEXT PRIMARY KEY,
        version INTEGER NOT NULL,
        record TEXT NOT NULL
    );
    CREATE TABLE ztp_device_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        device TEXT NOT NULL,
        at TEXT NOT NULL,
        from_stage TEXT NOT NULL,
        stage TEXT NOT NULL,
        percent INTEGER,
        reason TEXT NOT NULL
    );
    CREATE INDEX ztp_device_events_device ON ztp_device_events (device, id);"];

/// A change to apply to one device's record.
pub struct Change<'a> {
    pub name: &'a str,
    pub serial: &'a str,
    /// Stages to pass through in order (a hello is `hello` then its outcome).
    pub stages: Vec<Stage>,
    pub percent: Option<u8>,
    pub message: String,
    /// Extra edits to the record (addresses, problems, approval).
    pub edit: Box<dyn FnOnce(&mut Record) + Send + 'a>,
}

pub struct Tracker {
    records: Mutex<HashMap<String, Record>>,
    writer: Writer,
    events: broadcast::Sender<Event>,
    /// One `info` line per stage change, at most [`STAGE_LINES_PER_SECOND`].
    stage_log: Mutex<RateLimitedLog>,
    /// Events kept per device in `ztp_device_events`, newest first
    /// (`limits.device_events`): older ones are deleted as new ones come.
    events_kept: std::sync::atomic::AtomicUsize,
}

/// Events kept per device by default: far more than a deployment writes
/// (a few dozen), and what `history` shows (100) ten times over; 10,000
/// devices at this bound are a few hundred MB at most.
pub const EVENTS_KEPT: usize = 1000;

/// Delete `device`'s events older than its newest `kept`, in the write's
/// transaction. An indexed seek (device, id): cheap enough for every write.
fn prune_events(tx: &rusqlite::Transaction, device: &str, kept: usize) -> rusqlite::Result<()> {
    tx.execute(
        "DELETE FROM ztp_device_events WHERE device = ?1 AND id <
         (SELECT id FROM ztp_device_events WHERE device = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
        rusqlite::params![device, kept.saturating_sub(1) as i64],
    )?;
    Ok(())
}

/// Enough for a rack booting at once to be told line by line; a fleet of
/// thousands is summarised ("N more") instead of flooding the journal.
/// `GET /api/v1/events` keeps every change.
const STAGE_LINES_PER_SECOND: u32 = 64;

impl Tracker {
    /// Open the ZTP tables in `store` and load every device's record.
    pub fn open(store: &StateStore) -> Result<Arc<Tracker>, StateError> {
        store.migrate("ztp", MIGRATIONS)?;
        let conn = store.reader()?;
        let mut records = HashMap::new();
        {
            let mut st = conn.prepare("SELECT name, version, record FROM ztp_devices")?;
            let rows = st.query_map([], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?;
            for row in rows {
                let (name, version, text) = row?;
                match decode(&text) {
                    Some(mut rec) => {
                        rec.version = version;
                        records.insert(name, rec);
                    }
                    None => tracing::warn!(device = %name, "unreadable ztp state row ignored"),
                }
            }
        }
        let (events, _) = broadcast::channel(1024);
        Ok(Arc::new(Tracker {
            records: Mutex::new(records),
            writer: store.writer(),
            events,
            stage_log: Mutex::new(RateLimitedLog::with_burst(
                std::time::Duration::from_secs(1),
                STAGE_LINES_PER_SECOND,
            )),
            events_kept: std::sync::atomic::AtomicUsize::new(EVENTS_KEPT),
        }))
    }

    /// Keep at most `n` (at least 1) events per device from now on.
    pub fn keep_events(&self, n: usize) {
        self.events_kept
            .store(n.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    fn kept(&self) -> usize {
        self.events_kept.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn get(&self, name: &str) -> Option<Record> {
        self.records.lock().ok()?.get(name).cloned()
    }

    pub fn all(&self) -> HashMap<String, Record> {
        self.records.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Read every record under the lock, without copying them all.
    pub fn with_records<R>(&self, f: impl FnOnce(&HashMap<String, Record>) -> R) -> Option<R> {
        self.records.lock().ok().map(|m| f(&m))
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// Apply `change` if every step is a move of the state machine, persist
    /// it, and return the events it produced (after the commit).
    pub async fn apply(&self, change: Change<'_>) -> Result<(Record, Vec<Event>), ChangeError> {
        self.apply_inner(change, false).await
    }

    /// [`Tracker::apply`] for a progress report naming one of the device's
    /// actions: an upgrade or reconfigure starts a new install, so a
    /// deployed (or failed) device may go through the install stages again.
    pub async fn apply_for_action(
        &self,
        change: Change<'_>,
    ) -> Result<(Record, Vec<Event>), ChangeError> {
        self.apply_inner(change, true).await
    }

    async fn apply_inner(
        &self,
        change: Change<'_>,
        new_install: bool,
    ) -> Result<(Record, Vec<Event>), ChangeError> {
        let at = crate::clock::rfc3339_micros();
        let (rec, events) = {
            let mut map = self.records.lock().map_err(|_| WriteError::Stopped)?;
            let mut rec = map
                .get(change.name)
                .cloned()
                .unwrap_or_else(|| Record::new(change.name, change.serial));
            let mut events = Vec::new();
            for &to in &change.stages {
                let repeat = to == rec.stage && change.stages.len() == 1;
                let restart = new_install && restarts_install(rec.stage, to);
                if !allowed(rec.stage, to) && !repeat && !restart {
                    return Err(ChangeError::Invalid {
                        device: change.name.to_string(),
                        from: rec.stage,
                        to,
                    });
                }
                events.push(Event {
                    at: at.clone(),
                    device: change.name.to_string(),
                    from: rec.stage,
                    stage: to,
                    percent: change.percent,
                    message: change.message.clone(),
                });
                rec.stage = to;
            }
            rec.serial = change.serial.to_string();
            rec.percent = change.percent;
            rec.message = change.message.clone();
            rec.at = at.clone();
            (change.edit)(&mut rec);
            rec.version += 1;
            map.insert(change.name.to_string(), rec.clone());
            (rec, events)
        };
        self.persist(&rec, &events).await?;
        for e in &events {
            self.log_stage(&rec, e);
            let _ = self.events.send(e.clone());
        }
        Ok((rec, events))
    }

    /// The daemon's story of a device at `info`: its new stage, the address
    /// it speaks from, and why when it was refused or failed.
    fn log_stage(&self, rec: &Record, e: &Event) {
        let Some(left_out) = self.stage_log.lock().ok().and_then(|mut l| l.admit()) else {
            return;
        };
        let address = rec
            .hello_ip
            .or(rec.leased_ip.map(Into::into))
            .map(|a| format!(" at {a}"))
            .unwrap_or_default();
        let why = match e.stage {
            Stage::TopologyMismatch | Stage::Failed if !e.message.is_empty() => {
                format!(": {}", e.message)
            }
            _ => String::new(),
        };
        let more = match left_out {
            0 => String::new(),
            n => format!(" ({n} more stage changes not logged; GET /api/v1/events has them all)"),
        };
        tracing::info!(
            "device {}{address}: {} -> {}{why}{more}",
            e.device,
            e.from.as_str(),
            e.stage.as_str()
        );
    }

    async fn persist(&self, rec: &Record, events: &[Event]) -> Result<(), WriteError> {
        let text = serde_json::to_string(&Stored::from(rec)).unwrap_or_default();
        let (name, version) = (rec.name.clone(), rec.version);
        let events = events.to_vec();
        let kept = self.kept();
        self.writer
            .write(Box::new(move |tx| {
                tx.execute(
                    "INSERT INTO ztp_devices (name, version, record) VALUES (?1, ?2, ?3)
                     ON CONFLICT(name) DO UPDATE SET version = excluded.version,
                     record = excluded.record WHERE excluded.version > ztp_devices.version",
                    rusqlite::params![name, version, text],
                )?;
                for e in &events {
                    tx.execute(
                        "INSERT INTO ztp_device_events (device, at, from_stage, stage, percent, reason)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        rusqlite::params![
                            e.device,
                            e.at,
                            e.from.as_str(),
                            e.stage.as_str(),
                            e.percent,
                            e.message
                        ],
                    )?;
                }
                if !events.is_empty() {
                    prune_events(tx, &name, kept)?;
                }
                Ok(())
            }))
            .await
    }

    /// Start `name` again from `planned` (a replacement box was bound to
    /// it): what the old box did and said is forgotten, with an event.
    pub async fn restart(
        &self,
        name: &str,
        serial: &str,
        message: String,
    ) -> Result<Record, ChangeError> {
        let at = crate::clock::rfc3339_micros();
        let (rec, event) = {
            let mut map = self.records.lock().map_err(|_| WriteError::Stopped)?;
            let old = map.get(name).cloned();
            let mut rec = Record::new(name, serial);
            rec.message = message.clone();
            rec.at = at.clone();
            rec.version = old.as_ref().map_or(0, |r| r.version) + 1;
            let event = Event {
                at,
                device: name.to_string(),
                from: old.map_or(Stage::Planned, |r| r.stage),
                stage: Stage::Planned,
                percent: None,
                message,
            };
            map.insert(name.to_string(), rec.clone());
            (rec, event)
        };
        self.persist(&rec, std::slice::from_ref(&event)).await?;
        let _ = self.events.send(event);
        Ok(rec)
    }

    /// Record a report that changed nothing (e.g. a hello from an address
    /// that does not vouch for the device): an event row and an SSE event
    /// whose `from` and `stage` are both the device's current stage.
    pub async fn note(&self, name: &str, message: String) -> Result<(), WriteError> {
        let (write, event) = self.note_write(name, message);
        self.writer.write(write).await?;
        self.announce(event);
        Ok(())
    }

    /// [`Tracker::note`] in two halves, for a caller that commits the event
    /// row with a write of its own (a binding: one commit, not two): the
    /// row's write, and the event to [`Tracker::announce`] once committed.
    pub fn note_write(&self, name: &str, message: String) -> (crate::state::WriteFn, Event) {
        let stage = self.get(name).map_or(Stage::Planned, |r| r.stage);
        let event = Event {
            at: crate::clock::rfc3339_micros(),
            device: name.to_string(),
            from: stage,
            stage,
            percent: None,
            message,
        };
        let ev = event.clone();
        let kept = self.kept();
        let write: crate::state::WriteFn = Box::new(move |tx| {
            tx.execute(
                "INSERT INTO ztp_device_events (device, at, from_stage, stage, percent, reason)
                 VALUES (?1, ?2, ?3, ?4, NULL, ?5)",
                rusqlite::params![
                    ev.device,
                    ev.at,
                    ev.from.as_str(),
                    ev.stage.as_str(),
                    ev.message
                ],
            )?;
            prune_events(tx, &ev.device, kept)?;
            Ok(())
        });
        (write, event)
    }

    /// Send a committed event to the event stream's subscribers.
    pub fn announce(&self, event: Event) {
        let _ = self.events.send(event);
    }

    /// The most recent events of one device, newest last.
    pub fn history(&self, store_reader: &rusqlite::Connection, device: &str) -> Vec<Event> {
        let Ok(mut st) = store_reader.prepare(
            "SELECT at, from_stage, stage, percent, reason FROM ztp_device_events
             WHERE device = ?1 ORDER BY id DESC LIMIT 100",
        ) else {
            return Vec::new();
        };
        let rows = st.query_map([device], |r| {
            Ok(Event {
                at: r.get(0)?,
                device: device.to_string(),
                from: Stage::parse(&r.get::<_, String>(1)?).unwrap_or(Stage::Planned),
                stage: Stage::parse(&r.get::<_, String>(2)?).unwrap_or(Stage::Planned),
                percent: r.get(3)?,
                message: r.get(4)?,
            })
        });
        let mut out: Vec<Event> = rows.map(|r| r.flatten().collect()).unwrap_or_default();
        out.reverse();
        out
    }

    /// DHCP observed a lease for a planned device (progress inference).
    pub async fn observe_lease(&self, name: &str, serial: &str, ip: Ipv4Addr) {
        let cur = self.get(name);
        if cur.as_ref().is_some_and(|r| r.leased_ip == Some(ip)) {
            return;
        }
        let starting = cur
            .as_ref()
            .is_none_or(|r| matches!(r.stage, Stage::Planned | Stage::Dhcp));
        let stages = if starting { vec![Stage::Dhcp] } else { vec![] };
        let _ = self
            .apply(Change {
                name,
                serial,
                stages,
                percent: None,
                message: format!("leased {ip}"),
                edit: Box::new(move |r| r.leased_ip = Some(ip)),
            })
            .await;
    }

    /// A file of this device was fetched (transfer ledger): an approved
    /// device fetching its config is downloading, even if it never reports.
    pub async fn observe_fetch(&self, name: &str, serial: &str, path: &str) {
        if self.get(name).is_some_and(|r| r.stage == Stage::Approved) {
            let _ = self
                .apply(Change {
                    name,
                    serial,
                    stages: vec![Stage::Downloading],
                    percent: None,
                    message: format!("fetched {path}"),
                    edit: Box::new(|_| {}),
                })
                .await;
        }
    }
}

/// The persisted form of a record (the version lives in its own column).
#[derive(Serialize, serde::Deserialize)]
struct Stored {
    name: String,
    serial: String,
    stage: Stage,
    percent: Option<u8>,
    message: String,
    at: String,
    approved: bool,
    hello_ip: Option<std::net::IpAddr>,
    #[serde(default)]
    pending_claims: Vec<std::net::IpAddr>,
    leased_ip: Option<Ipv4Addr>,
    reported_model: Option<String>,
    problems: Vec<serde_json::Value>,
    observed: Vec<serde_json::Value>,
    #[serde(default)]
    software_version: Option<String>,
    #[serde(default)]
    last_action: Option<String>,
    #[serde(default)]
    replacement: Option<PendingReplacement>,
}

impl From<&Record> for Stored {
    fn from(r: &Record) -> Stored {
        Stored {
            name: r.name.clone(),
            serial: r.serial.clone(),
            stage: r.stage,
            percent: r.percent,
            message: r.message.clone(),
            at: r.at.clone(),
            approved: r.approved,
            hello_ip: r.hello_ip,
            pending_claims: r.pending_claims.clone(),
            leased_ip: r.leased_ip,
            reported_model: r.reported_model.clone(),
            problems: r.problems.clone(),
            observed: r.observed.clone(),
            software_version: r.software_version.clone(),
            last_action: r.last_action.clone(),
            replacement: r.replacement.clone(),
        }
    }
}

fn decode(text: &str) -> Option<Record> {
    let s: Stored = serde_json::from_str(text).ok()?;
    Some(Record {
        name: s.name,
        serial: s.serial,
        stage: s.stage,
        percent: s.percent,
        message: s.message,
        at: s.at,
        approved: s.approved,
        hello_ip: s.hello_ip,
        pending_claims: s.pending_claims,
        leased_ip: s.leased_ip,
        reported_model: s.reported_model,
        problems: s.problems,
        observed: s.observed,
        software_version: s.software_version,
        last_action: s.last_action,
        replacement: s.replacement,
        version: 0,
    })
}

#[cfg(test)]
#[path = "state_tests.rs"]
mod tests;
