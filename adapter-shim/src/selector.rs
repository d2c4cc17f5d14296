//! Kubernetes label selectors: the `labelSelector` and `metricLabelSelector` query parameters.
//!
//! The grammar and validation follow the Kubernetes label-selector syntax:
//! `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a` (exists), `!a` (does not exist),
//! `a>1`, `a<1`, separated by commas. Keys are qualified names (`[prefix/]name`), values
//! are label values (at most 63 characters of `[A-Za-z0-9-_.]`, alphanumeric at both ends,
//! or empty). As in Kubernetes, the parsed requirements are sorted by key and each value set
//! is sorted and de-duplicated; [`Selector`]'s `Display` is the canonical string form.

use std::fmt;

use crate::wire::{LabelSelector, LabelSelectorRequirement};

/// A selector operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operator {
    /// `=`
    Equals,
    /// `==`
    DoubleEquals,
    /// `!=`
    NotEquals,
    /// `in`
    In,
    /// `notin`
    NotIn,
    /// bare key
    Exists,
    /// `!key`
    DoesNotExist,
    /// `>`
    GreaterThan,
    /// `<`
    LessThan,
}

impl Operator {
    /// The operator's spelling in Kubernetes error messages (`selection.Operator`).
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Equals => "=",
            Self::DoubleEquals => "==",
            Self::NotEquals => "!=",
            Self::In => "in",
            Self::NotIn => "notin",
            Self::Exists => "exists",
            Self::DoesNotExist => "!",
            Self::GreaterThan => "gt",
            Self::LessThan => "lt",
        }
    }
}

/// One requirement: `key <op> values`. `values` is sorted and de-duplicated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    /// The label key.
    pub key: String,
    /// The operator.
    pub operator: Operator,
    /// The values, sorted, without duplicates.
    pub values: Vec<String>,
}

/// A parsed label selector. Empty selects everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Selector {
    requirements: Vec<Requirement>,
}

/// Why a selector string was refused. The message is one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unable to parse requirement: {0}")]
pub struct SelectorError(String);

/// Why a selector cannot be written as a `LabelSelector` object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} isn't supported in label selectors")]
pub struct UnsupportedInLabelSelector(&'static str);

impl Selector {
    /// The selector that selects everything.
    #[must_use]
    pub fn everything() -> Self {
        Self::default()
    }

    /// Parses the Kubernetes string form. The empty (or all-blank) string selects everything.
    ///
    /// # Errors
    /// A malformed selector, an invalid key or value, or a bad value count for the operator.
    pub fn parse(input: &str) -> Result<Self, SelectorError> {
        let tokens = lex(input)?;
        let mut parser = Parser { tokens, pos: 0 };
        let mut requirements = parser.parse()?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self { requirements })
    }

    /// Builds a selector from requirements, validating and sorting them.
    ///
    /// # Errors
    /// An invalid key or value, or a bad value count for the operator.
    pub fn from_requirements(
        reqs: Vec<(String, Operator, Vec<String>)>,
    ) -> Result<Self, SelectorError> {
        let mut requirements = reqs
            .into_iter()
            .map(|(k, op, v)| Requirement::new(k, op, v))
            .collect::<Result<Vec<_>, _>>()?;
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(Self { requirements })
    }

    /// Whether this selector has no requirements.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.requirements.is_empty()
    }

    /// The requirements, sorted by key.
    #[must_use]
    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// Whether a set of labels satisfies every requirement.
    pub fn matches<'a, F>(&self, label: F) -> bool
    where
        F: Fn(&str) -> Option<&'a str>,
    {
        self.requirements.iter().all(|r| r.matches(label(&r.key)))
    }

    /// The `LabelSelector` object Kubernetes writes for this selector
    /// (`metav1.ParseToLabelSelector`): `=`/`==` become `matchLabels`, `in` stays `In`,
    /// `!=` and `notin` become `NotIn`, exists and `!` become `Exists` and `DoesNotExist`.
    ///
    /// # Errors
    /// `>` and `<` have no `LabelSelector` form.
    pub fn to_label_selector(&self) -> Result<LabelSelector, UnsupportedInLabelSelector> {
        let mut out = LabelSelector::default();
        for r in &self.requirements {
            let operator = match r.operator {
                Operator::Equals | Operator::DoubleEquals => {
                    if let Some(v) = r.values.first() {
                        out.match_labels.insert(r.key.clone(), v.clone());
                    }
                    continue;
                }
                Operator::In => "In",
                Operator::NotIn | Operator::NotEquals => "NotIn",
                Operator::Exists => "Exists",
                Operator::DoesNotExist => "DoesNotExist",
                Operator::GreaterThan => return Err(UnsupportedInLabelSelector("gt")),
                Operator::LessThan => return Err(UnsupportedInLabelSelector("lt")),
            };
            out.match_expressions.push(LabelSelectorRequirement {
                key: r.key.clone(),
                operator: operator.to_owned(),
                values: r.values.clone(),
            });
        }
        Ok(out)
    }
}

impl Requirement {
    /// Validates and builds a requirement; `values` are sorted and de-duplicated.
    ///
    /// # Errors
    /// An invalid key or value, or a bad value count for the operator.
    pub fn new(
        key: String,
        operator: Operator,
        mut values: Vec<String>,
    ) -> Result<Self, SelectorError> {
        validate_key(&key)?;
        values.sort();
        values.dedup();
        let n = values.len();
        match operator {
            Operator::In | Operator::NotIn if n == 0 => {
                return Err(SelectorError(
                    "for 'in', 'notin' operators, values set can't be empty".into(),
                ));
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals if n != 1 => {
                return Err(SelectorError(
                    "exact-match compatibility requires one single value".into(),
                ));
            }
            Operator::Exists | Operator::DoesNotExist if n != 0 => {
                return Err(SelectorError(
                    "values set must be empty for exists and does not exist".into(),
                ));
            }
            Operator::GreaterThan | Operator::LessThan => {
                if n != 1 {
                    return Err(SelectorError(
                        "for 'Gt', 'Lt' operators, exactly one value is required".into(),
                    ));
                }
                if values[0].parse::<i64>().is_err() {
                    return Err(SelectorError(format!(
                        "for 'Gt', 'Lt' operators, the value must be an integer: {:?}",
                        values[0]
                    )));
                }
                return Ok(Self {
                    key,
                    operator,
                    values,
                });
            }
            _ => {}
        }
        for v in &values {
            validate_value(v)?;
        }
        Ok(Self {
            key,
            operator,
            values,
        })
    }

    /// Whether a label value (`None` when the label is absent) satisfies this requirement.
    #[must_use]
    pub fn matches(&self, value: Option<&str>) -> bool {
        let in_set = |v: &str| self.values.iter().any(|x| x == v);
        match self.operator {
            Operator::Equals | Operator::DoubleEquals | Operator::In => value.is_some_and(in_set),
            Operator::NotEquals | Operator::NotIn => !value.is_some_and(in_set),
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(v), Some(limit)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|v| v.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    v > limit
                } else {
                    v < limit
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.operator {
            Operator::Exists => return f.write_str(&self.key),
            Operator::DoesNotExist => return write!(f, "!{}", self.key),
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
        };
        write!(f, "{}{op}", self.key)?;
        if matches!(self.operator, Operator::In | Operator::NotIn) {
            write!(f, "({})", self.values.join(","))
        } else {
            f.write_str(self.values.first().map_or("", String::as_str))
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.requirements.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{r}")?;
        }
        Ok(())
    }
}

// === lexer and parser ===

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Ident(String),
    In,
    NotIn,
    Bang,
    Eq,
    DoubleEq,
    NotEq,
    Gt,
    Lt,
    Open,
    Close,
    Comma,
    End,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Self::Ident(s) => s.clone(),
            Self::In => "in".into(),
            Self::NotIn => "notin".into(),
            Self::Bang => "!".into(),
            Self::Eq => "=".into(),
            Self::DoubleEq => "==".into(),
            Self::NotEq => "!=".into(),
            Self::Gt => ">".into(),
            Self::Lt => "<".into(),
            Self::Open => "(".into(),
            Self::Close => ")".into(),
            Self::Comma => ",".into(),
            Self::End => "end of string".into(),
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn lex(input: &str) -> Result<Vec<Token>, SelectorError> {
    let mut out = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if matches!(c, ' ' | '\t' | '\r' | '\n') {
            chars.next();
            continue;
        }
        if is_special(c) {
            chars.next();
            let next = chars.peek().map(|&(_, n)| n);
            let tok = match (c, next) {
                ('!', Some('=')) => {
                    chars.next();
                    Token::NotEq
                }
                ('=', Some('=')) => {
                    chars.next();
                    Token::DoubleEq
                }
                ('!', _) => Token::Bang,
                ('=', _) => Token::Eq,
                ('(', _) => Token::Open,
                (')', _) => Token::Close,
                (',', _) => Token::Comma,
                ('>', _) => Token::Gt,
                ('<', _) => Token::Lt,
                _ => return Err(SelectorError(format!("unexpected character {c:?}"))),
            };
            out.push(tok);
            continue;
        }
        let start = i;
        let mut end = input.len();
        while let Some(&(j, d)) = chars.peek() {
            if matches!(d, ' ' | '\t' | '\r' | '\n') || is_special(d) {
                end = j;
                break;
            }
            chars.next();
        }
        let word = &input[start..end];
        out.push(match word {
            "in" => Token::In,
            "notin" => Token::NotIn,
            _ => Token::Ident(word.to_owned()),
        });
    }
    out.push(Token::End);
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        self.tokens.get(self.pos).unwrap_or(&Token::End)
    }

    fn next(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.tokens.len() {
            self.pos += 1;
        }
        t
    }

    /// In value position `in` and `notin` are ordinary words.
    fn next_value(&mut self) -> Token {
        match self.next() {
            Token::In => Token::Ident("in".into()),
            Token::NotIn => Token::Ident("notin".into()),
            t => t,
        }
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut out = Vec::new();
        match self.peek() {
            Token::End => return Ok(out),
            Token::Ident(_) | Token::Bang => {}
            t => {
                return Err(SelectorError(format!(
                    "found '{}', expected: !, identifier, or 'end of string'",
                    t.describe()
                )));
            }
        }
        loop {
            out.push(self.requirement()?);
            match self.next() {
                Token::End => return Ok(out),
                Token::Comma => match self.peek() {
                    Token::Ident(_) | Token::Bang => {}
                    t => {
                        return Err(SelectorError(format!(
                            "found '{}', expected: identifier after ','",
                            t.describe()
                        )));
                    }
                },
                t => {
                    return Err(SelectorError(format!(
                        "found '{}', expected: ',' or 'end of string'",
                        t.describe()
                    )));
                }
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        let mut tok = self.next();
        let negated = tok == Token::Bang;
        if negated {
            tok = self.next();
        }
        let Token::Ident(key) = tok else {
            return Err(SelectorError(format!(
                "found '{}', expected: identifier",
                tok.describe()
            )));
        };
        validate_key(&key)?;
        if negated {
            return Requirement::new(key, Operator::DoesNotExist, Vec::new());
        }
        if matches!(self.peek(), Token::End | Token::Comma) {
            return Requirement::new(key, Operator::Exists, Vec::new());
        }
        let operator = match self.next() {
            Token::Eq => Operator::Equals,
            Token::DoubleEq => Operator::DoubleEquals,
            Token::NotEq => Operator::NotEquals,
            Token::In => Operator::In,
            Token::NotIn => Operator::NotIn,
            Token::Gt => Operator::GreaterThan,
            Token::Lt => Operator::LessThan,
            t => {
                return Err(SelectorError(format!(
                    "found '{}', expected: in, notin, =, ==, !=, gt, lt",
                    t.describe()
                )));
            }
        };
        let values = if matches!(operator, Operator::In | Operator::NotIn) {
            self.value_set()?
        } else {
            match self.peek() {
                Token::End | Token::Comma => vec![String::new()],
                _ => match self.next_value() {
                    Token::Ident(v) => vec![v],
                    t => {
                        return Err(SelectorError(format!(
                            "found '{}', expected: identifier",
                            t.describe()
                        )));
                    }
                },
            }
        };
        Requirement::new(key, operator, values)
    }

    fn value_set(&mut self) -> Result<Vec<String>, SelectorError> {
        let open = self.next();
        if open != Token::Open {
            return Err(SelectorError(format!(
                "found '{}', expected: '('",
                open.describe()
            )));
        }
        let mut values = Vec::new();
        if self.peek() == &Token::Close {
            self.next();
            return Ok(values);
        }
        // A list of words separated by commas; an empty slot is the empty value.
        let mut expect_value = true;
        loop {
            match self.next_value() {
                Token::Ident(v) if expect_value => {
                    values.push(v);
                    expect_value = false;
                }
                Token::Comma => {
                    if expect_value {
                        values.push(String::new());
                    }
                    expect_value = true;
                }
                Token::Close => {
                    if expect_value {
                        values.push(String::new());
                    }
                    return Ok(values);
                }
                t => {
                    return Err(SelectorError(format!(
                        "found '{}', expected: ',', ')' or identifier",
                        t.describe()
                    )));
                }
            }
        }
    }
}

// === validation ===

fn is_alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`, at most 63 characters.
fn is_name_part(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.starts_with(is_alnum)
        && s.ends_with(is_alnum)
        && s.chars()
            .all(|c| is_alnum(c) || matches!(c, '-' | '_' | '.'))
}

/// A DNS-1123 subdomain: lowercase labels of `[a-z0-9-]` joined by dots, at most 253.
fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && label.ends_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && label
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        })
}

fn validate_key(key: &str) -> Result<(), SelectorError> {
    let ok = match key.split_once('/') {
        Some((prefix, name)) => is_dns_subdomain(prefix) && is_name_part(name),
        None => is_name_part(key),
    };
    if ok {
        Ok(())
    } else {
        Err(SelectorError(format!(
            "invalid label key {key:?}: must be a qualified name ([prefix/]name of alphanumerics, '-', '_' or '.', at most 63 characters, alphanumeric at both ends)"
        )))
    }
}

fn validate_value(value: &str) -> Result<(), SelectorError> {
    if value.is_empty() || is_name_part(value) {
        Ok(())
    } else {
        Err(SelectorError(format!(
            "invalid label value {value:?}: must be empty or at most 63 alphanumerics, '-', '_' or '.', alphanumeric at both ends"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Selector {
        match Selector::parse(s) {
            Ok(sel) => sel,
            Err(e) => panic!("{s:?}: {e}"),
        }
    }

    #[test]
    fn canonical_forms() {
        let cases = [
            ("", ""),
            ("  ", ""),
            ("app=jazz", "app=jazz"),
            ("app==jazz", "app==jazz"),
            ("tier!=db", "tier!=db"),
            (
                "app in (jazz,blues),tier!=db",
                "app in (blues,jazz),tier!=db",
            ),
            ("b, !a", "!a,b"),
            ("x notin ( c , a, a )", "x notin (a,c)"),
            ("app.kubernetes.io/name=web", "app.kubernetes.io/name=web"),
            ("a=", "a="),
            ("a in (in,notin)", "a in (in,notin)"),
            ("a in (x,)", "a in (,x)"),
            ("n>3,m<10", "m<10,n>3"),
            ("z=1,a=2", "a=2,z=1"),
        ];
        for (input, want) in cases {
            assert_eq!(parse(input).to_string(), want, "{input:?}");
        }
    }

    #[test]
    fn errors() {
        // `app=` is legal: it selects the empty value.
        assert_eq!(parse("app=").to_string(), "app=");
        for bad in [
            "=x",
            "a in ()",
            "a in x",
            "a b",
            "a,",
            "!a=b",
            "a=b c",
            "a>x",
            "-a=b",
            "a=b-",
            "Upper.Case/x=y",
            "a=this-value-is-way-too-long-for-a-kubernetes-label-value-it-has-more-than-63",
            "a in (x",
            ",a",
        ] {
            let err = Selector::parse(bad).expect_err(bad);
            assert!(!err.to_string().contains('\n'), "{bad:?}: {err}");
        }
    }

    #[test]
    fn matching() {
        let sel = parse("app in (jazz,blues),tier!=db,!canary,zone");
        let labels = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| *v)
        };
        assert!(sel.matches(labels(&[("app", "jazz"), ("zone", "a")])));
        assert!(!sel.matches(labels(&[("app", "jazz")])));
        assert!(!sel.matches(labels(&[("app", "rock"), ("zone", "a")])));
        assert!(!sel.matches(labels(&[("app", "jazz"), ("zone", "a"), ("tier", "db")])));
        assert!(!sel.matches(labels(&[("app", "jazz"), ("zone", "a"), ("canary", "")])));
        assert!(parse("n>3").matches(labels(&[("n", "4")])));
        assert!(!parse("n>3").matches(labels(&[("n", "x")])));
        assert!(Selector::everything().matches(labels(&[])));
    }

    #[test]
    fn label_selector_object() {
        let ls = parse("a=b,c in (x,y),d!=e,f,!g,h==i")
            .to_label_selector()
            .expect("convertible");
        let json = serde_json::to_string(&ls).expect("json");
        assert_eq!(
            json,
            r#"{"matchLabels":{"a":"b","h":"i"},"matchExpressions":[{"key":"c","operator":"In","values":["x","y"]},{"key":"d","operator":"NotIn","values":["e"]},{"key":"f","operator":"Exists"},{"key":"g","operator":"DoesNotExist"}]}"#
        );
        assert!(parse("n>1").to_label_selector().is_err());
    }
}
