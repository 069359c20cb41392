use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use super::*;

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2));

fn proceed(v: Verdict) -> bool {
    matches!(v, Verdict::Proceed { .. })
}

#[test]
fn pair_blocks_after_free_failures_and_backs_off_exponentially() {
    let t = Throttle::new(ThrottlePolicy::default());
    let now = Instant::now();
    for _ in 0..5 {
        assert!(proceed(t.check("user:alice", A, now)));
        t.failed("user:alice", A, now);
    }
    assert_eq!(
        t.check("user:alice", A, now),
        Verdict::Blocked {
            retry_after: Duration::from_secs(1)
        }
    );
    t.failed("user:alice", A, now);
    assert_eq!(
        t.check("user:alice", A, now),
        Verdict::Blocked {
            retry_after: Duration::from_secs(2)
        }
    );
    assert!(proceed(t.check(
        "user:alice",
        A,
        now + Duration::from_secs(3)
    )));
}

#[test]
fn the_account_alone_never_blocks_it_only_slows_down() {
    let t = Throttle::new(ThrottlePolicy::default());
    let now = Instant::now();
    // 200 failures against alice, each from another source: alice is never blocked for a
    // new source, only delayed, and the delay is capped.
    for i in 0..200u32 {
        let source = IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + i));
        t.failed("user:alice", source, now);
    }
    match t.check("user:alice", B, now) {
        Verdict::Proceed { delay } => {
            assert!(delay > Duration::ZERO && delay <= Duration::from_secs(1));
        }
        other => panic!("blocked: {other:?}"),
    }
    t.succeeded("user:alice", B);
    assert_eq!(
        t.check("user:alice", B, now),
        Verdict::Proceed {
            delay: Duration::ZERO
        }
    );
}

#[test]
fn a_source_spraying_many_accounts_is_blocked() {
    let t = Throttle::new(ThrottlePolicy::default());
    let now = Instant::now();
    for i in 0..30 {
        t.failed(&format!("user:u{i}"), A, now);
    }
    assert!(matches!(
        t.check("user:fresh", A, now),
        Verdict::Blocked { .. }
    ));
    assert!(proceed(t.check("user:fresh", B, now)));
}

#[test]
fn ipv6_sources_count_per_64() {
    let one = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 0, 0, 0, 1));
    let other = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 2, 9, 9, 9, 9));
    assert_eq!(source_key(one), source_key(other));
    let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
    assert_eq!(source_key(mapped), A);
}

#[test]
fn memory_is_bounded_and_old_entries_are_forgotten() {
    let policy = ThrottlePolicy {
        capacity: 100,
        ..ThrottlePolicy::default()
    };
    let t = Throttle::new(policy);
    let now = Instant::now();
    for i in 0..1000u32 {
        let source = IpAddr::V4(Ipv4Addr::from(0x0A00_0000 + i));
        t.failed(
            &format!("user:u{i}"),
            source,
            now + Duration::from_millis(u64::from(i)),
        );
    }
    assert!(t.len() <= 102, "{}", t.len());
    for _ in 0..6 {
        t.failed("user:x", A, now);
    }
    assert!(!proceed(t.check("user:x", A, now)));
    assert!(proceed(t.check(
        "user:x",
        A,
        now + Duration::from_secs(2 * 3600)
    )));
}
