use super::*;
use crate::telemetry::message::validate;

fn reading(id: &str, name: i64, sec: u32, lat: f64, lon: f64, battery: f64) -> Reading {
    let payload = format!(
        r#"{{"device_id":"{id}","device_name":{name},"device_latitude":{lat},"device_longitude":{lon},"device_battery_level":{battery},"signal_date":"2024-05-01 12:00:{sec:02}.000001"}}"#
    );
    validate(
        &format!("devices/{id}/messages/events/"),
        payload.as_bytes(),
    )
    .unwrap()
    .remove(0)
}

#[tokio::test]
async fn redelivery_is_a_duplicate_and_rejections_are_kept_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(&dir.path().join("state").join(FILE_NAME)).unwrap();
    let batch = vec![
        reading("a", 1, 1, 1.0, 2.0, 0.9),
        reading("a", 1, 2, 1.0, 2.0, 0.9),
    ];
    let bad = RejectedMessage {
        topic: "devices/a/messages/events/".into(),
        payload: vec![0xff; 10_000],
        reason: "not UTF-8".into(),
    };
    let first = s.write(&batch, std::slice::from_ref(&bad)).await.unwrap();
    assert_eq!(
        first,
        WriteOutcome {
            inserted: 2,
            duplicates: 0,
            rejected: 1
        }
    );
    let again = s.write(&batch, std::slice::from_ref(&bad)).await.unwrap();
    assert_eq!(
        again,
        WriteOutcome {
            inserted: 0,
            duplicates: 2,
            rejected: 1
        }
    );
    assert_eq!(s.counts().await.unwrap(), (2, 1));
    let kept: (Vec<u8>, i64) = s
        .conn
        .lock()
        .unwrap()
        .query_row("SELECT payload, payload_size FROM rejected", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!(kept.0.len(), super::super::MAX_REJECTED_PAYLOAD);
    assert_eq!(kept.1, 10_000);
}

#[tokio::test]
async fn analyze_matches_values_computed_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let s = EmbeddedStore::open(&dir.path().join(FILE_NAME)).unwrap();
    // inserted out of time order: the last battery is the one with the latest date
    let rows = [
        ("a", 7, 3, -35.0, -65.0, 0.5),
        ("a", 7, 1, -33.0, -61.0, 0.9),
        ("a", 7, 2, -34.0, -62.0, 0.7),
        ("b", 8, 1, 10.0, 20.0, 1.0),
    ];
    let batch: Vec<Reading> = rows
        .iter()
        .map(|r| reading(r.0, r.1, r.2, r.3, r.4, r.5))
        .collect();
    s.write(&batch, &[]).await.unwrap();
    let all = s.analyze(None).await.unwrap();
    assert_eq!(all.len(), 2);
    let a = &all[0];
    assert_eq!(a.device_id, "a");
    assert_eq!(a.count, 3);
    assert_eq!(a.device_name, Some(serde_json::json!(7)));
    let lat = a.latitude.unwrap();
    assert_eq!((lat.min, lat.max), (-35.0, -33.0));
    assert!((lat.mean - (-35.0 - 33.0 - 34.0) / 3.0).abs() < 1e-9);
    assert_eq!(a.last_battery, Some(0.5));
    // --device takes an id or a name
    let by_name = s.analyze(Some("8")).await.unwrap();
    assert_eq!(by_name.len(), 1);
    assert_eq!(by_name[0].device_id, "b");
    assert_eq!(s.analyze(Some("a")).await.unwrap().len(), 1);
    assert!(s.analyze(Some("zzz")).await.unwrap().is_empty());
}
