"""The pure stream definition: CLI-typed values, the form ⇄ API JSON mapping, server rules,
version gates and the edit rules."""

from __future__ import annotations

import pytest

from streams import cli_values, naming, system_streams
from streams import stream_config as sc
from streams.cli_values import NS, ParseError


@pytest.mark.parametrize(("text", "ns"), [
    ("2m0s", 120 * NS), ("2m", 120 * NS), ("1h30m", 5400 * NS), ("500ms", NS // 2),
    ("7d", 7 * 86400 * NS), ("1.5s", 3 * NS // 2), ("-1", 0), ("unlimited", 0), ("0", 0),
    ("1w", 7 * 86400 * NS), ("250us", 250_000),
])
def test_durations_parse_like_the_cli(text: str, ns: int) -> None:
    assert cli_values.parse_duration(text) == ns


@pytest.mark.parametrize("text", ["2 minutes", "10", "1x", "h1", "", "1m-3s"])
def test_bad_durations_are_refused_with_examples(text: str) -> None:
    with pytest.raises(ParseError, match="2m0s|duration"):
        cli_values.parse_duration(text)


@pytest.mark.parametrize(("ns", "text"), [
    (120 * NS, "2m0s"), (5400 * NS, "1h30m0s"), (NS // 2, "500ms"), (3 * NS // 2, "1.5s"),
    (7 * 86400 * NS, "168h0m0s"), (0, "0s"), (90 * NS, "1m30s"), (250_000, "250µs"),
])
def test_durations_print_like_go(ns: int, text: str) -> None:
    assert cli_values.format_duration(ns) == text
    assert cli_values.parse_duration(text) == ns  # what we print, we read back


def test_unlimited_ttl_prints_as_minus_one() -> None:
    assert cli_values.format_limit_duration(0) == "-1"
    assert cli_values.format_limit_duration(60 * NS) == "1m0s"


@pytest.mark.parametrize(("text", "size"), [
    ("1GB", 1 << 30), ("512MiB", 512 << 20), ("1024", 1024), ("-1", -1), ("1.5K", 1536),
    ("10 mb", 10 << 20), ("2g", 2 << 30), ("unlimited", -1),
])
def test_sizes_parse_like_the_cli(text: str, size: int) -> None:
    assert cli_values.parse_size(text) == size


@pytest.mark.parametrize("text", ["1.3B", "GB", "12 parsecs", "-5"])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(ParseError):
        cli_values.parse_size(text)


def test_sizes_print_in_the_largest_exact_unit() -> None:
    assert [cli_values.format_size(n) for n in (1 << 30, 512 << 20, 1024, 1000, -1)] == [
        "1GiB", "512MiB", "1KiB", "1000", "-1"]


def test_limits() -> None:
    assert cli_values.parse_limit("-1") == -1
    assert cli_values.parse_limit("1000") == 1000
    with pytest.raises(ParseError):
        cli_values.parse_limit("ten")


@pytest.mark.parametrize(("name", "fragment"), [
    ("has space", "space"), ("a.b", "."), ("a*", "*"), ("a>b", ">"), ("a/b", "/"),
    ("a\\b", "\\"), ("x" * 256, "255 bytes"), ("", "needs a name"),
])
def test_stream_names_follow_the_server(name: str, fragment: str) -> None:
    assert any(fragment in error for error in naming.name_errors(name))


def test_memphis_names_are_lowercase() -> None:
    assert naming.name_errors("Orders", memphis=False) == []
    assert "lowercase" in naming.name_errors("Orders", memphis=True)[0]


@pytest.mark.parametrize(("subject", "ok"), [
    ("foo", True), ("foo.*.bar", True), ("foo.>", True), ("foo.", False), (".foo", False),
    ("a..b", False), ("foo.>.bar", False), ("fo*", False), ("a b", False),
])
def test_subject_syntax(subject: str, ok: bool) -> None:
    assert (naming.subject_error(subject) == "") is ok


def test_system_streams_are_recognised() -> None:
    assert [system_streams.system_kind(n)
            for n in ("$memphis_dls", "$MEMPHIS_x", "KV_cfg", "OBJ_b", "orders")
            ] == ["memphis", "memphis", "kv", "objectstore", ""]


def seed_values(**overrides: object) -> dict[str, object]:
    """The seed's answers, as the form cleans them."""
    values: dict[str, object] = {
        "name": "argo_event_source", "subjects": ["foo"], "storage": "file", "num_replicas": 1,
        "retention": "limits", "discard": "old", "max_msgs": -1, "max_msgs_per_subject": -1,
        "max_bytes": -1, "max_age": 0, "max_msg_size": -1, "duplicate_window": 120 * NS,
        "allow_rollup_hdrs": False, "allow_delete": True, "allow_purge": True,
    }
    values.update(overrides)
    return values


def test_seed_answers_map_to_the_api_json() -> None:
    assert sc.to_config(seed_values()) == {
        "name": "argo_event_source", "subjects": ["foo"], "storage": "file", "num_replicas": 1,
        "retention": "limits", "discard": "old", "max_msgs": -1, "max_msgs_per_subject": -1,
        "max_bytes": -1, "max_age": 0, "max_msg_size": -1, "duplicate_window": 120 * NS,
        "allow_rollup_hdrs": False, "deny_delete": False, "deny_purge": False,
    }


def test_advanced_values_assemble_objects_and_skip_blanks() -> None:
    config = sc.to_config(seed_values(
        description="", subject_transform_src="foo", subject_transform_dest="bar",
        republish_src=">", republish_dest="copy.>", republish_headers_only=True,
        placement_cluster="", placement_tags=["ssd"], mirror="", sources=["a", "b"],
        metadata={"team": "ops"}, first_seq=None,
    ))
    assert config["subject_transform"] == {"src": "foo", "dest": "bar"}
    assert config["republish"] == {"src": ">", "dest": "copy.>", "headers_only": True}
    assert config["placement"] == {"tags": ["ssd"]}
    assert config["sources"] == [{"name": "a"}, {"name": "b"}]
    assert config["metadata"] == {"team": "ops"}
    assert not {"description", "mirror", "first_seq"} & config.keys()


def test_initial_values_round_trip_through_the_form_format() -> None:
    server = {"name": "s", "subjects": ["a", "b.>"], "max_bytes": 1 << 30, "max_age": 3600 * NS,
              "duplicate_window": 120 * NS, "deny_delete": True, "metadata":
              {"_nats.ver": "2.15.1", "team": "ops"}, "max_msgs": 10}
    initial = sc.to_initial(server)
    assert initial["subjects"] == "a, b.>"
    assert initial["max_bytes"] == "1GiB"
    assert initial["max_age"] == "1h0m0s"
    assert initial["duplicate_window"] == "2m0s"
    assert initial["allow_delete"] == "no"
    assert initial["allow_purge"] == "yes"
    assert initial["metadata"] == "team=ops"  # the server's own keys are not the user's
    assert initial["max_msgs"] == "10"


@pytest.mark.parametrize(("overrides", "field", "fragment"), [
    ({"max_age": 60 * NS}, "duplicate_window", "Message TTL"),
    ({"max_age": 50_000_000}, "max_age", "100ms"),
    ({"duplicate_window": 10_000_000}, "duplicate_window", "100ms"),
    ({"allow_rollup_hdrs": True, "allow_purge": False}, "allow_rollup_hdrs", "purging"),
    ({"num_replicas": 6}, "num_replicas", "1 to 5"),
    ({"subjects": ["a", "a"]}, "subjects", "twice"),
    ({"subjects": ["a..b"]}, "subjects", "empty token"),
    ({"mirror": "other"}, "subjects", "mirror"),
])
def test_server_rules(overrides: dict[str, object], field: str, fragment: str) -> None:
    errors = sc.rule_errors(sc.to_config(seed_values(**overrides)))
    assert any(fragment in message for message in errors[field]), errors


def test_the_seed_passes_every_rule() -> None:
    assert sc.rule_errors(sc.to_config(seed_values())) == {}


def test_memphis_rules() -> None:
    config = sc.to_config(seed_values(name="Argo", retention="workqueue"))
    errors = sc.rule_errors(config, memphis=True)
    assert "lowercase" in errors["name"][0]
    assert "work-queue" in errors["retention"][0]
    assert sc.rule_errors(config, memphis=False) == {}


def test_versions_gate_the_advanced_options() -> None:
    v29, v210, v211 = sc.parse_version("2.9.10"), sc.parse_version("2.10.3"), (2, 11, 0)
    assert sc.supported("allow_direct", v29)
    assert not sc.supported("compression", v29)
    assert sc.supported("compression", v210) and sc.supported("metadata", v210)
    assert not sc.supported("allow_msg_ttl", v210)
    assert sc.supported("subject_delete_marker_ttl", v211)
    assert sc.parse_version("") == sc.UNKNOWN_VERSION
    assert sc.parse_version("v2.15.1-RC.2") == (2, 15, 1)


def test_immutable_fields_depend_on_the_version_and_state() -> None:
    live = {"name": "s", "retention": "limits", "deny_purge": True}
    assert sc.read_only_reason("storage", live, (2, 15, 0))
    assert "2.10" in sc.read_only_reason("retention", live, (2, 9, 10))
    assert sc.read_only_reason("retention", live, (2, 10, 0)) == ""
    assert "2.12" in sc.read_only_reason("max_consumers", live, (2, 11, 0))
    assert sc.read_only_reason("max_consumers", live, (2, 12, 0)) == ""
    assert sc.read_only_reason("allow_purge", live, (2, 15, 0))
    assert sc.read_only_reason("allow_delete", live, (2, 15, 0)) == ""
    assert sc.read_only_reason("max_msgs", {**live, "sealed": True}, (2, 15, 0))


def test_diff_ignores_server_filled_defaults_and_apply_keeps_unknown_fields() -> None:
    live = {"name": "s", "subjects": ["a"], "max_msgs": -1, "duplicate_window": 120 * NS,
            "compression": "none", "allow_msg_counter": True,
            "metadata": {"_nats.ver": "2.15.1"}, "consumer_limits": {"max_ack_pending": 5}}
    desired = {"name": "s", "subjects": ["a"], "max_msgs": 1000, "duplicate_window": 120 * NS,
               "description": None, "metadata": None}
    keys = ["subjects", "max_msgs", "duplicate_window", "description", "metadata",
            "compression"]
    changes = sc.diff(live, desired, keys)
    assert changes == {"max_msgs": [-1, 1000]}
    updated = sc.apply(live, changes)
    assert updated["max_msgs"] == 1000
    assert updated["allow_msg_counter"] is True
    assert updated["consumer_limits"] == {"max_ack_pending": 5}
    assert updated["metadata"] == {"_nats.ver": "2.15.1"}


def test_conflicts_name_keys_changed_since_the_form_was_read() -> None:
    changes = {"max_msgs": [-1, 1000]}
    assert sc.conflicts({"max_msgs": -1}, changes) == []
    assert sc.conflicts({"max_msgs": 50}, changes) == ["max_msgs"]


def test_edit_rules_refuse_what_the_server_refuses() -> None:
    live = {"name": "s", "deny_delete": True, "retention": "limits", "num_replicas": 1,
            "duplicate_window": 120 * NS}
    wanted = {**live, "deny_delete": False, "retention": "workqueue"}
    errors = sc.rule_errors(wanted, current=live)
    assert "cannot be undone" in errors["allow_delete"][0]
    assert "limits ↔ interest" in errors["retention"][0]


def test_destruction_refusals() -> None:
    assert "sealed" in sc.destruction_refusal({"sealed": True}, "purged")
    assert "denies purging" in sc.destruction_refusal({"deny_purge": True}, "deleted")
    assert sc.destruction_refusal({}, "deleted") == ""


def test_a_lone_surrogate_is_measured_as_the_server_reads_it() -> None:
    # JSON's "\ud800" is half a UTF-16 pair, which UTF-8 cannot encode (this raised); the
    # server's decoder reads the 3 bytes of U+FFFD in its place.
    assert naming.name_errors("\ud800") == [
        "Invisible or direction-changing characters are not allowed: U+D800."]
    assert "At most 255 bytes." in naming.name_errors("x" * 253 + "\udc00")
    assert naming.utf8_size("a\ud800") == 4
