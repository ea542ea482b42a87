//! A [`Table`] drawn for the terminal: aligned columns, numbers shortened to 4 significant
//! digits (the CSV keeps every digit).

use super::Table;

/// Renders `table` with its first `top` rows (all when `None`), leaving out `skip` columns.
pub fn render(table: &Table, top: Option<usize>, skip: &[&str]) -> String {
    let keep: Vec<usize> = (0..table.columns.len())
        .filter(|&i| !skip.contains(&table.columns[i].as_str()))
        .collect();
    render_columns(table, top, &keep)
}

/// The columns of `table` to show in `width` characters: those named in `first`, then the
/// others, as many as fit (at least one); and how many did not fit.
pub fn fitting(
    table: &Table,
    top: Option<usize>,
    width: usize,
    first: &[String],
) -> (Vec<usize>, usize) {
    let position = |name: &String| table.columns.iter().position(|c| c == name);
    let named: Vec<usize> = first.iter().filter_map(position).collect();
    let rest = (0..table.columns.len()).filter(|i| !named.contains(i));
    let order: Vec<usize> = named.iter().copied().chain(rest).collect();
    let widths = column_widths(table, top, &order);
    let mut used = 0;
    let mut keep = Vec::new();
    for (&column, &w) in order.iter().zip(&widths) {
        let needed = if keep.is_empty() { w } else { w + 2 };
        if !keep.is_empty() && used + needed > width {
            break;
        }
        used += needed;
        keep.push(column);
    }
    let left_out = order.len() - keep.len();
    (keep, left_out)
}

/// How wide each of the `columns` is drawn (its header and its first `top` cells).
fn column_widths(table: &Table, top: Option<usize>, columns: &[usize]) -> Vec<usize> {
    columns
        .iter()
        .map(|&i| {
            table
                .rows
                .iter()
                .take(top.unwrap_or(usize::MAX))
                .map(|r| short(&r[i]).0.chars().count())
                .chain([table.columns[i].chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect()
}

/// Renders the `keep` columns of `table`, in that order, with its first `top` rows.
pub fn render_columns(table: &Table, top: Option<usize>, keep: &[usize]) -> String {
    // Each cell shortened once, with whether it is a number (numbers align right).
    let rows: Vec<Vec<(String, bool)>> = table
        .rows
        .iter()
        .take(top.unwrap_or(usize::MAX))
        .map(|row| keep.iter().map(|&i| short(&row[i])).collect())
        .collect();
    let header: Vec<(String, bool)> = keep
        .iter()
        .map(|&i| (table.columns[i].clone(), false))
        .collect();
    let widths = column_widths(table, top, keep);
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let start = out.len();
        for (c, ((cell, number), &w)) in row.iter().zip(&widths).enumerate() {
            if c > 0 {
                out.push_str("  ");
            }
            let pad = w.saturating_sub(cell.chars().count());
            if *number {
                out.extend(std::iter::repeat_n(' ', pad));
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.truncate(start + out[start..].trim_end().len());
        out.push('\n');
    }
    out
}

/// The terminal's width: `COLUMNS` when set, else the terminal stdout is, if it is one.
pub fn terminal_width() -> Option<usize> {
    if let Some(columns) = std::env::var("COLUMNS").ok().and_then(|c| c.parse().ok()) {
        return Some(columns);
    }
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes a winsize into the struct it is given, which lives on this
    // stack frame; on a descriptor that is not a terminal it fails and writes nothing.
    let ok = unsafe { libc::ioctl(libc::STDOUT_FILENO, libc::TIOCGWINSZ, &mut size) } == 0;
    (ok && size.ws_col > 0).then_some(size.ws_col as usize)
}

/// A cell as the terminal shows it (numbers to 4 significant digits), and whether it is a
/// number.
fn short(cell: &str) -> (String, bool) {
    match cell.parse::<f64>() {
        Ok(x) if cell.contains('.') || cell.contains('e') => (for_people(x), true),
        Ok(_) => (cell.to_string(), true),
        Err(_) => (cell.to_string(), false),
    }
}

/// A number as a person reads it: 4 significant digits, in exponent form when very large or
/// small (the CSV files keep every digit).
pub fn for_people(x: f64) -> String {
    if x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e5) {
        format!("{x:.3e}")
    } else {
        let digits = (4 - (x.abs().log10().floor() as i32 + 1)).clamp(0, 6) as usize;
        format!("{x:.digits$}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aligns_and_shortens() {
        let table = Table {
            columns: vec!["trial".into(), "objective".into(), "note".into()],
            rows: vec![vec!["10".into(), "0.987654321".into(), "ok".into()]],
        };
        let text = render(&table, None, &["note"]);
        assert_eq!(text, "trial  objective\n   10     0.9877\n");
        assert_eq!(for_people(140556238999999998748497281024.0), "1.406e29");
        assert_eq!(for_people(0.98518518518), "0.9852");
        assert_eq!(for_people(12.3456), "12.35");
    }
}
