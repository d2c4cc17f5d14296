//! prometheus-adapter's configuration file, loaded strictly and validated up front.
//!
//! The schema is prometheus-adapter's (`rules`, `externalRules`, `resourceRules`), read the
//! way its strict YAML loader reads it: unknown fields and duplicate keys are errors, an
//! empty file is an empty configuration, `null` sections are empty, and YAML 1.1 booleans
//! (`yes`/`no`) are accepted. On top of that, everything prometheus-adapter would only
//! discover per request (or never) is checked at load time, with a one-line message naming
//! the rule (`rules[1].metricsQuery: …`):
//!
//! - a missing `seriesQuery` or `metricsQuery`;
//! - a filter with both or neither of `is`/`isNot`; bad regexes;
//! - several capture groups without `as`; an `as` naming a group that does not exist
//!   (`$1_per_second`);
//! - template syntax errors, unknown fields (`<<.LabelMatcher>>`), execution errors and
//!   empty output, found by rendering every `metricsQuery` with sample data;
//! - a custom rule with neither `overrides` nor `template`; an external rule that is
//!   namespaced (the default) without any label for `namespaces`;
//! - override keys that are not label names, overrides without a resource, a
//!   `resources.template` without `<<.Resource>>`.
//!
//! One extension: an override may be written in the shorthand `namespace: namespace` (the
//! form some published guides use, which prometheus-adapter rejects); it means
//! `namespace: {resource: namespace}` and produces a warning.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::naming::{
    GroupResource, MetricNamer, NamingError, ResourceCatalog, ResourceMapper, SeriesFilter,
    SeriesNaming,
};
use crate::selector::Selector;
use crate::template::{CustomQuery, ExternalQuery, MetricsQuery, QueryError, TemplateError};

// === raw YAML shape ===

fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(d).map(Option::unwrap_or_default)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConfig {
    #[serde(default, deserialize_with = "null_default")]
    rules: Vec<RawRule>,
    #[serde(default, deserialize_with = "null_default")]
    external_rules: Vec<RawRule>,
    #[serde(default)]
    resource_rules: Option<RawResourceRules>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRule {
    #[serde(default, deserialize_with = "null_default")]
    series_query: String,
    #[serde(default, deserialize_with = "null_default")]
    series_filters: Vec<RawFilter>,
    #[serde(default, deserialize_with = "null_default")]
    resources: RawResources,
    #[serde(default, deserialize_with = "null_default")]
    name: RawName,
    #[serde(default, deserialize_with = "null_default")]
    metrics_query: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawFilter {
    #[serde(default, deserialize_with = "null_default")]
    is: String,
    #[serde(default, deserialize_with = "null_default")]
    is_not: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawResources {
    #[serde(default, deserialize_with = "null_default")]
    template: String,
    #[serde(default, deserialize_with = "null_default")]
    overrides: BTreeMap<String, RawOverride>,
    #[serde(default)]
    namespaced: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroupResource {
    #[serde(default, deserialize_with = "null_default")]
    group: String,
    #[serde(default, deserialize_with = "null_default")]
    resource: String,
}

/// An override value: `{group, resource}`, or the shorthand string `resource`.
#[derive(Debug)]
struct RawOverride {
    group_resource: GroupResource,
    shorthand: bool,
}

impl<'de> Deserialize<'de> for RawOverride {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct OverrideVisitor;
        impl<'de> Visitor<'de> for OverrideVisitor {
            type Value = RawOverride;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a group-resource such as {resource: pod} or {group: apps, resource: deployment}")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawOverride, E> {
                Ok(RawOverride {
                    group_resource: GroupResource::core(v),
                    shorthand: true,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<RawOverride, A::Error> {
                let raw =
                    RawGroupResource::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(RawOverride {
                    group_resource: GroupResource::new(&raw.group, &raw.resource),
                    shorthand: false,
                })
            }
        }
        d.deserialize_any(OverrideVisitor)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawName {
    #[serde(default, deserialize_with = "null_default")]
    matches: String,
    #[serde(default, rename = "as", deserialize_with = "null_default")]
    as_: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawResourceRules {
    #[serde(default, deserialize_with = "null_default")]
    cpu: RawResourceRule,
    #[serde(default, deserialize_with = "null_default")]
    memory: RawResourceRule,
    #[serde(default)]
    window: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawResourceRule {
    #[serde(default, deserialize_with = "null_default")]
    container_query: String,
    #[serde(default, deserialize_with = "null_default")]
    node_query: String,
    #[serde(default, deserialize_with = "null_default")]
    resources: RawResources,
    #[serde(default, deserialize_with = "null_default")]
    container_label: String,
}

// === errors ===

/// Why a configuration was refused. The message is one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {reason}")]
    Read {
        /// The path.
        path: String,
        /// The OS reason.
        reason: String,
    },
    /// The YAML is malformed or does not fit the schema (unknown field, wrong type, …).
    #[error("invalid config: {0}")]
    Yaml(String),
    /// One rule is unusable.
    #[error("{location}: {problem}")]
    Rule {
        /// `rules[0]`, `externalRules[2]`, `resourceRules.cpu`, …
        location: String,
        /// What is wrong.
        problem: Box<RuleProblem>,
    },
}

/// What is wrong with one rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuleProblem {
    /// `seriesQuery` is absent or blank.
    #[error("seriesQuery is missing or empty")]
    MissingSeriesQuery,
    /// `metricsQuery` is absent or blank.
    #[error("metricsQuery is missing or empty")]
    MissingMetricsQuery,
    /// A filter sets both `is` and `isNot`.
    #[error("seriesFilters[{0}]: cannot have both is and isNot")]
    FilterBoth(usize),
    /// A filter sets neither.
    #[error("seriesFilters[{0}]: one of is or isNot is required")]
    FilterEmpty(usize),
    /// A filter's regex does not compile.
    #[error("seriesFilters[{index}].{field}: {source}")]
    FilterRegex {
        /// The filter's index.
        index: usize,
        /// `is` or `isNot`.
        field: &'static str,
        /// The regex error.
        source: NamingError,
    },
    /// `name.matches` or `name.as` is unusable.
    #[error("name.{field}: {source}")]
    Name {
        /// `matches` or `as`.
        field: &'static str,
        /// What is wrong.
        source: NamingError,
    },
    /// `resources` is unusable (the message names the field).
    #[error("{0}")]
    Resources(NamingError),
    /// A custom rule maps no label to any resource.
    #[error(
        "resources: neither overrides nor template is set, so no series can be associated with a Kubernetes resource"
    )]
    NoResources,
    /// A namespaced external rule has no label for namespaces.
    #[error(
        "resources: no label maps to namespaces, so every request for this namespaced external metric would fail; add overrides: {{namespace: {{resource: namespace}}}} or set resources.namespaced: false"
    )]
    NoNamespaceLabel,
    /// A query template does not parse, reads an unknown field, or fails with sample data.
    #[error("{field}: {source}")]
    Template {
        /// `metricsQuery`, `containerQuery` or `nodeQuery`.
        field: &'static str,
        /// What is wrong.
        source: TemplateError,
    },
    /// Rendering with sample data left a delimiter behind (a typo such as `<.Series>>`).
    #[error(
        "metricsQuery: the query rendered with sample data still contains {0:?}; check the << >> delimiters"
    )]
    LeftoverDelimiter(&'static str),
    /// `resourceRules.window` is not a Prometheus duration.
    #[error("window: {0:?} is not a Prometheus duration (such as 5m or 1h30m)")]
    BadWindow(String),
}

fn rule_error(location: &str, problem: RuleProblem) -> ConfigError {
    ConfigError::Rule {
        location: location.to_owned(),
        problem: Box::new(problem),
    }
}

// === compiled configuration ===

/// Which API a rule feeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleKind {
    /// `rules`: custom.metrics.k8s.io.
    Custom,
    /// `externalRules`: external.metrics.k8s.io.
    External,
}

/// One validated discovery rule.
#[derive(Debug)]
pub struct Rule {
    /// Which list it came from.
    pub kind: RuleKind,
    /// Its index in that list.
    pub index: usize,
    /// Sent verbatim as `match[]` to `/api/v1/series`.
    pub series_query: String,
    /// Filters, naming and resource association.
    pub naming: SeriesNaming,
    /// External rules: whether the namespace matcher is added (default true). Custom
    /// rules ignore it.
    pub namespaced: bool,
    /// The query template.
    pub metrics_query: MetricsQuery,
    /// The query rendered with sample data at load time (for `--check-config`).
    pub sample_query: String,
}

impl Rule {
    /// `rules[i]` or `externalRules[i]`.
    #[must_use]
    pub fn location(&self) -> String {
        location(self.kind, self.index)
    }
}

fn location(kind: RuleKind, index: usize) -> String {
    match kind {
        RuleKind::Custom => format!("rules[{index}]"),
        RuleKind::External => format!("externalRules[{index}]"),
    }
}

/// One validated resource rule (parsed and kept; metrics.k8s.io is not served).
#[derive(Debug)]
pub struct ResourceRule {
    /// `containerQuery`.
    pub container_query: Option<MetricsQuery>,
    /// `nodeQuery`.
    pub node_query: Option<MetricsQuery>,
    /// `resources`.
    pub resources: ResourceMapper,
    /// `containerLabel`.
    pub container_label: String,
}

/// `resourceRules`.
#[derive(Debug)]
pub struct ResourceRules {
    /// `cpu`.
    pub cpu: ResourceRule,
    /// `memory`.
    pub memory: ResourceRule,
    /// `window` (zero when absent).
    pub window: Duration,
}

/// A validated configuration.
#[derive(Debug, Default)]
pub struct Config {
    /// `rules` (custom metrics).
    pub rules: Vec<Rule>,
    /// `externalRules`.
    pub external_rules: Vec<Rule>,
    /// `resourceRules`, if present.
    pub resource_rules: Option<ResourceRules>,
    /// Non-fatal findings, one line each.
    pub warnings: Vec<String>,
}

impl Config {
    /// Reads and validates a configuration file.
    ///
    /// # Errors
    /// An unreadable file, or any [`ConfigError`] from [`Config::from_yaml`].
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        Self::from_yaml(&text)
    }

    /// Parses and validates a configuration, resolving override resources against the
    /// built-in resource types.
    ///
    /// # Errors
    /// Malformed YAML, unknown fields, or the first invalid rule.
    pub fn from_yaml(text: &str) -> Result<Self, ConfigError> {
        Self::from_yaml_with_catalog(text, &ResourceCatalog::builtin())
    }

    /// Like [`Config::from_yaml`], resolving resources against `catalog`.
    ///
    /// # Errors
    /// Malformed YAML, unknown fields, or the first invalid rule.
    pub fn from_yaml_with_catalog(
        text: &str,
        catalog: &ResourceCatalog,
    ) -> Result<Self, ConfigError> {
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| ConfigError::Yaml(yaml_message(&e)))?
        };
        let mut warnings = Vec::new();
        let rules = raw
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| compile_rule(RuleKind::Custom, i, r, catalog, &mut warnings))
            .collect::<Result<Vec<_>, _>>()?;
        let external_rules = raw
            .external_rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| compile_rule(RuleKind::External, i, r, catalog, &mut warnings))
            .collect::<Result<Vec<_>, _>>()?;
        let resource_rules = raw
            .resource_rules
            .map(|r| compile_resource_rules(r, &mut warnings))
            .transpose()?;
        if resource_rules.is_some() {
            warnings.push(
                "resourceRules: parsed and validated, but metrics.k8s.io is not served (metrics-server owns it)".into(),
            );
        }
        Ok(Self {
            rules,
            external_rules,
            resource_rules,
            warnings,
        })
    }

    /// The distinct `seriesQuery` strings of `rules`, one discovery call each.
    #[must_use]
    pub fn custom_series_queries(&self) -> BTreeSet<&str> {
        self.rules.iter().map(|r| r.series_query.as_str()).collect()
    }

    /// The distinct `seriesQuery` strings of `externalRules`.
    #[must_use]
    pub fn external_series_queries(&self) -> BTreeSet<&str> {
        self.external_rules
            .iter()
            .map(|r| r.series_query.as_str())
            .collect()
    }
}

/// The first line of a YAML error without its `error: ` prefix.
fn yaml_message(e: &serde_saphyr::Error) -> String {
    let text = e.without_snippet().to_string();
    let line = text
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("malformed YAML")
        .trim();
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

fn compile_rule(
    kind: RuleKind,
    index: usize,
    raw: RawRule,
    catalog: &ResourceCatalog,
    warnings: &mut Vec<String>,
) -> Result<Rule, ConfigError> {
    let loc = location(kind, index);
    let err = |p| rule_error(&loc, p);
    if raw.series_query.trim().is_empty() {
        return Err(err(RuleProblem::MissingSeriesQuery));
    }

    let mut filters = Vec::with_capacity(raw.series_filters.len() + 1);
    for (i, f) in raw.series_filters.iter().enumerate() {
        let filter = match (f.is.is_empty(), f.is_not.is_empty()) {
            (false, false) => return Err(err(RuleProblem::FilterBoth(i))),
            (true, true) => return Err(err(RuleProblem::FilterEmpty(i))),
            (false, true) => SeriesFilter::is(&f.is).map_err(|source| RuleProblem::FilterRegex {
                index: i,
                field: "is",
                source,
            }),
            (true, false) => {
                SeriesFilter::is_not(&f.is_not).map_err(|source| RuleProblem::FilterRegex {
                    index: i,
                    field: "isNot",
                    source,
                })
            }
        };
        filters.push(filter.map_err(err)?);
    }
    if !raw.name.matches.is_empty() {
        let implicit = SeriesFilter::is(&raw.name.matches).map_err(|source| {
            err(RuleProblem::Name {
                field: "matches",
                source,
            })
        })?;
        filters.push(implicit);
    }
    let namer = MetricNamer::new(&raw.name.matches, &raw.name.as_).map_err(|source| {
        let field = if matches!(source, NamingError::BadRegex { .. }) {
            "matches"
        } else {
            "as"
        };
        err(RuleProblem::Name { field, source })
    })?;

    let resources = compile_resources(&loc, &raw.resources, catalog, warnings)?;
    let namespaced = raw.resources.namespaced.unwrap_or(true);
    if kind == RuleKind::Custom && raw.resources.namespaced.is_some() {
        warnings.push(format!(
            "{loc}.resources.namespaced: only meaningful for externalRules; ignored"
        ));
    }

    if raw.metrics_query.trim().is_empty() {
        return Err(err(RuleProblem::MissingMetricsQuery));
    }
    let metrics_query = MetricsQuery::parse(&raw.metrics_query).map_err(|source| {
        err(RuleProblem::Template {
            field: "metricsQuery",
            source,
        })
    })?;

    let everything = Selector::everything();
    let series = SAMPLE_SERIES;
    let sample = match kind {
        RuleKind::Custom => {
            if resources.is_empty() {
                return Err(err(RuleProblem::NoResources));
            }
            let resource_label = sample_resource_label(&resources, catalog);
            let ns_label = resources.namespace_label(catalog).ok();
            let names = ["sample-pod-a".to_owned(), "sample-pod-b".to_owned()];
            CustomQuery {
                series,
                resource_label: &resource_label,
                namespace: ns_label.as_deref().map(|l| (l, "default")),
                metric_selector: &everything,
                names: &names,
            }
            .render(&metrics_query)
        }
        RuleKind::External => {
            let ns_label = if namespaced {
                Some(
                    resources
                        .namespace_label(catalog)
                        .map_err(|_| err(RuleProblem::NoNamespaceLabel))?,
                )
            } else {
                None
            };
            ExternalQuery {
                series,
                namespace: ns_label.as_deref().map(|l| (l, "default")),
                metric_selector: &everything,
            }
            .render(&metrics_query)
        }
    };
    let sample_query = sample.map_err(|e| {
        let source = match e {
            QueryError::Template(t) => t,
            other => TemplateError::Exec(other.to_string()),
        };
        err(RuleProblem::Template {
            field: "metricsQuery",
            source,
        })
    })?;
    for delim in ["<<", ">>"] {
        if sample_query.contains(delim) {
            return Err(err(RuleProblem::LeftoverDelimiter(delim)));
        }
    }
    if sample_query.contains("<no value>") {
        warnings.push(format!(
            "{loc}.metricsQuery: renders \"<no value>\" with sample data (a .LabelValuesByName key that requests may not carry): {sample_query}"
        ));
    }

    Ok(Rule {
        kind,
        index,
        series_query: raw.series_query,
        naming: SeriesNaming {
            filters,
            namer,
            resources,
        },
        namespaced,
        metrics_query,
        sample_query,
    })
}

fn compile_resources(
    loc: &str,
    raw: &RawResources,
    catalog: &ResourceCatalog,
    warnings: &mut Vec<String>,
) -> Result<ResourceMapper, ConfigError> {
    let mut overrides = BTreeMap::new();
    for (label, o) in &raw.overrides {
        if o.shorthand {
            warnings.push(format!(
                "{loc}.resources.overrides.{label}: shorthand {:?} read as {{resource: {}}}; prometheus-adapter itself rejects this form",
                o.group_resource.resource, o.group_resource.resource
            ));
        }
        overrides.insert(label.clone(), o.group_resource.clone());
    }
    let mapper = ResourceMapper::new(overrides, Some(raw.template.as_str()))
        .map_err(|e| rule_error(loc, RuleProblem::Resources(e)))?;
    for (label, gr) in mapper.unknown_overrides(catalog) {
        warnings.push(format!(
            "{loc}.resources.overrides.{label}: resource {gr} is not a built-in type; kept as written until the cluster's API discovery resolves it"
        ));
    }
    Ok(mapper)
}

/// The series name used to render every `metricsQuery` once at load time.
const SAMPLE_SERIES: &str = "sample_series";

/// The label a sample custom query groups by: the one for pods, else any override label
/// that is not the namespace's, else `pod`.
fn sample_resource_label(resources: &ResourceMapper, catalog: &ResourceCatalog) -> String {
    if let Ok(l) = resources.label_for_resource(&GroupResource::core("pods"), catalog) {
        return l;
    }
    let ns = resources.namespace_label(catalog).ok();
    resources
        .overrides()
        .keys()
        .find(|l| Some(l.as_str()) != ns.as_deref())
        .cloned()
        .unwrap_or_else(|| "pod".to_owned())
}

fn compile_resource_rules(
    raw: RawResourceRules,
    warnings: &mut Vec<String>,
) -> Result<ResourceRules, ConfigError> {
    let catalog = ResourceCatalog::builtin();
    let window = match raw.window.as_deref() {
        None => Duration::ZERO,
        Some(w) => parse_prometheus_duration(w)
            .ok_or_else(|| rule_error("resourceRules", RuleProblem::BadWindow(w.to_owned())))?,
    };
    let mut compile_one = |name: &str, r: RawResourceRule| -> Result<ResourceRule, ConfigError> {
        let loc = format!("resourceRules.{name}");
        let query = |field: &'static str, src: &str| -> Result<Option<MetricsQuery>, ConfigError> {
            if src.trim().is_empty() {
                return Ok(None);
            }
            MetricsQuery::parse(src)
                .map(Some)
                .map_err(|source| rule_error(&loc, RuleProblem::Template { field, source }))
        };
        Ok(ResourceRule {
            container_query: query("containerQuery", &r.container_query)?,
            node_query: query("nodeQuery", &r.node_query)?,
            resources: compile_resources(&loc, &r.resources, &catalog, warnings)?,
            container_label: r.container_label,
        })
    };
    Ok(ResourceRules {
        cpu: compile_one("cpu", raw.cpu)?,
        memory: compile_one("memory", raw.memory)?,
        window,
    })
}

/// Parses a Prometheus duration: `0`, or units in order `y w d h m s ms`, each at most once
/// (`5m`, `1h30m`, `500ms`). A year is 365 days.
#[must_use]
pub fn parse_prometheus_duration(s: &str) -> Option<Duration> {
    if s == "0" {
        return Some(Duration::ZERO);
    }
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 24 * 3_600_000),
        ("w", 7 * 24 * 3_600_000),
        ("d", 24 * 3_600_000),
        ("h", 3_600_000),
        ("ms", 1),
        ("m", 60_000),
        ("s", 1000),
    ];
    // Canonical order of units; `ms` sorts last.
    const ORDER: [&str; 7] = ["y", "w", "d", "h", "m", "s", "ms"];
    let mut rest = s;
    let mut total_ms: u64 = 0;
    let mut last_rank: Option<usize> = None;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let (unit, ms) = UNITS.iter().find(|(u, _)| rest.starts_with(u))?;
        rest = &rest[unit.len()..];
        let rank = ORDER.iter().position(|u| u == unit)?;
        if last_rank.is_some_and(|r| rank <= r) {
            return None;
        }
        last_rank = Some(rank);
        total_ms = total_ms.checked_add(n.checked_mul(*ms)?)?;
    }
    Some(Duration::from_millis(total_ms))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seeds' App Mesh and HTTP rules in prometheus-adapter's canonical form (anchor §12).
    const SEED_CANONICAL: &str = include_str!("../tests/fixtures/seed-canonical.yaml");

    /// The App Mesh rule as the seed guide writes it, with the shorthand overrides.
    const SEED_SHORTHAND: &str = include_str!("../tests/fixtures/seed-shorthand.yaml");

    /// ho11y's request counter, as a custom metric per pod and as an external metric.
    const SEED_HO11Y: &str = include_str!("../tests/fixtures/seed-ho11y.yaml");

    /// prometheus-adapter's deploy manifest default (resourceRules only).
    const DEPLOY_DEFAULT: &str = include_str!("../tests/fixtures/deploy-manifest-default.yaml");

    /// The older deploy manifest's generated custom rules (`as: ""`, `matches: ""`,
    /// `template: <<.Resource>>`, folded multi-line queries).
    const LEGACY_DEFAULT_RULES: &str = include_str!("../tests/fixtures/legacy-default-rules.yaml");

    fn load(text: &str) -> Config {
        match Config::from_yaml(text) {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }

    fn error(text: &str) -> String {
        match Config::from_yaml(text) {
            Ok(_) => panic!("accepted:\n{text}"),
            Err(e) => {
                let msg = e.to_string();
                assert!(!msg.contains('\n'), "multi-line error: {msg}");
                msg
            }
        }
    }

    fn rule(body: &str) -> String {
        format!("rules:\n- seriesQuery: 'up{{namespace!=\"\"}}'\n{body}")
    }

    const OK_RESOURCES: &str =
        "  resources: {overrides: {namespace: {resource: namespace}, pod: {resource: pod}}}\n";
    const OK_QUERY: &str =
        "  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)'\n";

    #[test]
    fn seed_canonical() {
        let c = load(SEED_CANONICAL);
        assert_eq!(c.rules.len(), 2);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let appmesh = &c.rules[0];
        assert_eq!(appmesh.location(), "rules[0]");
        assert_eq!(
            appmesh
                .naming
                .metric_name("envoy_cluster_upstream_rq")
                .as_deref(),
            Some("appmesh_requests_per_second")
        );
        assert_eq!(
            appmesh.sample_query,
            r#"sum(rate(sample_series{namespace="default",kubernetes_pod_name=~"sample-pod-a|sample-pod-b"}[1m])) by (kubernetes_pod_name)"#
        );
        let http = &c.rules[1];
        assert_eq!(
            http.naming.metric_name("http_requests_total").as_deref(),
            Some("http_requests_per_second")
        );
        assert_eq!(c.custom_series_queries().len(), 2);
        assert!(c.external_series_queries().is_empty());
    }

    #[test]
    fn seed_shorthand_is_accepted_with_warnings() {
        let c = load(SEED_SHORTHAND);
        assert_eq!(c.rules.len(), 1);
        assert_eq!(c.warnings.len(), 2, "{:?}", c.warnings);
        assert!(
            c.warnings[0]
                .starts_with("rules[0].resources.overrides.kubernetes_pod_name: shorthand \"pod\"")
        );
        let catalog = ResourceCatalog::builtin();
        assert_eq!(
            c.rules[0]
                .naming
                .resources
                .label_for_resource(&GroupResource::core("pods"), &catalog)
                .as_deref(),
            Ok("kubernetes_pod_name")
        );
    }

    #[test]
    fn seed_ho11y() {
        let c = load(SEED_HO11Y);
        assert_eq!(c.rules.len(), 1);
        assert_eq!(c.external_rules.len(), 1);
        assert_eq!(
            c.rules[0].naming.metric_name("ho11y_total").as_deref(),
            Some("ho11y_per_second")
        );
        let ext = &c.external_rules[0];
        assert!(ext.namespaced);
        assert_eq!(
            ext.naming.metric_name("ho11y_total").as_deref(),
            Some("ho11y_rate")
        );
        assert_eq!(
            ext.sample_query,
            r#"sum(rate(sample_series{namespace="default"}[2m])) by ()"#
        );
    }

    #[test]
    fn deploy_manifest_default() {
        let c = load(DEPLOY_DEFAULT);
        assert!(c.rules.is_empty() && c.external_rules.is_empty());
        let rr = c.resource_rules.as_ref().expect("resourceRules");
        assert_eq!(rr.window, Duration::from_secs(300));
        assert_eq!(rr.cpu.container_label, "container");
        assert!(rr.memory.node_query.is_some());
        assert_eq!(c.warnings.len(), 1, "{:?}", c.warnings);
    }

    #[test]
    fn legacy_default_rules() {
        let c = load(LEGACY_DEFAULT_RULES);
        assert_eq!(c.rules.len(), 4);
        assert_eq!(c.custom_series_queries().len(), 2);
        assert_eq!(
            c.rules[0].metrics_query.source(),
            r#"sum(rate(<<.Series>>{<<.LabelMatchers>>,container_name!="POD"}[5m])) by (<<.GroupBy>>)"#,
            "plain multi-line scalars fold into one line"
        );
        assert_eq!(
            c.rules[0]
                .naming
                .metric_name("container_cpu_usage_seconds_total")
                .as_deref(),
            Some("cpu_usage")
        );
        assert_eq!(
            c.rules[1]
                .naming
                .metric_name("container_cpu_usage_seconds_total"),
            None
        );
        assert_eq!(
            c.rules[1]
                .naming
                .metric_name("container_network_receive_bytes_total")
                .as_deref(),
            Some("network_receive_bytes")
        );
        assert_eq!(
            c.rules[2].naming.metric_name("go_goroutines").as_deref(),
            Some("go_goroutines")
        );
        assert_eq!(
            c.rules[2].sample_query,
            r#"sum(sample_series{namespace="default",pod=~"sample-pod-a|sample-pod-b"}) by (pod)"#
        );
    }

    #[test]
    fn empty_and_null_sections() {
        for text in [
            "",
            "\n",
            "# nothing\n",
            "rules:\n",
            "rules: []\nexternalRules: null\n",
            "{}",
        ] {
            let c = load(text);
            assert!(
                c.rules.is_empty() && c.external_rules.is_empty() && c.resource_rules.is_none()
            );
        }
    }

    #[test]
    fn yaml_errors() {
        assert_eq!(
            error(&rule("  metricQuery: x\n")),
            "invalid config: unknown field `metricQuery`, expected one of seriesQuery, seriesFilters, resources, name, metricsQuery at line 3, column 3"
        );
        assert!(
            error("rules: [a").ends_with("at line 1, column 8"),
            "{}",
            error("rules: [a")
        );
        assert!(
            error("rules:\n- seriesQuery: a\n  seriesQuery: b\n")
                .contains("duplicate mapping key: seriesQuery")
        );
        assert!(error("rules: 5\n").starts_with("invalid config:"));
        assert!(error("rules:\n- seriesQuery: x\n  resources: {overrides: {pod: {resource: pod, kind: Pod}}}\n")
            .contains("unknown field `kind`"));
        assert!(error("prometheus: {}\n").contains("unknown field `prometheus`"));
    }

    #[test]
    fn rule_errors() {
        let cases: &[(String, &str)] = &[
            (
                "rules:\n- metricsQuery: x\n".into(),
                "rules[0]: seriesQuery is missing or empty",
            ),
            (
                "externalRules:\n- seriesQuery: '  '\n  metricsQuery: x\n".into(),
                "externalRules[0]: seriesQuery is missing or empty",
            ),
            (
                rule(OK_RESOURCES),
                "rules[0]: metricsQuery is missing or empty",
            ),
            (
                rule(&format!("{OK_RESOURCES}{OK_QUERY}  seriesFilters: [{{is: a, isNot: b}}]\n")),
                "rules[0]: seriesFilters[0]: cannot have both is and isNot",
            ),
            (
                rule(&format!("{OK_RESOURCES}{OK_QUERY}  seriesFilters: [{{is: a}}, {{}}]\n")),
                "rules[0]: seriesFilters[1]: one of is or isNot is required",
            ),
            (
                rule(&format!("{OK_RESOURCES}{OK_QUERY}  seriesFilters: [{{isNot: '(a'}}]\n")),
                "rules[0]: seriesFilters[0].isNot: invalid regex \"(a\": unclosed group",
            ),
            (
                rule(&format!("{OK_RESOURCES}{OK_QUERY}  name: {{matches: '^(.*'}}\n")),
                "rules[0]: name.matches: invalid regex \"^(.*\": unclosed group",
            ),
            (
                rule(&format!("{OK_RESOURCES}{OK_QUERY}  name: {{matches: '^(.*)_(.*)$'}}\n")),
                "rules[0]: name.as: must specify an 'as' value: \"^(.*)_(.*)$\" has 2 capture groups",
            ),
            (
                rule(&format!("{OK_RESOURCES}{OK_QUERY}  name: {{matches: '^(.*)_total', as: '$1_per_second'}}\n")),
                "rules[0]: name.as: \"$1_per_second\" refers to capture group \"1_per_second\", which \"^(.*)_total\" does not define (write \"${1}_per_second\")",
            ),
            (
                rule(OK_QUERY),
                "rules[0]: resources: neither overrides nor template is set, so no series can be associated with a Kubernetes resource",
            ),
            (
                rule(&format!("{OK_QUERY}  resources: {{template: 'kube_<<.Group>>'}}\n")),
                "rules[0]: resources.template: \"kube_<<.Group>>\" must contain <<.Resource>>",
            ),
            (
                rule(&format!("{OK_QUERY}  resources: {{template: '<<.Resourc>>'}}\n")),
                "rules[0]: resources.template: unknown field .Resourc on line 1 (known fields: .Group, .Resource)",
            ),
            (
                rule(&format!("{OK_QUERY}  resources: {{overrides: {{pod: {{group: apps}}}}}}\n")),
                "rules[0]: resources.overrides.pod: resource is empty",
            ),
            (
                rule(&format!("{OK_QUERY}  resources: {{overrides: {{k8s.pod: {{resource: pod}}}}}}\n")),
                "rules[0]: resources.overrides: \"k8s.pod\" is not a valid Prometheus label name",
            ),
            (
                rule(&format!("{OK_RESOURCES}  metricsQuery: 'sum(<<.Series>>{{<<.LabelMatchers>}}) by (<<.GroupBy>>)'\n")),
                "rules[0]: metricsQuery: template: metricsQuery:1:",
            ),
            (
                rule(&format!("{OK_RESOURCES}  metricsQuery: 'sum(<<.Series>>{{<<.LabelMatcher>>}})'\n")),
                "rules[0]: metricsQuery: unknown field .LabelMatcher on line 1 (known fields: .Series, .LabelMatchers, .LabelValuesByName, .GroupBy, .GroupBySlice)",
            ),
            (
                rule(&format!("{OK_RESOURCES}  metricsQuery: 'sum(<<.Series>>{{<.LabelMatchers>>}})'\n")),
                "rules[0]: metricsQuery: the query rendered with sample data still contains \">>\"; check the << >> delimiters",
            ),
            (
                rule(&format!("{OK_RESOURCES}  metricsQuery: '<<.Series.Name>>'\n")),
                "rules[0]: metricsQuery: execution error: can't evaluate field Name in type string",
            ),
            (
                rule(&format!("{OK_RESOURCES}  metricsQuery: '<<if false>>x<<end>>'\n")),
                "rules[0]: metricsQuery: empty query produced by metrics query template",
            ),
            (
                "externalRules:\n- seriesQuery: up\n  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>})'\n".into(),
                "externalRules[0]: resources: no label maps to namespaces",
            ),
            (
                "resourceRules: {window: 5 minutes}\n".into(),
                "resourceRules: window: \"5 minutes\" is not a Prometheus duration (such as 5m or 1h30m)",
            ),
            (
                "resourceRules: {cpu: {containerQuery: '<<.Nope>>'}}\n".into(),
                "resourceRules.cpu: containerQuery: unknown field .Nope",
            ),
        ];
        for (text, want) in cases {
            let got = error(text);
            assert!(
                got.starts_with(want),
                "\n got: {got}\nwant: {want}…\nyaml:\n{text}"
            );
        }
    }

    #[test]
    fn external_namespaced_false_needs_no_namespace_label() {
        let c = load(
            "externalRules:\n- seriesQuery: queue_depth\n  resources: {namespaced: false}\n  metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>})'\n",
        );
        assert!(!c.external_rules[0].namespaced);
        assert_eq!(c.external_rules[0].sample_query, "sum(sample_series{})");
        let c = load(
            "externalRules:\n- seriesQuery: queue_depth\n  resources: {namespaced: no, template: 'kubernetes_<<.Resource>>'}\n  metricsQuery: x\n",
        );
        assert!(
            !c.external_rules[0].namespaced,
            "YAML 1.1 booleans, as yaml.v2 reads them"
        );
    }

    #[test]
    fn warnings() {
        let c = load(&rule(
            "  resources: {namespaced: false, overrides: {namespace: {resource: namespace}, rollout: {group: argoproj.io, resource: rollouts}}}
  metricsQuery: 'sum(<<.Series>>{service=\"<<.LabelValuesByName.service>>\"})'
",
        ));
        assert_eq!(c.warnings.len(), 3, "{:#?}", c.warnings);
        assert!(c.warnings[0].contains("rollout"));
        assert!(c.warnings[1].contains("only meaningful for externalRules"));
        assert!(c.warnings[2].contains("<no value>"));
    }

    #[test]
    fn durations() {
        let ok = [
            ("0", 0),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("500ms", 500),
            ("1s500ms", 1500),
            ("1y", 31_536_000_000),
            ("2w1d", 1_296_000_000),
        ];
        for (s, ms) in ok {
            assert_eq!(
                parse_prometheus_duration(s),
                Some(Duration::from_millis(ms)),
                "{s}"
            );
        }
        for bad in ["", "5", "m", "1m1h", "1m1m", "1.5m", "-1m", "5 m", "1ms1s"] {
            assert_eq!(parse_prometheus_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn load_reports_missing_file() {
        let e = Config::load(Path::new("/nonexistent/adapter.yaml")).expect_err("missing");
        assert!(
            e.to_string()
                .starts_with("cannot read config file /nonexistent/adapter.yaml: ")
        );
    }
}
