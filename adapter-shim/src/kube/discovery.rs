//! API discovery: the resource types the cluster serves, at their preferred versions.

use futures_util::future::join_all;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{APIResource, APIResourceList};

use super::KubeError;
use crate::naming::{GroupResource, ResourceInfo};

/// Groups not read: the metrics APIs the shim itself serves (their "resources" are
/// `pods/<metric>` entries, never object types), so discovery does not call back into the
/// shim through the aggregator.
const SKIPPED_GROUPS: &[&str] = &["custom.metrics.k8s.io", "external.metrics.k8s.io"];

/// Every resource type the cluster serves (core `v1` and each group's preferred version),
/// without subresources (`pods/status`, `deployments/scale`), CRDs included. The
/// `custom.metrics.k8s.io` and `external.metrics.k8s.io` groups are not read.
///
/// A group whose resource list fails (an unavailable aggregated API, as the metrics APIs
/// sometimes are) is skipped with a warning; only a failure of the core or group list is
/// an error.
///
/// # Errors
/// [`KubeError::Api`] when `/api` or `/apis` cannot be read.
pub async fn discover_resources(client: &kube::Client) -> Result<Vec<ResourceInfo>, KubeError> {
    let core = client
        .list_core_api_versions()
        .await
        .map_err(|e| KubeError::api(&e))?;
    let groups = client
        .list_api_groups()
        .await
        .map_err(|e| KubeError::api(&e))?;

    let mut out = Vec::new();
    if let Some(version) = core
        .versions
        .iter()
        .find(|v| *v == "v1")
        .or(core.versions.first())
    {
        let list = client
            .list_core_api_resources(version)
            .await
            .map_err(|e| KubeError::api(&e))?;
        out.extend(resources_of(&list, ""));
    }

    let preferred: Vec<(String, String)> = groups
        .groups
        .iter()
        .filter(|g| !SKIPPED_GROUPS.contains(&g.name.as_str()))
        .filter_map(|g| {
            let gv = g
                .preferred_version
                .as_ref()
                .or(g.versions.first())?
                .group_version
                .clone();
            Some((g.name.clone(), gv))
        })
        .collect();
    let lists = join_all(
        preferred
            .iter()
            .map(|(_, gv)| client.list_api_group_resources(gv)),
    )
    .await;
    for ((group, gv), list) in preferred.iter().zip(lists) {
        match list {
            Ok(list) => out.extend(resources_of(&list, group)),
            Err(e) => tracing::warn!(
                group_version = %gv,
                error = %super::describe_error(&e),
                "API discovery skipped a group version"
            ),
        }
    }
    Ok(out)
}

/// The resources of one APIResourceList, subresources dropped.
fn resources_of(list: &APIResourceList, group: &str) -> Vec<ResourceInfo> {
    let version = list
        .group_version
        .rsplit_once('/')
        .map_or(list.group_version.as_str(), |(_, v)| v);
    list.resources
        .iter()
        .filter(|r| !r.name.contains('/') && !r.name.is_empty() && !r.kind.is_empty())
        .map(|r| resource_info(r, group, version))
        .collect()
}

fn resource_info(r: &APIResource, group: &str, version: &str) -> ResourceInfo {
    let group = r
        .group
        .as_deref()
        .filter(|g| !g.is_empty())
        .unwrap_or(group);
    let version = r
        .version
        .as_deref()
        .filter(|v| !v.is_empty())
        .unwrap_or(version);
    let singular = if r.singular_name.is_empty() {
        r.kind.to_ascii_lowercase()
    } else {
        r.singular_name.clone()
    };
    ResourceInfo {
        group_resource: GroupResource::new(group, &r.name),
        version: version.to_owned(),
        singular,
        kind: r.kind.clone(),
        namespaced: r.namespaced,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(name: &str, singular: &str, kind: &str, namespaced: bool) -> APIResource {
        APIResource {
            name: name.into(),
            singular_name: singular.into(),
            kind: kind.into(),
            namespaced,
            verbs: vec!["get".into(), "list".into()],
            ..APIResource::default()
        }
    }

    #[test]
    fn subresources_are_dropped_and_singulars_filled_in() {
        let list = APIResourceList {
            group_version: "stable.example.com/v1".into(),
            resources: vec![
                res("crontabs", "crontab", "CronTab", true),
                res("crontabs/status", "", "CronTab", true),
                res("widgets", "", "Widget", false),
            ],
        };
        let got = resources_of(&list, "stable.example.com");
        assert_eq!(
            got,
            vec![
                ResourceInfo {
                    group_resource: GroupResource::new("stable.example.com", "crontabs"),
                    version: "v1".into(),
                    singular: "crontab".into(),
                    kind: "CronTab".into(),
                    namespaced: true,
                },
                ResourceInfo {
                    group_resource: GroupResource::new("stable.example.com", "widgets"),
                    version: "v1".into(),
                    singular: "widget".into(),
                    kind: "Widget".into(),
                    namespaced: false,
                },
            ]
        );
    }

    #[test]
    fn core_group_version_is_plain() {
        let list = APIResourceList {
            group_version: "v1".into(),
            resources: vec![res("pods", "pod", "Pod", true)],
        };
        let got = resources_of(&list, "");
        assert_eq!(got[0].group_resource, GroupResource::core("pods"));
        assert_eq!(got[0].version, "v1");
    }
}
