//! Unit tests of the ZTP state machine and its persistence.
use super::*;
use crate::settings::Durability;

#[test]
fn transitions_follow_the_machine() {
    use Stage::*;
    assert!(allowed(Planned, Dhcp));
    assert!(allowed(Dhcp, Hello));
    assert!(allowed(Hello, Approved));
    assert!(allowed(Hello, PendingApproval));
    assert!(allowed(PendingApproval, Approved));
    assert!(allowed(Approved, Downloading));
    assert!(allowed(Downloading, Installing));
    assert!(allowed(Approved, Deployed));
    assert!(allowed(Rebooting, Failed));
    assert!(!allowed(Planned, Approved));
    assert!(!allowed(PendingApproval, Downloading));
    assert!(!allowed(TopologyMismatch, Downloading));
    assert!(!allowed(Installing, Downloading));
    assert!(!allowed(Deployed, Installing));
    assert!(!allowed(Dhcp, TopologyMismatch));
    for s in Stage::ALL {
        assert_eq!(Stage::parse(s.as_str()), Some(s));
        assert!(!allowed(s, Planned));
    }
}

fn change<'a>(name: &'a str, stages: Vec<Stage>, msg: &str) -> Change<'a> {
    Change {
        name,
        serial: "S1",
        stages,
        percent: None,
        message: msg.to_string(),
        edit: Box::new(|_| {}),
    }
}

#[tokio::test]
async fn records_and_events_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let t = Tracker::open(&StateStore::open(dir.path(), Durability::Fsync).unwrap()).unwrap();
        let mut rx = t.subscribe();
        t.apply(change("leaf1", vec![Stage::Hello, Stage::Approved], "ok"))
            .await
            .unwrap();
        assert_eq!(rx.recv().await.unwrap().stage, Stage::Hello);
        assert_eq!(rx.recv().await.unwrap().stage, Stage::Approved);
        let err = t
            .apply(change("leaf1", vec![Stage::Rebooting], "r"))
            .await
            .map(|_| ());
        assert!(err.is_ok(), "forward skip is allowed: {err:?}");
        let err = t
            .apply(change("leaf1", vec![Stage::Downloading], "back"))
            .await;
        assert!(matches!(err, Err(ChangeError::Invalid { .. })));
    }
    let store = StateStore::open(dir.path(), Durability::Os).unwrap();
    let reader = store.reader().unwrap();
    let t = Tracker::open(&store).unwrap();
    let r = t.get("leaf1").unwrap();
    assert_eq!(r.stage, Stage::Rebooting);
    let h = t.history(&reader, "leaf1");
    let stages: Vec<Stage> = h.iter().map(|e| e.stage).collect();
    assert_eq!(stages, [Stage::Hello, Stage::Approved, Stage::Rebooting]);
    // A later change still wins over the reloaded version.
    t.apply(change("leaf1", vec![Stage::Deployed], "done"))
        .await
        .unwrap();
    drop(t);
    let t = Tracker::open(&StateStore::open(dir.path(), Durability::Os).unwrap()).unwrap();
    assert_eq!(t.get("leaf1").unwrap().stage, Stage::Deployed);
}

#[test]
fn an_action_restarts_the_install_only_of_an_approved_device() {
    assert!(!allowed(Stage::Deployed, Stage::Downloading));
    assert!(restarts_install(Stage::Deployed, Stage::Downloading));
    assert!(restarts_install(Stage::Failed, Stage::Installing));
    assert!(restarts_install(Stage::Rebooting, Stage::Downloading));
    assert!(!restarts_install(
        Stage::TopologyMismatch,
        Stage::Downloading
    ));
    assert!(!restarts_install(Stage::PendingApproval, Stage::Deployed));
    assert!(!restarts_install(Stage::Deployed, Stage::Approved));
}

#[test]
fn the_stage_list_is_the_one_source_of_names_and_tones() {
    for s in Stage::ALL {
        let json = serde_json::to_value(s).unwrap();
        assert_eq!(json, s.as_str(), "serialised as its name");
        assert_eq!(serde_json::from_value::<Stage>(json).unwrap(), s);
        assert!(
            ["idle", "wait", "busy", "ok", "bad"].contains(&s.tone()),
            "{s}"
        );
    }
    assert!(serde_json::from_str::<Stage>("\"waiting_approval\"").is_err());
    assert_eq!(
        Stage::reportable_names(),
        "dhcp, hello, downloading, installing, rebooting, deployed, failed"
    );
}
