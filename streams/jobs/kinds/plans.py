"""Plan jobs: work out a plan's steps from the live configs, and apply them (recording as it
goes, for thousands of streams)."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from django.db import transaction
from django.utils import timezone

from streams import audit, definitions, stream_config
from streams.broker import streams as broker_streams
from streams.broker.connection import Connection
from streams.errors import OperationError, Stopped
from streams.jobs.kinds.base import Kind, Result
from streams.models import (
    AuditEvent,
    BrokerKind,
    Job,
    JobKind,
    Plan,
    Profile,
    Stream,
    StreamDefinition,
)
from streams.plans import steps as planning


class PlanChanges(Kind):
    """Read the live configs a plan concerns and work out its steps (streams.plans.steps)."""

    kind = JobKind.STREAM_PLAN
    done = "read from the broker"

    def call(self, job: Job, conn: Connection) -> Result:
        plan = Plan.objects.get(pk=job.params["plan"])
        if plan.delete_missing:  # every stream, to find those the plan does not want
            read = broker_streams.list_streams(conn)
            infos = read.pop("streams")
        else:
            read = broker_streams.stream_infos(conn, list(plan.desired))
            infos = read.pop("infos")
        steps = planning.steps(
            plan.desired, {info["config"]["name"]: info for info in infos},
            version=stream_config.parse_version(read["server_version"]),
            cluster_size=read["cluster_size"],
            memphis=job.profile.broker_kind == BrokerKind.MEMPHIS,
            delete_missing=plan.delete_missing)
        return {**read, "steps": steps, "counts": planning.counts(steps)}

    def record(self, job: Job, result: Result | None,
               error: OperationError | None) -> list[AuditEvent]:
        if result is not None:
            Plan.objects.filter(pk=job.params["plan"]).update(steps=result["steps"])
            Profile.objects.note_version(job.profile, result.get("server_version"))
        return []

    def summary(self, result: Result) -> Result:
        return {key: value for key, value in result.items() if key != "steps"}

    def describe(self, job: Job, result: Result) -> str:
        return "plan: " + ", ".join(f"{count} {action}"
                                    for action, count in result["counts"].items())


# What each of apply's operations is in the audit log.
_APPLY_ACTIONS = {"create": "stream.created", "update": "stream.changed",
                  "delete": "stream.deleted"}


class ApplyPlan(Kind):
    """Run a plan's steps concurrently on the broker and record each stream's outcome as it
    comes (its definition, its row, its audit entry, the plan and the job's progress), so a
    worker lost halfway leaves every change it made recorded, and a retried job goes on from
    where it stopped. Deletions run only when the apply was confirmed. Asked to stop (Job.cancel)
    it starts no other stream, lets those under way finish, and fails saying which ran, as an
    interrupted `terraform apply` does: the plan marks the rest "not run"."""

    kind = JobKind.STREAM_APPLY
    done = "applied on the broker"

    def call(self, job: Job, conn: Connection) -> Result:
        plan = Plan.objects.get(pk=job.params["plan"])
        todo = [step for step in plan.steps or [] if planning.runnable(
            step, deletes_confirmed=job.params.get("deletes_confirmed", False))]
        ops = [_op(plan, step) for step in todo
               if plan.outcomes.get(step["name"], {}).get("outcome", "failed") == "failed"]
        # A plan deletes streams that had no definition: one adopted since is managed now.
        adopted = set(StreamDefinition.objects.filter(
            profile_id=job.profile_id, name__in=[op["name"] for op in ops if op["op"] == "delete"],
        ).values_list("name", flat=True))
        if adopted:
            with transaction.atomic():
                self._record(job, plan, [
                    {"name": name, "op": "delete", "err_code": None,
                     "error": "given a definition since the plan was made: plan again"}
                    for name in sorted(adopted)])
            ops = [op for op in ops if op["name"] not in adopted]
        done = len(todo) - len(ops)
        job.note_progress(done, len(todo))
        stop = threading.Event()
        if job.cancel_asked():  # between its claim and now
            stop.set()
        for batch in broker_streams.apply_streams(conn, ops, stop):
            done += len(batch)
            with transaction.atomic():
                self._record(job, plan, batch)
                job.note_progress(done, len(todo))
            if not stop.is_set() and job.cancel_asked():
                stop.set()
        not_run = [step["name"] for step in todo if step["name"] not in plan.outcomes]
        if not_run:
            plan.outcomes.update((name, NOT_RUN) for name in not_run)
            Plan.objects.filter(pk=plan.pk).update(outcomes=plan.outcomes)
        tally = Counter(plan.outcomes[step["name"]]["outcome"] for step in todo)
        if not_run:
            raise Stopped(_stopped(tally, len(todo), not_run))
        return {"total": len(todo), **tally}

    def _record(self, job: Job, plan: Plan, batch: list[Result]) -> None:
        now = timezone.now()
        context = audit.Context.of_job(job)
        configs: dict[str, dict[str, Any]] = {}
        stream_rows, gone, entries = [], [], []
        for answer in batch:
            name, op = answer["name"], answer["op"]
            outcome, entry = _applied(op, answer)
            plan.outcomes[name] = {"outcome": outcome, "message": answer["error"],
                                   "err_code": answer["err_code"]}
            if entry is not None:
                entries.append(AuditEvent.objects.entry(
                    _APPLY_ACTIONS[op], context, target_type="stream", target_name=name,
                    profile=job.profile, job=job,
                    outcome="failed" if answer["error"] else "succeeded",
                    message=answer["error"] or f"{outcome} by plan #{plan.pk}", **entry))
            if answer["error"]:
                continue
            if op == "delete":
                gone.append(name)
            else:
                configs[name] = answer["info"]["config"]
                stream_rows.append(Stream.objects.row(job.profile_id, answer["info"], now,
                                                      definition=configs[name]))
        StreamDefinition.objects.store(job, configs)
        Stream.objects.store(stream_rows)
        Stream.objects.filter(profile_id=job.profile_id, name__in=gone).delete()
        StreamDefinition.objects.filter(profile_id=job.profile_id, name__in=gone).delete()
        AuditEvent.objects.append(entries)
        Plan.objects.filter(pk=plan.pk).update(outcomes=plan.outcomes)

    def describe(self, job: Job, result: Result) -> str:
        return ", ".join(f"{count} {outcome}" for outcome, count in result.items()
                         if outcome != "total") or "nothing to do"


# A step an apply asked to stop never started.
NOT_RUN = {"outcome": "not run", "message": "the apply was stopped before it", "err_code": None}


def _stopped(tally: Counter[str], total: int, not_run: list[str]) -> str:
    ran = ", ".join(f"{count:,} {outcome}" for outcome, count in tally.items()
                    if outcome != NOT_RUN["outcome"])
    names = ", ".join(not_run[:5]) + (f" and {len(not_run) - 5:,} more" if len(not_run) > 5
                                      else "")
    return (f"stopped on request after {total - len(not_run):,} of {total:,} streams"
            f"{f' ({ran})' if ran else ''}; not run: {names}. Plan again to apply the rest.")


def _op(plan: Plan, step: planning.Step) -> dict[str, Any]:
    name, action = step["name"], step["action"]
    if action == planning.CREATE:
        return {"name": name, "op": "create", "config": {**plan.desired[name], "name": name}}
    if action == planning.UPDATE:
        return {"name": name, "op": "update", "changes": step["changes"], "seen": step.get("seen")}
    return {"name": name, "op": "delete", "seen": step.get("seen")}


def _applied(op: str, answer: Result) -> tuple[str, dict[str, Any] | None]:
    """A stream's outcome in one word, and what its audit entry carries (None: no entry,
    because nothing changed)."""
    if answer["error"]:
        return "failed", {}
    if op == "create":
        config = answer["info"]["config"]
        return ("created", {"after": config}) if answer["created"] else ("unchanged", None)
    if op == "update":
        if not answer["applied"]:
            return "unchanged", None
        before, after = answer["before"], answer["info"]["config"]
        return "updated", {"before": before, "after": after,
                           "changes": definitions.drift(before, after)}
    return ("deleted", {"before": answer["before"]}) if answer["deleted"] else ("gone", None)
