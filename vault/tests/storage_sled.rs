//! The sled backend: keyspaces, atomic batches, single-use conditions,
//! bounds, the lease expiry index, group commit.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;

use keyward_vault::storage::{
    ConditionKind, KeyRange, Keyspace, MAX_BATCH_OPS, MAX_KEY_LEN, MAX_SCAN, MAX_VALUE_LEN,
    SledConfig, SledStorage, Storage, StorageError, WriteBatch, lease_expiry_bound,
    lease_expiry_key, parse_lease_expiry_key,
};

fn store() -> SledStorage {
    SledStorage::open(&SledConfig::temporary()).unwrap()
}

fn batch() -> WriteBatch {
    WriteBatch::new()
}

#[tokio::test]
async fn keyspaces_do_not_share_keys() {
    let s = store();
    let mut b = batch();
    for ks in Keyspace::ALL {
        b.put(ks, b"same-key", ks.name().as_bytes()).unwrap();
    }
    s.commit(b).await.unwrap();
    for ks in Keyspace::ALL {
        assert_eq!(
            s.get(ks, b"same-key").await.unwrap().unwrap(),
            ks.name().as_bytes()
        );
        let all = s.scan(ks, KeyRange::All, MAX_SCAN).await.unwrap();
        assert_eq!(
            all,
            vec![(b"same-key".to_vec(), ks.name().as_bytes().to_vec())]
        );
    }
    let prefixes: std::collections::BTreeSet<u8> =
        Keyspace::ALL.iter().map(|k| k.prefix()).collect();
    assert_eq!(prefixes.len(), Keyspace::ALL.len());
}

#[tokio::test]
async fn a_batch_with_a_failed_condition_writes_nothing() {
    let s = store();
    s.insert_if_absent(Keyspace::Nonces, b"n1", b"fresh")
        .await
        .unwrap();
    // Good: consume nonce + create lease + expiry entry + audit pointer.
    let mut b = batch();
    b.take(Keyspace::Nonces, b"n1").unwrap();
    b.put(Keyspace::Leases, b"lease-1", b"lease").unwrap();
    b.put(
        Keyspace::LeaseExpiry,
        &lease_expiry_key(10, b"lease-1"),
        b"",
    )
    .unwrap();
    b.put(Keyspace::AuditPointers, b"head", b"1").unwrap();
    let committed = s.commit(b).await.unwrap();
    assert_eq!(committed.into_taken(), vec![b"fresh".to_vec()]);
    assert_eq!(s.get(Keyspace::Nonces, b"n1").await.unwrap(), None);
    // Tampered: the same nonce again. Nothing of the batch is written.
    let mut b = batch();
    b.put(Keyspace::Leases, b"lease-2", b"lease").unwrap();
    b.take(Keyspace::Nonces, b"n1").unwrap();
    b.put(Keyspace::AuditPointers, b"head", b"2").unwrap();
    let err = s.commit(b).await.unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::ConditionFailed {
                keyspace: Keyspace::Nonces,
                index: 1,
                kind: ConditionKind::Take
            }
        ),
        "{err:?}"
    );
    assert_eq!(s.get(Keyspace::Leases, b"lease-2").await.unwrap(), None);
    assert_eq!(
        s.get(Keyspace::AuditPointers, b"head")
            .await
            .unwrap()
            .unwrap(),
        b"1"
    );
}

#[tokio::test]
async fn insert_if_absent_and_compare_and_swap() {
    let s = store();
    s.insert_if_absent(Keyspace::Enrollments, b"e", b"secret-1")
        .await
        .unwrap();
    let err = s
        .insert_if_absent(Keyspace::Enrollments, b"e", b"secret-2")
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StorageError::ConditionFailed {
            kind: ConditionKind::InsertNew,
            keyspace: Keyspace::Enrollments,
            index: 0
        }
    ));
    assert_eq!(
        s.get(Keyspace::Enrollments, b"e").await.unwrap().unwrap(),
        b"secret-1"
    );
    s.compare_and_swap(Keyspace::Hosts, b"h", None, Some(b"pending"))
        .await
        .unwrap();
    s.compare_and_swap(Keyspace::Hosts, b"h", Some(b"pending"), Some(b"active"))
        .await
        .unwrap();
    let err = s
        .compare_and_swap(Keyspace::Hosts, b"h", Some(b"pending"), Some(b"revoked"))
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        StorageError::ConditionFailed {
            kind: ConditionKind::CompareAndSwap,
            ..
        }
    ));
    assert_eq!(
        s.get(Keyspace::Hosts, b"h").await.unwrap().unwrap(),
        b"active"
    );
    s.compare_and_swap(Keyspace::Hosts, b"h", Some(b"active"), None)
        .await
        .unwrap();
    assert_eq!(s.get(Keyspace::Hosts, b"h").await.unwrap(), None);
    let err = s.take(Keyspace::Hosts, b"h").await.unwrap_err();
    assert!(matches!(
        err,
        StorageError::ConditionFailed {
            kind: ConditionKind::Take,
            ..
        }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_concurrent_take_wins() {
    let s = Arc::new(store());
    for round in 0..20u8 {
        let key = [round];
        s.insert_if_absent(Keyspace::Nonces, &key, b"nonce")
            .await
            .unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let s = Arc::clone(&s);
                tokio::spawn(async move { s.take(Keyspace::Nonces, &key).await })
            })
            .collect();
        let mut won = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(value) => {
                    assert_eq!(value, b"nonce");
                    won += 1;
                }
                Err(StorageError::ConditionFailed {
                    kind: ConditionKind::Take,
                    ..
                }) => {}
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(won, 1, "round {round}");
    }
}

#[tokio::test]
async fn sizes_are_bounded() {
    let s = store();
    let mut b = batch();
    assert!(matches!(
        b.put(Keyspace::Secrets, b"", b"v"),
        Err(StorageError::EmptyKey {
            keyspace: Keyspace::Secrets
        })
    ));
    assert!(matches!(
        b.put(Keyspace::Secrets, &[b'k'; MAX_KEY_LEN + 1], b"v"),
        Err(StorageError::KeyTooLong { len, max: MAX_KEY_LEN, .. }) if len == MAX_KEY_LEN + 1
    ));
    b.put(Keyspace::Secrets, &[b'k'; MAX_KEY_LEN], b"v")
        .unwrap();
    assert!(matches!(
        b.put(Keyspace::Secrets, b"k", &vec![0; MAX_VALUE_LEN + 1]),
        Err(StorageError::ValueTooLarge {
            max: MAX_VALUE_LEN,
            ..
        })
    ));
    b.put(Keyspace::Secrets, b"big", &vec![0; MAX_VALUE_LEN])
        .unwrap();
    assert!(matches!(
        b.compare_and_swap(
            Keyspace::Secrets,
            b"k",
            Some(&vec![0; MAX_VALUE_LEN + 1]),
            None
        ),
        Err(StorageError::ValueTooLarge { .. })
    ));
    // Eight values of 1 MiB exceed the 8 MiB batch cap.
    let mut big = batch();
    let value = vec![0; MAX_VALUE_LEN];
    let mut refused = None;
    for i in 0..9u8 {
        if let Err(e) = big.put(Keyspace::Secrets, &[i], &value) {
            refused = Some((i, e));
            break;
        }
    }
    let (at, err) = refused.unwrap();
    assert_eq!(at, 7);
    assert!(matches!(err, StorageError::BatchTooLarge { ops: 8, .. }));
    let mut many = batch();
    for i in 0..MAX_BATCH_OPS {
        many.delete(Keyspace::Tokens, &i.to_be_bytes()).unwrap();
    }
    assert!(matches!(
        many.delete(Keyspace::Tokens, b"one more"),
        Err(StorageError::BatchTooLarge { ops, .. }) if ops == MAX_BATCH_OPS + 1
    ));
    s.commit(many).await.unwrap();
    assert!(matches!(
        s.commit(batch()).await,
        Err(StorageError::EmptyBatch)
    ));
    for limit in [0, MAX_SCAN + 1] {
        assert!(matches!(
            s.scan(Keyspace::Leases, KeyRange::All, limit).await,
            Err(StorageError::ScanLimit { max: MAX_SCAN, .. })
        ));
    }
    assert!(matches!(
        s.get(Keyspace::Leases, &[0; MAX_KEY_LEN + 1]).await,
        Err(StorageError::KeyTooLong { .. })
    ));
}

#[tokio::test]
async fn lease_expiry_index_scans_in_time_order_and_only_what_is_due() {
    let s = store();
    // Times straddling byte boundaries, inserted out of order.
    let leases: [(u64, &[u8]); 5] = [
        (0x0100, b"c"),
        (0x00ff, b"b"),
        (5, b"a"),
        (1 << 40, b"e"),
        (0x0100, b"d"),
    ];
    let mut b = batch();
    for (t, id) in leases {
        b.put(Keyspace::LeaseExpiry, &lease_expiry_key(t, id), b"")
            .unwrap();
    }
    s.commit(b).await.unwrap();
    let bound = lease_expiry_bound(0x0100);
    let due = s
        .scan(
            Keyspace::LeaseExpiry,
            KeyRange::Between {
                start: &[],
                end: Some(&bound),
            },
            MAX_SCAN,
        )
        .await
        .unwrap();
    let due: Vec<(u64, Vec<u8>)> = due
        .iter()
        .map(|(k, _)| {
            let (t, id) = parse_lease_expiry_key(k).unwrap();
            (t, id.to_vec())
        })
        .collect();
    assert_eq!(
        due,
        vec![
            (5, b"a".to_vec()),
            (0xff, b"b".to_vec()),
            (0x100, b"c".to_vec()),
            (0x100, b"d".to_vec())
        ]
    );
    // A limit bounds the work: the first expiry only.
    let first = s
        .scan(Keyspace::LeaseExpiry, KeyRange::All, 1)
        .await
        .unwrap();
    assert_eq!(parse_lease_expiry_key(&first[0].0), Some((5, &b"a"[..])));
    assert_eq!(parse_lease_expiry_key(&[0; 8]), None);
    assert_eq!(parse_lease_expiry_key(&[0; 7]), None);
    // An inverted range is empty, not a panic.
    let empty = s
        .scan(
            Keyspace::LeaseExpiry,
            KeyRange::Between {
                start: &bound,
                end: Some(&[0]),
            },
            10,
        )
        .await
        .unwrap();
    assert!(empty.is_empty());
}

#[tokio::test]
async fn prefix_scans_stay_inside_their_prefix() {
    let s = store();
    let mut b = batch();
    for key in [&b"kv/a/1"[..], b"kv/a/2", b"kv/b/1", b"kv/a"] {
        b.put(Keyspace::Secrets, key, key).unwrap();
    }
    b.put(Keyspace::Leases, b"kv/a/3", b"other keyspace")
        .unwrap();
    s.commit(b).await.unwrap();
    let found = s
        .scan(Keyspace::Secrets, KeyRange::Prefix(b"kv/a/"), MAX_SCAN)
        .await
        .unwrap();
    let keys: Vec<_> = found.into_iter().map(|(k, _)| k).collect();
    assert_eq!(keys, vec![b"kv/a/1".to_vec(), b"kv/a/2".to_vec()]);
}

#[tokio::test]
async fn data_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let config = SledConfig::new(dir.path().join("db"));
    {
        let s = SledStorage::open(&config).unwrap();
        let mut b = batch();
        b.put(Keyspace::Hosts, b"h1", b"host").unwrap();
        s.commit(b).await.unwrap();
    }
    let s = SledStorage::open(&config).unwrap();
    assert_eq!(
        s.get(Keyspace::Hosts, b"h1").await.unwrap().unwrap(),
        b"host"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_share_flushes() {
    const WRITERS: u64 = 400;
    let dir = tempfile::tempdir().unwrap();
    let s = Arc::new(SledStorage::open(&SledConfig::new(dir.path().join("db"))).unwrap());
    let before = s.flush_count();
    // All writers start together, as concurrent requests would.
    let start = Arc::new(tokio::sync::Barrier::new(usize::try_from(WRITERS).unwrap()));
    let tasks: Vec<_> = (0..WRITERS)
        .map(|i| {
            let s = Arc::clone(&s);
            let start = Arc::clone(&start);
            tokio::spawn(async move {
                start.wait().await;
                let mut b = WriteBatch::new();
                b.put(Keyspace::Leases, &i.to_be_bytes(), b"lease").unwrap();
                b.put(Keyspace::AuditPointers, &i.to_be_bytes(), b"audit")
                    .unwrap();
                s.commit(b).await.unwrap();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let flushes = s.flush_count() - before;
    // Each commit returned only after a flush, so there was at least one;
    // sharing makes them far fewer than the commits (typically under 10
    // here; the bound leaves room for a loaded CI machine).
    assert!(flushes >= 1);
    assert!(
        flushes <= WRITERS / 4,
        "{flushes} flushes for {WRITERS} commits"
    );
    let all = s
        .scan(Keyspace::Leases, KeyRange::All, MAX_SCAN)
        .await
        .unwrap();
    assert_eq!(all.len(), usize::try_from(WRITERS).unwrap());
    // A lone commit still gets its own flush.
    let lone_before = s.flush_count();
    let mut b = WriteBatch::new();
    b.put(Keyspace::Leases, b"lone", b"lease").unwrap();
    s.commit(b).await.unwrap();
    assert!(s.flush_count() > lone_before);
}

#[tokio::test]
async fn an_ordered_batch_applies_in_order_and_stops_at_a_failed_condition() {
    let s = store();
    // Good: the shape of a session creation — single-use key first, then
    // an index entry, then the record it points to.
    let ordered = |nonce: &[u8], record: &[u8]| {
        let mut b = batch();
        b.insert_new(Keyspace::Nonces, nonce, b"used").unwrap();
        b.put(Keyspace::SessionExpiry, record, b"").unwrap();
        b.put(Keyspace::Sessions, record, b"session").unwrap();
        b
    };
    s.commit_in_order(ordered(b"n1", b"s1")).await.unwrap();
    assert_eq!(
        s.get(Keyspace::Nonces, b"n1").await.unwrap().unwrap(),
        b"used"
    );
    assert!(
        s.get(Keyspace::SessionExpiry, b"s1")
            .await
            .unwrap()
            .is_some()
    );
    assert_eq!(
        s.get(Keyspace::Sessions, b"s1").await.unwrap().unwrap(),
        b"session"
    );
    // Tampered: the same nonce again. Its condition is first, so nothing
    // of the second session is written.
    let err = s.commit_in_order(ordered(b"n1", b"s2")).await.unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::ConditionFailed {
                keyspace: Keyspace::Nonces,
                index: 0,
                kind: ConditionKind::InsertNew
            }
        ),
        "{err:?}"
    );
    assert_eq!(s.get(Keyspace::SessionExpiry, b"s2").await.unwrap(), None);
    assert_eq!(s.get(Keyspace::Sessions, b"s2").await.unwrap(), None);
    // Not atomic, as documented: a condition failing later leaves what
    // came before it applied, and nothing after it.
    let mut b = batch();
    b.put(Keyspace::Leases, b"before", b"x").unwrap();
    b.take(Keyspace::Nonces, b"never-issued").unwrap();
    b.put(Keyspace::Leases, b"after", b"x").unwrap();
    let err = s.commit_in_order(b).await.unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::ConditionFailed {
                keyspace: Keyspace::Nonces,
                index: 1,
                kind: ConditionKind::Take
            }
        ),
        "{err:?}"
    );
    assert!(s.get(Keyspace::Leases, b"before").await.unwrap().is_some());
    assert_eq!(s.get(Keyspace::Leases, b"after").await.unwrap(), None);
    // Takes and compare-and-swaps keep their meaning in order: the taken
    // value comes back, a stale expectation fails.
    let mut b = batch();
    b.take(Keyspace::Nonces, b"n1").unwrap();
    b.compare_and_swap(
        Keyspace::Sessions,
        b"s1",
        Some(b"session"),
        Some(b"renewed"),
    )
    .unwrap();
    let committed = s.commit_in_order(b).await.unwrap();
    assert_eq!(committed.into_taken(), vec![b"used".to_vec()]);
    assert_eq!(
        s.get(Keyspace::Sessions, b"s1").await.unwrap().unwrap(),
        b"renewed"
    );
    let mut b = batch();
    b.compare_and_swap(Keyspace::Sessions, b"s1", Some(b"session"), None)
        .unwrap();
    let err = s.commit_in_order(b).await.unwrap_err();
    assert!(
        matches!(
            err,
            StorageError::ConditionFailed {
                index: 0,
                kind: ConditionKind::CompareAndSwap,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        s.get(Keyspace::Sessions, b"s1").await.unwrap().unwrap(),
        b"renewed"
    );
    // Empty batches are refused here too.
    assert!(matches!(
        s.commit_in_order(batch()).await.unwrap_err(),
        StorageError::EmptyBatch
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_one_concurrent_ordered_insert_new_wins() {
    // Concurrent session creations on one nonce: one wins, the losers
    // write nothing after their failed condition.
    let s = Arc::new(store());
    for round in 0..20u8 {
        let tasks: Vec<_> = (0..16u8)
            .map(|i| {
                let s = Arc::clone(&s);
                tokio::spawn(async move {
                    let mut b = WriteBatch::new();
                    b.insert_new(Keyspace::Nonces, &[round], b"used").unwrap();
                    b.put(Keyspace::Sessions, &[round, i], b"session").unwrap();
                    s.commit_in_order(b).await
                })
            })
            .collect();
        let mut won = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(_) => won += 1,
                Err(StorageError::ConditionFailed {
                    index: 0,
                    kind: ConditionKind::InsertNew,
                    ..
                }) => {}
                Err(e) => panic!("{e:?}"),
            }
        }
        assert_eq!(won, 1, "round {round}");
        let sessions = s
            .scan(Keyspace::Sessions, KeyRange::Prefix(&[round]), MAX_SCAN)
            .await
            .unwrap();
        assert_eq!(sessions.len(), 1, "round {round}: {sessions:?}");
    }
}
