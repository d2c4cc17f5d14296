//! `metricsQuery` rendering: Go `text/template` with `<<` `>>` delimiters, and the PromQL
//! label matchers prometheus-adapter feeds it.
//!
//! Templates run on the `gotmpl` crate, a port of Go's `text/template`: pipelines, `if`,
//! `range $k, $v :=` over maps in key order, `with`, `eq`/`ne`, `printf`, `-` trim markers.
//! Three details make it behave as prometheus-adapter does:
//!
//! - The data is a Go *struct* in the adapter, so an unknown field (`<<.LabelMatcher>>`) is
//!   an error, while a missing key of the `.LabelValuesByName` *map* prints `<no value>`.
//!   Here the data is a map, so [`GoTemplate::parse`] checks statically that every field
//!   read from the top-level data is one of the known ones, and rendering keeps Go's map
//!   semantics for everything below.
//! - Go's `index` on a `map[string]string` yields `""` for a missing key; `index` is
//!   replaced by a function that does the same.
//! - `join` is not a Go builtin (prometheus-adapter rejects it); it is offered as an
//!   extension, in either argument order: `join .GroupBySlice ","` (Go's `strings.Join`)
//!   or `join "," .GroupBySlice` (Sprig's).
//!
//! Matchers are built with Go's `%q` quoting (`label="value"`, `"` and `\` escaped). Object
//! names joined into a `=~` alternation are regex-escaped (prometheus-adapter does not,
//! so a name containing `.` matched more than itself there).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use gotmpl::parse::{Expr, ListNode, Node, PipeNode};
use gotmpl::{TemplateError as GoError, Value};

use crate::selector::{Operator, Selector};

/// The fields of prometheus-adapter's query template data.
pub const QUERY_FIELDS: &[&str] = &[
    "Series",
    "LabelMatchers",
    "LabelValuesByName",
    "GroupBy",
    "GroupBySlice",
];

/// The fields of a `resources.template`.
pub const RESOURCE_FIELDS: &[&str] = &["Group", "Resource"];

/// Why a template was refused or failed to render. Messages are one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The template does not parse.
    #[error("{0}")]
    Parse(String),
    /// The template reads a field the data does not have.
    #[error("unknown field .{field} on line {line} (known fields: {known})")]
    UnknownField {
        /// The field name as written.
        field: String,
        /// 1-based line in the template.
        line: usize,
        /// The known fields, formatted.
        known: String,
    },
    /// Rendering failed.
    #[error("{0}")]
    Exec(String),
    /// Rendering produced nothing.
    #[error("empty query produced by metrics query template")]
    Empty,
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A parsed Go template with `<<` `>>` delimiters.
pub struct GoTemplate {
    name: &'static str,
    src: String,
    tmpl: gotmpl::Template,
}

impl fmt::Debug for GoTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoTemplate")
            .field("name", &self.name)
            .field("src", &self.src)
            .finish_non_exhaustive()
    }
}

impl GoTemplate {
    /// Parses `src` and checks that the top-level data is only read through `fields`.
    ///
    /// # Errors
    /// A syntax error or an unknown top-level field.
    pub fn parse(name: &'static str, src: &str, fields: &[&str]) -> Result<Self, TemplateError> {
        check_structure(name, src)?;
        let tmpl = gotmpl::Template::new(name)
            .delims("<<", ">>")
            .func("index", go_index)
            .func("join", join)
            .parse(src)
            .map_err(|e| TemplateError::Parse(one_line(&e.to_string())))?;
        for template_name in tmpl.templates() {
            if let Some(body) = tmpl.lookup(template_name) {
                let is_main = template_name == name;
                let scope = Scope {
                    dot_is_root: is_main,
                    dollar_is_root: is_main,
                };
                check_list(body, scope, fields)?;
            }
        }
        Ok(Self {
            name,
            src: src.to_owned(),
            tmpl,
        })
    }

    /// The template text.
    #[must_use]
    pub fn source(&self) -> &str {
        &self.src
    }

    /// Renders the template.
    ///
    /// # Errors
    /// Any execution error (a wrong argument to a function, a field of a string, …).
    pub fn render(&self, data: &Value) -> Result<String, TemplateError> {
        self.tmpl
            .execute_to_string(data)
            .map_err(|e| TemplateError::Exec(one_line(&e.to_string())))
    }
}

/// Checks that control actions are balanced, as Go's parser does (gotmpl 0.6 accepts a
/// missing `<<end>>` or a stray one): every `if`/`range`/`with`/`define`/`block` has an
/// `end`, `else` and `end` have something to close, `break`/`continue` sit in a `range`.
fn check_structure(name: &str, src: &str) -> Result<(), TemplateError> {
    let mut open: Vec<(&str, usize)> = Vec::new();
    let mut pos = 0;
    while let Some(i) = src[pos..].find("<<") {
        let start = pos + i + 2;
        let line = 1 + src[..start].matches('\n').count();
        let Some((body, end)) = scan_action(&src[start..]) else {
            // An unclosed action: the parser reports it.
            return Ok(());
        };
        pos = start + end;
        let fail = |what: String| {
            Err(TemplateError::Parse(format!(
                "template: {name}:{line}: {what}"
            )))
        };
        match action_keyword(body) {
            Some(kw @ ("if" | "range" | "with" | "define" | "block")) => open.push((kw, line)),
            Some("else") if !matches!(open.last(), Some(("if" | "range" | "with", _))) => {
                return fail("unexpected <<else>>".into());
            }
            Some("end") if open.pop().is_none() => {
                return fail("unexpected <<end>>".into());
            }
            Some(kw @ ("break" | "continue")) if !open.iter().any(|(k, _)| *k == "range") => {
                return fail(format!("<<{kw}>> outside <<range>>"));
            }
            _ => {}
        }
    }
    match open.last() {
        Some((kw, line)) => Err(TemplateError::Parse(format!(
            "template: {name}:{line}: unexpected EOF: <<{kw}>> has no matching <<end>>"
        ))),
        None => Ok(()),
    }
}

/// The text of one action (after `<<`) and the offset just past its `>>`, skipping over
/// strings, raw strings, character literals and comments.
fn scan_action(s: &str) -> Option<(&str, usize)> {
    let bytes = s.as_bytes();
    let mut i = 0;
    // A comment runs to `*/`, then the right delimiter must follow.
    let lead = s.len() - s.trim_start_matches(['-', ' ', '\t', '\r', '\n']).len();
    if s[lead..].starts_with("/*") {
        let close = s[lead..].find("*/")? + lead + 2;
        let end = s[close..].find(">>")? + close;
        return Some(("", end + 2));
    }
    while i < bytes.len() {
        match bytes[i] {
            b'>' if bytes.get(i + 1) == Some(&b'>') => return Some((&s[..i], i + 2)),
            quote @ (b'"' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'`' => {
                i += 1 + s[i + 1..].find('`')?;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// The leading keyword of an action, after an optional `- ` trim marker.
fn action_keyword(body: &str) -> Option<&str> {
    let body = body.trim_start();
    let body = match body.strip_prefix('-') {
        Some(rest) if rest.starts_with(char::is_whitespace) => rest.trim_start(),
        _ => body,
    };
    let end = body
        .find(|c: char| !c.is_ascii_lowercase())
        .unwrap_or(body.len());
    (end > 0).then(|| &body[..end])
}

#[derive(Clone, Copy)]
struct Scope {
    dot_is_root: bool,
    dollar_is_root: bool,
}

fn check_field(name: &str, line: usize, fields: &[&str]) -> Result<(), TemplateError> {
    if fields.contains(&name) {
        return Ok(());
    }
    Err(TemplateError::UnknownField {
        field: name.to_owned(),
        line,
        known: fields
            .iter()
            .map(|f| format!(".{f}"))
            .collect::<Vec<_>>()
            .join(", "),
    })
}

fn check_list(list: &ListNode, scope: Scope, fields: &[&str]) -> Result<(), TemplateError> {
    list.nodes
        .iter()
        .try_for_each(|n| check_node(n, scope, fields))
}

fn check_node(node: &Node, scope: Scope, fields: &[&str]) -> Result<(), TemplateError> {
    match node {
        Node::List(l) => check_list(l, scope, fields),
        Node::Text(_) | Node::Break(_) | Node::Continue(_) => Ok(()),
        Node::Action(a) => check_pipe(&a.pipe, scope, fields),
        Node::If(b) | Node::With(b) | Node::Range(b) => {
            check_pipe(&b.pipe, scope, fields)?;
            // `with` and `range` move dot; `if` does not.
            let inner = if matches!(node, Node::If(_)) {
                scope
            } else {
                Scope {
                    dot_is_root: false,
                    ..scope
                }
            };
            check_list(&b.body, inner, fields)?;
            b.else_body
                .as_ref()
                .map_or(Ok(()), |e| check_list(e, scope, fields))
        }
        Node::Template(t) => t
            .pipe
            .as_ref()
            .map_or(Ok(()), |p| check_pipe(p, scope, fields)),
        Node::Define(d) => check_list(
            &d.body,
            Scope {
                dot_is_root: false,
                dollar_is_root: false,
            },
            fields,
        ),
    }
}

fn check_pipe(pipe: &PipeNode, scope: Scope, fields: &[&str]) -> Result<(), TemplateError> {
    pipe.commands
        .iter()
        .flat_map(|c| c.args.iter())
        .try_for_each(|e| check_expr(e, scope, fields))
}

fn check_expr(expr: &Expr, scope: Scope, fields: &[&str]) -> Result<(), TemplateError> {
    match expr {
        Expr::Field(pos, chain) if scope.dot_is_root => chain
            .first()
            .map_or(Ok(()), |f| check_field(f, pos.line, fields)),
        Expr::Variable(pos, var, chain) if var == "$" && scope.dollar_is_root => chain
            .first()
            .map_or(Ok(()), |f| check_field(f, pos.line, fields)),
        Expr::Pipe(_, p) => check_pipe(p, scope, fields),
        Expr::Chain(_, inner, _) => check_expr(inner, scope, fields),
        _ => Ok(()),
    }
}

/// Go's `index`, with `map[string]string` semantics: a missing key yields `""`.
fn go_index(args: &[Value]) -> gotmpl::Result<Value> {
    let Some((item, indices)) = args.split_first() else {
        return Err(GoError::Exec(
            "wrong number of args for index: want at least 1 got 0".into(),
        ));
    };
    let mut item = item.clone();
    for idx in indices {
        item = match (&item, idx) {
            (Value::Map(m), Value::String(k)) => m
                .get(k.as_ref())
                .cloned()
                .unwrap_or_else(|| Value::String("".into())),
            _ => item.index(idx)?,
        };
    }
    Ok(item)
}

/// `join LIST SEP` or `join SEP LIST`.
fn join(args: &[Value]) -> gotmpl::Result<Value> {
    let (list, sep) = match args {
        [Value::List(l), Value::String(s)] | [Value::String(s), Value::List(l)] => (l, s),
        _ => {
            return Err(GoError::Exec(
                "join expects a list and a separator string (join .GroupBySlice \",\")".into(),
            ));
        }
    };
    let parts: Vec<String> = list
        .iter()
        .map(|v| match v {
            Value::String(s) => s.to_string(),
            other => other.to_string(),
        })
        .collect();
    Ok(Value::String(parts.join(sep).into()))
}

fn string_map(m: &BTreeMap<String, String>) -> Value {
    Value::Map(Arc::new(
        m.iter()
            .map(|(k, v)| {
                (
                    Arc::<str>::from(k.as_str()),
                    Value::String(v.as_str().into()),
                )
            })
            .collect(),
    ))
}

// === metricsQuery ===

/// The data a `metricsQuery` template sees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueryArgs {
    /// `.Series`: the Prometheus series name.
    pub series: String,
    /// `.LabelMatchers`: the matchers, comma-joined.
    pub label_matchers: String,
    /// `.LabelValuesByName`: label → values joined by `|`.
    pub label_values_by_name: BTreeMap<String, String>,
    /// `.GroupBy`: the group-by labels, comma-joined (empty for external metrics).
    pub group_by: String,
    /// `.GroupBySlice`: the group-by labels (prints as `[pod]`).
    pub group_by_slice: Vec<String>,
}

impl QueryArgs {
    fn to_value(&self) -> Value {
        let slice: Vec<Value> = self
            .group_by_slice
            .iter()
            .map(|s| Value::String(s.as_str().into()))
            .collect();
        let mut m = BTreeMap::new();
        m.insert(
            Arc::<str>::from("Series"),
            Value::String(self.series.as_str().into()),
        );
        m.insert(
            Arc::<str>::from("LabelMatchers"),
            Value::String(self.label_matchers.as_str().into()),
        );
        m.insert(
            Arc::<str>::from("LabelValuesByName"),
            string_map(&self.label_values_by_name),
        );
        m.insert(
            Arc::<str>::from("GroupBy"),
            Value::String(self.group_by.as_str().into()),
        );
        m.insert(Arc::<str>::from("GroupBySlice"), Value::List(slice.into()));
        Value::Map(Arc::new(m))
    }
}

/// A compiled `metricsQuery`.
#[derive(Debug)]
pub struct MetricsQuery(GoTemplate);

impl MetricsQuery {
    /// Parses a `metricsQuery` template.
    ///
    /// # Errors
    /// A syntax error or an unknown field such as `.LabelMatcher`.
    pub fn parse(src: &str) -> Result<Self, TemplateError> {
        GoTemplate::parse("metricsQuery", src, QUERY_FIELDS).map(Self)
    }

    /// The template text.
    #[must_use]
    pub fn source(&self) -> &str {
        self.0.source()
    }

    /// Renders the query.
    ///
    /// # Errors
    /// An execution error, or [`TemplateError::Empty`] when the result is empty.
    pub fn render(&self, args: &QueryArgs) -> Result<String, TemplateError> {
        let out = self.0.render(&args.to_value())?;
        if out.is_empty() {
            return Err(TemplateError::Empty);
        }
        Ok(out)
    }
}

// === matchers ===

/// A PromQL label-matching operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchOp {
    /// `=`
    Eq,
    /// `!=`
    Neq,
    /// `=~`
    Re,
    /// `!~`
    NotRe,
}

impl MatchOp {
    fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "=",
            Self::Neq => "!=",
            Self::Re => "=~",
            Self::NotRe => "!~",
        }
    }
}

/// One PromQL label matcher; displays as `label<op>"value"` with Go `%q` quoting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelMatcher {
    /// The label name.
    pub label: String,
    /// The operator.
    pub op: MatchOp,
    /// The value (a regex for `=~` and `!~`), unquoted.
    pub value: String,
}

impl fmt::Display for LabelMatcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}{}",
            self.label,
            self.op.as_str(),
            go_quote(&self.value)
        )
    }
}

/// Go's `strconv.Quote` (`%q`): `"` and `\` escaped, `\a\b\f\n\r\t\v` as such, other ASCII
/// controls as `\xNN`, non-printable non-ASCII as `\uNNNN`/`\UNNNNNNNN`, the rest kept.
///
/// Go decides "printable" from Unicode tables; this approximation treats controls,
/// non-ASCII spaces, line/paragraph separators, common format characters, private-use
/// characters and noncharacters as non-printable, and keeps unassigned code points as they
/// are. Kubernetes names and label values are ASCII, where it is exact.
#[must_use]
pub fn go_quote(s: &str) -> String {
    use fmt::Write as _;
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if is_go_printable(c) => out.push(c),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (c as u32) < 0x1_0000 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\U{:08x}", c as u32);
            }
        }
    }
    out.push('"');
    out
}

fn is_go_printable(c: char) -> bool {
    let u = c as u32;
    if u < 0x80 {
        return (0x20..0x7f).contains(&u);
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    let format_or_private = matches!(u,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x8E2 | 0x180E
        | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064 | 0x2066..=0x206F
        | 0xFEFF | 0xFFF9..=0xFFFB | 0x110BD | 0x110CD | 0x13430..=0x1343F
        | 0x1BCA0..=0x1BCA3 | 0x1D173..=0x1D17A | 0xE0001 | 0xE0020..=0xE007F
        | 0xE000..=0xF8FF | 0xF_0000..=0xF_FFFD | 0x10_0000..=0x10_FFFD);
    let noncharacter = (0xFDD0..=0xFDEF).contains(&u) || (u & 0xFFFE) == 0xFFFE;
    !format_or_private && !noncharacter
}

/// Escapes the regex metacharacters `\.+*?()|[]{}^$` (Go's `regexp.QuoteMeta` set), so a
/// name matches only itself inside `=~`.
#[must_use]
pub fn regex_quote_meta(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '.' | '+' | '*' | '?' | '(' | ')' | '|' | '[' | ']' | '{' | '}' | '^' | '$'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Why a query could not be built for a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// `>`/`<` in a metric selector have no PromQL matcher.
    #[error("operator not supported by query builder: {0}")]
    UnsupportedOperator(&'static str),
    /// A selector requirement with a value count its operator does not allow.
    #[error("malformed query: operator {0} with {1} values")]
    Malformed(&'static str, usize),
    /// A custom query needs at least one object name.
    #[error("no object names to query")]
    NoNames,
    /// The template failed.
    #[error("{0}")]
    Template(#[from] TemplateError),
}

/// The matchers (and `.LabelValuesByName` entries) for a metric label selector, following
/// prometheus-adapter's table: one value under `=`/`==` gives `=`, under `!=` gives `!=`,
/// under `in` gives `=~`, under `notin` gives `!~`; several values give `=~`/`!~` with the
/// values joined by `|` unescaped (a documented pass-through for user regexes); exists
/// gives `label!=""` and does-not-exist `label=""`.
///
/// # Errors
/// `>` and `<`, or a value count the operator does not allow.
pub fn selector_matchers(
    selector: &Selector,
) -> Result<(Vec<LabelMatcher>, BTreeMap<String, String>), QueryError> {
    let mut matchers = Vec::with_capacity(selector.requirements().len());
    let mut values_by_name = BTreeMap::new();
    for r in selector.requirements() {
        let n = r.values.len();
        let op = match (r.operator, n) {
            (Operator::GreaterThan | Operator::LessThan, _) => {
                return Err(QueryError::UnsupportedOperator(r.operator.as_str()));
            }
            (Operator::Exists, 0) => MatchOp::Neq,
            (Operator::DoesNotExist, 0) => MatchOp::Eq,
            (Operator::Equals | Operator::DoubleEquals, 1) => MatchOp::Eq,
            (Operator::NotEquals, 1) => MatchOp::Neq,
            (Operator::In, 1..) => MatchOp::Re,
            (Operator::NotIn, 1..) => MatchOp::NotRe,
            (Operator::Equals | Operator::DoubleEquals, 2..) => MatchOp::Re,
            (Operator::NotEquals, 2..) => MatchOp::NotRe,
            (op, n) => return Err(QueryError::Malformed(op.as_str(), n)),
        };
        let joined = r.values.join("|");
        matchers.push(LabelMatcher {
            label: r.key.clone(),
            op,
            value: joined.clone(),
        });
        values_by_name.insert(r.key.clone(), joined);
    }
    Ok((matchers, values_by_name))
}

/// A custom-metrics query: the matchers are
/// `[metric selector…] + [namespace] + [resource label = name | =~ names]`.
#[derive(Debug, Clone)]
pub struct CustomQuery<'a> {
    /// The Prometheus series name.
    pub series: &'a str,
    /// The label that carries the object names (`pod`, `kubernetes_pod_name`, …).
    pub resource_label: &'a str,
    /// `(namespace label, namespace)` for namespaced requests.
    pub namespace: Option<(&'a str, &'a str)>,
    /// The request's `metricLabelSelector`.
    pub metric_selector: &'a Selector,
    /// The object names: one gives `label="name"`, several give `label=~"a|b"`, each
    /// regex-escaped.
    pub names: &'a [String],
}

impl CustomQuery<'_> {
    /// The template data for this query.
    ///
    /// # Errors
    /// An unsupported selector, or no names.
    pub fn args(&self) -> Result<QueryArgs, QueryError> {
        let (mut matchers, mut values) = selector_matchers(self.metric_selector)?;
        if let Some((label, ns)) = self.namespace {
            matchers.push(LabelMatcher {
                label: label.to_owned(),
                op: MatchOp::Eq,
                value: ns.to_owned(),
            });
            values.insert(label.to_owned(), ns.to_owned());
        }
        let (op, target) = match self.names {
            [] => return Err(QueryError::NoNames),
            [one] => (MatchOp::Eq, one.clone()),
            many => (
                MatchOp::Re,
                many.iter()
                    .map(|n| regex_quote_meta(n))
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
        };
        matchers.push(LabelMatcher {
            label: self.resource_label.to_owned(),
            op,
            value: target.clone(),
        });
        values.insert(self.resource_label.to_owned(), target);
        Ok(QueryArgs {
            series: self.series.to_owned(),
            label_matchers: join_matchers(&matchers),
            label_values_by_name: values,
            group_by: self.resource_label.to_owned(),
            group_by_slice: vec![self.resource_label.to_owned()],
        })
    }

    /// Renders `query` for this request.
    ///
    /// # Errors
    /// See [`Self::args`] and [`MetricsQuery::render`].
    pub fn render(&self, query: &MetricsQuery) -> Result<String, QueryError> {
        Ok(query.render(&self.args()?)?)
    }
}

/// An external-metrics query: the matchers are `[metric selector…] + [namespace]`, and
/// `.GroupBy` is empty (so `by (<<.GroupBy>>)` aggregates everything).
#[derive(Debug, Clone)]
pub struct ExternalQuery<'a> {
    /// The Prometheus series name.
    pub series: &'a str,
    /// `(namespace label, namespace)` unless the rule says `namespaced: false`.
    pub namespace: Option<(&'a str, &'a str)>,
    /// The request's `labelSelector`.
    pub metric_selector: &'a Selector,
}

impl ExternalQuery<'_> {
    /// The template data for this query.
    ///
    /// # Errors
    /// An unsupported selector.
    pub fn args(&self) -> Result<QueryArgs, QueryError> {
        let (mut matchers, mut values) = selector_matchers(self.metric_selector)?;
        if let Some((label, ns)) = self.namespace {
            matchers.push(LabelMatcher {
                label: label.to_owned(),
                op: MatchOp::Eq,
                value: ns.to_owned(),
            });
            values.insert(label.to_owned(), ns.to_owned());
        }
        Ok(QueryArgs {
            series: self.series.to_owned(),
            label_matchers: join_matchers(&matchers),
            label_values_by_name: values,
            group_by: String::new(),
            group_by_slice: Vec::new(),
        })
    }

    /// Renders `query` for this request.
    ///
    /// # Errors
    /// See [`Self::args`] and [`MetricsQuery::render`].
    pub fn render(&self, query: &MetricsQuery) -> Result<String, QueryError> {
        Ok(query.render(&self.args()?)?)
    }
}

fn join_matchers(m: &[LabelMatcher]) -> String {
    m.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    const APPMESH: &str = "sum(rate(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)";

    fn q(src: &str) -> MetricsQuery {
        match MetricsQuery::parse(src) {
            Ok(q) => q,
            Err(e) => panic!("{src:?}: {e}"),
        }
    }

    fn sel(s: &str) -> Selector {
        Selector::parse(s).expect("selector")
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn walkthrough_wildcard_query() {
        let everything = Selector::everything();
        let pods = names(&[
            "jazz-5d8f7c9b6-2xk4p",
            "jazz-5d8f7c9b6-9qzvn",
            "jazz-5d8f7c9b6-tm7rc",
        ]);
        let req = CustomQuery {
            series: "envoy_cluster_upstream_rq",
            resource_label: "kubernetes_pod_name",
            namespace: Some(("namespace", "prod")),
            metric_selector: &everything,
            names: &pods,
        };
        assert_eq!(
            req.render(&q(APPMESH)).as_deref(),
            Ok(
                r#"sum(rate(envoy_cluster_upstream_rq{namespace="prod",kubernetes_pod_name=~"jazz-5d8f7c9b6-2xk4p|jazz-5d8f7c9b6-9qzvn|jazz-5d8f7c9b6-tm7rc"}[1m])) by (kubernetes_pod_name)"#
            )
        );
    }

    #[test]
    fn walkthrough_object_query() {
        let everything = Selector::everything();
        let jazz = names(&["jazz"]);
        let req = CustomQuery {
            series: "http_requests_total",
            resource_label: "service",
            namespace: Some(("namespace", "prod")),
            metric_selector: &everything,
            names: &jazz,
        };
        let tmpl = q("sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)");
        assert_eq!(
            req.render(&tmpl).as_deref(),
            Ok(
                r#"sum(rate(http_requests_total{namespace="prod",service="jazz"}[2m])) by (service)"#
            )
        );
    }

    #[test]
    fn names_are_regex_escaped_only_in_alternations() {
        let everything = Selector::everything();
        let dotted = names(&["web.v1", "a+b"]);
        let args = CustomQuery {
            series: "s",
            resource_label: "pod",
            namespace: None,
            metric_selector: &everything,
            names: &dotted,
        }
        .args()
        .expect("args");
        // `\.` in the regex is written `\\.` inside the Go-quoted PromQL string.
        assert_eq!(args.label_matchers, r#"pod=~"web\\.v1|a\\+b""#);
        assert_eq!(args.label_values_by_name["pod"], r"web\.v1|a\+b");
        let one = names(&["web.v1"]);
        let args = CustomQuery {
            series: "s",
            resource_label: "pod",
            namespace: None,
            metric_selector: &everything,
            names: &one,
        }
        .args()
        .expect("args");
        assert_eq!(args.label_matchers, r#"pod="web.v1""#);
        let none: Vec<String> = Vec::new();
        let err = CustomQuery {
            series: "s",
            resource_label: "pod",
            namespace: None,
            metric_selector: &everything,
            names: &none,
        }
        .args();
        assert_eq!(err, Err(QueryError::NoNames));
    }

    #[test]
    fn selector_table() {
        let cases = [
            ("a=x", r#"a="x""#),
            ("a==x", r#"a="x""#),
            ("a!=x", r#"a!="x""#),
            ("a in (x)", r#"a=~"x""#),
            ("a in (x,y)", r#"a=~"x|y""#),
            ("a notin (x)", r#"a!~"x""#),
            ("a notin (y,x)", r#"a!~"x|y""#),
            ("a", r#"a!="""#),
            ("!a", r#"a="""#),
            ("b=2,a in (x,y)", r#"a=~"x|y",b="2""#),
        ];
        for (input, want) in cases {
            let (m, _) = selector_matchers(&sel(input)).expect(input);
            assert_eq!(join_matchers(&m), want, "{input}");
        }
        assert_eq!(
            selector_matchers(&sel("a>1")).map(|_| ()),
            Err(QueryError::UnsupportedOperator("gt"))
        );
    }

    #[test]
    fn external_query_has_empty_group_by() {
        let s = sel("queue=orders");
        let req = ExternalQuery {
            series: "rabbitmq_queue_messages",
            namespace: Some(("namespace", "prod")),
            metric_selector: &s,
        };
        let tmpl = q("sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)");
        assert_eq!(
            req.render(&tmpl).as_deref(),
            Ok(r#"sum(rabbitmq_queue_messages{queue="orders",namespace="prod"}) by ()"#)
        );
        let everything = Selector::everything();
        let cluster = ExternalQuery {
            series: "up",
            namespace: None,
            metric_selector: &everything,
        };
        assert_eq!(
            cluster
                .render(&q("<<.Series>>{<<.LabelMatchers>>}<<.GroupBySlice>>"))
                .as_deref(),
            Ok("up{}[]")
        );
    }

    #[test]
    fn go_constructs_used_in_the_wild() {
        let args = QueryArgs {
            series: "s".into(),
            label_matchers: r#"namespace="prod",service="jazz""#.into(),
            label_values_by_name: BTreeMap::from([
                ("namespace".into(), "prod".into()),
                ("service".into(), "jazz".into()),
                ("app".into(), "web".into()),
            ]),
            group_by: "service".into(),
            group_by_slice: vec!["service".into()],
        };
        let cases = [
            (r#"<<index .LabelValuesByName "service">>"#, "jazz"),
            (r#"[<<index .LabelValuesByName "absent">>]"#, "[]"),
            (
                r#"<< range $key, $value := .LabelValuesByName >><< if ne $key "namespace" >><< $key >>="<< $value >>",<<end >><< end >>"#,
                r#"app="web",service="jazz","#,
            ),
            ("<<.GroupBySlice>>", "[service]"),
            (r#"<<join .GroupBySlice ",">>"#, "service"),
            (r#"<<join "," .GroupBySlice>>"#, "service"),
            ("<<- .Series ->>  by", "sby"),
            (r#"<<if eq .GroupBy "service">>yes<<else>>no<<end>>"#, "yes"),
            ("<<.LabelValuesByName.absent>>", "<no value>"),
            ("<<$.Series>>", "s"),
            ("<<with .Series>><<.>><<end>>", "s"),
            (r#"<<printf "%s_%v" .Series .GroupBySlice>>"#, "s_[service]"),
            ("{{.Series}}", "{{.Series}}"),
        ];
        for (src, want) in cases {
            assert_eq!(q(src).render(&args).as_deref(), Ok(want), "{src}");
        }
    }

    #[test]
    fn template_errors() {
        let parse_err = |src: &str| match MetricsQuery::parse(src) {
            Ok(_) => panic!("{src:?} parsed"),
            Err(e) => e,
        };
        assert!(matches!(
            parse_err("<<.LabelMatchers>}"),
            TemplateError::Parse(_)
        ));
        for (src, msg) in [
            (
                "<<if .Series>>x",
                "template: metricsQuery:1: unexpected EOF: <<if>> has no matching <<end>>",
            ),
            ("a\n<<end>>", "template: metricsQuery:2: unexpected <<end>>"),
            ("<<else>>", "template: metricsQuery:1: unexpected <<else>>"),
            (
                "<<break>>",
                "template: metricsQuery:1: <<break>> outside <<range>>",
            ),
            (
                "<<range .GroupBySlice>><<with .>>x<<end>>",
                "template: metricsQuery:1: unexpected EOF: <<range>> has no matching <<end>>",
            ),
        ] {
            assert_eq!(parse_err(src), TemplateError::Parse(msg.into()), "{src:?}");
        }
        // Delimiters inside strings, raw strings and comments do not end an action.
        for ok in [
            r#"<<if eq .Series ">>">>x<<end>>"#,
            "<<if eq .Series `<<end>>`>>x<<end>>",
            "<</* <<end>> */>><<- if .Series ->>x<<- end ->>",
            r#"<<if eq .Series "a\"b">>x<<else if .GroupBy>>y<<else>>z<<end>>"#,
            "<<range .GroupBySlice>><<if .>><<break>><<end>><<end>>",
        ] {
            assert!(MetricsQuery::parse(ok).is_ok(), "{ok:?}");
        }
        let e = parse_err("sum(<<.Series>>{<<.LabelMatcher>>})");
        assert_eq!(
            e.to_string(),
            "unknown field .LabelMatcher on line 1 (known fields: .Series, .LabelMatchers, .LabelValuesByName, .GroupBy, .GroupBySlice)"
        );
        assert!(matches!(
            parse_err("<<if .Nope>>x<<end>>"),
            TemplateError::UnknownField { .. }
        ));
        assert!(matches!(
            parse_err("<<$.Nope>>"),
            TemplateError::UnknownField { .. }
        ));
        assert!(matches!(
            parse_err("<<len (.Nope)>>"),
            TemplateError::UnknownField { .. }
        ));
        assert!(matches!(
            parse_err("x\n<<.series>>"),
            TemplateError::UnknownField { line: 2, .. }
        ));
        // Inside range and with, dot is no longer the root: not checked statically.
        assert!(MetricsQuery::parse("<<range .GroupBySlice>><<.>><<end>>").is_ok());

        let args = QueryArgs::default();
        assert_eq!(q("").render(&args), Err(TemplateError::Empty));
        assert!(matches!(
            q("<<.Series.Foo>>").render(&args),
            Err(TemplateError::Exec(_))
        ));
        assert!(matches!(
            q("<<nosuchfunc .Series>>").render(&args),
            Err(TemplateError::Exec(_))
        ));
        assert!(matches!(
            q("<<join .Series>>").render(&args),
            Err(TemplateError::Exec(_))
        ));
    }

    #[test]
    fn quoting() {
        let cases = [
            ("plain", r#""plain""#),
            (r#"a"b"#, r#""a\"b""#),
            (r"a\b", r#""a\\b""#),
            ("tab\tnl\ncr\r", r#""tab\tnl\ncr\r""#),
            ("\u{7}\u{8}\u{b}\u{c}", r#""\a\b\v\f""#),
            ("\u{1}\u{7f}", r#""\x01\x7f""#),
            ("héllo ünïcode", r#""héllo ünïcode""#),
            ("\u{a0}\u{200b}\u{2028}", r#""\u00a0\u200b\u2028""#),
            ("\u{e000}", r#""\ue000""#),
            ("\u{10fffd}", r#""\U0010fffd""#),
            ("日本", r#""日本""#),
        ];
        for (input, want) in cases {
            assert_eq!(go_quote(input), want, "{input:?}");
        }
        assert_eq!(
            regex_quote_meta(r"a.b*c+d?(e)|[f]{g}^h$i\j-k"),
            r"a\.b\*c\+d\?\(e\)\|\[f\]\{g\}\^h\$i\\j-k"
        );
    }
}
