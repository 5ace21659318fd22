//! The tokens of a route condition, each with its byte span.

use std::ops::Range;

use super::SyntaxError;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Num(f64),
    Str(Box<str>),
    Ident(Box<str>),
    /// `$name`
    Dollar(Box<str>),
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Dot,
    Op(&'static str),
    End,
}

pub(super) struct Lexer<'a> {
    pub(super) text: &'a str,
    pub(super) pos: usize,
}

pub(super) fn err(
    span: Range<usize>,
    code: &'static str,
    message: String,
    help: &str,
) -> SyntaxError {
    SyntaxError {
        span,
        message,
        help: help.to_string(),
        code,
    }
}

impl<'a> Lexer<'a> {
    pub(super) fn next(&mut self) -> Result<(Tok, Range<usize>), SyntaxError> {
        let bytes = self.text.as_bytes();
        while self.pos < bytes.len() && bytes[self.pos].is_ascii_whitespace() {
            self.pos += 1;
        }
        let start = self.pos;
        let Some(&c) = bytes.get(start) else {
            return Ok((Tok::End, start..start));
        };
        let ident_end = |from: usize| {
            let mut i = from;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            i
        };
        let tok = match c {
            b'(' => Tok::LParen,
            b')' => Tok::RParen,
            b'[' => Tok::LBracket,
            b']' => Tok::RBracket,
            b',' => Tok::Comma,
            b'.' if !bytes.get(start + 1).is_some_and(u8::is_ascii_digit) => Tok::Dot,
            b'\'' | b'"' => return self.string(c),
            b'$' => {
                let end = ident_end(start + 1);
                if end == start + 1 {
                    return Err(err(
                        start..start + 1,
                        "syntax",
                        "`$` must be followed by a name".into(),
                        "write $body, $contentType, $contentEncoding, $connectionDeviceId or $enqueuedTime",
                    ));
                }
                self.pos = end;
                return Ok((Tok::Dollar(self.text[start + 1..end].into()), start..end));
            }
            b'0'..=b'9' | b'.' => return self.number(),
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let end = ident_end(start);
                self.pos = end;
                return Ok((Tok::Ident(self.text[start..end].into()), start..end));
            }
            _ => {
                for op in [
                    "<>", "!=", "<=", ">=", "=", "<", ">", "+", "-", "*", "/", "%",
                ] {
                    if self.text[start..].starts_with(op) {
                        self.pos = start + op.len();
                        return Ok((Tok::Op(op), start..self.pos));
                    }
                }
                let ch = self.text[start..].chars().next().unwrap_or('?');
                return Err(err(
                    start..start + ch.len_utf8(),
                    "syntax",
                    format!("unexpected character `{ch}`"),
                    "conditions use AND OR NOT, = != <> < > <= >=, + - * / %, 'strings', numbers, functions and $body/$system properties",
                ));
            }
        };
        self.pos = start + 1;
        Ok((tok, start..self.pos))
    }

    fn string(&mut self, quote: u8) -> Result<(Tok, Range<usize>), SyntaxError> {
        let start = self.pos;
        let mut out = String::new();
        let mut chars = self.text[start + 1..].char_indices();
        while let Some((i, ch)) = chars.next() {
            match ch {
                c if c as u32 == quote as u32 => {
                    self.pos = start + 1 + i + 1;
                    return Ok((Tok::Str(out.into()), start..self.pos));
                }
                '\\' => match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, c)) => out.push(c),
                    None => break,
                },
                c => out.push(c),
            }
        }
        Err(err(
            start..self.text.len(),
            "syntax",
            "string not closed".into(),
            "end the string with the quote it began with",
        ))
    }

    fn number(&mut self) -> Result<(Tok, Range<usize>), SyntaxError> {
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let mut i = start;
        while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
            i += 1;
        }
        if i < bytes.len() && (bytes[i] == b'e' || bytes[i] == b'E') {
            i += 1;
            if i < bytes.len() && (bytes[i] == b'+' || bytes[i] == b'-') {
                i += 1;
            }
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
        }
        self.pos = i;
        match self.text[start..i].parse::<f64>() {
            Ok(n) if n.is_finite() => Ok((Tok::Num(n), start..i)),
            _ => Err(err(
                start..i,
                "syntax",
                format!("`{}` is not a number", &self.text[start..i]),
                "write numbers as 12, 0.2 or 1e-3",
            )),
        }
    }
}
