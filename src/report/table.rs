//! A [`Table`] drawn for the terminal: aligned columns, numbers shortened to 4 significant
//! digits (the CSV keeps every digit).

use super::Table;

/// Renders `table` with its first `top` rows (all when `None`), leaving out `skip` columns.
pub fn render(table: &Table, top: Option<usize>, skip: &[&str]) -> String {
    let keep: Vec<usize> = (0..table.columns.len())
        .filter(|&i| !skip.contains(&table.columns[i].as_str()))
        .collect();
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
    let widths: Vec<usize> = (0..keep.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].0.chars().count())
                .chain([header[c].0.len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
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
