//! The client's address behind trusted proxies (`TRUSTED_PROXIES`). Rate limits, sessions
//! and the audit log key on it, so it is believed from `X-Forwarded-For` only when the
//! peer itself is a trusted proxy: anyone else could write the header.

use std::net::IpAddr;

/// An address block: `10.0.0.0/8`, `2001:db8::/32`, or one address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Cidr, String> {
        let (address, prefix) = match s.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (s, None),
        };
        let network: IpAddr = address
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not an address or address block"))?;
        let network = network.to_canonical();
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}`: the prefix length must be 0 to {max}"))?,
        };
        Ok(Cidr { network, prefix })
    }
}

impl Cidr {
    pub fn contains(&self, address: IpAddr) -> bool {
        match (self.network, address.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(a)) => {
                same_prefix(u32::from(net).into(), u32::from(a).into(), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(a)) => {
                same_prefix(u128::from(net), u128::from(a), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn same_prefix(a: u128, b: u128, bits: u8, prefix: u8) -> bool {
    let shift = u32::from(bits - prefix);
    shift >= 128 || (a >> shift) == (b >> shift)
}

/// The client's address: the peer's, unless the peer is a trusted proxy; then the
/// right-most `X-Forwarded-For` entry (over every such header, in order) that is not a
/// trusted proxy. When every entry is one, the left-most; when an entry is not an
/// address, the trusted hop to its right, since nothing beyond it can be believed.
pub fn client_address<'a>(
    peer: IpAddr,
    forwarded_for: impl Iterator<Item = &'a str>,
    trusted: &[Cidr],
) -> IpAddr {
    let is_trusted = |a: IpAddr| trusted.iter().any(|c| c.contains(a));
    let peer = peer.to_canonical();
    if !is_trusted(peer) {
        return peer;
    }
    let entries: Vec<&str> = forwarded_for
        .flat_map(|header| header.split(','))
        .map(str::trim)
        .collect();
    let mut nearest = peer;
    for entry in entries.iter().rev() {
        let Some(address) = parse_entry(entry) else {
            return nearest;
        };
        if !is_trusted(address) {
            return address;
        }
        nearest = address;
    }
    nearest
}

/// An `X-Forwarded-For` entry: an address, or an address with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`), as some balancers write them.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    entry
        .parse::<IpAddr>()
        .or_else(|_| entry.parse::<std::net::SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|a| a.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidrs(list: &[&str]) -> Vec<Cidr> {
        list.iter().map(|c| c.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn blocks_parse_and_contain() {
        let nets = cidrs(&["10.0.0.0/8", "2001:db8::/32", "192.0.2.7", "::1"]);
        assert!(nets[0].contains(ip("10.200.0.1")));
        assert!(!nets[0].contains(ip("11.0.0.1")));
        assert!(nets[0].contains(ip("::ffff:10.1.2.3")), "IPv4-mapped");
        assert!(nets[1].contains(ip("2001:db8:ffff::1")));
        assert!(!nets[1].contains(ip("2001:db9::1")));
        assert!(nets[2].contains(ip("192.0.2.7")));
        assert!(!nets[2].contains(ip("192.0.2.8")));
        assert!(nets[3].contains(ip("::1")));
        assert!(cidrs(&["0.0.0.0/0"])[0].contains(ip("203.0.113.9")));
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "proxy",
            "10.0.0.0/x",
            "",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn the_header_is_believed_only_from_a_trusted_peer() {
        let trusted = cidrs(&["10.0.0.0/8"]);
        let xff = ["198.51.100.1"];
        assert_eq!(
            client_address(ip("203.0.113.5"), xff.into_iter(), &trusted),
            ip("203.0.113.5"),
            "an untrusted peer's header is its own invention"
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), xff.into_iter(), &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(
            client_address(ip("10.0.0.2"), xff.into_iter(), &[]),
            ip("10.0.0.2"),
            "nothing trusted: the peer"
        );
    }

    #[test]
    fn the_right_most_untrusted_entry_wins_over_what_the_client_wrote() {
        let trusted = cidrs(&["10.0.0.0/8", "127.0.0.1"]);
        // The client wrote "1.2.3.4" itself; the proxies appended the real address, then
        // their own.
        let headers = ["1.2.3.4, 198.51.100.9", "10.0.0.3"];
        assert_eq!(
            client_address(ip("127.0.0.1"), headers.into_iter(), &trusted),
            ip("198.51.100.9")
        );
        // Every entry a proxy: the furthest.
        assert_eq!(
            client_address(
                ip("127.0.0.1"),
                ["10.0.0.9, 10.0.0.3"].into_iter(),
                &trusted
            ),
            ip("10.0.0.9")
        );
        // No header from a trusted peer: the peer.
        assert_eq!(
            client_address(ip("127.0.0.1"), std::iter::empty(), &trusted),
            ip("127.0.0.1")
        );
        // Ports, as some balancers add them.
        assert_eq!(
            client_address(
                ip("127.0.0.1"),
                ["198.51.100.9:5678, [::1]:443"].into_iter(),
                &cidrs(&["::1", "127.0.0.1"])
            ),
            ip("198.51.100.9")
        );
        // Garbage: nothing beyond it is believed.
        assert_eq!(
            client_address(
                ip("127.0.0.1"),
                ["198.51.100.9, junk, 10.0.0.3"].into_iter(),
                &trusted
            ),
            ip("10.0.0.3")
        );
    }
}
