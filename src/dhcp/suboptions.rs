//! Byte-level helpers shared by the packet parser and client identity:
//! sub-option TLVs (options 43, 82, 125) and printable option text.

/// Iterate `code, len, value` sub-options; stops at the first truncated one.
pub fn tlvs(data: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let code = *data.get(at)?;
        let len = usize::from(*data.get(at + 1)?);
        let v = data.get(at + 2..at + 2 + len)?;
        at += 2 + len;
        Some((code, v))
    })
}

/// Text made of printable ASCII (trailing NULs trimmed), else None.
pub fn printable(data: &[u8]) -> Option<String> {
    let end = data.iter().rposition(|b| *b != 0).map_or(0, |p| p + 1);
    let d = &data[..end];
    if d.is_empty() || !d.iter().all(|b| (0x20..0x7f).contains(b)) {
        return None;
    }
    Some(String::from_utf8_lossy(d).into_owned())
}
