"""What applying desired stream configs to a broker would do, stream by stream: create, update
which fields (old → new), nothing, or delete; and what the server would refuse, with its
reason, before anything runs. Pure: no database, no broker.

Configs are compared as the server means them (definitions.normalise), so the defaults it fills
in and its own spelling are never a change. A stream with a refused change is not applied at
all: the server refuses the whole request, and half a definition is not what anyone asked for."""

from __future__ import annotations

from collections import Counter
from typing import Any, NotRequired, TypedDict

from streams import definitions, stream_config, system_streams

Config = dict[str, Any]

CREATE, UPDATE, UNCHANGED, DELETE = "create", "update", "unchanged", "delete"


class Step(TypedDict):
    name: str
    action: str  # CREATE, UPDATE, UNCHANGED or DELETE
    changes: dict[str, list[Any]]  # UPDATE: {api_key: [live, desired]}
    refused: dict[str, str]  # {api_key or form field: why the server would refuse it}
    # UPDATE, DELETE: the stream the plan saw (stream_config.sighting), the only one it acts on;
    # a deletion's with its whole config and last sequence.
    seen: NotRequired[dict[str, Any]]


def steps(desired: dict[str, Config], live: dict[str, dict[str, Any]], *,
          version: stream_config.Version, cluster_size: int, memphis: bool = False,
          delete_missing: bool = False) -> list[Step]:
    """The plan, by stream name. `live` has the infos (STREAM.INFO answers) of the desired
    streams that exist, and with `delete_missing` of every stream on the server: those not
    desired are deleted, except the ones the dashboard keeps read-only (Memphis's own, KV and
    object stores)."""
    planned = [_step(name, config, live.get(name), version=version,
                     cluster_size=cluster_size, memphis=memphis)
               for name, config in desired.items()]
    if delete_missing:
        planned += [_deletion(name, info) for name, info in live.items()
                    if name not in desired and not system_streams.system_kind(name)]
    return sorted(planned, key=lambda step: step["name"])


def _step(name: str, config: Config, info: dict[str, Any] | None, *,
          version: stream_config.Version, cluster_size: int, memphis: bool) -> Step:
    config = {**config, "name": name}
    if info is None:
        refused = _first(stream_config.rule_errors(config, memphis=memphis))
        refused.update(_replicas(config, cluster_size))
        return Step(name=name, action=CREATE, changes={}, refused=refused)
    current = info["config"]
    changes = {key: [live, wanted]
               for key, (wanted, live) in definitions.drift(config, current).items()}
    if not changes:
        return Step(name=name, action=UNCHANGED, changes={}, refused={})
    refused: dict[str, str] = {}
    fields = {stream_config.FIELD_OF_KEY.get(key, key): key for key in changes}
    for field, key in fields.items():
        if reason := stream_config.read_only_reason(field, current, version):
            refused[key] = reason
    errors = stream_config.rule_errors(stream_config.apply(current, changes), memphis=memphis,
                                       current=current)
    for field, messages in errors.items():
        key = fields.get(field)
        if key is not None and key not in refused:
            refused[key] = messages[0]
    if "num_replicas" in changes:
        refused.update(_replicas(config, cluster_size))
    return Step(name=name, action=UPDATE, changes=changes, refused=refused,
                seen=stream_config.sighting(info, config=False))


def _deletion(name: str, info: dict[str, Any]) -> Step:
    refusal = stream_config.destruction_refusal(info["config"], "deleted")
    return Step(name=name, action=DELETE, changes={},
                refused={"name": refusal} if refusal else {},
                seen=stream_config.sighting(info, state=True))


def _first(errors: dict[str, list[str]]) -> dict[str, str]:
    return {stream_config.API_KEY.get(field, field): messages[0]
            for field, messages in errors.items()}


def _replicas(config: Config, cluster_size: int) -> dict[str, str]:
    replicas = config.get("num_replicas") or 1
    if replicas <= cluster_size:
        return {}
    if cluster_size == 1:
        return {"num_replicas": f"Replication {replicas} needs a cluster: this server is not "
                                "clustered (error 10074)."}
    return {"num_replicas": f"Replication {replicas} needs {replicas} servers: the cluster "
                           f"has {cluster_size} (error 10005)."}


def runnable(step: Step, *, deletes_confirmed: bool) -> bool:
    """Whether apply sends anything for this step."""
    if step["refused"] or step["action"] == UNCHANGED:
        return False
    return step["action"] != DELETE or deletes_confirmed


def counts(planned: list[Step]) -> dict[str, int]:
    """How many streams each action concerns; refused ones are counted apart."""
    tally = Counter("refused" if step["refused"] else step["action"] for step in planned)
    return {key: tally.get(key, 0) for key in (CREATE, UPDATE, DELETE, UNCHANGED, "refused")}


def change_rows(step: Step) -> list[tuple[str, str, str, str]]:
    """An update's rows for the screen, in form labels: (label, live, desired, refusal)."""
    return [(stream_config.label_of_key(key), stream_config.format_value(key, old),
             stream_config.format_value(key, new), step["refused"].get(key, ""))
            for key, (old, new) in step["changes"].items()]
