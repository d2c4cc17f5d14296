//! From discovered series to API metrics: series filters, `name.matches`/`name.as`, and
//! the association between Prometheus labels and Kubernetes resources (both ways).
//!
//! Semantics follow prometheus-adapter (see the crate README):
//! - Filters are unanchored regexes; `is` keeps matching names, `isNot` drops them; a
//!   non-empty `name.matches` is an implicit extra `is` filter; all filters must pass.
//! - The API name is the expansion of `as` over the `matches` match (`$1`, `${1}`, `$name`,
//!   `$$`), not a replacement inside the series name. `as` defaults to `$0` with no capture
//!   group and `$1` with one.
//! - Label → resource: an `overrides` entry wins; otherwise the `template` is turned into an
//!   anchored regex that extracts `.Group`/`.Resource` from the label name, and the result is
//!   normalised through the [`ResourceCatalog`] (unknown resources are skipped).
//! - Resource → label: the `overrides` entry for the resource, else the template rendered
//!   with `.Group` (`.` and `-` replaced by `_`) and the singular `.Resource`.
//! - A discovered metric is namespaced unless its resource is `namespaces`, `nodes` or
//!   `persistentvolumes`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use gotmpl::Value;
use regex::Regex;

use crate::template::{GoTemplate, RESOURCE_FIELDS};
use crate::wire::ObjectReference;

/// A Kubernetes group-resource; `group` is empty for the core group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct GroupResource {
    /// API group (`apps`), empty for core.
    pub group: String,
    /// Resource, normally plural (`deployments`).
    pub resource: String,
}

impl GroupResource {
    /// A group-resource.
    #[must_use]
    pub fn new(group: &str, resource: &str) -> Self {
        Self {
            group: group.to_owned(),
            resource: resource.to_owned(),
        }
    }

    /// A core-group resource.
    #[must_use]
    pub fn core(resource: &str) -> Self {
        Self::new("", resource)
    }

    /// Parses `resource[.group]`, splitting at the first `.` (`deployments.apps`,
    /// `ingresses.networking.k8s.io`), as the API path segment is parsed.
    #[must_use]
    pub fn parse(s: &str) -> Self {
        match s.split_once('.') {
            Some((resource, group)) => Self::new(group, resource),
            None => Self::core(s),
        }
    }

    /// Whether this is `namespaces`, `nodes` or `persistentvolumes` in the core group: the
    /// resources whose metrics prometheus-adapter lists as not namespaced.
    #[must_use]
    pub fn is_root_scoped_metric(&self) -> bool {
        self.group.is_empty()
            && matches!(
                self.resource.as_str(),
                "namespaces" | "nodes" | "persistentvolumes"
            )
    }
}

impl fmt::Display for GroupResource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.group.is_empty() {
            f.write_str(&self.resource)
        } else {
            write!(f, "{}.{}", self.resource, self.group)
        }
    }
}

/// What the shim knows about one resource type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInfo {
    /// The group-resource, with the plural resource.
    pub group_resource: GroupResource,
    /// The preferred version (`v1`).
    pub version: String,
    /// The singular name (`pod`).
    pub singular: String,
    /// The kind (`Pod`).
    pub kind: String,
    /// Whether objects of this type live in namespaces.
    pub namespaced: bool,
}

impl ResourceInfo {
    /// The `describedObject` prometheus-adapter writes for an object of this type
    /// (`apiVersion` `/v1` for core kinds).
    #[must_use]
    pub fn object_reference(&self, namespace: &str, name: &str) -> ObjectReference {
        ObjectReference::new(
            &self.kind,
            &self.group_resource.group,
            &self.version,
            namespace,
            name,
        )
    }
}

/// The resource types the shim can resolve, in priority order (core first).
///
/// [`ResourceCatalog::builtin`] knows the built-in Kubernetes types; the server adds the
/// cluster's own (CRDs) from API discovery with [`ResourceCatalog::insert`].
#[derive(Debug, Clone, Default)]
pub struct ResourceCatalog {
    entries: Vec<ResourceInfo>,
}

#[rustfmt::skip]
const BUILTIN: &[(&str, &str, &str, &str, &str, bool)] = &[
    // (group, version, plural, singular, kind, namespaced)
    ("", "v1", "pods", "pod", "Pod", true),
    ("", "v1", "services", "service", "Service", true),
    ("", "v1", "namespaces", "namespace", "Namespace", false),
    ("", "v1", "nodes", "node", "Node", false),
    ("", "v1", "persistentvolumes", "persistentvolume", "PersistentVolume", false),
    ("", "v1", "persistentvolumeclaims", "persistentvolumeclaim", "PersistentVolumeClaim", true),
    ("", "v1", "endpoints", "endpoints", "Endpoints", true),
    ("", "v1", "configmaps", "configmap", "ConfigMap", true),
    ("", "v1", "secrets", "secret", "Secret", true),
    ("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", true),
    ("", "v1", "replicationcontrollers", "replicationcontroller", "ReplicationController", true),
    ("", "v1", "resourcequotas", "resourcequota", "ResourceQuota", true),
    ("", "v1", "limitranges", "limitrange", "LimitRange", true),
    ("", "v1", "podtemplates", "podtemplate", "PodTemplate", true),
    ("", "v1", "events", "event", "Event", true),
    ("apps", "v1", "deployments", "deployment", "Deployment", true),
    ("apps", "v1", "statefulsets", "statefulset", "StatefulSet", true),
    ("apps", "v1", "daemonsets", "daemonset", "DaemonSet", true),
    ("apps", "v1", "replicasets", "replicaset", "ReplicaSet", true),
    ("apps", "v1", "controllerrevisions", "controllerrevision", "ControllerRevision", true),
    ("batch", "v1", "jobs", "job", "Job", true),
    ("batch", "v1", "cronjobs", "cronjob", "CronJob", true),
    ("autoscaling", "v2", "horizontalpodautoscalers", "horizontalpodautoscaler", "HorizontalPodAutoscaler", true),
    ("networking.k8s.io", "v1", "ingresses", "ingress", "Ingress", true),
    ("networking.k8s.io", "v1", "networkpolicies", "networkpolicy", "NetworkPolicy", true),
    ("networking.k8s.io", "v1", "ingressclasses", "ingressclass", "IngressClass", false),
    ("policy", "v1", "poddisruptionbudgets", "poddisruptionbudget", "PodDisruptionBudget", true),
    ("discovery.k8s.io", "v1", "endpointslices", "endpointslice", "EndpointSlice", true),
    ("coordination.k8s.io", "v1", "leases", "lease", "Lease", true),
    ("storage.k8s.io", "v1", "storageclasses", "storageclass", "StorageClass", false),
    ("storage.k8s.io", "v1", "volumeattachments", "volumeattachment", "VolumeAttachment", false),
    ("scheduling.k8s.io", "v1", "priorityclasses", "priorityclass", "PriorityClass", false),
    ("node.k8s.io", "v1", "runtimeclasses", "runtimeclass", "RuntimeClass", false),
    ("events.k8s.io", "v1", "events", "event", "Event", true),
];

impl ResourceCatalog {
    /// The built-in Kubernetes resource types.
    #[must_use]
    pub fn builtin() -> Self {
        let entries = BUILTIN
            .iter()
            .map(
                |&(group, version, plural, singular, kind, namespaced)| ResourceInfo {
                    group_resource: GroupResource::new(group, plural),
                    version: version.into(),
                    singular: singular.into(),
                    kind: kind.into(),
                    namespaced,
                },
            )
            .collect();
        Self { entries }
    }

    /// Adds or replaces a type (matched on its group-resource). New types rank after the
    /// existing ones when a name without a group is ambiguous.
    pub fn insert(&mut self, info: ResourceInfo) {
        if let Some(e) = self
            .entries
            .iter_mut()
            .find(|e| e.group_resource == info.group_resource)
        {
            *e = info;
        } else {
            self.entries.push(info);
        }
    }

    /// The type with exactly this (plural) group-resource.
    #[must_use]
    pub fn get(&self, gr: &GroupResource) -> Option<&ResourceInfo> {
        self.entries.iter().find(|e| &e.group_resource == gr)
    }

    /// Resolves a group-resource as a REST mapper would: the resource may be plural or
    /// singular, any case; an empty group matches every group, first match wins.
    #[must_use]
    pub fn normalize(&self, gr: &GroupResource) -> Option<&ResourceInfo> {
        let resource = gr.resource.to_ascii_lowercase();
        self.entries.iter().find(|e| {
            (gr.group.is_empty() || e.group_resource.group == gr.group)
                && (e.group_resource.resource == resource || e.singular == resource)
        })
    }
}

/// Why a naming rule was refused. Messages are one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NamingError {
    /// A regex does not compile.
    #[error("invalid regex {pattern:?}: {reason}")]
    BadRegex {
        /// The pattern.
        pattern: String,
        /// The compiler's reason.
        reason: String,
    },
    /// `matches` has several capture groups and `as` is empty.
    #[error("must specify an 'as' value: {matches:?} has {groups} capture groups")]
    AsRequired {
        /// The `matches` pattern.
        matches: String,
        /// Its number of capture groups.
        groups: usize,
    },
    /// `as` refers to a group `matches` does not define (it would expand to nothing).
    #[error("{as_:?} refers to capture group {group:?}, which {matches:?} does not define{hint}")]
    AsUnknownGroup {
        /// The `as` value.
        as_: String,
        /// The group it names.
        group: String,
        /// The `matches` pattern.
        matches: String,
        /// A suggestion such as ` (write "${1}_per_second")`.
        hint: String,
    },
    /// The resource template is unusable.
    #[error("resources.template: {0}")]
    Template(String),
    /// An override has no resource.
    #[error("resources.overrides.{0}: resource is empty")]
    EmptyOverride(String),
    /// An override key is not a Prometheus label name.
    #[error("resources.overrides: {0:?} is not a valid Prometheus label name")]
    BadLabelName(String),
    /// No override or template covers the resource.
    #[error("no generic resource label form specified for this metric (resource {0})")]
    NoLabelForResource(String),
    /// The catalog does not know the resource, so its singular form is unknown.
    #[error("unable to find the singular form of resource {0}")]
    UnknownResource(String),
}

fn compile(pattern: &str) -> Result<Regex, NamingError> {
    Regex::new(pattern).map_err(|e| NamingError::BadRegex {
        pattern: pattern.to_owned(),
        reason: regex_reason(&e),
    })
}

/// The last line of a regex error (its message; the lines before draw the pattern).
fn regex_reason(e: &regex::Error) -> String {
    let s = e.to_string();
    s.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid pattern")
        .trim()
        .trim_start_matches("error: ")
        .to_owned()
}

/// Whether `s` is a Prometheus label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
#[must_use]
pub fn is_label_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

// === filters and names ===

/// A `seriesFilters` entry (or the implicit one from `name.matches`).
#[derive(Debug, Clone)]
pub struct SeriesFilter {
    regex: Regex,
    keep_matching: bool,
}

impl SeriesFilter {
    /// `is: pattern`: keep series whose name matches (unanchored).
    ///
    /// # Errors
    /// An invalid regex.
    pub fn is(pattern: &str) -> Result<Self, NamingError> {
        Ok(Self {
            regex: compile(pattern)?,
            keep_matching: true,
        })
    }

    /// `isNot: pattern`: drop series whose name matches (unanchored).
    ///
    /// # Errors
    /// An invalid regex.
    pub fn is_not(pattern: &str) -> Result<Self, NamingError> {
        Ok(Self {
            regex: compile(pattern)?,
            keep_matching: false,
        })
    }

    /// Whether a series name passes this filter.
    #[must_use]
    pub fn passes(&self, series_name: &str) -> bool {
        self.regex.is_match(series_name) == self.keep_matching
    }
}

/// `name.matches` + `name.as`.
#[derive(Debug, Clone)]
pub struct MetricNamer {
    regex: Regex,
    as_: String,
    pieces: Vec<Piece>,
}

impl MetricNamer {
    /// Compiles `matches` (empty means `.*`) and checks `as` (empty means `$0` or `$1`).
    ///
    /// # Errors
    /// An invalid regex, several capture groups with an empty `as`, or an `as` naming a
    /// group that `matches` does not have (such as `$1_per_second`, which names the group
    /// `1_per_second`; prometheus-adapter silently produces an empty name for it).
    pub fn new(matches: &str, as_: &str) -> Result<Self, NamingError> {
        let pattern = if matches.is_empty() { ".*" } else { matches };
        let regex = compile(pattern)?;
        let as_ = if as_.is_empty() {
            match regex.captures_len() {
                1 => "$0".to_owned(),
                2 => "$1".to_owned(),
                n => {
                    return Err(NamingError::AsRequired {
                        matches: pattern.to_owned(),
                        groups: n - 1,
                    });
                }
            }
        } else {
            as_.to_owned()
        };
        let pieces = parse_expansion(&as_);
        for piece in &pieces {
            let (group, known) = match piece {
                Piece::Literal(_) => continue,
                Piece::Index(i) => (i.to_string(), *i < regex.captures_len()),
                Piece::Name(n) => (n.clone(), regex.capture_names().flatten().any(|c| c == n)),
            };
            if !known {
                let digits: String = group.chars().take_while(char::is_ascii_digit).collect();
                let hint = if !digits.is_empty() && digits.len() < group.len() {
                    let fixed = as_.replacen(
                        &format!("${group}"),
                        &format!("${{{digits}}}{}", &group[digits.len()..]),
                        1,
                    );
                    format!(" (write {fixed:?})")
                } else {
                    String::new()
                };
                return Err(NamingError::AsUnknownGroup {
                    as_: as_.clone(),
                    group,
                    matches: pattern.to_owned(),
                    hint,
                });
            }
        }
        Ok(Self { regex, as_, pieces })
    }

    /// The API name for a series name: the expansion of `as` over the first match, or
    /// `None` when `matches` does not match (or the expansion is empty).
    #[must_use]
    pub fn name_for(&self, series_name: &str) -> Option<String> {
        let caps = self.regex.captures(series_name)?;
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(l) => out.push_str(l),
                Piece::Index(i) => out.push_str(caps.get(*i).map_or("", |m| m.as_str())),
                Piece::Name(n) => out.push_str(caps.name(n).map_or("", |m| m.as_str())),
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// The effective `as` (after defaults).
    #[must_use]
    pub fn as_template(&self) -> &str {
        &self.as_
    }
}

/// A piece of an `as` template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Index(usize),
    Name(String),
}

/// Splits an expansion template the way Go's `Regexp.Expand` reads it: `$$` is a `$`;
/// `$name` takes the longest run of letters, digits and `_` (so `$1_x` names the group
/// `1_x`); `${name}` is braced; a name of digits without a leading zero is a group index;
/// a `$` that starts no valid reference is kept literally.
fn parse_expansion(template: &str) -> Vec<Piece> {
    let mut pieces = Vec::new();
    let mut literal = String::new();
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        literal.push_str(&rest[..i]);
        rest = &rest[i..];
        if let Some(r) = rest.strip_prefix("$$") {
            literal.push('$');
            rest = r;
            continue;
        }
        let (braced, body) = match rest.strip_prefix("${") {
            Some(b) => (true, b),
            None => (false, &rest[1..]),
        };
        let len = body
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(body.len());
        let closed = !braced || body[len..].starts_with('}');
        if len == 0 || !closed {
            literal.push('$');
            rest = &rest[1..];
            continue;
        }
        let name = &body[..len];
        rest = &body[len + usize::from(braced)..];
        if !literal.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(&mut literal)));
        }
        let index = if name.bytes().all(|b| b.is_ascii_digit())
            && !(name.starts_with('0') && name.len() > 1)
        {
            name.parse::<usize>().ok()
        } else {
            None
        };
        pieces.push(index.map_or_else(|| Piece::Name(name.to_owned()), Piece::Index));
    }
    literal.push_str(rest);
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    pieces
}

// === resources ===

const GROUP_SENTINEL: &str = "\u{1}group\u{1}";
const RESOURCE_SENTINEL: &str = "\u{1}resource\u{1}";

/// A `resources.template`, usable in both directions.
#[derive(Debug)]
struct LabelTemplate {
    tmpl: GoTemplate,
    /// `^…$` with `(?P<group>.+?)` / `(?P<resource>.+?)` in place of the fields.
    matcher: Regex,
}

fn template_data(group: &str, resource: &str) -> Value {
    gotmpl::tmap! { "Group" => group, "Resource" => resource }
}

impl LabelTemplate {
    fn new(src: &str) -> Result<Self, NamingError> {
        let tmpl = GoTemplate::parse("resources.template", src, RESOURCE_FIELDS)
            .map_err(|e| NamingError::Template(e.to_string()))?;
        let rendered = tmpl
            .render(&template_data(GROUP_SENTINEL, RESOURCE_SENTINEL))
            .map_err(|e| NamingError::Template(e.to_string()))?;
        if !rendered.contains(RESOURCE_SENTINEL) {
            return Err(NamingError::Template(format!(
                "{src:?} must contain <<.Resource>>"
            )));
        }
        // Literal text is escaped; each field becomes a lazy capture (named the first time).
        let mut pattern = String::from("^");
        let (mut group_named, mut resource_named) = (false, false);
        let mut rest = rendered.as_str();
        loop {
            let next = [GROUP_SENTINEL, RESOURCE_SENTINEL]
                .iter()
                .filter_map(|s| rest.find(s).map(|i| (i, *s)))
                .min_by_key(|&(i, _)| i);
            let Some((i, sentinel)) = next else {
                pattern.push_str(&regex::escape(rest));
                break;
            };
            pattern.push_str(&regex::escape(&rest[..i]));
            let named = if sentinel == GROUP_SENTINEL {
                &mut group_named
            } else {
                &mut resource_named
            };
            if *named {
                pattern.push_str("(.+?)");
            } else {
                let name = if sentinel == GROUP_SENTINEL {
                    "group"
                } else {
                    "resource"
                };
                pattern.push_str(&format!("(?P<{name}>.+?)"));
                *named = true;
            }
            rest = &rest[i + sentinel.len()..];
        }
        pattern.push('$');
        let matcher = compile(&pattern)?;
        Ok(Self { tmpl, matcher })
    }

    fn resource_for_label(&self, label: &str) -> Option<GroupResource> {
        let caps = self.matcher.captures(label)?;
        Some(GroupResource::new(
            caps.name("group").map_or("", |m| m.as_str()),
            caps.name("resource")?.as_str(),
        ))
    }

    fn label_for(&self, group: &str, singular: &str) -> Result<String, NamingError> {
        let group = group.replace(['.', '-'], "_");
        let label = self
            .tmpl
            .render(&template_data(&group, singular))
            .map_err(|e| NamingError::Template(e.to_string()))?;
        if label.is_empty() {
            return Err(NamingError::Template(
                "empty label produced by label template".into(),
            ));
        }
        Ok(label)
    }
}

/// A rule's `resources` section, compiled.
#[derive(Debug)]
pub struct ResourceMapper {
    overrides: BTreeMap<String, GroupResource>,
    template: Option<LabelTemplate>,
}

impl ResourceMapper {
    /// Compiles `overrides` (label → group-resource as written) and `template`.
    ///
    /// # Errors
    /// An override with an empty resource or a key that is not a label name, or a template
    /// that does not parse, does not contain `<<.Resource>>`, or fails with sample data.
    pub fn new(
        overrides: BTreeMap<String, GroupResource>,
        template: Option<&str>,
    ) -> Result<Self, NamingError> {
        for (label, gr) in &overrides {
            if !is_label_name(label) {
                return Err(NamingError::BadLabelName(label.clone()));
            }
            if gr.resource.is_empty() {
                return Err(NamingError::EmptyOverride(label.clone()));
            }
        }
        let template = template
            .filter(|t| !t.is_empty())
            .map(LabelTemplate::new)
            .transpose()?;
        Ok(Self {
            overrides,
            template,
        })
    }

    /// Whether neither overrides nor a template are configured.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.overrides.is_empty() && self.template.is_none()
    }

    /// The configured overrides (label → group-resource as written).
    #[must_use]
    pub fn overrides(&self) -> &BTreeMap<String, GroupResource> {
        &self.overrides
    }

    /// Whether a template is configured.
    #[must_use]
    pub fn has_template(&self) -> bool {
        self.template.is_some()
    }

    /// Override entries whose resource the catalog does not know (prometheus-adapter
    /// refuses to start on these; the shim keeps them as written).
    #[must_use]
    pub fn unknown_overrides(&self, catalog: &ResourceCatalog) -> Vec<(String, GroupResource)> {
        self.overrides
            .iter()
            .filter(|(_, gr)| catalog.normalize(gr).is_none())
            .map(|(l, gr)| (l.clone(), gr.clone()))
            .collect()
    }

    fn normalized_override(gr: &GroupResource, catalog: &ResourceCatalog) -> GroupResource {
        catalog.normalize(gr).map_or_else(
            || GroupResource::new(&gr.group, &gr.resource.to_ascii_lowercase()),
            |i| i.group_resource.clone(),
        )
    }

    /// The resource a label maps to, if any.
    #[must_use]
    pub fn resource_for_label(
        &self,
        label: &str,
        catalog: &ResourceCatalog,
    ) -> Option<GroupResource> {
        if let Some(gr) = self.overrides.get(label) {
            return Some(Self::normalized_override(gr, catalog));
        }
        let raw = self.template.as_ref()?.resource_for_label(label)?;
        catalog.normalize(&raw).map(|i| i.group_resource.clone())
    }

    /// The resources a series with these label names can describe, sorted, without
    /// duplicates.
    pub fn resources_for_labels<'a>(
        &self,
        labels: impl IntoIterator<Item = &'a str>,
        catalog: &ResourceCatalog,
    ) -> Vec<GroupResource> {
        let set: BTreeSet<GroupResource> = labels
            .into_iter()
            .filter_map(|l| self.resource_for_label(l, catalog))
            .collect();
        set.into_iter().collect()
    }

    /// The label that carries names of `resource` in queries.
    ///
    /// # Errors
    /// No override covers the resource and there is no template, or the template needs a
    /// singular form the catalog does not know.
    pub fn label_for_resource(
        &self,
        resource: &GroupResource,
        catalog: &ResourceCatalog,
    ) -> Result<String, NamingError> {
        if let Some((label, _)) = self
            .overrides
            .iter()
            .find(|(_, gr)| &Self::normalized_override(gr, catalog) == resource)
        {
            return Ok(label.clone());
        }
        let Some(template) = &self.template else {
            return Err(NamingError::NoLabelForResource(resource.to_string()));
        };
        let singular = catalog
            .get(resource)
            .or_else(|| catalog.normalize(resource))
            .map(|i| i.singular.clone())
            .ok_or_else(|| NamingError::UnknownResource(resource.to_string()))?;
        template.label_for(&resource.group, &singular)
    }

    /// The label of the `namespaces` resource.
    ///
    /// # Errors
    /// See [`Self::label_for_resource`].
    pub fn namespace_label(&self, catalog: &ResourceCatalog) -> Result<String, NamingError> {
        self.label_for_resource(&GroupResource::core("namespaces"), catalog)
    }
}

/// How one rule turns series into API metrics.
#[derive(Debug)]
pub struct SeriesNaming {
    /// `seriesFilters`, then the implicit filter from a non-empty `name.matches`.
    pub filters: Vec<SeriesFilter>,
    /// `name`.
    pub namer: MetricNamer,
    /// `resources`.
    pub resources: ResourceMapper,
}

impl SeriesNaming {
    /// The API name for a series name, if it passes every filter.
    #[must_use]
    pub fn metric_name(&self, series_name: &str) -> Option<String> {
        if !self.filters.iter().all(|f| f.passes(series_name)) {
            return None;
        }
        self.namer.name_for(series_name)
    }

    /// The custom metrics one series yields: one per associated resource.
    #[must_use]
    pub fn custom_metrics(
        &self,
        series: &Series,
        catalog: &ResourceCatalog,
    ) -> Vec<CustomMetricKey> {
        let Some(metric) = self.metric_name(&series.name) else {
            return Vec::new();
        };
        self.resources
            .resources_for_labels(series.labels.iter().map(String::as_str), catalog)
            .into_iter()
            .map(|resource| CustomMetricKey {
                namespaced: !resource.is_root_scoped_metric(),
                resource,
                metric: metric.clone(),
            })
            .collect()
    }
}

/// A series from `/api/v1/series`: its name and its label *names* (values do not matter).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Series {
    /// `__name__`.
    pub name: String,
    /// The other label names, sorted.
    pub labels: Vec<String>,
}

impl Series {
    /// A series; `labels` are sorted and de-duplicated, `__name__` is dropped.
    #[must_use]
    pub fn new(name: &str, labels: &[&str]) -> Self {
        let mut labels: Vec<String> = labels
            .iter()
            .filter(|l| **l != "__name__")
            .map(|l| (*l).to_owned())
            .collect();
        labels.sort();
        labels.dedup();
        Self {
            name: name.to_owned(),
            labels,
        }
    }
}

/// The identity of a custom metric in the API.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CustomMetricKey {
    /// The resource the metric describes.
    pub resource: GroupResource,
    /// Whether it is served under `namespaces/{ns}/…`.
    pub namespaced: bool,
    /// The API metric name.
    pub metric: String,
}

/// Where a discovered metric comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricSource {
    /// The Prometheus series name (the last one seen wins).
    pub series: String,
    /// The index of the rule in its list (`rules` or `externalRules`).
    pub rule: usize,
}

/// The custom metrics discovered from all rules. Later rules and later series overwrite
/// earlier ones for the same key, as in prometheus-adapter (rules should not overlap).
#[derive(Debug, Clone, Default)]
pub struct CustomRegistry {
    entries: BTreeMap<CustomMetricKey, MetricSource>,
}

impl CustomRegistry {
    /// Builds the registry from `(rule index, rule naming, that rule's series)`, in rule order.
    pub fn build<'a, I, S>(rules: I, catalog: &ResourceCatalog) -> Self
    where
        I: IntoIterator<Item = (usize, &'a SeriesNaming, S)>,
        S: IntoIterator<Item = &'a Series>,
    {
        let mut entries = BTreeMap::new();
        for (rule, naming, series) in rules {
            for s in series {
                for key in naming.custom_metrics(s, catalog) {
                    entries.insert(
                        key,
                        MetricSource {
                            series: s.name.clone(),
                            rule,
                        },
                    );
                }
            }
        }
        Self { entries }
    }

    /// Looks a metric up (exact, case-sensitive).
    #[must_use]
    pub fn get(
        &self,
        resource: &GroupResource,
        namespaced: bool,
        metric: &str,
    ) -> Option<&MetricSource> {
        self.entries.get(&CustomMetricKey {
            resource: resource.clone(),
            namespaced,
            metric: metric.to_owned(),
        })
    }

    /// All metrics, sorted by resource, then namespaced flag, then name.
    pub fn iter(&self) -> impl Iterator<Item = (&CustomMetricKey, &MetricSource)> {
        self.entries.iter()
    }

    /// The number of metrics.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was discovered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// The external metrics discovered from all external rules (API name → source; the last
/// one wins).
#[derive(Debug, Clone, Default)]
pub struct ExternalRegistry {
    entries: BTreeMap<String, MetricSource>,
}

impl ExternalRegistry {
    /// Builds the registry from `(rule index, rule naming, that rule's series)`, in rule order.
    pub fn build<'a, I, S>(rules: I) -> Self
    where
        I: IntoIterator<Item = (usize, &'a SeriesNaming, S)>,
        S: IntoIterator<Item = &'a Series>,
    {
        let mut entries = BTreeMap::new();
        for (rule, naming, series) in rules {
            for s in series {
                if let Some(metric) = naming.metric_name(&s.name) {
                    entries.insert(
                        metric,
                        MetricSource {
                            series: s.name.clone(),
                            rule,
                        },
                    );
                }
            }
        }
        Self { entries }
    }

    /// Looks a metric up (exact, case-sensitive).
    #[must_use]
    pub fn get(&self, metric: &str) -> Option<&MetricSource> {
        self.entries.get(metric)
    }

    /// All metrics, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &MetricSource)> {
        self.entries.iter()
    }

    /// The number of metrics.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether nothing was discovered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn namer(m: &str, a: &str) -> MetricNamer {
        MetricNamer::new(m, a).unwrap_or_else(|e| panic!("{m:?} {a:?}: {e}"))
    }

    fn overrides(pairs: &[(&str, &str, &str)]) -> BTreeMap<String, GroupResource> {
        pairs
            .iter()
            .map(|(l, g, r)| ((*l).to_owned(), GroupResource::new(g, r)))
            .collect()
    }

    #[test]
    fn names_from_the_anchor_table() {
        let cases = [
            (
                "^(.*)_total",
                "${1}_per_second",
                "http_requests_total",
                Some("http_requests_per_second"),
            ),
            (
                "^(.*)_total",
                "",
                "http_requests_total",
                Some("http_requests"),
            ),
            (
                "envoy_cluster_upstream_rq",
                "appmesh_requests_per_second",
                "envoy_cluster_upstream_rq_xx_total",
                Some("appmesh_requests_per_second"),
            ),
            (
                "^(.*)_total",
                "${1}_per_second",
                "foo_total_bar",
                Some("foo_per_second"),
            ),
            ("", "", "anything", Some("anything")),
            (
                "^container_(.*)_seconds_total$",
                "",
                "container_cpu_usage_seconds_total",
                Some("cpu_usage"),
            ),
            (
                "^(?P<base>.*)_total$",
                "${base}_rate",
                "ho11y_total",
                Some("ho11y_rate"),
            ),
            ("^(.*)_total$", "$$1", "x_total", Some("$1")),
            ("^(.*)_total$", "", "nope", None),
        ];
        for (m, a, series, want) in cases {
            assert_eq!(
                namer(m, a).name_for(series).as_deref(),
                want,
                "{m:?} {a:?} {series:?}"
            );
        }
    }

    #[test]
    fn namer_errors() {
        assert_eq!(
            MetricNamer::new("^(.*)_total", "$1_per_second").map(|_| ()),
            Err(NamingError::AsUnknownGroup {
                as_: "$1_per_second".into(),
                group: "1_per_second".into(),
                matches: "^(.*)_total".into(),
                hint: r#" (write "${1}_per_second")"#.into(),
            })
        );
        assert!(matches!(
            MetricNamer::new("^(.*)_total", "$2"),
            Err(NamingError::AsUnknownGroup { .. })
        ));
        assert!(matches!(
            MetricNamer::new("^(.*)_total", "${x}"),
            Err(NamingError::AsUnknownGroup { .. })
        ));
        assert_eq!(
            MetricNamer::new("^(.*)_(.*)$", "").map(|_| ()),
            Err(NamingError::AsRequired {
                matches: "^(.*)_(.*)$".into(),
                groups: 2
            })
        );
        let bad = MetricNamer::new("^(.*", "")
            .map(|_| ())
            .expect_err("bad regex");
        let msg = bad.to_string();
        assert!(
            msg.starts_with(r#"invalid regex "^(.*": "#) && !msg.contains('\n'),
            "{msg}"
        );
        // `$` followed by no name, `${}` and an unclosed `${` are literal, as in Go.
        assert_eq!(
            namer("x", "a$-b${}c${d").name_for("x").as_deref(),
            Some("a$-b${}c${d")
        );
        // A leading zero makes a name, not an index: `$01` names the group "01".
        assert!(matches!(
            MetricNamer::new("(x)", "$01"),
            Err(NamingError::AsUnknownGroup { .. })
        ));
        assert_eq!(
            namer("(?P<a1>x)", "${a1}!").name_for("x").as_deref(),
            Some("x!")
        );
        assert_eq!(
            parse_expansion("a$1b${2}c$$d$name_x"),
            vec![
                Piece::Literal("a".into()),
                Piece::Name("1b".into()),
                Piece::Index(2),
                Piece::Literal("c$d".into()),
                Piece::Name("name_x".into()),
            ]
        );
    }

    #[test]
    fn filters() {
        let naming = SeriesNaming {
            filters: vec![
                SeriesFilter::is_not("_seconds_total$").expect("re"),
                SeriesFilter::is("^(.*)_total$").expect("re"),
            ],
            namer: namer("^(.*)_total$", ""),
            resources: ResourceMapper::new(BTreeMap::new(), Some("<<.Resource>>")).expect("mapper"),
        };
        assert_eq!(
            naming.metric_name("http_requests_total").as_deref(),
            Some("http_requests")
        );
        assert_eq!(naming.metric_name("cpu_seconds_total"), None);
        assert_eq!(naming.metric_name("up"), None);
        // Unanchored: `total` matches anywhere.
        assert!(SeriesFilter::is("total").expect("re").passes("a_total_b"));
    }

    #[test]
    fn overrides_both_ways() {
        let catalog = ResourceCatalog::builtin();
        let m = ResourceMapper::new(
            overrides(&[
                ("namespace", "", "namespace"),
                ("kubernetes_pod_name", "", "pod"),
                ("deployment", "", "deployment"),
                ("rollout", "argoproj.io", "rollouts"),
            ]),
            None,
        )
        .expect("mapper");
        let res = m.resources_for_labels(
            [
                "namespace",
                "kubernetes_pod_name",
                "envoy_response_code",
                "deployment",
            ],
            &catalog,
        );
        assert_eq!(
            res,
            vec![
                GroupResource::core("namespaces"),
                GroupResource::core("pods"),
                GroupResource::new("apps", "deployments"),
            ]
        );
        assert_eq!(m.namespace_label(&catalog).as_deref(), Ok("namespace"));
        assert_eq!(
            m.label_for_resource(&GroupResource::core("pods"), &catalog)
                .as_deref(),
            Ok("kubernetes_pod_name")
        );
        assert_eq!(
            m.label_for_resource(&GroupResource::new("apps", "deployments"), &catalog)
                .as_deref(),
            Ok("deployment")
        );
        assert_eq!(
            m.label_for_resource(&GroupResource::core("services"), &catalog),
            Err(NamingError::NoLabelForResource("services".into()))
        );
        assert_eq!(
            m.unknown_overrides(&catalog),
            vec![(
                "rollout".to_owned(),
                GroupResource::new("argoproj.io", "rollouts")
            )]
        );
        assert_eq!(
            m.resource_for_label("rollout", &catalog),
            Some(GroupResource::new("argoproj.io", "rollouts"))
        );
    }

    #[test]
    fn template_both_ways() {
        let mut catalog = ResourceCatalog::builtin();
        let m = ResourceMapper::new(BTreeMap::new(), Some("<<.Resource>>")).expect("mapper");
        // Every label is tried as a resource: `job` and `service` become spurious resources.
        let res = m.resources_for_labels(
            ["pod", "namespace", "job", "service", "instance", "le"],
            &catalog,
        );
        assert_eq!(
            res,
            vec![
                GroupResource::core("namespaces"),
                GroupResource::core("pods"),
                GroupResource::core("services"),
                GroupResource::new("batch", "jobs"),
            ]
        );
        assert_eq!(
            m.label_for_resource(&GroupResource::core("pods"), &catalog)
                .as_deref(),
            Ok("pod")
        );
        assert_eq!(
            m.label_for_resource(&GroupResource::new("apps", "deployments"), &catalog)
                .as_deref(),
            Ok("deployment")
        );

        let k =
            ResourceMapper::new(BTreeMap::new(), Some("kubernetes_<<.Resource>>")).expect("mapper");
        assert_eq!(
            k.resources_for_labels(["kubernetes_pod", "kubernetes_namespace", "pod"], &catalog),
            vec![
                GroupResource::core("namespaces"),
                GroupResource::core("pods")
            ]
        );
        assert_eq!(
            k.namespace_label(&catalog).as_deref(),
            Ok("kubernetes_namespace")
        );

        let g =
            ResourceMapper::new(BTreeMap::new(), Some("<<.Group>>_<<.Resource>>")).expect("mapper");
        assert_eq!(
            g.label_for_resource(
                &GroupResource::new("networking.k8s.io", "ingresses"),
                &catalog
            )
            .as_deref(),
            Ok("networking_k8s_io_ingress")
        );
        assert_eq!(
            g.resources_for_labels(["apps_deployment"], &catalog),
            vec![GroupResource::new("apps", "deployments")]
        );
        // The extracted group keeps its underscores, so it does not resolve.
        assert!(
            g.resources_for_labels(["networking_k8s_io_ingress"], &catalog)
                .is_empty()
        );

        // A CRD learnt from discovery becomes resolvable.
        assert!(m.resources_for_labels(["rollout"], &catalog).is_empty());
        catalog.insert(ResourceInfo {
            group_resource: GroupResource::new("argoproj.io", "rollouts"),
            version: "v1alpha1".into(),
            singular: "rollout".into(),
            kind: "Rollout".into(),
            namespaced: true,
        });
        assert_eq!(
            m.resources_for_labels(["rollout"], &catalog),
            vec![GroupResource::new("argoproj.io", "rollouts")]
        );
    }

    #[test]
    fn mapper_errors() {
        assert_eq!(
            ResourceMapper::new(BTreeMap::new(), Some("kubernetes_<<.Group>>")).map(|_| ()),
            Err(NamingError::Template(
                r#""kubernetes_<<.Group>>" must contain <<.Resource>>"#.into()
            ))
        );
        assert!(matches!(
            ResourceMapper::new(BTreeMap::new(), Some("<<.Resources>>")),
            Err(NamingError::Template(_))
        ));
        assert!(matches!(
            ResourceMapper::new(BTreeMap::new(), Some("<<.Resource")),
            Err(NamingError::Template(_))
        ));
        assert_eq!(
            ResourceMapper::new(overrides(&[("pod", "", "")]), None).map(|_| ()),
            Err(NamingError::EmptyOverride("pod".into()))
        );
        assert_eq!(
            ResourceMapper::new(overrides(&[("kubernetes.pod", "", "pod")]), None).map(|_| ()),
            Err(NamingError::BadLabelName("kubernetes.pod".into()))
        );
    }

    #[test]
    fn registry_walkthrough() {
        let catalog = ResourceCatalog::builtin();
        let appmesh = SeriesNaming {
            filters: vec![SeriesFilter::is("envoy_cluster_upstream_rq").expect("re")],
            namer: namer("envoy_cluster_upstream_rq", "appmesh_requests_per_second"),
            resources: ResourceMapper::new(
                overrides(&[
                    ("namespace", "", "namespace"),
                    ("kubernetes_pod_name", "", "pod"),
                ]),
                None,
            )
            .expect("mapper"),
        };
        let series = vec![
            Series::new(
                "envoy_cluster_upstream_rq",
                &[
                    "__name__",
                    "namespace",
                    "kubernetes_pod_name",
                    "envoy_cluster_name",
                    "envoy_response_code",
                ],
            ),
            Series::new(
                "envoy_cluster_upstream_rq_xx",
                &["namespace", "kubernetes_pod_name"],
            ),
        ];
        let reg = CustomRegistry::build([(0, &appmesh, series.as_slice())], &catalog);
        let keys: Vec<String> = reg
            .iter()
            .map(|(k, s)| {
                format!(
                    "{}/{} ns={} <- {}",
                    k.resource, k.metric, k.namespaced, s.series
                )
            })
            .collect();
        assert_eq!(
            keys,
            vec![
                "namespaces/appmesh_requests_per_second ns=false <- envoy_cluster_upstream_rq_xx",
                "pods/appmesh_requests_per_second ns=true <- envoy_cluster_upstream_rq_xx",
            ]
        );
        assert!(
            reg.get(
                &GroupResource::core("pods"),
                true,
                "appmesh_requests_per_second"
            )
            .is_some()
        );
        assert!(
            reg.get(
                &GroupResource::core("pods"),
                false,
                "appmesh_requests_per_second"
            )
            .is_none()
        );
        assert!(
            reg.get(
                &GroupResource::core("pods"),
                true,
                "Appmesh_requests_per_second"
            )
            .is_none()
        );

        let ext = ExternalRegistry::build([(3, &appmesh, series.as_slice())]);
        assert_eq!(ext.len(), 1);
        assert_eq!(
            ext.get("appmesh_requests_per_second"),
            Some(&MetricSource {
                series: "envoy_cluster_upstream_rq_xx".into(),
                rule: 3
            })
        );
    }

    #[test]
    fn group_resources() {
        assert_eq!(
            GroupResource::parse("deployments.apps"),
            GroupResource::new("apps", "deployments")
        );
        assert_eq!(
            GroupResource::parse("ingresses.networking.k8s.io"),
            GroupResource::new("networking.k8s.io", "ingresses")
        );
        assert_eq!(GroupResource::parse("pods").to_string(), "pods");
        assert_eq!(
            GroupResource::new("apps", "deployments").to_string(),
            "deployments.apps"
        );
        let catalog = ResourceCatalog::builtin();
        let pod = catalog
            .normalize(&GroupResource::core("Pod"))
            .expect("pods");
        assert_eq!(
            pod.object_reference("prod", "p").api_version,
            "/v1",
            "core kinds get a leading slash"
        );
        assert_eq!(
            catalog
                .normalize(&GroupResource::core("events"))
                .map(|i| i.group_resource.group.as_str()),
            Some(""),
            "core wins an ambiguous name"
        );
        assert!(
            catalog
                .normalize(&GroupResource::new("apps", "pods"))
                .is_none()
        );
        assert!(
            is_label_name("_a1")
                && !is_label_name("1a")
                && !is_label_name("a-b")
                && !is_label_name("")
        );
    }
}
