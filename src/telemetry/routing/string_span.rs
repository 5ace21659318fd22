//! Where a byte of a TOML string's value lies in the file: a condition's
//! syntax error is found in the decoded string, and shown at its column in
//! `routes.toml`. Exact for literal strings (`'...'`, `'''...'''`); basic
//! strings (`"..."`, `"""..."""`) are walked escape by escape, so an error
//! after `\"` or `\u00e9` still lands on the right column.

use std::ops::Range;

/// The file range of `decoded` (a byte range of the string's value) for a
/// string written at `token` (its span in `text`, quotes included).
pub fn file_range(text: &str, token: Range<usize>, decoded: Range<usize>) -> Range<usize> {
    let Some(raw) = text.get(token.clone()) else {
        return token;
    };
    // On a character boundary whatever the text (an escape this walk reads
    // otherwise than the TOML parser would shift the column, never split a
    // character).
    let boundary = |mut i: usize| {
        i = i.min(raw.len());
        while !raw.is_char_boundary(i) {
            i -= 1;
        }
        token.start + i
    };
    let start = boundary(raw_offset(raw, decoded.start));
    let end = boundary(raw_offset(raw, decoded.end));
    start..end.max(start)
}

/// The offset in `raw` (the token, quotes included) of byte `at` of its
/// decoded value. Past the value: the closing quote.
fn raw_offset(raw: &str, at: usize) -> usize {
    let (quote, literal) = if raw.starts_with("'''") {
        (3, true)
    } else if raw.starts_with("\"\"\"") {
        (3, false)
    } else if raw.starts_with('\'') {
        (1, true)
    } else if raw.starts_with('"') {
        (1, false)
    } else {
        return 0;
    };
    let mut i = quote;
    // A newline right after the opening quotes of a multi-line string is
    // not part of the value.
    if quote == 3 {
        if raw[i..].starts_with("\r\n") {
            i += 2;
        } else if raw[i..].starts_with('\n') {
            i += 1;
        }
    }
    let end = raw.len().saturating_sub(quote).max(i);
    if literal {
        return (i + at).min(end);
    }
    let b = raw.as_bytes();
    let mut value = 0;
    // A line-ending backslash adds nothing to the value: a byte of the
    // value after one lies after it, so it is skipped even when `at` is
    // already reached.
    let line_end_escape =
        |i: usize| b[i] == b'\\' && b.get(i + 1).is_some_and(|c| c.is_ascii_whitespace());
    while i < end && (value < at || line_end_escape(i)) {
        // An escape cut short (`\u00e` then a non-ASCII character: TOML
        // refuses it, this walk still reads it) may have stepped into a
        // character: go on from the next one.
        while !raw.is_char_boundary(i) {
            i += 1;
        }
        if i >= end {
            break;
        }
        if b[i] != b'\\' {
            let len = raw[i..].chars().next().map_or(1, char::len_utf8);
            value += len;
            i += len;
            continue;
        }
        match b.get(i + 1) {
            Some(b'u') => {
                value += escaped_len(raw.get(i + 2..i + 6));
                i += 6;
            }
            Some(b'U') => {
                value += escaped_len(raw.get(i + 2..i + 10));
                i += 10;
            }
            // TOML 1.1's `\xHH`.
            Some(b'x') => {
                value += escaped_len(raw.get(i + 2..i + 4));
                i += 4;
            }
            // A line-ending backslash: the newline and the whitespace after
            // it are not part of the value.
            Some(c) if c.is_ascii_whitespace() => {
                i += 1;
                while i < end && b[i].is_ascii_whitespace() {
                    i += 1;
                }
            }
            _ => {
                value += 1;
                i += 2;
            }
        }
    }
    i.min(end)
}

/// Bytes of the character a `\u`/`\U` escape with these hex digits stands for.
fn escaped_len(hex: Option<&str>) -> usize {
    hex.and_then(|h| u32::from_str_radix(h, 16).ok())
        .and_then(char::from_u32)
        .map_or(1, char::len_utf8)
}

#[cfg(test)]
mod tests {
    use super::file_range;

    /// The file text of `value` at the range `decoded` finds in `line`.
    fn shown(line: &str, decoded: std::ops::Range<usize>) -> &str {
        let start = line.find(['"', '\'']).unwrap();
        let end = line.len();
        &line[file_range(line, start..end, decoded)]
    }

    #[test]
    fn crlf_in_multiline_strings_is_what_toml_decodes() {
        for text in ["c = '''a\r\nb AND'''", "c = \"\"\"a\r\nb AND\"\"\""] {
            let doc = toml::de::DeTable::parse(text).unwrap();
            let v = doc.get_ref().get("c").unwrap();
            let toml::de::DeValue::String(value) = v.get_ref() else {
                panic!()
            };
            let at = value.find("AND").unwrap();
            let range = super::file_range(text, v.span(), at..at + 3);
            assert_eq!(&text[range], "AND", "{text:?} decodes as {value:?}");
        }
    }

    #[test]
    fn literal_strings_map_exactly() {
        // value: a = 'x' AND
        assert_eq!(shown("condition = 'a = 1 AND'", 6..9), "AND");
        assert_eq!(shown("condition = '''a = 1 AND'''", 6..9), "AND");
        assert_eq!(shown("condition = '''\nb AND'''", 2..5), "AND");
    }

    #[test]
    fn basic_strings_skip_their_escapes() {
        // value: a = "x" AND  (the quotes escaped in the file)
        assert_eq!(shown(r#"condition = "a = \"x\" AND""#, 8..11), "AND");
        // value: a = 'é' AND, é written as \u00e9 (two bytes decoded)
        assert_eq!(shown(r#"condition = "a = '\u00e9' AND""#, 9..12), "AND");
        assert_eq!(shown(r#"condition = "a\tb""#, 2..3), "b");
        // A line-ending backslash in a multi-line basic string.
        let text = "condition = \"\"\"a = 1 \\\n     AND\"\"\"";
        assert_eq!(shown(text, 6..9), "AND");
        // Past the value: the closing quote.
        assert_eq!(shown(r#"c = "ab""#, 2..2), "");
    }

    /// A `\u` escape cut short by a non-ASCII character (the fuzzer's
    /// find: the walk stepped into the middle of `ǣ` and panicked).
    #[test]
    fn a_short_escape_before_a_wide_character_is_no_panic() {
        let text = "c = \"\"\"a = \\\"\\u00e\u{1e3}\" \\\n   AND\"\"\"";
        let start = text.find('"').unwrap();
        for at in 0..20 {
            let r = file_range(text, start..text.len(), at..at + 1);
            assert!(text.get(r.clone()).is_some(), "{r:?} splits a character");
        }
    }
}
