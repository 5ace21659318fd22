//! The hub's writer of device identities (DPS registrations, SPEC §13):
//! one thread that takes every registration waiting and writes them as one
//! group ([`Store::create_many`]: one lock, one history append, the files
//! synced together), so a burst of registrations costs a few syncs per
//! group instead of four per device. A registration waits for its group's
//! write; what is on disk is what `ztpd credentials create` would write.

use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::Arc;

use super::store::NewIdentity;
use super::{CredentialFile, Hub, Store};

/// Identities per group at most: bounds a group's temp files and the wait
/// of its first device (about 0.2 ms each to write and sync here).
const MAX_GROUP: usize = 512;

struct Job {
    dir: PathBuf,
    hub: Arc<Hub>,
    identity: NewIdentity,
    done: tokio::sync::oneshot::Sender<Result<CredentialFile, String>>,
}

/// Handle to the writer thread; the thread ends when this is dropped.
pub struct IdentityWriter {
    jobs: mpsc::Sender<Job>,
}

impl IdentityWriter {
    /// `durable` is asked per group: whether a group waits for the disk
    /// (`state.durability = "fsync"`, the default) or only for the OS
    /// (`"os"`); a reload that changes it reaches the next group.
    pub fn start(durable: impl Fn() -> bool + Send + 'static) -> std::io::Result<IdentityWriter> {
        let (jobs, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("identity-writer".into())
            .spawn(move || run(rx, durable))?;
        Ok(IdentityWriter { jobs })
    }

    /// Write the identity in `dir` (as [`Store::create_many`] does) and
    /// wait for it.
    pub async fn create(
        &self,
        dir: &Path,
        hub: Arc<Hub>,
        identity: NewIdentity,
    ) -> Result<CredentialFile, String> {
        super::validate_device_id(&identity.device_id)?;
        let (done, written) = tokio::sync::oneshot::channel();
        let job = Job {
            dir: dir.to_path_buf(),
            hub,
            identity,
            done,
        };
        self.jobs
            .send(job)
            .map_err(|_| "the identity writer has stopped".to_string())?;
        written
            .await
            .map_err(|_| "the identity writer has stopped".to_string())?
    }
}

fn run(rx: mpsc::Receiver<Job>, durable: impl Fn() -> bool) {
    let mut stores: HashMap<PathBuf, Store> = HashMap::new();
    let mut waiting: VecDeque<Job> = VecDeque::new();
    loop {
        if waiting.is_empty() {
            match rx.recv() {
                Ok(job) => waiting.push_back(job),
                Err(_) => return,
            }
        }
        waiting.extend(rx.try_iter());
        let group = take_group(&mut waiting);
        let (dir, hub) = (group[0].dir.clone(), group[0].hub.clone());
        let store = stores.entry(dir.clone()).or_insert_with(|| Store::new(dir));
        let (identities, done): (Vec<_>, Vec<_>) =
            group.into_iter().map(|j| (j.identity, j.done)).unzip();
        match store.create_many(&hub, identities, durable()) {
            Ok(written) => {
                for (c, d) in written.into_iter().zip(done) {
                    let _ = d.send(Ok(c));
                }
            }
            Err(e) => {
                let why = e.to_string();
                for d in done {
                    let _ = d.send(Err(why.clone()));
                }
            }
        }
    }
}

/// The first waiting job and those that can share its write: the same
/// directory and hub settings, each id once (a device registering twice at
/// once gets its second write in the next group), at most [`MAX_GROUP`].
fn take_group(waiting: &mut VecDeque<Job>) -> Vec<Job> {
    let first = waiting.pop_front().expect("called with a job waiting");
    let mut ids = HashSet::from([first.identity.device_id.clone()]);
    let mut group = vec![first];
    let mut rest = VecDeque::with_capacity(waiting.len());
    for job in waiting.drain(..) {
        let fits = group.len() < MAX_GROUP
            && job.dir == group[0].dir
            && Arc::ptr_eq(&job.hub, &group[0].hub)
            && !ids.contains(&job.identity.device_id);
        if fits {
            ids.insert(job.identity.device_id.clone());
            group.push(job);
        } else {
            rest.push_back(job);
        }
    }
    *waiting = rest;
    group
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hub() -> Arc<Hub> {
        Arc::new(crate::credentials::store::tests::hub("localhost"))
    }

    fn identity(id: &str) -> NewIdentity {
        NewIdentity {
            device_id: id.into(),
            planned: None,
            default: serde_json::json!({"name": "default"}),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_registrations_get_distinct_names_and_a_repeated_id_keeps_its_own() {
        let d = tempfile::tempdir().unwrap();
        let (w, hub) = (Arc::new(IdentityWriter::start(|| true).unwrap()), hub());
        let mut tasks = tokio::task::JoinSet::new();
        // 200 devices at once, one of them three times.
        for i in 0..202 {
            let (w, hub, dir) = (w.clone(), hub.clone(), d.path().to_path_buf());
            let id = if i >= 200 {
                "dev-7".to_string()
            } else {
                format!("dev-{i}")
            };
            tasks.spawn(async move { w.create(&dir, hub, identity(&id)).await });
        }
        let mut names: HashMap<String, HashSet<u64>> = HashMap::new();
        while let Some(r) = tasks.join_next().await {
            let c = r.unwrap().unwrap();
            names.entry(c.device_id).or_default().insert(c.device_name);
        }
        assert_eq!(names.len(), 200);
        assert!(names.values().all(|n| n.len() == 1), "{names:?}");
        let all: HashSet<u64> = names.values().flatten().copied().collect();
        assert_eq!(all.len(), 200, "two devices share a name");
        let store = Store::new(d.path());
        assert_eq!(store.list_ids().unwrap().len(), 200);
        let rows =
            std::fs::read_to_string(d.path().join(super::super::store::HISTORY_FILE)).unwrap();
        assert_eq!(
            rows.lines().count(),
            1 + 202,
            "a header and one row per write"
        );
        let e = w.create(d.path(), hub, identity("a b")).await.unwrap_err();
        assert!(e.contains("contains ' '"), "{e}");
    }
}
