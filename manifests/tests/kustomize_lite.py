"""A kustomize renderer for exactly the kustomize features manifests/ uses.

No kustomize release can be installed from the package registries a fresh machine of this
project reaches, so `make validate-manifests` renders with this module. It implements:

- `kind: Kustomization` (kustomize.config.k8s.io/v1beta1) with `resources` (files and
  directories) , `components` and `patches`;
- `kind: Component` (kustomize.config.k8s.io/v1alpha1) with the same three fields;
- `patches` entries with `path` or `patch` holding an RFC 6902 JSON patch (a YAML list of
  `add`, `remove`, `replace` and `test` operations) and a `target` selecting by `group`,
  `version`, `kind`, `name` and `namespace`.

Anything else (namePrefix, namespace, labels, generators, strategic-merge patches, remote
resources, replacements, ...) is refused with an error naming the feature, rather than
rendered differently from kustomize. Two deliberate strictnesses: a patch that selects no
object is an error (kustomize skips it silently), and so is a resource id added twice (as
in kustomize).

Where a real kustomize is on the machine (`kustomize` or `kubectl kustomize`), the
validation renders every overlay with both and requires identical objects.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SUPPORTED_FIELDS = {"apiVersion", "kind", "resources", "components", "patches"}
SUPPORTED_TARGET_FIELDS = {"group", "version", "kind", "name", "namespace"}
API_VERSIONS = {
    "Kustomization": "kustomize.config.k8s.io/v1beta1",
    "Component": "kustomize.config.k8s.io/v1alpha1",
}

# kubectl kustomize's default (legacy) output order.
ORDER_FIRST = [
    "Namespace", "ResourceQuota", "StorageClass", "CustomResourceDefinition",
    "ServiceAccount", "PodSecurityPolicy", "Role", "ClusterRole", "RoleBinding",
    "ClusterRoleBinding", "ConfigMap", "Secret", "Endpoints", "Service", "LimitRange",
    "PriorityClass", "PersistentVolume", "PersistentVolumeClaim", "Deployment",
    "StatefulSet", "CronJob", "PodDisruptionBudget",
]
ORDER_LAST = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]


class KustomizeError(Exception):
    pass


def object_id(obj: dict) -> tuple[str, str, str, str]:
    """(group, kind, namespace, name): kustomize's resource id, without the version."""
    api_version = obj.get("apiVersion", "")
    group = api_version.rsplit("/", 1)[0] if "/" in api_version else ""
    meta = obj.get("metadata") or {}
    return (group, obj.get("kind", ""), meta.get("namespace", "") or "", meta.get("name", ""))


def describe(obj: dict) -> str:
    group, kind, namespace, name = object_id(obj)
    where = f"{namespace}/" if namespace else ""
    return f"{kind}{'.' + group if group else ''} {where}{name}"


def _find_kustomization(directory: Path) -> Path:
    found = [directory / n for n in KUSTOMIZATION_FILES if (directory / n).is_file()]
    if not found:
        raise KustomizeError(f"{directory}: no kustomization.yaml")
    if len(found) > 1:
        raise KustomizeError(f"{directory}: more than one kustomization file")
    return found[0]


def _load_yaml_documents(path: Path) -> list[dict]:
    try:
        docs = list(yaml.safe_load_all(path.read_text()))
    except yaml.YAMLError as error:
        raise KustomizeError(f"{path}: not valid YAML: {error}") from None
    objects = []
    for doc in docs:
        if doc is None:
            continue
        if not isinstance(doc, dict) or "kind" not in doc or "apiVersion" not in doc:
            raise KustomizeError(f"{path}: every document must be an object with apiVersion and kind")
        if doc.get("kind") in API_VERSIONS and str(doc.get("apiVersion", "")).startswith("kustomize.config"):
            raise KustomizeError(f"{path}: a {doc['kind']} listed as a resource file; list its directory")
        objects.append(doc)
    return objects


def _load_kustomization(directory: Path, expected_kind: str) -> tuple[Path, dict]:
    path = _find_kustomization(directory)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise KustomizeError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise KustomizeError(f"{path}: not a mapping")
    unsupported = sorted(set(data) - SUPPORTED_FIELDS)
    if unsupported:
        raise KustomizeError(
            f"{path}: unsupported kustomize feature(s) {', '.join(unsupported)}; this renderer "
            f"supports only {', '.join(sorted(SUPPORTED_FIELDS - {'apiVersion', 'kind'}))} "
            "(manifests/tests/kustomize_lite.py)"
        )
    kind = data.get("kind", "Kustomization")
    if kind != expected_kind:
        raise KustomizeError(f"{path}: kind {kind}, expected {expected_kind} here")
    api_version = data.get("apiVersion", API_VERSIONS[kind])
    if api_version != API_VERSIONS[kind]:
        raise KustomizeError(f"{path}: apiVersion {api_version}, expected {API_VERSIONS[kind]}")
    for field in ("resources", "components", "patches"):
        value = data.get(field)
        if value is None:
            data[field] = []
        elif not isinstance(value, list):
            raise KustomizeError(f"{path}: {field} must be a list")
    return path, data


def _add(accumulated: list[dict], new: list[dict], origin: Path) -> None:
    seen = {object_id(o) for o in accumulated}
    for obj in new:
        oid = object_id(obj)
        if oid in seen:
            raise KustomizeError(f"{origin}: {describe(obj)} is added twice (already registered id)")
        seen.add(oid)
        accumulated.append(obj)


def _resolve(directory: Path, entry: Any, kustomization: Path) -> Path:
    if not isinstance(entry, str) or not entry:
        raise KustomizeError(f"{kustomization}: entries must be relative paths, got {entry!r}")
    if "://" in entry or entry.startswith(("github.com/", "git@")):
        raise KustomizeError(f"{kustomization}: remote resource {entry!r} is not supported")
    target = (directory / entry).resolve()
    if not target.exists():
        raise KustomizeError(f"{kustomization}: {entry} does not exist")
    return target


def _build(directory: Path, kind: str, accumulated: list[dict]) -> None:
    """Adds the resources of the Kustomization or Component at `directory` to
    `accumulated`, then applies its components and patches to everything there."""
    path, data = _load_kustomization(directory, kind)
    for entry in data["resources"]:
        target = _resolve(directory, entry, path)
        if target.is_dir():
            _add(accumulated, render(target), path)
        else:
            _add(accumulated, _load_yaml_documents(target), path)
    for entry in data["components"]:
        target = _resolve(directory, entry, path)
        if not target.is_dir():
            raise KustomizeError(f"{path}: component {entry} must be a directory")
        _build(target, "Component", accumulated)
    for index, patch in enumerate(data["patches"]):
        _apply_patch_entry(directory, path, index, patch, accumulated)


def render(directory: Path | str) -> list[dict]:
    """Renders the Kustomization at `directory`, in kubectl kustomize's output order."""
    directory = Path(directory).resolve()
    accumulated: list[dict] = []
    _build(directory, "Kustomization", accumulated)
    return sort_like_kustomize(accumulated)


def sort_like_kustomize(objects: list[dict]) -> list[dict]:
    def key(obj: dict):
        kind = obj.get("kind", "")
        if kind in ORDER_FIRST:
            rank = ORDER_FIRST.index(kind)
        elif kind in ORDER_LAST:
            rank = len(ORDER_FIRST) + 1 + ORDER_LAST.index(kind)
        else:
            rank = len(ORDER_FIRST)
        group, kind, namespace, name = object_id(obj)
        return (rank, obj.get("apiVersion", ""), kind, namespace, name)

    return sorted(objects, key=key)


def _apply_patch_entry(directory: Path, path: Path, index: int, entry: Any, accumulated: list[dict]) -> None:
    where = f"{path}: patches[{index}]"
    if not isinstance(entry, dict):
        raise KustomizeError(f"{where}: must be a mapping with path or patch, and target")
    extra = sorted(set(entry) - {"path", "patch", "target"})
    if extra:
        raise KustomizeError(f"{where}: unsupported field(s) {', '.join(extra)}")
    if ("path" in entry) == ("patch" in entry):
        raise KustomizeError(f"{where}: exactly one of path and patch")
    if "path" in entry:
        text = _resolve(directory, entry["path"], path).read_text()
    else:
        text = entry["patch"]
    try:
        operations = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise KustomizeError(f"{where}: not valid YAML: {error}") from None
    if not isinstance(operations, list):
        raise KustomizeError(
            f"{where}: only RFC 6902 JSON patches (a list of operations) are supported, "
            "not strategic-merge patches"
        )
    target = entry.get("target")
    if not isinstance(target, dict) or not target:
        raise KustomizeError(f"{where}: a JSON patch needs a target")
    extra = sorted(set(target) - SUPPORTED_TARGET_FIELDS)
    if extra:
        raise KustomizeError(f"{where}: unsupported target field(s) {', '.join(extra)}")
    for field, value in target.items():
        if not isinstance(value, str) or any(c in value for c in "*?[]()|^$+\\"):
            raise KustomizeError(f"{where}: target.{field} must be a plain name (no patterns)")
    matched = [obj for obj in accumulated if _matches(obj, target)]
    if not matched:
        raise KustomizeError(f"{where}: target {target} selects no object")
    for obj in matched:
        patched = apply_json_patch(obj, operations, f"{where} on {describe(obj)}")
        # kustomize (kyaml) drops metadata.annotations/labels a patch leaves empty.
        meta = patched.get("metadata") or {}
        for field in ("annotations", "labels"):
            if field in meta and meta[field] in ({}, None):
                del meta[field]
        obj.clear()
        obj.update(patched)


def _matches(obj: dict, target: dict) -> bool:
    api_version = obj.get("apiVersion", "")
    group, version = api_version.rsplit("/", 1) if "/" in api_version else ("", api_version)
    meta = obj.get("metadata") or {}
    actual = {
        "group": group,
        "version": version,
        "kind": obj.get("kind", ""),
        "name": meta.get("name", ""),
        "namespace": meta.get("namespace", "") or "",
    }
    return all(actual[field] == value for field, value in target.items())


def _pointer(path: Any, where: str) -> list[str]:
    if not isinstance(path, str) or (path and not path.startswith("/")):
        raise KustomizeError(f"{where}: bad JSON pointer {path!r}")
    if path == "":
        return []
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, tokens: list[str], where: str) -> Any:
    node = doc
    for token in tokens:
        if isinstance(node, dict):
            if token not in node:
                raise KustomizeError(f"{where}: path member {token!r} does not exist")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, where, allow_end=False)]
        else:
            raise KustomizeError(f"{where}: cannot descend into a scalar at {token!r}")
    return node


def _index(node: list, token: str, where: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(node)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise KustomizeError(f"{where}: {token!r} is not an array index")
    index = int(token)
    if index > len(node) or (index == len(node) and not allow_end):
        raise KustomizeError(f"{where}: index {index} out of range")
    return index


def apply_json_patch(doc: dict, operations: list, where: str) -> dict:
    """RFC 6902 add, remove, replace and test; returns a patched copy."""
    doc = copy.deepcopy(doc)
    for number, op in enumerate(operations):
        here = f"{where}, operation {number}"
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise KustomizeError(f"{here}: needs op and path")
        kind = op["op"]
        if kind not in ("add", "remove", "replace", "test"):
            raise KustomizeError(f"{here}: unsupported op {kind!r}")
        if kind in ("add", "replace", "test") and "value" not in op:
            raise KustomizeError(f"{here}: {kind} needs a value")
        tokens = _pointer(op["path"], here)
        if not tokens:
            raise KustomizeError(f"{here}: operations on the whole document are not supported")
        if kind == "test":
            if _walk(doc, tokens, here) != op["value"]:
                raise KustomizeError(f"{here}: test failed: {op['path']} is not {op['value']!r}")
            continue
        parent = _walk(doc, tokens[:-1], here)
        last = tokens[-1]
        value = copy.deepcopy(op.get("value"))
        if isinstance(parent, dict):
            if kind in ("remove", "replace") and last not in parent:
                raise KustomizeError(f"{here}: path member {last!r} does not exist")
            if kind == "remove":
                del parent[last]
            else:
                parent[last] = value
        elif isinstance(parent, list):
            index = _index(parent, last, here, allow_end=(kind == "add"))
            if kind == "add":
                parent.insert(index, value)
            elif kind == "remove":
                del parent[index]
            else:
                parent[index] = value
        else:
            raise KustomizeError(f"{here}: parent of {op['path']} is a scalar")
    return doc
