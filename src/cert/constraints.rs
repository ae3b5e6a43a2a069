//! Name constraints (RFC 5280 4.2.1.10): writing them into a CA and checking a leaf's
//! names against every CA above it before signing, so certmesh never issues a
//! certificate that clients would reject for being outside the CA's permitted names.

use std::net::IpAddr;

use rcgen::{CidrSubnet, GeneralSubtree, NameConstraints};
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::prelude::X509Certificate;

use crate::{Error, Result};

/// An IP network, `address/prefix`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNet {
    pub addr: IpAddr,
    pub prefix: u8,
}

impl IpNet {
    /// Parses `10.0.0.0/8`, `fd00::/8`, or a bare address (a host route).
    pub fn parse(text: &str) -> Result<Self> {
        let bad = || {
            Error::Usage(format!(
                "invalid network '{text}': expected ADDRESS/PREFIX, e.g. 10.0.0.0/8"
            ))
        };
        let (a, p) = match text.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (text, None),
        };
        let addr: IpAddr = a.trim().parse().map_err(|_| bad())?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.trim().parse::<u8>().map_err(|_| bad())?,
            None => max,
        };
        if prefix > max {
            return Err(bad());
        }
        Ok(IpNet { addr, prefix })
    }

    /// True when `ip` lies inside this network.
    pub fn contains(&self, ip: &IpAddr) -> bool {
        fn bits(a: &IpAddr) -> (u128, u32) {
            match a {
                IpAddr::V4(v) => (u32::from(*v) as u128, 32),
                IpAddr::V6(v) => (u128::from(*v), 128),
            }
        }
        let ((net, width), (host, hwidth)) = (bits(&self.addr), bits(ip));
        if width != hwidth {
            return false;
        }
        let shift = width - u32::from(self.prefix);
        if shift >= width {
            return true;
        }
        (net >> shift) == (host >> shift)
    }

    /// From a constraint's address-and-mask octets (8 for IPv4, 32 for IPv6).
    fn from_octets(octets: &[u8]) -> Option<Self> {
        let (addr, mask): (IpAddr, &[u8]) = match octets.len() {
            8 => (
                IpAddr::from(<[u8; 4]>::try_from(&octets[..4]).ok()?),
                &octets[4..],
            ),
            32 => (
                IpAddr::from(<[u8; 16]>::try_from(&octets[..16]).ok()?),
                &octets[16..],
            ),
            _ => return None,
        };
        let prefix = mask.iter().map(|b| b.count_ones()).sum::<u32>() as u8;
        Some(IpNet { addr, prefix })
    }
}

impl std::fmt::Display for IpNet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// Permitted and excluded names of a CA.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct NameConstraintsSpec {
    pub permitted_dns: Vec<String>,
    #[serde(serialize_with = "ser_nets")]
    pub permitted_ip: Vec<IpNet>,
    pub excluded_dns: Vec<String>,
    #[serde(serialize_with = "ser_nets")]
    pub excluded_ip: Vec<IpNet>,
}

fn ser_nets<S: serde::Serializer>(v: &[IpNet], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(|n| n.to_string()))
}

impl NameConstraintsSpec {
    /// True when the CA constrains nothing.
    pub fn is_empty(&self) -> bool {
        self.permitted_dns.is_empty()
            && self.permitted_ip.is_empty()
            && self.excluded_dns.is_empty()
            && self.excluded_ip.is_empty()
    }

    /// Builds the permitted subtrees from command-line values.
    pub fn permit(dns: &[String], ips: &[String]) -> Result<Self> {
        let mut spec = NameConstraintsSpec::default();
        for d in dns {
            let d = d.trim().trim_end_matches('.').to_ascii_lowercase();
            if d.is_empty()
                || d.contains(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
            {
                return Err(Error::Usage(format!("invalid permitted domain '{d}'")));
            }
            spec.permitted_dns.push(d);
        }
        for ip in ips {
            spec.permitted_ip.push(IpNet::parse(ip)?);
        }
        Ok(spec)
    }

    pub(crate) fn to_rcgen(&self) -> Option<NameConstraints> {
        if self.is_empty() {
            return None;
        }
        let tree = |dns: &[String], ips: &[IpNet]| -> Vec<GeneralSubtree> {
            dns.iter()
                .map(|d| GeneralSubtree::DnsName(d.clone()))
                .chain(ips.iter().map(|n| {
                    GeneralSubtree::IpAddress(CidrSubnet::from_addr_prefix(n.addr, n.prefix))
                }))
                .collect()
        };
        Some(NameConstraints {
            permitted_subtrees: tree(&self.permitted_dns, &self.permitted_ip),
            excluded_subtrees: tree(&self.excluded_dns, &self.excluded_ip),
        })
    }

    /// Reads the name constraints of a CA certificate (DNS and IP subtrees; other name
    /// forms are not used for TLS host names and are ignored).
    pub fn from_cert(cert: &X509Certificate<'_>) -> Self {
        let mut spec = NameConstraintsSpec::default();
        for ext in cert.extensions() {
            if let ParsedExtension::NameConstraints(nc) = ext.parsed_extension() {
                let add = |subtrees: &Option<Vec<x509_parser::extensions::GeneralSubtree<'_>>>,
                           dns: &mut Vec<String>,
                           ips: &mut Vec<IpNet>| {
                    for st in subtrees.iter().flatten() {
                        match &st.base {
                            GeneralName::DNSName(d) => dns.push(d.to_ascii_lowercase()),
                            GeneralName::IPAddress(o) => {
                                if let Some(n) = IpNet::from_octets(o) {
                                    ips.push(n)
                                }
                            }
                            _ => {}
                        }
                    }
                };
                add(
                    &nc.permitted_subtrees,
                    &mut spec.permitted_dns,
                    &mut spec.permitted_ip,
                );
                add(
                    &nc.excluded_subtrees,
                    &mut spec.excluded_dns,
                    &mut spec.excluded_ip,
                );
            }
        }
        spec
    }

    /// Checks names against these constraints as a TLS client does: a permitted list of a
    /// name type must contain every name of that type; no name may be in an excluded list.
    pub fn check(&self, dns: &[String], ips: &[IpAddr]) -> std::result::Result<(), String> {
        for d in dns {
            if self.excluded_dns.iter().any(|c| dns_within(d, c)) {
                return Err(format!(
                    "DNS name '{d}' is excluded by the CA's name constraints"
                ));
            }
            if !self.permitted_dns.is_empty()
                && !self.permitted_dns.iter().any(|c| dns_within(d, c))
            {
                return Err(format!(
                    "DNS name '{d}' is outside the CA's permitted names ({})",
                    self.permitted_dns.join(", ")
                ));
            }
        }
        for ip in ips {
            if self.excluded_ip.iter().any(|n| n.contains(ip)) {
                return Err(format!(
                    "IP address {ip} is excluded by the CA's name constraints"
                ));
            }
            if !self.permitted_ip.is_empty() && !self.permitted_ip.iter().any(|n| n.contains(ip)) {
                let nets: Vec<String> = self.permitted_ip.iter().map(|n| n.to_string()).collect();
                return Err(format!(
                    "IP address {ip} is outside the CA's permitted networks ({})",
                    nets.join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// RFC 5280: `example.com` permits itself and every name below it; `.example.com`
/// permits only names below it.
fn dns_within(name: &str, constraint: &str) -> bool {
    let name = name.to_ascii_lowercase();
    let name = name
        .strip_prefix("*.")
        .map(|s| format!("x.{s}"))
        .unwrap_or(name);
    let c = constraint.to_ascii_lowercase();
    if c.is_empty() {
        return true;
    }
    if let Some(sub) = c.strip_prefix('.') {
        return name.ends_with(&format!(".{sub}"));
    }
    name == c || name.ends_with(&format!(".{c}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_subtrees() {
        assert!(dns_within("example.com", "example.com"));
        assert!(dns_within("a.b.example.com", "example.com"));
        assert!(!dns_within("badexample.com", "example.com"));
        assert!(!dns_within("example.com", ".example.com"));
        assert!(dns_within("*.example.com", "example.com"));
    }

    #[test]
    fn ip_networks() {
        let n = IpNet::parse("10.1.0.0/16").unwrap();
        assert!(n.contains(&"10.1.200.3".parse().unwrap()));
        assert!(!n.contains(&"10.2.0.1".parse().unwrap()));
        assert!(!n.contains(&"::1".parse().unwrap()));
        assert!(IpNet::parse("10.0.0.0/33").is_err());
        assert!(IpNet::parse("0.0.0.0/0")
            .unwrap()
            .contains(&"1.2.3.4".parse().unwrap()));
    }

    #[test]
    fn check_names() {
        let spec =
            NameConstraintsSpec::permit(&["cluster.local".into()], &["10.0.0.0/8".into()]).unwrap();
        assert!(spec
            .check(&["n1.cluster.local".into()], &["10.0.0.1".parse().unwrap()])
            .is_ok());
        assert!(spec.check(&["n1.example.com".into()], &[]).is_err());
        assert!(spec.check(&[], &["192.168.0.1".parse().unwrap()]).is_err());
    }
}
