"""The JMESPath paths of http-json sources on their own: how a path is read (its
scope prefix, the plain chains read without the interpreter), the value it finds
in each scope, and the JSON path a refusal names, written out."""

from __future__ import annotations

import jmespath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from store.errors import PageRejected
from store.sync.jsonpaths import JsonPath, PathError, _first_line

ITEM = {"client_app_id": "app-1", "usage": {"calls": "12", "list": [10, 20, 30]}, "a-b": 7}
ROW = {"project": "p-9", "usage": [ITEM]}
PAGE = {"data": [ROW], "meta": {"next": "c2"}}


@pytest.mark.parametrize(("text", "scope", "expression", "steps"), [
    ("client_app_id", "item", "client_app_id", ("client_app_id",)),
    ("  usage.calls ", "item", "usage.calls", ("usage", "calls")),
    ("usage.list[0]", "item", "usage.list[0]", ("usage", "list", 0)),
    ("usage.list[-1]", "item", "usage.list[-1]", ("usage", "list", -1)),
    ('"a-b"', "item", '"a-b"', ("a-b",)),
    ("@", "item", "@", ()),
    ("[0]", "item", "[0]", (0,)),            # an index on the item itself (API Gateway's [used, remaining])
    ("[1][0]", "item", "[1][0]", (1, 0)),
    ("^project", "row", "project", ("project",)),
    ("^.project", "row", "project", ("project",)),
    ("^", "row", "@", ()),
    ("$data[0].project", "page", "data[0].project", ("data", 0, "project")),
    ("$.meta.next", "page", "meta.next", ("meta", "next")),
    ("$. meta", "page", "meta", ("meta",)),
    ("$.Xtotal", "page", "Xtotal", ("Xtotal",)),   # only the dot after the prefix goes, not a letter
    ("$", "page", "@", ()),
    ("length(usage.list)", "item", "length(usage.list)", None),
    ("usage.list[*]", "item", "usage.list[*]", None),
    ("`1`", "item", "`1`", None),
    ("a || b", "item", "a || b", None),
])
def test_a_path_is_read_with_its_scope_and_plain_chains_as_steps(text: str, scope: str, expression: str,
                                                                 steps: tuple | None) -> None:
    path = JsonPath.compile(text)
    assert (path.text, path.scope, path.expression, path.steps) == (text, scope, expression, steps)


def test_a_scope_prefix_is_refused_where_the_page_is_the_scope() -> None:
    for prefix in ("^", "$"):
        with pytest.raises(PathError) as refused:
            JsonPath.compile(prefix + "next", scopes=False)
        assert str(refused.value) == f"a scope prefix ({prefix}) has no meaning here: the page is the scope"
    assert JsonPath.compile("next", scopes=False).steps == ("next",)


def test_what_is_not_jmespath_is_refused_with_the_first_line_of_why() -> None:
    with pytest.raises(PathError) as refused:
        JsonPath.compile("usage[")
    assert str(refused.value) == "not a JMESPath expression: Invalid jmespath expression: Incomplete expression:"


@pytest.mark.parametrize(("text", "value"), [
    ("client_app_id", "app-1"), ("usage.calls", "12"), ("usage.list[1]", 20), ("usage.list[-1]", 30),
    ('"a-b"', 7), ("@", ITEM), ("^project", "p-9"), ("^", ROW), ("$meta.next", "c2"), ("$data[0].project", "p-9"),
    ("$", PAGE), ("[0]", None), ("^usage[0].usage.list[0]", 10),
    ("length(usage.list)", 3), ("usage.list[*]", [10, 20, 30]),
    # Missing or mistyped steps find nothing, as JMESPath says.
    ("missing", None), ("usage.missing", None), ("client_app_id.x", None), ("usage.list[3]", None),
    ("usage.list[-4]", None), ("usage.calls[0]", None), ("usage[0]", None), ("^usage[1]", None),
    ("usage.list.x", None), ("missing[*]", None),
])
def test_a_path_finds_its_value_in_its_scope(text: str, value: object) -> None:
    assert JsonPath.compile(text).value(ITEM, ROW, PAGE) == value


def test_a_function_meeting_a_type_it_refuses_refuses_the_page() -> None:
    with pytest.raises(PageRejected) as refused:
        JsonPath.compile("length(usage.calls.x || `5`)").value(ITEM, ROW, PAGE)
    assert refused.value.path == "$"
    assert str(refused.value) == ("at $: length(usage.calls.x || `5`): In function length(), invalid type for "
                                  "value: 5, expected one of: ['string', 'array', 'object'], received: \"number\"")


@pytest.mark.parametrize(("text", "where"), [
    ("usage.calls", "$.data[3].usage[0].usage.calls"),
    ("usage.list[2]", "$.data[3].usage[0].usage.list[2]"),
    ('"a-b"', "$.data[3].usage[0]['a-b']"),
    ("@", "$.data[3].usage[0]"),
    ("[1]", "$.data[3].usage[0][1]"),
    ("^project", "$.data[3].project"),
    ("$meta.next", "$.meta.next"),
    ("length(usage.list)", "$.data[3].usage[0] | length(usage.list)"),
    ("^length(usage)", "$.data[3] | length(usage)"),
    ("$length(data)", "$ | length(data)"),
])
def test_a_refusal_names_where_the_value_came_from(text: str, where: str) -> None:
    assert JsonPath.compile(text).where("$.data[3].usage[0]", "$.data[3]") == where


def test_where_a_row_scoped_value_came_from_defaults_to_the_page() -> None:
    assert JsonPath.compile("^project").where("$.data[3]") == "$.project"


def test_a_message_without_text_is_named_by_its_kind() -> None:
    assert _first_line(ValueError("")) == "ValueError"
    assert _first_line(ValueError("  \n")) == "ValueError"
    assert _first_line(ValueError("first\nsecond")) == "first"
    assert _first_line(ValueError("\n  first \nsecond")) == "first "


_KEYS = ["a", "b", "usage"]
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.text(max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), inner, max_size=3),
    max_leaves=12)
_chain = st.lists(st.sampled_from(_KEYS) | st.integers(-3, 3).map(lambda i: f"[{i}]"), min_size=1, max_size=4)


@settings(max_examples=300, deadline=None)
@given(document=_json, parts=_chain)
def test_a_plain_chain_read_by_hand_gives_what_jmespath_gives(document: object, parts: list[str]) -> None:
    """The hand-read fast path for plain chains (fields and indexes) is only a
    shortcut: for any document, the value is the one jmespath.search finds."""
    text = "".join(p if p.startswith("[") else (("." if i else "") + p) for i, p in enumerate(parts))
    path = JsonPath.compile(text)
    assert path.steps is not None
    assert path.value(document) == jmespath.search(text, document)
