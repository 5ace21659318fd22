use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::credentials::hub::HubSource;
use crate::credentials::{function, EnrollmentKey};

pub(crate) fn hub(hostname: &str) -> Hub {
    Hub {
        hostname: hostname.into(),
        broker: "mqtt://127.0.0.1:1883".into(),
        key: EnrollmentKey::generate(),
        source: HubSource::Local(PathBuf::from("unused")),
        dps: Default::default(),
    }
}

fn default_function() -> Value {
    function::to_json("default", function::BUILTIN_DEFAULT).unwrap()
}

fn history_rows(store: &Store) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(store.dir().join(HISTORY_FILE)).unwrap();
    text.lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

#[test]
fn create_writes_the_prototype_format_0600_and_a_history_row() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::new(d.path().join("device_credentials"));
    let hub = hub("h.azure-devices.net");
    let a = store.create(&hub, "JPE1", default_function()).unwrap();
    let b = store.create(&hub, "JPE2", default_function()).unwrap();
    assert_eq!((a.device_name, b.device_name), (1_000_001, 1_000_002));

    let path = store.path_of("JPE1");
    assert_eq!(path.file_name().unwrap(), "device_JPE1.json");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "credential mode {mode:o}");

    let json: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "CONNECTION_STR_PUB",
            "credential_creation_date",
            "device_function",
            "device_id",
            "device_name"
        ]
    );
    assert_eq!(json["device_id"], "JPE1");
    assert_eq!(json["device_name"], 1_000_001);
    assert!(json["device_name"].is_u64());
    assert_eq!(json["device_function"]["name"], "default");
    assert_eq!(json["device_function"]["battery"]["drain_max"], 0.03);
    let date = json["credential_creation_date"].as_str().unwrap();
    assert!(
        chrono::NaiveDateTime::parse_from_str(date, "%Y-%m-%d %H:%M:%S%.f").is_ok()
            && date.len() == 26,
        "date {date}"
    );
    let key = device_key(&hub.key, "JPE1");
    assert_eq!(
        json["CONNECTION_STR_PUB"],
        format!(
            "HostName=h.azure-devices.net;DeviceId=JPE1;SharedAccessKey={}",
            key.expose_base64()
        )
    );
    assert_eq!(store.read("JPE1").unwrap().unwrap(), a);

    let rows = history_rows(&store);
    assert_eq!(
        rows[0],
        ["device_id", "device_name", "credential_creation_date"]
    );
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1], ["JPE1", "1000001", &a.credential_creation_date]);
    assert_eq!(rows[2], ["JPE2", "1000002", &b.credential_creation_date]);
}

#[test]
fn a_device_keeps_its_name_and_new_ones_take_max_plus_one() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::new(d.path());
    let hub = hub("h");
    store.create(&hub, "a", default_function()).unwrap();
    // Another tool (or an older run) recorded a higher name.
    let mut f = OpenOptions::new()
        .append(true)
        .open(d.path().join(HISTORY_FILE))
        .unwrap();
    f.write_all(b"old,1000500,2020-01-01 00:00:00.000000\n")
        .unwrap();
    assert_eq!(
        store
            .create(&hub, "b", default_function())
            .unwrap()
            .device_name,
        1_000_501
    );
    assert_eq!(
        store
            .create(&hub, "a", default_function())
            .unwrap()
            .device_name,
        1_000_001
    );
    // A device whose file was deleted gets its old name back from the history.
    std::fs::remove_file(store.path_of("b")).unwrap();
    assert_eq!(
        store
            .create(&hub, "b", default_function())
            .unwrap()
            .device_name,
        1_000_501
    );
    assert_eq!(
        store
            .create(&hub, "old", default_function())
            .unwrap()
            .device_name,
        1_000_500
    );
    assert_eq!(history_rows(&store).len(), 1 + 1 + 1 + 4);
}

#[test]
fn regenerate_keeps_names_uses_the_new_key_and_appends_one_row_each() {
    let d = tempfile::tempdir().unwrap();
    let templates = d.path().join("templates");
    std::fs::create_dir_all(templates.join("device_function")).unwrap();
    std::fs::write(function::path_of(&templates, "fast"), "interval = \"1s\"\n").unwrap();
    let store = Store::new(d.path().join("creds"));
    let old_hub = hub("h");
    let mut before = Vec::new();
    for id in ["x1", "x2", "x3"] {
        let f = function::load(&templates, if id == "x2" { "fast" } else { "default" }).unwrap();
        before.push(store.create(&old_hub, id, f).unwrap());
    }
    std::fs::write(function::path_of(&templates, "fast"), "interval = \"5s\"\n").unwrap();
    let new_hub = hub("h2");
    let r = store
        .regenerate_all(&new_hub, |n| function::load(&templates, n))
        .unwrap();
    assert!(r.failed.is_empty(), "{:?}", r.failed);
    assert_eq!(r.written.len(), 3);
    for old in &before {
        let now = store.read(&old.device_id).unwrap().unwrap();
        assert_eq!(now.device_name, old.device_name);
        assert_eq!(now.function_name(), old.function_name());
        assert_ne!(now.connection_str_pub, old.connection_str_pub);
        assert!(now.connection_str_pub.starts_with("HostName=h2;"));
        assert!(now
            .connection_str_pub
            .ends_with(device_key(&new_hub.key, &old.device_id).expose_base64()));
    }
    assert_eq!(
        store.read("x2").unwrap().unwrap().device_function["interval"],
        "5s"
    );
    assert_eq!(history_rows(&store).len(), 1 + 3 + 3);

    // Only the devices of one function.
    let r = store
        .regenerate_where(
            &new_hub,
            |c| c.function_name() == "fast",
            |n| function::load(&templates, n),
        )
        .unwrap();
    assert_eq!(r.written, [("x2".to_string(), before[1].device_name)]);
    assert_eq!(history_rows(&store).len(), 1 + 3 + 3 + 1);
}

#[test]
fn a_crash_before_rename_leaves_the_old_file_and_is_cleaned_up() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::new(d.path());
    let hub = hub("h");
    let old = store.create(&hub, "dev", default_function()).unwrap();
    let old_bytes = std::fs::read(store.path_of("dev")).unwrap();
    // What a writer killed between write and rename leaves: a torn temp file
    // and a torn history row.
    let tmp = d.path().join(".tmp-device_dev.json.4242");
    std::fs::write(&tmp, b"{\"device_id\": \"dev\", \"devi").unwrap();
    let mut f = OpenOptions::new()
        .append(true)
        .open(d.path().join(HISTORY_FILE))
        .unwrap();
    f.write_all(b"dev,10000").unwrap();
    assert_eq!(std::fs::read(store.path_of("dev")).unwrap(), old_bytes);
    assert_eq!(store.read("dev").unwrap().unwrap(), old);

    let again = store.create(&hub, "dev", default_function()).unwrap();
    assert_eq!(again.device_name, old.device_name);
    assert!(!tmp.exists(), "leftover temp file removed under the lock");
    let rows = history_rows(&store);
    assert_eq!(
        rows.last().unwrap()[..2],
        ["dev".to_string(), "1000001".to_string()]
    );
    assert_eq!(
        rows[rows.len() - 2],
        ["dev", "10000"],
        "torn row kept, not glued"
    );
    assert_eq!(
        store
            .create(&hub, "new", default_function())
            .unwrap()
            .device_name,
        1_000_002
    );
}

#[test]
fn regenerate_reports_corrupt_files_and_continues() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::new(d.path());
    let hub = hub("h");
    store.create(&hub, "good", default_function()).unwrap();
    std::fs::write(store.path_of("bad"), b"not json").unwrap();
    let r = store
        .regenerate_all(&hub, |n| Ok(function::to_json(n, "").unwrap()))
        .unwrap();
    assert_eq!(r.written.len(), 1);
    assert_eq!(r.failed.len(), 1);
    assert_eq!(r.failed[0].0, "bad");
    assert!(
        r.failed[0].1.contains("not a credential file"),
        "{}",
        r.failed[0].1
    );
    assert_eq!(std::fs::read(store.path_of("bad")).unwrap(), b"not json");
}

#[test]
fn create_missing_only_fills_gaps() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::new(d.path());
    let hub = hub("h");
    let a = store.create(&hub, "a", default_function()).unwrap();
    let made = store
        .create_missing(
            &hub,
            vec![
                ("a".into(), default_function()),
                ("b".into(), default_function()),
            ],
        )
        .unwrap();
    assert_eq!(made.len(), 1);
    assert_eq!(
        (made[0].device_id.as_str(), made[0].device_name),
        ("b", 1_000_002)
    );
    assert_eq!(store.read("a").unwrap().unwrap(), a);
    assert_eq!(store.list_ids().unwrap(), ["a", "b"]);
}

#[test]
fn bad_ids_are_refused_and_keys_never_print() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::new(d.path());
    let hub = hub("h");
    assert!(matches!(
        store.create(&hub, "../x", default_function()),
        Err(StoreError::BadId(_))
    ));
    let c = store.create(&hub, "k", default_function()).unwrap();
    let key = device_key(&hub.key, "k");
    assert!(!format!("{c:?}").contains(key.expose_base64()));
}

#[test]
fn an_interrupted_write_is_completed_under_its_name_and_a_deleted_file_is_not() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::new(d.path());
    let hub = hub("h");
    let a = store.create(&hub, "a", default_function()).unwrap();
    let b = store.create(&hub, "b", default_function()).unwrap();
    let c = store.create(&hub, "c", default_function()).unwrap();
    // An operator deletes c's credential by hand: it stays deleted.
    std::fs::remove_file(store.path_of("c")).unwrap();
    // A crash after b's row was synced and before its file was renamed in
    // (b's id still in the intent), and one mid-append of d's row.
    std::fs::remove_file(store.path_of("b")).unwrap();
    let mut f = OpenOptions::new()
        .append(true)
        .open(d.path().join(HISTORY_FILE))
        .unwrap();
    f.write_all(b"d,10000").unwrap();
    std::fs::write(d.path().join(LOCK_FILE), "b\nd\n").unwrap();
    let rows_before = history_rows(&store).len();

    let done = store
        .complete_interrupted(&hub, |_| default_function())
        .unwrap();
    assert_eq!(
        done.len(),
        1,
        "only b: d's row is torn, c was not being written"
    );
    let b_again = store.read("b").unwrap().unwrap();
    assert_eq!(b_again.device_name, b.device_name);
    assert_eq!(b_again.connection_str_pub, b.connection_str_pub);
    assert_eq!(
        std::fs::metadata(store.path_of("b"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    assert!(store.read("c").unwrap().is_none(), "{c:?} stays deleted");
    assert!(store.read("d").unwrap().is_none());
    assert_eq!(history_rows(&store).len(), rows_before, "no row added");
    assert_eq!(store.read("a").unwrap().unwrap(), a);
    assert_eq!(std::fs::read(d.path().join(LOCK_FILE)).unwrap(), b"");
    assert!(store
        .complete_interrupted(&hub, |_| default_function())
        .unwrap()
        .is_empty());
}

#[test]
fn a_finished_write_leaves_no_intent_and_a_failed_one_keeps_it() {
    let d = tempfile::tempdir().unwrap();
    let store = Store::new(d.path());
    let hub = hub("h");
    store.create(&hub, "a", default_function()).unwrap();
    assert_eq!(std::fs::read(d.path().join(LOCK_FILE)).unwrap(), b"");
    // A file that cannot be written (its path is a directory): the row is
    // appended, the file fails, and the intent keeps the id.
    std::fs::create_dir(store.path_of("e")).unwrap();
    assert!(store.create(&hub, "e", default_function()).is_err());
    assert_eq!(
        std::fs::read_to_string(d.path().join(LOCK_FILE)).unwrap(),
        "e\n"
    );
    // Another write keeps it too, until a completion handles it.
    store.create(&hub, "f", default_function()).unwrap();
    assert_eq!(
        std::fs::read_to_string(d.path().join(LOCK_FILE)).unwrap(),
        "e\n"
    );
    std::fs::remove_dir(store.path_of("e")).unwrap();
    let done = store
        .complete_interrupted(&hub, |_| default_function())
        .unwrap();
    assert_eq!(done.len(), 1);
    assert!(store.read("e").unwrap().is_some());
}

fn new_identity(id: &str, planned: Option<Value>) -> NewIdentity {
    NewIdentity {
        device_id: id.into(),
        planned,
        default: default_function(),
    }
}

#[test]
fn a_kept_store_reads_what_others_appended_a_torn_row_and_a_replaced_history() {
    let d = tempfile::tempdir().unwrap();
    let hub = hub("h");
    let kept = Store::new(d.path());
    let names = |v: Vec<CredentialFile>| -> Vec<(String, u64)> {
        v.into_iter()
            .map(|c| (c.device_id, c.device_name))
            .collect()
    };
    let first = kept
        .create_many(
            &hub,
            vec![new_identity("a", None), new_identity("b", None)],
            true,
        )
        .unwrap();
    assert_eq!(
        names(first),
        [("a".into(), 1_000_001), ("b".into(), 1_000_002)]
    );
    // Another process (`ztpd credentials create`) writes in between, then
    // one is killed mid-append: its row is torn, no newline.
    Store::new(d.path())
        .create(&hub, "c", default_function())
        .unwrap();
    let history = d.path().join(HISTORY_FILE);
    let mut f = OpenOptions::new().append(true).open(&history).unwrap();
    f.write_all(b"torn,1000009,2020-01").unwrap();
    // The kept store's next group sees both: names past the torn row's, a
    // known device keeps its name and takes its planned function.
    let planned = serde_json::json!({"name": "planned"});
    let second = kept
        .create_many(
            &hub,
            vec![
                new_identity("d", None),
                new_identity("a", Some(planned.clone())),
            ],
            true,
        )
        .unwrap();
    assert_eq!(second[1].device_function, planned);
    assert_eq!(
        names(second),
        [("d".into(), 1_000_010), ("a".into(), 1_000_001)]
    );
    // The torn row got its newline: the rows after it are whole.
    let text = std::fs::read_to_string(&history).unwrap();
    assert!(text.contains("torn,1000009,2020-01\nd,1000010,"), "{text}");
    // A history replaced by a shorter one (restored by hand) is read again.
    std::fs::write(
        &history,
        "device_id,device_name,credential_creation_date\nz,2000000,2020-01-01 00:00:00.000000\n",
    )
    .unwrap();
    let third = kept
        .create_many(&hub, vec![new_identity("e", None)], false)
        .unwrap();
    assert_eq!(names(third), [("e".into(), 2_000_001)]);
    assert_eq!(
        std::fs::metadata(d.path().join(LOCK_FILE)).unwrap().len(),
        0,
        "no intent left"
    );
    assert!(kept.read("e").unwrap().is_some());
}
