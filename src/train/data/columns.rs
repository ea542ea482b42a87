//! The data file's columns by role: the target, the split column, categorical columns, and
//! numeric features (every other column, unless `[data] features` names them).

use super::Loader;
use crate::error::Result;
use crate::text::{hint, quote_list};
use crate::train::spec::{FeatureColumns, SplitSpec};

/// The columns of the data file by role (indices into its header).
pub(super) struct Columns {
    pub(super) target: usize,
    pub(super) split: Option<usize>,
    pub(super) categorical: Vec<usize>,
    pub(super) features: Vec<usize>,
}

impl Loader<'_> {
    /// Finds each role's columns by name; every other column is a numeric feature.
    pub(super) fn columns(&self, headers: &[String]) -> Result<Columns> {
        self.refuse_repeated(headers)?;
        let target = self.column(headers, &self.spec.target, "target")?;
        let split = match &self.spec.split {
            SplitSpec::Column(name) => Some(self.column(headers, name, "split_column")?),
            SplitSpec::Fractions { .. } => None,
        };
        let categorical = self.categorical(headers, target, split)?;
        let features = self.features(headers, target, split, &categorical)?;
        if features.is_empty() && categorical.is_empty() {
            return Err(self.at(
                "path",
                format!("{} has no feature columns besides the target", self.shown),
            ));
        }
        Ok(Columns {
            target,
            split,
            categorical,
            features,
        })
    }

    /// The index of the column `name`, which `[data] key` names.
    fn column(&self, headers: &[String], name: &str, key: &str) -> Result<usize> {
        headers.iter().position(|h| h == name).ok_or_else(|| {
            let hint = hint(name, headers.iter().map(String::as_str));
            let names: Vec<&str> = headers.iter().map(String::as_str).collect();
            self.at(
                key,
                format!(
                    "column `{name}` is not in {}.{hint} Its columns: {}{}",
                    self.shown,
                    quote_list(&names),
                    other_delimiter(headers, self.spec.delimiter)
                ),
            )
        })
    }

    /// Columns are read by name, so a name may appear once.
    fn refuse_repeated(&self, headers: &[String]) -> Result<()> {
        let Some((first, again)) = (0..headers.len())
            .find_map(|j| (0..j).find(|&i| headers[i] == headers[j]).map(|i| (i, j)))
        else {
            return Ok(());
        };
        Err(self.at(
            "path",
            format!(
                "column `{}` appears twice in {} (columns {} and {}): kiln reads columns by name, so rename one",
                headers[first],
                self.shown,
                first + 1,
                again + 1
            ),
        ))
    }

    /// The categorical columns, none of them the target or the split column.
    fn categorical(
        &self,
        headers: &[String],
        target: usize,
        split: Option<usize>,
    ) -> Result<Vec<usize>> {
        let mut categorical = Vec::new();
        for name in &self.spec.categorical {
            let c = self.column(headers, name, "categorical")?;
            if c == target || Some(c) == split {
                return Err(self.at(
                    "categorical",
                    format!(
                        "`{name}` is the target or the split column; it cannot also be a feature"
                    ),
                ));
            }
            categorical.push(c);
        }
        Ok(categorical)
    }

    /// The numeric feature columns: those `features` lists, or all but the other roles' and
    /// those `ignore` lists.
    fn features(
        &self,
        headers: &[String],
        target: usize,
        split: Option<usize>,
        categorical: &[usize],
    ) -> Result<Vec<usize>> {
        let taken = |c: usize| c == target || Some(c) == split || categorical.contains(&c);
        let (names, key) = match &self.spec.columns {
            FeatureColumns::AllBut(names) => (names, "ignore"),
            FeatureColumns::Only(names) => (names, "features"),
        };
        let named: Vec<usize> = names
            .iter()
            .map(|name| self.column(headers, name, key))
            .collect::<Result<_>>()?;
        match &self.spec.columns {
            FeatureColumns::Only(_) => match named.iter().find(|&&c| taken(c)) {
                Some(&c) => Err(self.at(
                    key,
                    format!(
                        "`{}` is the target, the split column or a categorical column; list only numeric feature columns in `features`",
                        headers[c]
                    ),
                )),
                None => Ok(named),
            },
            FeatureColumns::AllBut(_) => {
                let features: Vec<usize> = (0..headers.len())
                    .filter(|&c| !taken(c) && !named.contains(&c))
                    .collect();
                match features.iter().find(|&&c| is_unnamed(&headers[c])) {
                    Some(&c) => Err(self.unnamed(headers, c)),
                    None => Ok(features),
                }
            }
        }
    }

    /// The error for an unnamed column read as a feature: most often pandas' row index.
    fn unnamed(&self, headers: &[String], c: usize) -> crate::error::Error {
        self.at(
            "path",
            format!(
                "column {} of {} {}, as pandas' `to_csv` writes its row index: as a feature, a row number would leak the order of the rows into the model. Write the file with `to_csv(index=False)`, or leave the column out with `ignore = [\"{}\"]`",
                c + 1,
                self.shown,
                match headers[c].trim() {
                    "" => "has no name".to_string(),
                    name => format!("is named `{name}`"),
                },
                headers[c]
            ),
        )
    }
}

/// A hint for a header that is one cell holding another delimiter (`a;b;label` read with `,`).
fn other_delimiter(headers: &[String], delimiter: u8) -> String {
    let [only] = headers else {
        return String::new();
    };
    [b';', b'\t', b'|', b',']
        .into_iter()
        .filter(|&d| d != delimiter)
        .find(|&d| only.as_bytes().contains(&d))
        .map(|d| {
            let shown = if d == b'\t' {
                "\\t".to_string()
            } else {
                (d as char).to_string()
            };
            format!(". The header looks delimited by `{shown}`: set [data] delimiter = \"{shown}\"")
        })
        .unwrap_or_default()
}

/// Whether a header is a column without a name: empty, or pandas' `Unnamed: N` for one.
fn is_unnamed(header: &str) -> bool {
    let header = header.trim();
    header.is_empty()
        || header
            .strip_prefix("Unnamed: ")
            .is_some_and(|n| n.parse::<u32>().is_ok())
}
