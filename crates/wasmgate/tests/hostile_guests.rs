//! Guests that misbehave on purpose, many times over, beside well-behaved requests: each
//! hostile request gets its own 5xx (or a refusal) and outcome, every good request is served,
//! and the server's memory comes back to where it was.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};
use support::{fixture_manifest, get, Server};

/// What one kind of hostile request must end with.
struct Hostile {
    path: &'static str,
    status: u16,
    /// The record's outcome, when the request reached a guest.
    outcome: &'static str,
    /// Part of the body the client gets.
    body: &'static str,
}

const HOSTILE: &[Hostile] = &[
    Hostile {
        path: "/trap",
        status: 500,
        outcome: "trap",
        body: "",
    },
    Hostile {
        path: "/loop",
        status: 504,
        outcome: "timeout",
        body: "",
    },
    Hostile {
        path: "/hog",
        status: 500,
        outcome: "memory_limit",
        body: "",
    },
    Hostile {
        path: "/recurse",
        status: 500,
        outcome: "trap",
        body: "",
    },
    Hostile {
        path: "/no-response",
        status: 500,
        outcome: "no_response",
        body: "",
    },
    // 64 MiB printed: the host keeps a capped part and drops the rest.
    Hostile {
        path: "/flood/64",
        status: 200,
        outcome: "ok",
        body: "flooded",
    },
    // Outside the guest's (no) mounts, and environment it was not given.
    Hostile {
        path: "/file/etc/passwd",
        status: 404,
        outcome: "ok",
        body: "",
    },
    Hostile {
        path: "/env/HOME",
        status: 404,
        outcome: "ok",
        body: "",
    },
    // A host nobody allowed: refused inside the guest, before any connection.
    Hostile {
        path: "/fetch-url?url=http%3A%2F%2F127.0.0.1%3A9%2F",
        status: 502,
        outcome: "ok",
        body: "HttpRequestDenied",
    },
];

fn rss(pid: u32) -> u64 {
    support::rss_bytes(pid).expect("VmRSS in /proc/PID/status")
}

async fn one_round(addr: SocketAddr) {
    let mut tasks = Vec::new();
    for hostile in HOSTILE {
        tasks.push(tokio::spawn(async move {
            let reply = get(addr, hostile.path).await;
            (hostile, reply)
        }));
    }
    // Good requests while the hostile ones run: none may fail or wait on them.
    for _ in 0..20 {
        let started = Instant::now();
        let reply = get(addr, "/ok").await;
        assert_eq!(reply.status, 200);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a good request waited {:?} behind hostile ones",
            started.elapsed()
        );
    }
    for task in tasks {
        let (hostile, reply) = task.await.unwrap();
        assert_eq!(
            reply.status,
            hostile.status,
            "{}: {}",
            hostile.path,
            reply.text()
        );
        assert!(
            reply.text().contains(hostile.body),
            "{}: {}",
            hostile.path,
            reply.text()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_guests_fail_alone_and_memory_returns_to_its_baseline() {
    let server = Server::start(&fixture_manifest(
        "[component.fixture.limits]\ntimeout = \"1s\"\nmemory = \"64MiB\"\n",
    ));
    let addr = server.addr;
    let pid = server.child.id();

    // Warm up: pool slots, compiled code and buffers reach their working size.
    for _ in 0..2 {
        one_round(addr).await;
    }
    let baseline = rss(pid);
    let rounds = 8;
    let mut peak = baseline;
    for _ in 0..rounds {
        one_round(addr).await;
        peak = peak.max(rss(pid));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = rss(pid);
    eprintln!(
        "RSS baseline {} MiB, peak {} MiB, after {} MiB",
        baseline >> 20,
        peak >> 20,
        after >> 20
    );
    // Each round made a guest fill 64 MiB of memory and another print 64 MiB; had either been
    // kept, eight rounds would have grown the server by hundreds of MiB.
    assert!(
        after <= baseline + (32 << 20),
        "RSS grew from {} MiB to {} MiB",
        baseline >> 20,
        after >> 20
    );

    // Every hostile request has its record with the right outcome.
    let records = get(server.admin, "/api/invocations?limit=1000").await;
    let records: serde_json::Value = serde_json::from_slice(&records.body).unwrap();
    let records = records["invocations"].as_array().unwrap();
    let mut expected: std::collections::HashMap<(&str, u16), usize> = Default::default();
    for hostile in HOSTILE {
        *expected
            .entry((hostile.outcome, hostile.status))
            .or_default() += rounds;
    }
    for ((outcome, status), want) in expected {
        let got = records
            .iter()
            .filter(|r| r["outcome"] == outcome && r["status"] == status)
            .count();
        assert!(
            got >= want,
            "only {got} records with outcome {outcome} and status {status}, expected {want}"
        );
    }
    // The server is still fine.
    assert_eq!(get(addr, "/ok").await.status, 200);
    assert_eq!(get(server.admin, "/healthz").await.status, 200);
}
