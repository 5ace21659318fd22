//! Bootstrap scripts (filled below).
