"""What the hostile-input tests send: values that have broken parsers elsewhere, and how many
examples Hypothesis tries."""

from __future__ import annotations

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])
NASTY = ["²", "①", "٣", "-1", "-0", "0x10", "1e400", "nan", "inf", "9" * 5000, "\x00",
         "a\x00b", "\u202e", "zero\u200bwidth", "1GB", "2m0s", "99999999999999999999ms",
         "9223372036854775808", "18446744073709551616", " ", "nats://[::1:4222", "<script>"]
VALUES = st.one_of(
    st.sampled_from(NASTY),
    st.text(max_size=40),
    st.text(alphabet=st.characters(categories=["Nd", "No", "Cf", "Cc", "Zs", "Po"]),
            max_size=8),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
)
