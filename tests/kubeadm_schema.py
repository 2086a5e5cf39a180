"""Check kubeadm, kubelet and kube-proxy config documents against known field trees.

The field trees live in ``tests/data/kubeadm_api.json``, keyed by apiVersion and
then kind. They were written by hand from the json tags of the Kubernetes Go
types (sources are listed under its ``_sources`` key). A tree is a mapping of
json field name to either a nested tree, ``{"[]": tree}`` (a list of structs),
``{"map": tree}`` (a map of structs) or a leaf type name such as ``"string"``.

``check_document`` and ``check_stream`` return a list of problems; an empty list
means the document only uses known fields, in the right places, with the right
container shapes and loosely right scalar types.
"""

from __future__ import annotations

import datetime
import json
from functools import cache
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

DATA_FILE = Path(__file__).parent / "data" / "kubeadm_api.json"


@cache
def load_api() -> dict[str, Any]:
    """Return the parsed field-tree data (cached)."""
    with DATA_FILE.open(encoding="utf-8") as f:
        data: dict[str, Any] = json.load(f)
    return data


def _kind_of(value: Any) -> str:
    """Name the shape of a loaded YAML value for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    if isinstance(value, datetime.date):
        return "timestamp"
    return type(value).__name__


def _describe(spec: Any) -> str:
    """Name what a spec expects, e.g. 'list of {name, value}'."""
    if isinstance(spec, str):
        return spec
    if "[]" in spec:
        return f"list of {_describe_item(spec['[]'])}"
    if "map" in spec:
        return f"mapping of {_describe_item(spec['map'])}"
    return "mapping"


def _describe_item(spec: Any) -> str:
    if isinstance(spec, dict) and "[]" not in spec and "map" not in spec:
        return "{" + ", ".join(spec) + "}"
    return _describe(spec)


def _scalar_ok(leaf: str, value: Any) -> bool:
    """Loose type check of a scalar leaf (booleans are never numbers)."""
    if leaf == "any":
        return True
    if leaf in ("string", "duration"):
        return isinstance(value, str)
    if leaf == "time":
        return isinstance(value, str | datetime.date)
    if leaf == "bool":
        return isinstance(value, bool)
    if leaf == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if leaf == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if leaf == "quantity":
        return isinstance(value, str | int | float) and not isinstance(value, bool)
    raise ValueError(f"unknown leaf type {leaf!r} in {DATA_FILE.name}")


def _check_leaf(leaf: str, value: Any, path: str) -> list[str]:
    """Check a leaf; handles '[]T' and 'map[string]T' leaf forms."""
    if leaf.startswith("[]"):
        if not isinstance(value, list):
            return [f"{path}: expected {leaf}, got {_kind_of(value)}"]
        items = enumerate(value)
        return [p for i, v in items for p in _check_leaf(leaf[2:], v, f"{path}[{i}]")]
    if leaf.startswith("map[string]"):
        if not isinstance(value, dict):
            return [f"{path}: expected {leaf}, got {_kind_of(value)}"]
        inner = leaf[len("map[string]") :]
        return [p for k, v in value.items() for p in _check_leaf(inner, v, f"{path}.{k}")]
    if not _scalar_ok(leaf, value):
        return [f"{path}: expected {leaf}, got {_kind_of(value)}"]
    return []


def _check(spec: Any, value: Any, path: str) -> list[str]:
    """Check ``value`` against ``spec``; ``path`` names the value in messages."""
    if value is None:  # JSON null is accepted for any Go field
        return []
    if isinstance(spec, str):
        return _check_leaf(spec, value, path)
    if "[]" in spec:
        if not isinstance(value, list):
            return [f"{path}: expected {_describe(spec)}, got {_kind_of(value)}"]
        return [p for i, v in enumerate(value) for p in _check(spec["[]"], v, f"{path}[{i}]")]
    if not isinstance(value, dict):
        return [f"{path}: expected {_describe(spec)}, got {_kind_of(value)}"]
    if "map" in spec:
        return [p for k, v in value.items() for p in _check(spec["map"], v, f"{path}.{k}")]
    problems: list[str] = []
    for key, item in value.items():
        if not isinstance(key, str):
            problems.append(f"{path}.{key}: field name is not a string")
        elif key not in spec:
            problems.append(f"{path}.{key}: unknown field")
        else:
            problems.extend(_check(spec[key], item, f"{path}.{key}"))
    return problems


def check_document(doc: dict[str, Any]) -> list[str]:
    """Return the problems found in one loaded config document."""
    if not isinstance(doc, dict):
        return [f"document: expected mapping, got {_kind_of(doc)}"]
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if not isinstance(kind, str) or not kind:
        return ["document: missing or invalid kind"]
    if not isinstance(api_version, str) or not api_version:
        return [f"{kind}: missing or invalid apiVersion"]
    kinds = load_api().get(api_version) if not api_version.startswith("_") else None
    if kinds is None:
        return [f"{kind}: unknown apiVersion {api_version!r}"]
    if kind not in kinds:
        return [f"{kind}: unknown kind for {api_version} (known: {', '.join(kinds)})"]
    return _check(kinds[kind], doc, kind)


def check_stream(text: str) -> list[str]:
    """Return the problems found in a multi-document YAML string.

    Each problem is prefixed with the 1-based document number; empty documents
    are skipped.
    """
    try:
        docs = list(YAML(typ="safe", pure=True).load_all(text))
    except YAMLError as exc:
        return [f"YAML error: {exc}"]
    problems: list[str] = []
    for number, doc in enumerate(docs, start=1):
        if doc is None:
            continue
        problems.extend(f"document {number}: {p}" for p in check_document(doc))
    return problems
