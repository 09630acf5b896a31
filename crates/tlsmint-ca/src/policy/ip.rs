//! Parsing IP-address SANs (and IP-address common names) with `std::net`.
//!
//! `std` accepts exactly the unambiguous textual forms: dotted-quad IPv4 without
//! leading zeros (so `01.2.3.4`, `1.2.3`, `0x7f.1` and `1.2.3.4.5` fail) and
//! RFC 4291 IPv6 without zone or brackets. On top of that we refuse IPv4-mapped
//! IPv6 (`::ffff:10.0.0.1`, which would dodge any IPv4 rule) and the unspecified
//! addresses. The issued value is the parsed address, so the textual form of an
//! IPv6 address (case, `::` compression) does not matter.
//!
//! Owns: IP syntax. Must not: decide whether IPs are allowed (see `check`).

use std::net::IpAddr;

use super::error::Problem;

/// Longest textual IP address (IPv6 with an embedded IPv4 tail is 45).
pub const MAX_IP_TEXT: usize = 45;

/// Parses one IP address; see the module docs for what is refused.
pub fn parse_ip(raw: &str) -> Result<IpAddr, Problem> {
    let ip: IpAddr = raw.parse().map_err(|_| {
        if raw.contains('%') {
            Problem::IpZone
        } else if raw.contains('/') {
            Problem::IpNetwork
        } else {
            Problem::NotAnIp
        }
    })?;
    if let IpAddr::V6(v6) = ip
        && v6.to_ipv4_mapped().is_some()
    {
        return Err(Problem::IpV4Mapped);
    }
    if ip.is_unspecified() {
        return Err(Problem::IpUnspecified);
    }
    Ok(ip)
}
