//! Scheduled runs claimed once: many daemons racing for the same due runs each win a
//! disjoint share, every due run is won exactly once, and the last one due is known.

use chrono::{Duration, TimeZone, Utc};
use conpere_core::claims;
use conpere_tests::{scalar, TestDatabase};
use std::collections::BTreeSet;

#[tokio::test]
async fn racing_daemons_claim_each_due_run_exactly_once() {
    let db = TestDatabase::new().await;
    let start = Utc.with_ymd_and_hms(2026, 3, 29, 0, 0, 0).unwrap();
    let due: Vec<_> = (0..30).map(|i| start + Duration::seconds(2 * i)).collect();
    let daemons = (0..6).map(|d| {
        let (pool, due) = (db.pool.clone(), due.clone());
        tokio::spawn(async move {
            let mut won = Vec::new();
            for at in due {
                if claims::claim(&pool, "apogee", at, &format!("host{d}:1"))
                    .await
                    .unwrap()
                {
                    won.push(at);
                }
            }
            won
        })
    });
    let mut all = Vec::new();
    for daemon in daemons {
        all.extend(daemon.await.unwrap());
    }
    assert_eq!(
        all.len(),
        due.len(),
        "every due run claimed once, none twice"
    );
    assert_eq!(all.iter().collect::<BTreeSet<_>>().len(), due.len());
    // Another source's claims are its own; the last due run is known.
    assert!(claims::claim(&db.pool, "pegase", due[0], "host0:1")
        .await
        .unwrap());
    assert_eq!(
        claims::last_claimed(&db.pool, "apogee").await.unwrap(),
        due.last().copied()
    );
    assert_eq!(claims::last_claimed(&db.pool, "files").await.unwrap(), None);
    let rows: i64 = scalar(&db, "SELECT count(*) FROM schedule_claim").await;
    assert_eq!(rows, due.len() as i64 + 1);
}
