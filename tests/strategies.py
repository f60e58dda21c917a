"""The one Hypothesis strategy for "any JSON a server could send", shared by the
adapter tests and the property tests (not collected: no ``test_`` prefix).

Arbitrary JSON plus the values that have broken parsers before, with object keys
drawn partly from the names the adapters look for, so that nearly-right pages
come up as often as random ones.
"""

from __future__ import annotations

from hypothesis import strategies as st

# Strings that have broken date and count parsers before: out-of-range years after
# a time-zone shift, odd digits, signs, exponents, whitespace, NUL.
TRICKY_TEXT = ["", " ", "0", "-0", "+5", "1e3", "62.0", "62.5", "٣", "NaN", "inf", "0x10", "9" * 30, "9" * 5000, "0" * 5000 + "7",
               "2022-12-01", "2022-13-01", "2022-02-30", "0000-01-01", "9999-12-31", "9999-12-31T23:00:00-05:00",
               "0001-01-01T00:00:00+05:00", "2022-12-01T00:00:00.000Z", "2022-12-01T24:00:00Z", "2022-12-01\x00",
               "\u202e2022-12-01", "12/01/2022", "2022-W48-4", "[bold]x[/]"]
TRICKY_NUMBERS = [0, -1, 2**63 - 1, 2**63, 2**64 + 5, -(2**63), 10**30, 0.5, 62.0, -0.0, 1e308,
                  float("inf"), float("nan"), True, False, 253402300800, -62135596801]

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30), st.sampled_from(TRICKY_TEXT), st.sampled_from(TRICKY_NUMBERS),
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=5),
                               st.dictionaries(st.text(max_size=12) | st.sampled_from(
                                   ["data", "rows", "columns", "next", "usage", "values", "item", "results",
                                    "start_time", "has_more", "next_page", "position", "quota", "limits",
                                    "apps", "id", "date", "client_app_id", "api_key_id", "startDate"]),
                                   children, max_size=6)),
    max_leaves=25,
)
