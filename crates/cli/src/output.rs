//! Output: aligned tables and key/value blocks for people, JSON and CSV for machines.
//!
//! Every read command builds its answer once as data and renders it as a [`Table`] (or
//! [`Fields`]) by default or as JSON with `--json`; machine output goes to stdout only, so it
//! can be piped. Times are shown in UTC as `2026-01-31T12:00:00.000Z`.

use std::fmt::Write as _;
use std::io::Write as _;

use serde_json::Value;

use crate::duration::format_duration_ms;

/// A table with a header row; columns are padded to their widest cell.
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|h| (*h).to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row; missing cells are blank, extra cells are kept.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as aligned text, two spaces between columns, no trailing spaces.
    pub fn render(&self) -> String {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.headers.len()])
            .max()
            .unwrap_or(0);
        let mut widths = vec![0; columns];
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let mut line = String::new();
            for (i, width) in widths.iter().enumerate() {
                let cell = row.get(i).map_or("", String::as_str);
                if i + 1 == columns {
                    line.push_str(cell);
                } else {
                    let _ = write!(line, "{cell:<width$}  ");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// The table as CSV (RFC 4180 quoting), header first.
    pub fn to_csv(&self) -> String {
        let mut out = String::new();
        for row in std::iter::once(&self.headers).chain(&self.rows) {
            let line: Vec<String> = row.iter().map(|c| csv_cell(c)).collect();
            out.push_str(&line.join(","));
            out.push('\n');
        }
        out
    }
}

fn csv_cell(cell: &str) -> String {
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_string()
    }
}

/// A block of `name: value` lines with the names aligned.
#[derive(Debug, Clone, Default)]
pub struct Fields {
    lines: Vec<(String, String)>,
}

impl Fields {
    /// An empty block.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one line.
    pub fn add(&mut self, name: &str, value: impl Into<String>) -> &mut Self {
        self.lines.push((name.to_string(), value.into()));
        self
    }

    /// The block as aligned text.
    pub fn render(&self) -> String {
        let width = self
            .lines
            .iter()
            .map(|(n, _)| n.len() + 1)
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (name, value) in &self.lines {
            let label = format!("{name}:");
            let _ = writeln!(out, "{label:<width$}  {value}");
        }
        out
    }
}

/// Prints a JSON value, pretty, on stdout.
pub fn print_json(value: &Value) {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    print_line(&text);
}

/// Prints text on stdout as it is (tables and blocks end with their own newline).
///
/// A closed stdout (`switchyard audit | head`) ends the process quietly with status 0, as
/// it would for any Unix filter, instead of the panic `print!` gives.
pub fn print_text(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
    if let Err(e) = written {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// Prints one line on stdout (see [`print_text`]).
pub fn print_line(text: &str) {
    print_text(&format!("{text}\n"));
}

/// Formats ms since the Unix epoch as UTC `YYYY-MM-DDTHH:MM:SS.mmmZ`.
pub fn format_time_ms(ms: u64) -> String {
    switchyard_core::utc_rfc3339_ms(ms)
}

/// `format_time_ms`, or `-` when absent.
pub fn format_opt_time_ms(ms: Option<u64>) -> String {
    ms.map_or_else(|| "-".to_string(), format_time_ms)
}

/// How long ago `then_ms` was, relative to `now_ms`: `3m20s ago`.
pub fn format_ago(then_ms: u64, now_ms: u64) -> String {
    if then_ms == 0 {
        return "-".to_string();
    }
    format!("{} ago", format_duration_ms(now_ms.saturating_sub(then_ms)))
}

/// Now, in ms since the Unix epoch (the CLI's own clock, for "ago" columns and `--since`).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Strips a protobuf enum prefix: `BREAKER_STATE_OPEN` -> `OPEN`.
pub fn enum_name(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix).unwrap_or(full).to_string()
}

/// Shortens text to `max` characters for a table cell, marking the cut with `…`.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max.saturating_sub(1)).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let mut t = Table::new(&["KEY", "STATE"]);
        t.row(vec!["payments/ml-fraud".into(), "OPEN".into()]);
        t.row(vec!["a/b".into(), "CLOSED".into()]);
        assert_eq!(
            t.render(),
            "KEY                STATE\npayments/ml-fraud  OPEN\na/b                CLOSED\n"
        );
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let mut t = Table::new(&["a", "b"]);
        t.row(vec!["x,y".into(), "say \"hi\"".into()]);
        assert_eq!(t.to_csv(), "a,b\n\"x,y\",\"say \"\"hi\"\"\"\n");
    }

    #[test]
    fn times_are_utc() {
        assert_eq!(format_time_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time_ms(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(
            format_time_ms(1_767_225_599_000),
            "2025-12-31T23:59:59.000Z"
        );
    }

    #[test]
    fn fields_align_names() {
        let mut f = Fields::new();
        f.add("key", "a/b").add("state", "OPEN");
        assert_eq!(f.render(), "key:    a/b\nstate:  OPEN\n");
    }
}
