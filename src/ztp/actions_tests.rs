use std::sync::Mutex as StdMutex;
use std::time::Duration;

use super::*;
use crate::settings::Durability;

fn fields(url: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("config_url".into(), url.into());
    m
}

/// Records what was published, to see that nothing goes out twice.
#[derive(Default)]
struct Seen(StdMutex<Vec<(String, Value)>>);

impl DeviceEvents for Seen {
    fn send(&self, device_id: &str, event: &Value) {
        self.0
            .lock()
            .unwrap()
            .push((device_id.to_string(), event.clone()));
    }
}

#[tokio::test]
async fn long_poll_returns_when_one_arrives_and_reading_keeps_it() {
    let dir = tempfile::tempdir().unwrap();
    let a = ActionStore::open(&StateStore::open(dir.path(), Durability::Os).unwrap()).unwrap();
    assert!(a.wait("leaf1", Duration::from_millis(20)).await.is_empty());
    let a2 = a.clone();
    let waiter = tokio::spawn(async move { a2.wait("leaf1", Duration::from_secs(30)).await });
    tokio::task::yield_now().await;
    let act = a
        .queue("leaf1", None, "reconfigure", fields("http://x/c"))
        .await
        .unwrap();
    let got = waiter.await.unwrap();
    assert_eq!(got, vec![act.clone()]);
    assert_eq!(act["type"], "reconfigure");
    assert!(act["id"].as_str().unwrap().starts_with("act-"));
    // Reading does not remove it.
    assert_eq!(a.pending("leaf1"), vec![act]);
    assert!(a.pending("leaf2").is_empty());
}

#[tokio::test]
async fn actions_survive_a_restart_until_acknowledged_and_publish_once() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Seen::default());
    let (up, cred) = {
        let store = StateStore::open(dir.path(), Durability::Fsync).unwrap();
        let a = ActionStore::open(&store).unwrap();
        a.set_publisher(seen.clone(), &store.reader().unwrap());
        let up = a
            .queue("leaf1", None, "upgrade", fields("http://x/i"))
            .await
            .unwrap();
        let cred = a
            .queue("sensor1", Some("SER1"), "refresh_credential", Map::new())
            .await
            .unwrap();
        (up, cred)
    };
    assert_eq!(
        seen.0.lock().unwrap().len(),
        1,
        "only the device with a credential"
    );
    assert_eq!(
        seen.0.lock().unwrap()[0],
        ("SER1".to_string(), cred.clone())
    );
    // Give the `published` flag write its commit.
    tokio::time::sleep(Duration::from_millis(50)).await;
    let store = StateStore::open(dir.path(), Durability::Os).unwrap();
    let a = ActionStore::open(&store).unwrap();
    a.set_publisher(seen.clone(), &store.reader().unwrap());
    assert_eq!(
        seen.0.lock().unwrap().len(),
        1,
        "not published twice after a restart"
    );
    assert_eq!(a.pending("leaf1"), vec![up.clone()]);
    // Another device cannot acknowledge it; nothing changes.
    let id = up["id"].as_str().unwrap();
    assert!(matches!(
        a.acknowledge("leaf2", id).await,
        Err(AckError::NotYours { .. })
    ));
    assert!(matches!(
        a.acknowledge("leaf1", "act-nope").await,
        Err(AckError::Unknown(_))
    ));
    assert_eq!(a.pending("leaf1"), vec![up.clone()]);
    a.acknowledge("leaf1", id).await.unwrap();
    assert!(a.pending("leaf1").is_empty());
    a.credential_fetched("sensor1").await;
    assert!(a.pending("sensor1").is_empty());
    drop(a);
    let a = ActionStore::open(&StateStore::open(dir.path(), Durability::Os).unwrap()).unwrap();
    assert!(a.pending("leaf1").is_empty(), "acknowledged stays done");
    assert!(a.pending("sensor1").is_empty());
    // Still known as leaf1's: a late report from another device is refused.
    assert!(matches!(
        a.acknowledge("leaf2", id).await,
        Err(AckError::NotYours { .. })
    ));
}

#[tokio::test]
async fn a_newer_action_of_the_same_type_supersedes_the_pending_one() {
    let dir = tempfile::tempdir().unwrap();
    let a = ActionStore::open(&StateStore::open(dir.path(), Durability::Os).unwrap()).unwrap();
    let first = a
        .queue("leaf1", None, "upgrade", fields("a"))
        .await
        .unwrap();
    let conf = a
        .queue("leaf1", None, "reconfigure", fields("c"))
        .await
        .unwrap();
    let second = a
        .queue("leaf1", None, "upgrade", fields("b"))
        .await
        .unwrap();
    assert_eq!(a.pending("leaf1"), vec![conf.clone(), second.clone()]);
    let a = ActionStore::open(&StateStore::open(dir.path(), Durability::Os).unwrap()).unwrap();
    assert_eq!(a.pending("leaf1"), vec![conf, second]);
    assert_ne!(first["id"], Value::Null);
}

#[tokio::test]
async fn a_withdrawn_action_is_no_longer_served_even_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let a = ActionStore::open(&StateStore::open(dir.path(), Durability::Os).unwrap()).unwrap();
    let up = a
        .queue("leaf1", None, "upgrade", fields("a"))
        .await
        .unwrap();
    let id = up["id"].as_str().unwrap();
    assert!(!a.withdraw("leaf2", id).await.unwrap(), "not leaf2's");
    assert_eq!(a.pending("leaf1").len(), 1);
    assert!(a.withdraw("leaf1", id).await.unwrap());
    assert!(a.pending("leaf1").is_empty());
    let a = ActionStore::open(&StateStore::open(dir.path(), Durability::Os).unwrap()).unwrap();
    assert!(a.pending("leaf1").is_empty());
}
