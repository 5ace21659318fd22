//! Reading MQTT 3.1.1 packets off a device connection. Encoding and
//! decoding are rumqttc's `mqttbytes` v4 codec; what it lets through that
//! MQTT 3.1.1 forbids is checked here, before a packet is acted on:
//! - a CONNECT's fixed-header flags and its reserved flag bit (§3.1.2.3:
//!   "the Server MUST ... disconnect the Client if it is not zero");
//! - a password without a user name (§3.1.2.9), a will QoS of 3;
//! - any protocol level but 4 is answered "unacceptable protocol version".
//!
//! Pure functions over bytes: the `hub_packets` fuzz target calls [`read`]
//! and [`check_connect`] on arbitrary input.

use bytes::BytesMut;
use rumqttc::mqttbytes::{self, v4::Packet};

/// What is wrong with a packet; the connection is closed on any of these.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    #[error("malformed MQTT packet: {0}")]
    Codec(String),
    #[error("the first packet is not a CONNECT")]
    NotConnect,
    #[error("CONNECT has fixed-header flags {0:#x}, MQTT 3.1.1 wants 0")]
    ConnectFlags(u8),
    #[error("CONNECT has the reserved flag bit set (MQTT 3.1.1 §3.1.2.3)")]
    ReservedFlag,
    #[error("CONNECT has a password but no user name (MQTT 3.1.1 §3.1.2.9)")]
    PasswordWithoutUser,
    #[error("CONNECT asks for will QoS 3")]
    WillQos,
    #[error("CONNECT is not for protocol `MQTT`")]
    Protocol,
    #[error("MQTT protocol level {0}: this hub speaks 3.1.1 (level 4)")]
    Level(u8),
}

/// The next whole packet in `buf` (consumed from it), `Ok(None)` when more
/// bytes are needed. Packets above `max` bytes are an error.
pub fn read(buf: &mut BytesMut, max: usize) -> Result<Option<Packet>, Malformed> {
    match Packet::read(buf, max) {
        Ok(p) => Ok(Some(p)),
        Err(mqttbytes::Error::InsufficientBytes(_)) => Ok(None),
        Err(e) => Err(Malformed::Codec(e.to_string())),
    }
}

/// Check the first packet of a connection while it is still whole in
/// `buf` (call before [`read`] takes it): `Ok(false)` when more bytes are
/// needed.
pub fn check_connect(buf: &[u8], max: usize) -> Result<bool, Malformed> {
    // The first byte decides before the rest arrives.
    let Some(&first) = buf.first() else {
        return Ok(false);
    };
    if first >> 4 != 1 {
        return Err(Malformed::NotConnect);
    }
    if first & 0x0f != 0 {
        return Err(Malformed::ConnectFlags(first & 0x0f));
    }
    let header = match mqttbytes::check(buf.iter(), max) {
        Ok(h) => h,
        Err(mqttbytes::Error::InsufficientBytes(_)) => return Ok(false),
        Err(e) => return Err(Malformed::Codec(e.to_string())),
    };
    let frame = &buf[..header.frame_length()];
    // The variable header: protocol name (length-prefixed), level, flags.
    let v = &frame[frame.len() - remaining(frame)..];
    if v.len() < 10 || &v[..6] != b"\x00\x04MQTT" {
        return Err(Malformed::Protocol);
    }
    let level = v[6];
    if level != 4 {
        return Err(Malformed::Level(level));
    }
    let flags = v[7];
    if flags & 0x01 != 0 {
        return Err(Malformed::ReservedFlag);
    }
    if flags & 0x40 != 0 && flags & 0x80 == 0 {
        return Err(Malformed::PasswordWithoutUser);
    }
    if (flags >> 3) & 0x03 == 3 {
        return Err(Malformed::WillQos);
    }
    Ok(true)
}

/// The remaining length of a whole frame (its bytes after the fixed header).
fn remaining(frame: &[u8]) -> usize {
    let mut len_bytes = 0;
    for b in &frame[1..] {
        len_bytes += 1;
        if b & 0x80 == 0 {
            break;
        }
    }
    frame.len() - 1 - len_bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use rumqttc::mqttbytes::v4::Connect;

    fn connect_bytes() -> Vec<u8> {
        let mut c = Connect::new("dev1");
        c.set_login("localhost/dev1/?api-version=1", "pw");
        let mut b = BytesMut::new();
        c.write(&mut b).unwrap();
        b.to_vec()
    }

    #[test]
    fn a_well_formed_connect_passes_and_is_read() {
        let b = connect_bytes();
        assert_eq!(check_connect(&b, 1024), Ok(true));
        assert_eq!(check_connect(&b[..b.len() - 1], 1024), Ok(false));
        let mut buf = BytesMut::from(&b[..]);
        assert!(matches!(read(&mut buf, 1024), Ok(Some(Packet::Connect(_)))));
        assert!(buf.is_empty());
    }

    #[test]
    fn forbidden_connects_are_named() {
        let b = connect_bytes();
        // the flags byte: fixed header (2) + name (6) + level (1)
        let mut reserved = b.clone();
        reserved[2 + 7] |= 0x01;
        assert_eq!(check_connect(&reserved, 1024), Err(Malformed::ReservedFlag));
        let mut no_user = b.clone();
        no_user[2 + 7] &= !0x80;
        assert_eq!(
            check_connect(&no_user, 1024),
            Err(Malformed::PasswordWithoutUser)
        );
        let mut v5 = b.clone();
        v5[2 + 6] = 5;
        assert_eq!(check_connect(&v5, 1024), Err(Malformed::Level(5)));
        let mut flags = b.clone();
        flags[0] |= 0x02;
        assert_eq!(check_connect(&flags, 1024), Err(Malformed::ConnectFlags(2)));
        assert_eq!(
            check_connect(&[0xc0, 0x00], 1024),
            Err(Malformed::NotConnect)
        );
        assert!(matches!(check_connect(&b, 4), Err(Malformed::Codec(_))));
        assert!(matches!(
            check_connect(&[0x10, 0xff, 0xff, 0xff, 0xff, 0x01], 1 << 30),
            Err(Malformed::Codec(_))
        ));
    }
}
