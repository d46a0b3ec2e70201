"""Plans to JSON-ready dicts and back, for the store (fan-outs stay compact)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from arvel_flow.queue.plan import (
    ChainNode,
    FanOutNode,
    ItemColumns,
    JobNode,
    Matrix,
    Node,
    Plan,
    make_batch,
)
from arvel_flow.queue.redaction import may_hold_secret, stored_params
from arvel_flow.queue.targets import JobRef

PLAN_FORMAT = 1


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The plan as JSON-ready data; a matrix is kept as its axes, not expanded."""
    data: dict[str, Any] = {
        "format": PLAN_FORMAT,
        "name": plan.name,
        "origin": plan.origin,
        "digest": plan.digest,
        "root": _node_to_dict(plan.root),
    }
    if plan.settings is not None:
        data["settings"] = dict(plan.settings)
    return data


def plan_from_dict(data: Mapping[str, Any]) -> Plan:
    """Read back what `plan_to_dict` wrote (a plan stored without settings has None)."""
    if data.get("format") != PLAN_FORMAT:
        raise ValueError(f"unsupported plan format {data.get('format')!r}")
    root = _node_from_dict(data["root"])
    assert not isinstance(root, FanOutNode)
    return Plan.of(
        data["name"],
        root,
        origin=data.get("origin"),
        digest=data.get("digest"),
        settings=data.get("settings"),
    )


def _optional(node: Node | None) -> dict[str, Any] | None:
    return None if node is None else _node_to_dict(node)


def _node_to_dict(node: Node | FanOutNode) -> dict[str, Any]:
    if isinstance(node, JobNode):
        return {"kind": "job", "key": node.key, "job": node.job.to_dict()}
    if isinstance(node, FanOutNode):
        items: Any
        if isinstance(node.items, Matrix):
            items = {"matrix": stored_params(node.items.axes)}
        elif isinstance(node.items, ItemColumns):
            items = {"columns": stored_params(node.items.columns)}
        else:
            items = [stored_params(item) if may_hold_secret(item) else item for item in node.items]
        return {"kind": "fanout", "key": node.key, "job": node.job.to_dict(), "items": items}
    if isinstance(node, ChainNode):
        return {
            "kind": "chain",
            "key": node.key,
            "steps": [_node_to_dict(s) for s in node.steps],
            "catch": _optional(node.catch),
            "finally": _optional(node.finally_),
        }
    return {
        "kind": "batch",
        "key": node.key,
        "name": node.name,
        "members": [_node_to_dict(m) for m in node.members],
        "allow_failures": node.allow_failures,
        "concurrency": node.concurrency,
        "then": _optional(node.then),
        "catch": _optional(node.catch),
        "finally": _optional(node.finally_),
    }


def _step(data: Mapping[str, Any] | None) -> Node | None:
    if data is None:
        return None
    node = _node_from_dict(data)
    assert not isinstance(node, FanOutNode)
    return node


def _node_from_dict(data: Mapping[str, Any]) -> Node | FanOutNode:
    kind, key = data["kind"], data["key"]
    if kind == "job":
        return JobNode(key, JobRef.from_dict(data["job"]))
    if kind == "fanout":
        raw = data["items"]
        items: Any = raw
        if isinstance(raw, dict):
            items = Matrix(raw["matrix"]) if "matrix" in raw else ItemColumns(raw["columns"])
        return FanOutNode(key, JobRef.from_dict(data["job"]), items)
    if kind == "chain":
        steps = tuple(s for s in (_step(d) for d in data["steps"]) if s is not None)
        return ChainNode(key, steps, catch=_step(data["catch"]), finally_=_step(data["finally"]))
    return make_batch(
        key,
        [_node_from_dict(m) for m in data["members"]],
        name=data["name"],
        allow_failures=data["allow_failures"],
        concurrency=data["concurrency"],
        then=_step(data["then"]),
        catch=_step(data["catch"]),
        finally_=_step(data["finally"]),
    )
