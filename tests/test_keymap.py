"""The config's ``[keymap]`` is checked against the bindings there are (issue 10,
defect 5): an unknown binding id or a key that two bindings of one screen would
share is a configuration error, exit 2, naming the id and the clash."""

from __future__ import annotations

from pathlib import Path

import pytest

from store.config import Config
from store.errors import ConfigError
from tests.tui_data import CLOCK
from tui.app import WardenApp
from tui.cli import main
from tui.keys import check_keymap
from tui.screens.review import binding_groups


def test_an_unknown_binding_id_is_named_with_the_nearest_one() -> None:
    with pytest.raises(ConfigError) as info:
        check_keymap({"review.confrim": "V"}, binding_groups())
    assert str(info.value) == ("[keymap]: there is no binding 'review.confrim' (did you mean 'review.confirm'?); "
                               "'?' in the review screen lists every binding id")


def test_a_key_taken_from_another_binding_is_named_with_both() -> None:
    with pytest.raises(ConfigError) as info:
        check_keymap({"review.confirm": "d"}, binding_groups())
    assert str(info.value) == ("[keymap]: 'review.confirm' = 'd' takes the key of review.dismiss "
                               "(Dismiss (reason required)), which would be left without it; give review.dismiss "
                               "another key in [keymap] too, or choose another for review.confirm")


def test_a_case_key_taken_for_a_review_binding_is_refused() -> None:
    # C closes or escalates a case (issue 13); O stays the queue's reverse sort (issue 10).
    with pytest.raises(ConfigError, match=r"'review.confirm' = 'C' takes the key of case.outcome "
                                          r"\(Case: close with an outcome, or escalate\)"):
        check_keymap({"review.confirm": "C"}, binding_groups())
    with pytest.raises(ConfigError, match=r"'case.outcome' = 'O' takes the key of queue.reverse_sort"):
        check_keymap({"case.outcome": "O"}, binding_groups())
    check_keymap({"case.outcome": "O", "queue.reverse_sort": "C"}, binding_groups())


def test_keys_swapped_between_two_bindings_are_fine() -> None:
    check_keymap({"review.confirm": "d", "review.dismiss": "v"}, binding_groups())
    check_keymap({"queue.down": "n", "note.save": "ctrl+w"}, binding_groups())
    check_keymap({}, binding_groups())


def test_a_key_of_one_screen_may_be_used_on_another() -> None:
    # The note editor's ctrl+s and the review screen's keys never meet.
    check_keymap({"note.save": "ctrl+x", "review.undo": "ctrl+x"}, binding_groups())


def test_a_key_the_app_takes_everywhere_clashes_on_every_screen() -> None:
    with pytest.raises(ConfigError, match="takes the key of app.palette"):
        check_keymap({"note.save": "ctrl+p"}, binding_groups())


def test_one_of_several_keys_clashing_is_named() -> None:
    with pytest.raises(ConfigError, match=r"'queue.down' = 'n,u' takes the key of review.undo"):
        check_keymap({"queue.down": "n,u"}, binding_groups())


def test_the_app_refuses_a_bad_keymap_before_it_starts(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="review.confrim"):
        WardenApp(db_path=tmp_path / "w.db", config=Config(keymap={"review.confrim": "V"}), clock=CLOCK)


def test_warden_exits_2_naming_the_id(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[keymap]\n"review.confirm" = "d"\n')
    code = main(["--config", str(config), "--db", str(tmp_path / "w.db")])
    assert code == 2
    err = capsys.readouterr().err
    assert "Configuration error" in err and "'review.confirm' = 'd' takes the key of review.dismiss" in err


def test_no_two_bindings_of_a_screen_share_a_key_by_default() -> None:
    from tui.keys import APP_KEYS

    for group in binding_groups():
        seen: dict[str, str] = {}
        for binding_id, keys, _description in list(group) + APP_KEYS:
            for key in keys.split(","):
                assert key not in seen, f"{binding_id} and {seen[key]} share {key!r}"
                seen[key] = binding_id
