use std::sync::Arc;

use super::*;

fn key(s: &str) -> CountKey {
    CountKey {
        sql: "SELECT COUNT(*) FROM t WHERE a = ?".into(),
        binds: vec![SqlValue::Text(s.into())],
    }
}

#[tokio::test]
async fn a_flight_is_gone_once_its_requests_are_answered_or_cancelled() {
    let c = Arc::new(Coalescer::default());
    // Answered: nothing stays, however large the key was.
    for i in 0..100 {
        let big = format!("{i}{}", "x".repeat(100_000));
        assert_eq!(c.run(key(&big), |_| async { Ok(1) }).await, Ok(1));
    }
    assert_eq!(c.held(), (0, 0, 0));
    // Cancelled while computing and while waiting: the last one out removes the flight.
    let (_open, gate) = tokio::sync::oneshot::channel::<()>();
    let gate = Arc::new(tokio::sync::Mutex::new(Some(gate)));
    let running: Vec<_> = (0..3)
        .map(|_| {
            let (c, gate) = (c.clone(), gate.clone());
            tokio::spawn(async move {
                c.run(key("slow"), |_| async move {
                    if let Some(g) = gate.lock().await.take() {
                        g.await.ok();
                    }
                    Ok(1)
                })
                .await
            })
        })
        .collect();
    for _ in 0..5 {
        tokio::task::yield_now().await;
    }
    let (hashes, flights, bytes) = c.held();
    assert_eq!((hashes, flights), (1, 1));
    assert_eq!(bytes, key("slow").bytes());
    for r in &running {
        r.abort();
    }
    for r in running {
        let _ = r.await;
    }
    assert_eq!(c.held(), (0, 0, 0));
}

#[tokio::test]
async fn counts_whose_hashes_collide_never_share_an_answer() {
    let c = Arc::new(Coalescer::default());
    let (open, gate) = tokio::sync::oneshot::channel::<()>();
    let first = {
        let c = c.clone();
        tokio::spawn(async move {
            c.run_hashed(7, key("a"), |_| async move {
                gate.await.ok();
                Ok(1)
            })
            .await
        })
    };
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    // Same hash, other key, while "a" is in flight: its own flight, its own answer.
    let second = c.run_hashed(7, key("b"), |k| {
        let k = k.clone();
        async move { Ok(if k == key("b") { 2 } else { -1 }) }
    });
    assert_eq!(second.await, Ok(2));
    assert_eq!(c.held().1, 1, "b's flight is gone, a's is still running");
    open.send(()).unwrap();
    assert_eq!(first.await.unwrap(), Ok(1));
    assert_eq!(c.held(), (0, 0, 0));
}

#[tokio::test]
async fn counts_beyond_the_bounds_run_on_their_own() {
    let c = Arc::new(Coalescer::default());
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    // Keys of 1 MiB each, all computing at once: only 15 fit in 16 MiB.
    let big = |i: usize| key(&format!("{i:02}{}", "x".repeat(1024 * 1024)));
    let waiting: Vec<_> = (0..20)
        .map(|i| {
            let (c, gate) = (c.clone(), gate.clone());
            tokio::spawn(async move {
                c.run(big(i), |_| async move {
                    gate.acquire().await.map(|p| p.forget()).ok();
                    Ok(i as i64)
                })
                .await
            })
        })
        .collect();
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let (_, flights, bytes) = c.held();
    assert_eq!(flights, MAX_FLIGHT_KEY_BYTES / big(0).bytes());
    assert!(bytes <= MAX_FLIGHT_KEY_BYTES, "{bytes} bytes");
    gate.add_permits(20);
    for (i, w) in waiting.into_iter().enumerate() {
        assert_eq!(w.await.unwrap(), Ok(i as i64), "each count its own answer");
    }
    assert_eq!(c.held(), (0, 0, 0));
}

#[tokio::test]
async fn requests_arriving_during_a_count_share_the_next_one_never_the_running_one() {
    use std::sync::atomic::{AtomicI64, Ordering::SeqCst};
    let c = Arc::new(Coalescer::default());
    let computed = Arc::new(AtomicI64::new(0));
    let (open, gate) = tokio::sync::oneshot::channel::<()>();
    let first = {
        let (c, computed) = (c.clone(), computed.clone());
        tokio::spawn(async move {
            c.run(key("k"), |_| async move {
                gate.await.ok();
                Ok(computed.fetch_add(1, SeqCst) + 1)
            })
            .await
        })
    };
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    let later: Vec<_> = (0..10)
        .map(|_| {
            let (c, computed) = (c.clone(), computed.clone());
            tokio::spawn(async move {
                c.run(key("k"), |_| async move {
                    Ok(computed.fetch_add(1, SeqCst) + 1)
                })
                .await
            })
        })
        .collect();
    for _ in 0..3 {
        tokio::task::yield_now().await;
    }
    open.send(()).unwrap();
    assert_eq!(first.await.unwrap(), Ok(1));
    for l in later {
        assert_eq!(
            l.await.unwrap(),
            Ok(2),
            "an answer begun before the request arrived"
        );
    }
    assert_eq!(
        computed.load(SeqCst),
        2,
        "ten waiting requests, one computation"
    );
    // One at a time, every request computes afresh.
    for want in 3..6 {
        let computed = computed.clone();
        let got = c
            .run(key("k"), |_| async move {
                Ok(computed.fetch_add(1, SeqCst) + 1)
            })
            .await;
        assert_eq!(got, Ok(want));
    }
}
