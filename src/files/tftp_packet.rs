//! TFTP packets (RFC 1350) and request options (RFC 2347/2348/2349, 7440):
//! pure parsing and encoding, fuzzed by `fuzz/fuzz_targets/tftp_request.rs`.
//!
//! Parsing is lenient where clients differ and strict where safety needs it:
//! unknown options and non-numeric or out-of-range values are ignored (atftp
//! sends `tsize enable`), a truncated trailing option is ignored, but a
//! filename or mode without its NUL terminator is an error.

use std::fmt;

pub const OP_RRQ: u16 = 1;
pub const OP_WRQ: u16 = 2;
pub const OP_DATA: u16 = 3;
pub const OP_ACK: u16 = 4;
pub const OP_ERROR: u16 = 5;
pub const OP_OACK: u16 = 6;

/// RFC 1350 error codes used by the server.
pub const ERR_UNDEFINED: u16 = 0;
pub const ERR_NOT_FOUND: u16 = 1;
pub const ERR_ACCESS: u16 = 2;
pub const ERR_ILLEGAL: u16 = 4;

/// RFC 2348 bounds.
pub const MIN_BLKSIZE: u16 = 8;
pub const MAX_BLKSIZE: u16 = 65464;
/// RFC 7440 allows 65535; more than this buys nothing on a LAN and would
/// let one client make us buffer `window x blksize` bytes (64 x 64 KiB = 4 MiB).
pub const MAX_WINDOWSIZE: u16 = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Octet,
    Netascii,
}

/// Options the server understood; anything else the client sent is ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    pub blksize: Option<u16>,
    /// The client asked for the transfer size (RRQ sends 0).
    pub tsize: bool,
    /// Retransmission timeout in seconds (1..=255).
    pub timeout: Option<u8>,
    pub windowsize: Option<u16>,
}

impl Options {
    pub fn any(&self) -> bool {
        self.blksize.is_some() || self.tsize || self.timeout.is_some() || self.windowsize.is_some()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub filename: String,
    pub mode: Mode,
    pub options: Options,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    Read(Request),
    Write(Request),
    Data { block: u16, data: &'a [u8] },
    Ack(u16),
    Error { code: u16, message: String },
    Oack,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    TooShort,
    UnknownOpcode(u16),
    Unterminated(&'static str),
    NotUtf8(&'static str),
    UnknownMode(String),
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::TooShort => write!(f, "packet shorter than its opcode needs"),
            ParseError::UnknownOpcode(op) => {
                write!(f, "unknown opcode {op}: expected 1 (RRQ) to 6 (OACK)")
            }
            ParseError::Unterminated(what) => write!(f, "{what} is not NUL-terminated"),
            ParseError::NotUtf8(what) => write!(f, "{what} is not UTF-8"),
            ParseError::UnknownMode(m) => {
                write!(f, "unknown transfer mode {m:?}: expected octet or netascii")
            }
        }
    }
}

pub fn parse(buf: &[u8]) -> Result<Packet<'_>, ParseError> {
    if buf.len() < 2 {
        return Err(ParseError::TooShort);
    }
    let op = u16::from_be_bytes([buf[0], buf[1]]);
    let rest = &buf[2..];
    let number = || -> Result<u16, ParseError> {
        match rest {
            [a, b, ..] => Ok(u16::from_be_bytes([*a, *b])),
            _ => Err(ParseError::TooShort),
        }
    };
    match op {
        OP_RRQ => parse_request(rest).map(Packet::Read),
        OP_WRQ => parse_request(rest).map(Packet::Write),
        OP_DATA => Ok(Packet::Data {
            block: number()?,
            data: &rest[2..],
        }),
        OP_ACK => Ok(Packet::Ack(number()?)),
        OP_ERROR => {
            let code = number()?;
            let msg = rest[2..].split(|b| *b == 0).next().unwrap_or_default();
            Ok(Packet::Error {
                code,
                message: String::from_utf8_lossy(msg).into_owned(),
            })
        }
        OP_OACK => Ok(Packet::Oack),
        other => Err(ParseError::UnknownOpcode(other)),
    }
}

/// Take one NUL-terminated string off the front of `rest`.
fn take_cstr<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let nul = rest.iter().position(|b| *b == 0)?;
    let piece = &rest[..nul];
    *rest = &rest[nul + 1..];
    Some(piece)
}

fn parse_request(body: &[u8]) -> Result<Request, ParseError> {
    let mut rest = body;
    let filename = take_cstr(&mut rest).ok_or(ParseError::Unterminated("filename"))?;
    let filename = std::str::from_utf8(filename).map_err(|_| ParseError::NotUtf8("filename"))?;
    let mode = take_cstr(&mut rest).ok_or(ParseError::Unterminated("mode"))?;
    let mode = String::from_utf8_lossy(mode).to_ascii_lowercase();
    let mode = match mode.as_str() {
        "octet" => Mode::Octet,
        "netascii" => Mode::Netascii,
        _ => return Err(ParseError::UnknownMode(mode)),
    };
    let mut options = Options::default();
    while let (Some(name), Some(value)) = (take_cstr(&mut rest), take_cstr(&mut rest)) {
        let name = String::from_utf8_lossy(name).to_ascii_lowercase();
        let value = std::str::from_utf8(value).ok().map(str::trim);
        let num = value.and_then(|v| v.parse::<u64>().ok());
        // The first occurrence of an option wins; later duplicates are ignored.
        match (name.as_str(), num) {
            ("blksize", Some(n)) if options.blksize.is_none() && n >= u64::from(MIN_BLKSIZE) => {
                options.blksize = Some(n.min(u64::from(MAX_BLKSIZE)) as u16);
            }
            ("tsize", Some(_)) => options.tsize = true,
            ("timeout", Some(n)) if options.timeout.is_none() && (1..=255).contains(&n) => {
                options.timeout = Some(n as u8);
            }
            ("windowsize", Some(n)) if options.windowsize.is_none() && n >= 1 => {
                options.windowsize = Some(n.min(u64::from(MAX_WINDOWSIZE)) as u16);
            }
            _ => {}
        }
    }
    Ok(Request {
        filename: filename.to_string(),
        mode,
        options,
    })
}

pub fn encode_error(code: u16, message: &str) -> Vec<u8> {
    let mut v = Vec::with_capacity(5 + message.len());
    v.extend_from_slice(&OP_ERROR.to_be_bytes());
    v.extend_from_slice(&code.to_be_bytes());
    v.extend_from_slice(message.as_bytes());
    v.push(0);
    v
}

pub fn encode_oack(options: &[(&str, String)]) -> Vec<u8> {
    let mut v = OP_OACK.to_be_bytes().to_vec();
    for (name, value) in options {
        v.extend_from_slice(name.as_bytes());
        v.push(0);
        v.extend_from_slice(value.as_bytes());
        v.push(0);
    }
    v
}

pub fn encode_data(block: u16, data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(4 + data.len());
    v.extend_from_slice(&OP_DATA.to_be_bytes());
    v.extend_from_slice(&block.to_be_bytes());
    v.extend_from_slice(data);
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rrq(parts: &[&str]) -> Vec<u8> {
        let mut v = OP_RRQ.to_be_bytes().to_vec();
        for p in parts {
            v.extend_from_slice(p.as_bytes());
            v.push(0);
        }
        v
    }

    fn read_req(buf: &[u8]) -> Request {
        match parse(buf) {
            Ok(Packet::Read(r)) => r,
            other => panic!("RRQ expected, got {other:?}"),
        }
    }

    #[test]
    fn parses_curl_and_atftp_requests() {
        let r = read_req(&rrq(&[
            "a/b.bin", "octet", "tsize", "0", "blksize", "1468", "timeout", "6",
        ]));
        assert_eq!(r.filename, "a/b.bin");
        assert_eq!(r.mode, Mode::Octet);
        assert_eq!(
            r.options,
            Options {
                blksize: Some(1468),
                tsize: true,
                timeout: Some(6),
                windowsize: None
            }
        );
        // atftp's `tsize enable` and unknown options are ignored, not fatal.
        let r = read_req(&rrq(&[
            "x",
            "NetASCII",
            "tsize",
            "enable",
            "windowsize",
            "8",
            "foo",
            "bar",
        ]));
        assert_eq!(r.mode, Mode::Netascii);
        assert_eq!(
            r.options,
            Options {
                windowsize: Some(8),
                ..Options::default()
            }
        );
    }

    #[test]
    fn clamps_and_ignores_out_of_range_values() {
        let r = read_req(&rrq(&[
            "x",
            "octet",
            "blksize",
            "99999",
            "windowsize",
            "1000",
            "timeout",
            "0",
            "blksize",
            "512",
        ]));
        assert_eq!(r.options.blksize, Some(MAX_BLKSIZE));
        assert_eq!(r.options.windowsize, Some(MAX_WINDOWSIZE));
        assert_eq!(r.options.timeout, None);
        let r = read_req(&rrq(&["x", "octet", "blksize", "4"]));
        assert_eq!(r.options.blksize, None);
    }

    #[test]
    fn malformed_requests_are_errors() {
        assert_eq!(parse(&[]), Err(ParseError::TooShort));
        assert_eq!(parse(&[0, 9, 1]), Err(ParseError::UnknownOpcode(9)));
        assert_eq!(
            parse(b"\x00\x01name"),
            Err(ParseError::Unterminated("filename"))
        );
        assert_eq!(
            parse(b"\x00\x01name\0octet"),
            Err(ParseError::Unterminated("mode"))
        );
        assert_eq!(
            parse(b"\x00\x01\xff\0octet\0"),
            Err(ParseError::NotUtf8("filename"))
        );
        assert_eq!(
            parse(b"\x00\x01n\0mail\0"),
            Err(ParseError::UnknownMode("mail".into()))
        );
        assert_eq!(parse(&[0, 4, 1]), Err(ParseError::TooShort));
        // A truncated trailing option is ignored.
        let r = read_req(b"\x00\x01n\0octet\0blksize\x001468");
        assert_eq!(r.options.blksize, None);
    }

    #[test]
    fn other_packets() {
        assert_eq!(parse(&[0, 4, 0, 7]), Ok(Packet::Ack(7)));
        assert_eq!(
            parse(&[0, 3, 0, 1, 9]),
            Ok(Packet::Data {
                block: 1,
                data: &[9]
            })
        );
        assert_eq!(
            parse(&encode_error(ERR_ACCESS, "no")),
            Ok(Packet::Error {
                code: 2,
                message: "no".into()
            })
        );
        assert!(matches!(
            parse(&rrq(&["x", "octet"])[..]),
            Ok(Packet::Read(_))
        ));
        let mut w = rrq(&["x", "octet"]);
        w[1] = 2;
        assert!(matches!(parse(&w), Ok(Packet::Write(_))));
        assert_eq!(
            encode_oack(&[("blksize", "1468".into())]),
            b"\x00\x06blksize\x001468\x00"
        );
        assert_eq!(encode_data(258, b"ab"), b"\x00\x03\x01\x02ab");
    }
}
