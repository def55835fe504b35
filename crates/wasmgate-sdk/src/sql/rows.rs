//! [`Rows`]: a query's result, and [`Row`], one row with typed accessors by column name.

use super::value::{FromValue, Value};
use super::SqlError;

/// The rows a query returned, with their column names.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Rows {
    columns: Vec<String>,
    rows: Vec<Vec<Value>>,
}

impl Rows {
    /// Rows from column names and each row's values in that order.
    pub fn new(columns: Vec<String>, rows: Vec<Vec<Value>>) -> Rows {
        Rows { columns, rows }
    }

    /// The column names, in order.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// How many rows there are.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The first row, if any: for queries that return at most one.
    pub fn first(&self) -> Option<Row<'_>> {
        self.iter().next()
    }

    /// The rows in order.
    pub fn iter(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().map(|values| Row {
            columns: &self.columns,
            values,
        })
    }
}

impl<'a> IntoIterator for &'a Rows {
    type Item = Row<'a>;
    type IntoIter = Box<dyn Iterator<Item = Row<'a>> + 'a>;

    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// One row of [`Rows`].
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    columns: &'a [String],
    values: &'a [Value],
}

impl<'a> Row<'a> {
    /// The value of `column` as a `T`: `row.get::<i64>("id")`, `row.get::<Option<String>>("note")`
    /// for a nullable column. Column names match exactly first, then ignoring ASCII case
    /// (PostgreSQL folds unquoted names to lower case, other backends keep them).
    pub fn get<T: FromValue>(&self, column: &str) -> Result<T, SqlError> {
        let index = self.index_of(column)?;
        self.get_at(index)
    }

    /// The value at position `index` (from 0) as a `T`.
    pub fn get_at<T: FromValue>(&self, index: usize) -> Result<T, SqlError> {
        let value = self.values.get(index).ok_or_else(|| {
            SqlError::NoSuchColumn(format!("#{index} (the row has {})", self.values.len()))
        })?;
        T::from_value(value).map_err(|error| SqlError::Conversion {
            column: self
                .columns
                .get(index)
                .cloned()
                .unwrap_or_else(|| format!("#{index}")),
            error,
        })
    }

    /// The raw values, in column order.
    pub fn values(&self) -> &'a [Value] {
        self.values
    }

    fn index_of(&self, column: &str) -> Result<usize, SqlError> {
        self.columns
            .iter()
            .position(|name| name == column)
            .or_else(|| {
                self.columns
                    .iter()
                    .position(|name| name.eq_ignore_ascii_case(column))
            })
            .ok_or_else(|| {
                SqlError::NoSuchColumn(format!("{column:?} (columns: {})", self.columns.join(", ")))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn todos() -> Rows {
        Rows::new(
            vec!["id".into(), "title".into(), "done".into(), "note".into()],
            vec![
                vec![
                    Value::Int64(1),
                    Value::Text("milk".into()),
                    Value::Int64(0),
                    Value::Null,
                ],
                vec![
                    Value::Int64(2),
                    Value::Text("bread".into()),
                    Value::Int64(1),
                    Value::Text("wholemeal".into()),
                ],
            ],
        )
    }

    #[test]
    fn typed_access_by_name() {
        let rows = todos();
        let row = rows.first().unwrap();
        assert_eq!(row.get::<i64>("id").unwrap(), 1);
        assert_eq!(row.get::<String>("title").unwrap(), "milk");
        assert!(!row.get::<bool>("done").unwrap());
        assert_eq!(row.get::<Option<String>>("note").unwrap(), None);
        assert_eq!(row.get_at::<i64>(0).unwrap(), 1);
    }

    #[test]
    fn column_names_fall_back_to_any_case() {
        let rows = Rows::new(vec!["ID".into()], vec![vec![Value::Int64(5)]]);
        assert_eq!(rows.first().unwrap().get::<i64>("id").unwrap(), 5);
    }

    #[test]
    fn iteration_visits_rows_in_order() {
        let rows = todos();
        let titles: Vec<String> = rows.iter().map(|row| row.get("title").unwrap()).collect();
        assert_eq!(titles, ["milk", "bread"]);
        assert_eq!((&rows).into_iter().count(), 2);
        assert_eq!(rows.len(), 2);
        assert!(Rows::default().is_empty());
    }

    #[test]
    fn errors_name_the_column() {
        let rows = todos();
        let row = rows.first().unwrap();
        let missing = row.get::<i64>("nope").unwrap_err();
        assert!(missing.to_string().contains("\"nope\""), "{missing}");
        assert!(
            missing.to_string().contains("id, title, done, note"),
            "{missing}"
        );
        let null = row.get::<String>("note").unwrap_err();
        assert_eq!(null.to_string(), "column note: expected text, found NULL");
        assert!(row.get_at::<i64>(9).is_err());
    }
}
