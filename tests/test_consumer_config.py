"""The consumer translator on its own: the CLI's values, the form ⇄ API mapping, the version
gates and the server's rules (what the server does with them is test_consumer_management's)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from streams import consumer_config as cc
from streams.cli_values import NS, ParseError

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
STREAM = {"name": "s", "subjects": ["s.*"], "num_replicas": 1, "retention": "limits"}


@pytest.mark.parametrize(("typed", "config", "shown"), [
    ("all", {"deliver_policy": "all"}, "all"),
    ("next", {"deliver_policy": "new"}, "new"),
    ("subject", {"deliver_policy": "last_per_subject"}, "subject"),
    ("42", {"deliver_policy": "by_start_sequence", "opt_start_seq": 42}, "42"),
    ("1h", {"deliver_policy": "by_start_time", "opt_start_time": "2026-05-01T11:00:00Z"},
     "2026-05-01 11:00:00"),
    ("2026-04-30 08:00:00", {"deliver_policy": "by_start_time",
                             "opt_start_time": "2026-04-30T08:00:00Z"}, "2026-04-30 08:00:00"),
])
def test_start_policies_parse_like_the_cli_and_print_back(
    typed: str, config: dict[str, object], shown: str,
) -> None:
    assert cc.parse_start_policy(typed, now=NOW) == config
    assert cc.format_start_policy(config) == shown
    assert cc.parse_start_policy(shown, now=NOW) == config  # what an edit form sends back


def test_server_times_with_nanoseconds_are_read() -> None:
    assert cc.parse_time("2026-05-01T11:00:00.123456789Z") == datetime(
        2026, 5, 1, 11, 0, 0, 123456, tzinfo=UTC)
    with pytest.raises(ParseError):
        cc.parse_time("yesterday")


def test_filters_map_to_one_key_or_the_list_and_last_per_subject_gets_all() -> None:
    base = {"durable_name": "c", "start_policy": {"deliver_policy": "all"}}
    assert cc.to_config({**base, "filter_subjects": ["a"]})["filter_subject"] == "a"
    assert cc.to_config({**base, "filter_subjects": ["a", "b"]})["filter_subjects"] == ["a", "b"]
    subject = cc.to_config({**base, "start_policy": {"deliver_policy": "last_per_subject"},
                            "filter_subjects": []})
    assert subject["filter_subject"] == ">"
    # Left empty or zero: the server's defaults apply, so nothing is sent.
    assert "max_ack_pending" not in cc.to_config({**base, "max_ack_pending": 0})


def test_options_are_offered_from_the_version_that_has_them() -> None:
    assert not cc.supported("metadata", (2, 9, 10)) and cc.supported("metadata", (2, 10, 0))
    assert not cc.supported("pause_until", (2, 10, 9)) and cc.supported("pause_until", (2, 11, 0))
    assert ("prioritized", "prioritized") not in cc.priority_choices((2, 11, 0))
    assert ("prioritized", "prioritized") in cc.priority_choices((2, 12, 0))
    assert cc.pause_refusal((2, 9, 10)) and not cc.pause_refusal((2, 11, 0))
    several = {"durable_name": "c", "filter_subjects": ["a", "b"]}
    assert "filter_subjects" in cc.rule_errors(several, stream=STREAM, version=(2, 9, 10))
    assert not cc.rule_errors(several, stream=STREAM, version=(2, 10, 0))


def test_what_may_change_follows_the_server() -> None:
    pull = {"durable_name": "c", "ack_policy": "explicit"}
    push = {**pull, "deliver_subject": "in.box"}
    for field in ("durable_name", "start_policy", "ack_policy", "replay_policy",
                  "idle_heartbeat", "flow_control", "max_waiting", "mem_storage"):
        assert cc.read_only_reason(field, pull, (2, 15, 0)), field
    assert cc.read_only_reason("deliver_subject", pull, (2, 15, 0))
    assert not cc.read_only_reason("deliver_subject", push, (2, 15, 0))
    assert cc.read_only_reason("max_batch", push, (2, 15, 0))
    assert cc.read_only_reason("filter_subjects", pull, (2, 9, 10))
    for field in ("filter_subjects", "max_deliver", "backoff", "description", "metadata",
                  "max_ack_pending", "num_replicas", "headers_only"):
        assert not cc.read_only_reason(field, pull, (2, 15, 0)), field


def test_an_edit_keeps_the_servers_metadata_and_what_it_does_not_change() -> None:
    current = {"durable_name": "c", "max_deliver": 5, "sample_freq": "50%",
               "metadata": {"_nats.level": "1", "team": "a"}, "unknown_later": True}
    desired = {"durable_name": "c", "max_deliver": 6, "sample_freq": "50",
               "metadata": {"team": "b"}}
    changes = cc.diff(current, desired, ["max_deliver", "sample_freq", "metadata"])
    assert changes == {"max_deliver": [5, 6], "metadata": [current["metadata"], {"team": "b"}]}
    updated = cc.apply(current, changes)
    assert updated["metadata"] == {"_nats.level": "1", "team": "b"}
    assert updated["unknown_later"] is True and updated["sample_freq"] == "50%"
    assert cc.conflicts({**current, "max_deliver": 9}, changes) == ["max_deliver"]


def test_a_backoff_sets_the_ack_wait() -> None:
    config = {"durable_name": "c", "backoff": [NS, 2 * NS], "ack_wait": 30 * NS}
    assert "ack_wait" in cc.rule_errors(config, stream=STREAM, version=(2, 15, 0))
    # An edit that only changes the steps leaves the server to take the new first one.
    current = {**config, "backoff": [5 * NS], "ack_wait": 30 * NS}
    assert "ack_wait" not in cc.rule_errors(config, stream=STREAM, version=(2, 15, 0),
                                            current=current)


def test_texts_with_a_lone_surrogate_are_measured_as_the_server_reads_them() -> None:
    # Each lone surrogate counts as the 3 bytes of U+FFFD: measuring them raised before.
    errors = cc.rule_errors({"durable_name": "\ud800", "description": "\udc00" * 1366,
                             "metadata": {"k": "\ud800" * 43_691}}, stream=STREAM,
                            version=(2, 11, 0))
    assert errors == {
        "durable_name": ["Invisible or direction-changing characters are not allowed: U+D800."],
        "description": ["At most 4096 bytes."],
        "metadata": ["At most 128 KiB of keys and values."]}
