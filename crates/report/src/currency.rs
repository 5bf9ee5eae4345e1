//! The currency the report's amounts are in.
//!
//! Every cost in rtcroom is a whole number of hundredths ("cents", 分) of one currency: the
//! `[billing]` prices per minute and the `cost` column of the records. Which currency that
//! is, the records do not say; the report is told, and shows amounts as the symbol followed
//! by units with two decimals (`¥1,234.56` for 123456). The default is the Chinese yuan
//! (CNY, `¥`), the currency the prices were first defined in.

use std::fmt;

/// An ISO 4217 code and the symbol shown before amounts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Currency {
    code: String,
    symbol: String,
}

/// What is wrong with a currency setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CurrencyError {
    #[error(
        "currency {0:?} is not an ISO 4217 code: write three capital letters, e.g. \"CNY\", \"USD\", \"EUR\""
    )]
    Code(String),
    #[error(
        "currency symbol {0:?} is too long or has control characters: use at most 8 characters, e.g. \"¥\", \"$\", \"€\", \"CHF \""
    )]
    Symbol(String),
}

/// Symbols of a few currencies whose amounts have hundredths; other codes are shown as the
/// code and a space (`CHF 12.50`) unless a symbol is given.
const SYMBOLS: [(&str, &str); 5] = [
    ("CNY", "¥"),
    ("USD", "$"),
    ("EUR", "€"),
    ("GBP", "£"),
    ("INR", "₹"),
];

impl Currency {
    /// `code` must be three ASCII capitals; an empty `symbol` takes the usual one of the
    /// code (see above), or the code and a space.
    pub fn new(code: &str, symbol: &str) -> Result<Self, CurrencyError> {
        if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(CurrencyError::Code(code.to_owned()));
        }
        if symbol.chars().count() > 8 || symbol.chars().any(char::is_control) {
            return Err(CurrencyError::Symbol(symbol.to_owned()));
        }
        let symbol = if symbol.trim().is_empty() {
            SYMBOLS
                .iter()
                .find(|(c, _)| *c == code)
                .map_or_else(|| format!("{code} "), |(_, s)| (*s).to_owned())
        } else {
            symbol.to_owned()
        };
        Ok(Self {
            code: code.to_owned(),
            symbol,
        })
    }

    pub fn code(&self) -> &str {
        &self.code
    }

    pub fn symbol(&self) -> &str {
        &self.symbol
    }

    /// Hundredths as an amount: `¥1,234.56`.
    pub fn amount(&self, cents: u64) -> String {
        format!("{}{}", self.symbol, crate::fmt::money(cents))
    }
}

impl Default for Currency {
    fn default() -> Self {
        Self {
            code: "CNY".to_owned(),
            symbol: "¥".to_owned(),
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_carry_the_symbol_and_two_decimals() {
        let c = Currency::default();
        assert_eq!(
            (c.code(), c.amount(123456)),
            ("CNY", "¥1,234.56".to_owned())
        );
        assert_eq!(Currency::new("USD", "").unwrap().amount(5), "$0.05");
        assert_eq!(Currency::new("EUR", "").unwrap().amount(100), "€1.00");
        assert_eq!(Currency::new("CHF", "").unwrap().amount(1250), "CHF 12.50");
        assert_eq!(Currency::new("USD", "US$").unwrap().amount(1), "US$0.01");
    }

    #[test]
    fn bad_codes_and_symbols_are_refused_with_examples() {
        for bad in ["", "cny", "YUAN", "C1Y", "元"] {
            let e = Currency::new(bad, "").unwrap_err().to_string();
            assert!(
                e.contains("ISO 4217") && e.contains("\"USD\""),
                "{bad}: {e}"
            );
        }
        assert!(Currency::new("CNY", "a very long symbol").is_err());
        assert!(Currency::new("CNY", "¥\n").is_err());
    }
}
