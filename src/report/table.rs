//! A [`Table`] drawn for the terminal: aligned columns, numbers shortened to 4 significant
//! digits (the CSV keeps every digit).

use super::Table;

/// Renders `table` with its first `top` rows (all when `None`), leaving out `skip` columns.
pub fn render(table: &Table, top: Option<usize>, skip: &[&str]) -> String {
    let keep: Vec<usize> = (0..table.columns.len())
        .filter(|&i| !skip.contains(&table.columns[i].as_str()))
        .collect();
    let rows: Vec<Vec<String>> = table
        .rows
        .iter()
        .take(top.unwrap_or(usize::MAX))
        .map(|row| keep.iter().map(|&i| short(&row[i])).collect())
        .collect();
    let header: Vec<String> = keep.iter().map(|&i| table.columns[i].clone()).collect();
    let widths: Vec<usize> = (0..keep.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(&rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, &w)| {
                if cell.parse::<f64>().is_ok() {
                    format!("{cell:>w$}")
                } else {
                    format!("{cell:<w$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn short(cell: &str) -> String {
    match cell.parse::<f64>() {
        Ok(x) if cell.contains('.') || cell.contains('e') => {
            if x != 0.0 && (x.abs() < 1e-3 || x.abs() >= 1e5) {
                format!("{x:.3e}")
            } else {
                let digits = (4 - (x.abs().log10().floor() as i32 + 1)).clamp(0, 6) as usize;
                format!("{x:.digits$}")
            }
        }
        _ => cell.to_string(),
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
    }
}
