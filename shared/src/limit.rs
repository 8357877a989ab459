//! Connections per client address: one host (or one IPv6 /64, which any
//! single subscriber gets) may hold at most `max` of a listener's
//! connections, so a flood from one address cannot take the slots that the
//! listener's global cap shares among everyone.
//!
//! Cheap under load: the count lives in one of [`SHARDS`] small maps picked
//! by address hash, each behind its own mutex held for one insert or
//! decrement. Memory is bounded by the listener's own connection cap, since
//! every entry is held by at least one live [`AddrPermit`].
//!
//! ```
//! use livecdn_shared::limit::PerAddr;
//! use std::net::IpAddr;
//!
//! let limit = PerAddr::new(2);
//! let ip: IpAddr = "127.0.0.2".parse().unwrap();
//! let a = limit.try_acquire(ip).unwrap();
//! let _b = limit.try_acquire(ip).unwrap();
//! assert!(limit.try_acquire(ip).is_none());
//! assert!(limit.try_acquire("127.0.0.1".parse().unwrap()).is_some());
//! drop(a);
//! assert!(limit.try_acquire(ip).is_some());
//! ```

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::{Arc, Mutex, MutexGuard};

/// Independent maps; a power of two well above the cores a listener runs on.
const SHARDS: usize = 32;

/// The key an address is counted under: IPv4 as is (IPv4-mapped IPv6
/// included), IPv6 by its /64 prefix.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// The per-address counter of one listener.
#[derive(Debug)]
pub struct PerAddr {
    max: usize,
    hasher: std::collections::hash_map::RandomState,
    shards: Vec<Mutex<HashMap<IpAddr, usize>>>,
}

/// One connection counted against its address; released on drop.
#[derive(Debug)]
pub struct AddrPermit {
    owner: Arc<PerAddr>,
    key: IpAddr,
}

impl PerAddr {
    /// At most `max` connections per address; `0` means no per-address cap.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            hasher: Default::default(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        })
    }

    fn shard(&self, key: &IpAddr) -> MutexGuard<'_, HashMap<IpAddr, usize>> {
        let i = (self.hasher.hash_one(key) as usize) % SHARDS;
        // Each update is one insert or decrement: a poisoned map is intact.
        self.shards[i].lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A permit for one more connection from `ip`, or `None` when that
    /// address already holds `max`.
    pub fn try_acquire(self: &Arc<Self>, ip: IpAddr) -> Option<AddrPermit> {
        let key = client_key(ip);
        if self.max > 0 {
            let mut map = self.shard(&key);
            let n = map.entry(key).or_insert(0);
            if *n >= self.max {
                return None;
            }
            *n += 1;
        }
        Some(AddrPermit {
            owner: self.clone(),
            key,
        })
    }

    /// Connections `ip` holds now.
    pub fn held(&self, ip: IpAddr) -> usize {
        let key = client_key(ip);
        self.shard(&key).get(&key).copied().unwrap_or(0)
    }

    /// Distinct addresses holding connections now.
    pub fn addresses(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }
}

impl Drop for AddrPermit {
    fn drop(&mut self) {
        if self.owner.max == 0 {
            return;
        }
        let mut map = self.owner.shard(&self.key);
        if let Some(n) = map.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.key);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, reason = "a failed unwrap is a failed test")]
mod tests {
    use super::*;

    #[test]
    fn each_address_gets_its_own_budget_and_entries_go_when_released() {
        let limit = PerAddr::new(3);
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let held: Vec<_> = (0..3).map(|_| limit.try_acquire(a).unwrap()).collect();
        assert!(limit.try_acquire(a).is_none());
        assert_eq!(limit.held(a), 3);
        let other = limit.try_acquire(b).unwrap();
        assert_eq!(limit.addresses(), 2);
        drop(held);
        drop(other);
        assert_eq!(limit.addresses(), 0, "released addresses leave the map");
        assert!(limit.try_acquire(a).is_some());
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let limit = PerAddr::new(1);
        let _x = limit
            .try_acquire("2001:db8:1:2::1".parse().unwrap())
            .unwrap();
        assert!(
            limit
                .try_acquire("2001:db8:1:2:ffff::9".parse().unwrap())
                .is_none(),
            "same /64"
        );
        assert!(limit
            .try_acquire("2001:db8:1:3::1".parse().unwrap())
            .is_some());
        let _v4 = limit.try_acquire("192.0.2.7".parse().unwrap()).unwrap();
        assert!(limit
            .try_acquire("::ffff:192.0.2.7".parse().unwrap())
            .is_none());
    }

    #[test]
    fn zero_means_unlimited_and_keeps_no_state() {
        let limit = PerAddr::new(0);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let held: Vec<_> = (0..100).map(|_| limit.try_acquire(ip).unwrap()).collect();
        assert_eq!(held.len(), 100);
        assert_eq!(limit.addresses(), 0);
    }
}
