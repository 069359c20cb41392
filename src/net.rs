//! Network addresses as the gateway counts them: one subscriber per IPv4 address or IPv6 /64.
//! The connection cap (`server/limits.rs`), the rate limiter (`proxy/ratelimit.rs`) and the
//! login back-off (`grant/throttle.rs`) all count by [`subscriber`].

use std::net::IpAddr;

/// The address as one subscriber: IPv4 as is, IPv6 per /64 (what one subscriber usually
/// gets; IPv4-mapped ones as IPv4). Back-off and rate limits count per subscriber, so rotating
/// addresses within one allocation changes nothing.
pub fn subscriber(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}
