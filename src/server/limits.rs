//! `server.max_connections_per_ip`: open client connections counted per address (IPv6 per /64,
//! as the rate limits and the login back-off count), so one host cannot hold every slot of
//! `server.max_connections`. A connection holds an [`AddressSlot`] for its whole life; dropping
//! it gives the count back, and an address whose count reaches zero leaves the map, so the map
//! never holds more entries than there are open connections.

use std::net::IpAddr;
use std::sync::Arc;

use dashmap::DashMap;
use dashmap::mapref::entry::Entry;

use crate::net::subscriber;

/// Open connections per subscriber address, capped at `max` each.
#[derive(Debug)]
pub struct PerAddress {
    max: usize,
    open: DashMap<IpAddr, usize>,
}

/// The address already has `max` connections open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{address} already has {max} connections open")]
pub struct LimitReached {
    /// The client address (an IPv6 address stands for its /64).
    pub address: IpAddr,
    /// `server.max_connections_per_ip`.
    pub max: usize,
}

/// One counted connection of an address; the count goes down when it drops.
#[derive(Debug)]
pub struct AddressSlot {
    owner: Arc<PerAddress>,
    address: IpAddr,
}

impl PerAddress {
    /// `max` is at least 1 (the config refuses 0, which means "no cap" and builds none).
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(PerAddress {
            max: max.max(1),
            open: DashMap::new(),
        })
    }

    /// Counts one more connection from `ip`, or refuses it at the cap.
    pub fn acquire(self: &Arc<Self>, ip: IpAddr) -> Result<AddressSlot, LimitReached> {
        let address = subscriber(ip);
        // The entry holds its shard's write lock: check and increment are one step.
        let mut count = self.open.entry(address).or_insert(0);
        if *count >= self.max {
            // Only reachable for an existing entry (a fresh one is 0 < max): nothing to undo.
            return Err(LimitReached {
                address,
                max: self.max,
            });
        }
        *count += 1;
        Ok(AddressSlot {
            owner: Arc::clone(self),
            address,
        })
    }

    /// Open connections counted for `ip`'s subscriber address.
    pub fn open(&self, ip: IpAddr) -> usize {
        self.open.get(&subscriber(ip)).map_or(0, |count| *count)
    }

    /// Addresses with at least one open connection.
    pub fn addresses(&self) -> usize {
        self.open.len()
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        if let Entry::Occupied(mut entry) = self.owner.open.entry(self.address) {
            if *entry.get() <= 1 {
                entry.remove();
            } else {
                *entry.get_mut() -= 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("test address")
    }

    #[test]
    fn caps_each_address_and_gives_back_on_drop() {
        let limits = PerAddress::new(2);
        let a = ip("192.0.2.1");
        let first = limits.acquire(a).expect("first");
        let second = limits.acquire(a).expect("second");
        assert_eq!(
            limits.acquire(a).map(|_| ()),
            Err(LimitReached { address: a, max: 2 })
        );
        // Another address is counted on its own.
        let other = limits.acquire(ip("192.0.2.2")).expect("other address");
        assert_eq!(limits.open(a), 2);
        drop(first);
        assert_eq!(limits.open(a), 1);
        let third = limits.acquire(a).expect("a slot came back");
        drop((second, third, other));
        assert_eq!(limits.open(a), 0);
        assert_eq!(limits.addresses(), 0, "no entry left at zero");
    }

    #[test]
    fn ipv6_is_counted_per_64_and_mapped_ipv4_as_ipv4() {
        let limits = PerAddress::new(1);
        let _one = limits.acquire(ip("2001:db8:1:2::1")).expect("first");
        assert!(
            limits.acquire(ip("2001:db8:1:2:ffff::9")).is_err(),
            "same /64"
        );
        let _other = limits
            .acquire(ip("2001:db8:1:3::1"))
            .expect("another /64 is another subscriber");
        let _v4 = limits.acquire(ip("198.51.100.7")).expect("IPv4");
        assert!(limits.acquire(ip("::ffff:198.51.100.7")).is_err());
    }

    #[test]
    fn concurrent_acquire_and_release_leave_nothing_behind() {
        let limits = PerAddress::new(8);
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let limits = Arc::clone(&limits);
                std::thread::spawn(move || {
                    for i in 0..2_000u32 {
                        // Three addresses shared by all threads, 16 wanted at once, 8 allowed.
                        let address = IpAddr::from([10, 0, 0, (i % 3) as u8]);
                        let held: Vec<_> = (0..4)
                            .filter_map(|_| limits.acquire(address).ok())
                            .collect();
                        assert!(limits.open(address) <= 8);
                        drop(held);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("thread");
        }
        assert_eq!(limits.addresses(), 0);
    }
}
