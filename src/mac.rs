//! MAC addresses as plans, LLDP reports and DHCP client ids write them. One
//! parser for all of them, one printed form (lowercase, colons).

use std::fmt;
use std::str::FromStr;

/// A 48-bit MAC address. Parses, case-insensitively:
/// - `00:1c:73:aa:bb:01` and `00-1c-73-aa-bb-01` (six pairs, one separator
///   throughout),
/// - `001c.73aa.bb01` (Cisco: three groups of four),
/// - `001c73aabb01` (bare).
///
/// Prints as `00:1c:73:aa:bb:01`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mac([u8; 6]);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a MAC address: expected six hex octets as 00:1c:73:aa:bb:01, 00-1c-73-aa-bb-01, 001c.73aa.bb01 or 001c73aabb01")]
pub struct MacError;

impl Mac {
    pub const fn new(octets: [u8; 6]) -> Mac {
        Mac(octets)
    }

    pub const fn octets(self) -> [u8; 6] {
        self.0
    }

    pub fn parse(s: &str) -> Option<Mac> {
        let b = s.as_bytes();
        let digits: Vec<u8> = match b.len() {
            12 => b.to_vec(),
            14 if b[4] == b'.' && b[9] == b'.' => [&b[0..4], &b[5..9], &b[10..14]].concat(),
            17 if matches!(b[2], b':' | b'-') && [5, 8, 11, 14].iter().all(|&i| b[i] == b[2]) => {
                b.chunks(3).flat_map(|c| &c[..2]).copied().collect()
            }
            _ => return None,
        };
        let mut out = [0u8; 6];
        for (o, pair) in out.iter_mut().zip(digits.chunks(2)) {
            *o = (hex(pair[0])? << 4) | hex(pair[1])?;
        }
        Some(Mac(out))
    }
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

impl FromStr for Mac {
    type Err = MacError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Mac::parse(s).ok_or(MacError)
    }
}

impl From<[u8; 6]> for Mac {
    fn from(octets: [u8; 6]) -> Mac {
        Mac(octets)
    }
}

impl From<Mac> for [u8; 6] {
    fn from(m: Mac) -> [u8; 6] {
        m.0
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl fmt::Debug for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Mac({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const M: Mac = Mac::new([0x00, 0x1c, 0x73, 0xaa, 0xbb, 0x01]);

    #[test]
    fn every_notation_in_either_case() {
        for s in [
            "00:1c:73:aa:bb:01",
            "00:1C:73:AA:BB:01",
            "00-1c-73-aa-bb-01",
            "00-1C-73-AA-BB-01",
            "001c.73aa.bb01",
            "001C.73AA.BB01",
            "001c73aabb01",
            "001C73AABB01",
            "00:1c:73:Aa:bB:01",
        ] {
            assert_eq!(Mac::parse(s), Some(M), "{s}");
            assert_eq!(s.parse::<Mac>(), Ok(M), "{s}");
        }
    }

    #[test]
    fn prints_lowercase_with_colons() {
        assert_eq!(M.to_string(), "00:1c:73:aa:bb:01");
        assert_eq!(
            Mac::parse("AA-BB-CC-DD-EE-FF").unwrap().to_string(),
            "aa:bb:cc:dd:ee:ff"
        );
        assert_eq!(format!("{M:?}"), "Mac(00:1c:73:aa:bb:01)");
        let octets: [u8; 6] = M.into();
        assert_eq!(Mac::from(octets), M);
        assert_eq!(M.octets(), octets);
    }

    #[test]
    fn wrong_lengths_are_refused() {
        for s in [
            "",
            "00:1c:73:aa:bb",
            "00:1c:73:aa:bb:01:02",
            "00:1c:73:aa:bb:1",
            "0:1c:73:aa:bb:01",
            "001c.73aa.bb",
            "001c73aabb0",
            "001c73aabb0102",
        ] {
            assert_eq!(Mac::parse(s), None, "{s:?}");
        }
    }

    #[test]
    fn bad_hex_is_refused() {
        for s in [
            "00:1c:73:aa:bb:zz",
            "zz11.2233.4455",
            "001c73aabbg1",
            // u8::from_str_radix takes a sign: a pair "+1" is not hex here.
            "+1+1+1+1+1+1",
            "00:1c:73:aa:bb:+1",
            " 00:1c:73:aa:bb:01",
            "00:1c:73:aa:bb:01 ",
            "00:1c:73:aa:bb:é",
        ] {
            assert_eq!(Mac::parse(s), None, "{s:?}");
            assert!(s.parse::<Mac>().is_err());
        }
    }

    #[test]
    fn mixed_or_misplaced_separators_are_refused() {
        for s in [
            "00:1c-73:aa:bb:01",
            "00-1c:73-aa-bb-01",
            "00.1c.73.aa.bb.01",
            "001c:73aa:bb01",
            "001c-73aa-bb01",
            "0:01c:73:aa:bb:01",
            "001c7.3aab.b01",
            "00:1c:73:aa:bb:0.1",
            "00::1c:73:aa:bb01",
        ] {
            assert_eq!(Mac::parse(s), None, "{s:?}");
        }
    }
}
