"""The servers of the two versions the tests run against, and how a test asks for both."""

from __future__ import annotations

import pytest

DEBIAN_NATS_SERVER = "/usr/sbin/nats-server"  # 2.9.10, the oldest server we support
VERSIONS = {"2.15": "nats_server", "2.9": "nats_29_server"}  # the session fixture of each

# A test of a version gate or of 2.9's own behaviour (a config the server fills in, an error
# it answers with) runs against the wheel's 2.15 and Debian's 2.9; without this mark the
# `server` fixture is 2.15 alone.
both_versions = pytest.mark.parametrize("server", list(VERSIONS), indirect=True)
