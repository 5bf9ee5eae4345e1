//! The SQL that differs between the three backends, generated in one place.
//!
//! Statements are written once with `?` placeholders; [`Dialect::sql`] numbers them for
//! PostgreSQL. Only the few constructs that really differ (upserts, string concatenation,
//! casts for reading) are spelled per backend. This module does no IO.

/// Which SQL flavour a statement is written for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    MySql,
    Postgres,
}

impl Dialect {
    /// `template` with its `?` placeholders in this dialect's syntax. Templates hold no
    /// string literals containing `?`, so every `?` is a placeholder.
    pub fn sql(self, template: &str) -> String {
        match self {
            Dialect::Sqlite | Dialect::MySql => template.to_owned(),
            Dialect::Postgres => {
                let mut out = String::with_capacity(template.len() + 16);
                let mut n = 0;
                for c in template.chars() {
                    if c == '?' {
                        n += 1;
                        out.push('$');
                        out.push_str(&n.to_string());
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        }
    }

    /// The clause that turns an `INSERT` into "insert unless a row with this unique key
    /// exists", leaving the existing row untouched.
    pub fn on_conflict_ignore(self, key: &str) -> String {
        match self {
            Dialect::Sqlite | Dialect::Postgres => format!(" ON CONFLICT ({key}) DO NOTHING"),
            // `INSERT IGNORE` would also turn data errors into warnings; a no-op update on
            // the duplicate key ignores only the duplicate.
            Dialect::MySql => format!(" ON DUPLICATE KEY UPDATE {key} = {key}"),
        }
    }

    /// String concatenation of SQL expressions (`||` is logical OR in MySQL).
    pub fn concat(self, parts: &[&str]) -> String {
        match self {
            Dialect::Sqlite | Dialect::Postgres => parts.join(" || "),
            Dialect::MySql => format!("CONCAT({})", parts.join(", ")),
        }
    }

    /// `expr` as a 64-bit integer when read, whatever the column's integer width: the
    /// PostgreSQL driver decodes an `i64` only from `BIGINT`, and `SUM`/`COUNT` types vary.
    pub fn int(self, expr: &str) -> String {
        match self {
            Dialect::Sqlite => expr.to_owned(),
            Dialect::MySql => format!("CAST({expr} AS SIGNED)"),
            Dialect::Postgres => format!("CAST({expr} AS BIGINT)"),
        }
    }

    /// `expr` as a double when read: `AVG` gives `DECIMAL`/`NUMERIC` in MySQL and
    /// PostgreSQL, and `REAL`/`FLOAT` columns are single precision there.
    pub fn float(self, expr: &str) -> String {
        match self {
            Dialect::Sqlite => format!("CAST({expr} AS REAL)"),
            Dialect::MySql => format!("CAST({expr} AS DOUBLE)"),
            Dialect::Postgres => format!("CAST({expr} AS DOUBLE PRECISION)"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_placeholders_are_numbered_in_order() {
        let t = "UPDATE t SET a = ?, b = ? WHERE c = ?";
        assert_eq!(
            Dialect::Postgres.sql(t),
            "UPDATE t SET a = $1, b = $2 WHERE c = $3"
        );
        assert_eq!(Dialect::MySql.sql(t), t);
        assert_eq!(Dialect::Sqlite.sql(t), t);
    }

    #[test]
    fn concat_and_upsert_per_dialect() {
        assert_eq!(Dialect::MySql.concat(&["a", "','"]), "CONCAT(a, ',')");
        assert_eq!(Dialect::Postgres.concat(&["a", "','"]), "a || ','");
        assert_eq!(
            Dialect::MySql.on_conflict_ignore("k"),
            " ON DUPLICATE KEY UPDATE k = k"
        );
        assert_eq!(
            Dialect::Sqlite.on_conflict_ignore("k"),
            " ON CONFLICT (k) DO NOTHING"
        );
    }
}
