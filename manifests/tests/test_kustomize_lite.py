"""Unit tests of kustomize_lite, run by validate.py (and by `python -m unittest`)."""

from __future__ import annotations

import tempfile
import textwrap
import unittest
from pathlib import Path

import kustomize_lite as k

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  namespace: ns
  annotations:
    a/b: c
spec:
  template:
    spec:
      containers:
        - name: app
          args: [--x]
"""


class JsonPatch(unittest.TestCase):
    doc = {"a": {"b/c": 1, "list": [1, 2]}, "m": {"k": "v"}}

    def patch(self, *ops):
        return k.apply_json_patch(self.doc, list(ops), "test")

    def test_add_append_insert_replace_remove(self):
        out = self.patch(
            {"op": "add", "path": "/a/list/-", "value": 3},
            {"op": "add", "path": "/a/list/0", "value": 0},
            {"op": "replace", "path": "/a/b~1c", "value": 2},
            {"op": "remove", "path": "/m/k"},
            {"op": "add", "path": "/new", "value": {"x": 1}},
        )
        self.assertEqual(out, {"a": {"b/c": 2, "list": [0, 1, 2, 3]}, "m": {}, "new": {"x": 1}})
        self.assertEqual(self.doc["a"]["list"], [1, 2], "the input is not modified")

    def test_test_op(self):
        self.patch({"op": "test", "path": "/m/k", "value": "v"})
        with self.assertRaisesRegex(k.KustomizeError, "test failed"):
            self.patch({"op": "test", "path": "/m/k", "value": "w"})

    def test_errors(self):
        for op, message in [
            ({"op": "remove", "path": "/m/missing"}, "does not exist"),
            ({"op": "replace", "path": "/a/list/2", "value": 1}, "out of range"),
            ({"op": "add", "path": "/a/list/01", "value": 1}, "not an array index"),
            ({"op": "move", "from": "/a", "path": "/b"}, "unsupported op"),
            ({"op": "add", "path": "a", "value": 1}, "bad JSON pointer"),
            ({"op": "add", "path": "/a/b~1c/x", "value": 1}, "scalar"),
        ]:
            with self.subTest(op=op), self.assertRaisesRegex(k.KustomizeError, message):
                self.patch(op)


class Render(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)

    def tearDown(self):
        self.tmp.cleanup()

    def write(self, rel: str, text: str) -> None:
        path = self.dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))

    def base(self):
        self.write("base/deploy.yaml", DEPLOYMENT)
        self.write("base/kustomization.yaml", "resources: [deploy.yaml]\n")

    def test_component_and_patch_order(self):
        self.base()
        self.write("comp/kustomization.yaml", """\
            apiVersion: kustomize.config.k8s.io/v1alpha1
            kind: Component
            patches:
              - patch: '[{op: add, path: /spec/template/spec/containers/0/args/-, value: --y}]'
                target: {kind: Deployment, name: app}
            """)
        self.write("overlay/kustomization.yaml", """\
            resources: [../base]
            components: [../comp]
            patches:
              - patch: '[{op: remove, path: /metadata/annotations/a~1b}]'
                target: {kind: Deployment}
            """)
        [obj] = k.render(self.dir / "overlay")
        self.assertEqual(obj["spec"]["template"]["spec"]["containers"][0]["args"], ["--x", "--y"])
        self.assertNotIn("annotations", obj["metadata"], "an emptied annotations map is dropped, as kustomize does")

    def test_refusals(self):
        self.base()
        cases = {
            "namespace: x\nresources: [../base]\n": "unsupported kustomize feature",
            "resources: [../base, ../base]\n": "added twice",
            "resources: [https://example.com/x.yaml]\n": "remote resource",
            "resources: [../base]\npatches:\n  - patch: '{spec: {replicas: 2}}'\n    target: {kind: Deployment}\n": "strategic-merge",
            "resources: [../base]\npatches:\n  - patch: '[]'\n    target: {kind: Service}\n": "selects no object",
            "resources: [../base]\npatches:\n  - patch: '[]'\n    target: {kind: Deployment, name: 'a.*'}\n": "plain name",
            "resources: [../base]\npatches:\n  - patch: '[]'\n    target: {labelSelector: a=b}\n": "unsupported target field",
            "resources: [../base]\ncomponents: [../base]\n": "expected Component",
        }
        for text, message in cases.items():
            with self.subTest(text=text):
                self.write("o/kustomization.yaml", text)
                with self.assertRaisesRegex(k.KustomizeError, message):
                    k.render(self.dir / "o")

    def test_order_is_kubectl_kustomize_legacy_order(self):
        self.write("kustomization.yaml", "resources: [all.yaml]\n")
        self.write("all.yaml", """\
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: d}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: s}
            ---
            apiVersion: v1
            kind: Namespace
            metadata: {name: n}
            ---
            apiVersion: apiregistration.k8s.io/v1
            kind: APIService
            metadata: {name: a}
            """)
        self.assertEqual([o["kind"] for o in k.render(self.dir)], ["Namespace", "Service", "Deployment", "APIService"])


if __name__ == "__main__":
    unittest.main()
