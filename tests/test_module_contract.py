"""The result contract is checked where results enter the engine, and names are checked where
modules enter the registry: a sloppy module shows as its own error, never as a wrong count."""

from __future__ import annotations

import csv
import json
import mailbox
from enum import IntEnum
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from mailstats.accounts.config import parse_config
from mailstats.modules import Module, Registry, available_modules, check_result
from mailstats.modules import declaration_problems as problems
from mailstats.run.cache import Cache
from mailstats.run.engine import Engine
from mailstats.stats.export import write_outputs


class Declared(Module):
    name = "declared"
    checks = ("a", "b")
    extras = ("x",)

    def evaluate(self, msg: Any, services: Any) -> dict:
        return {}


class _Level(IntEnum):
    HIGH = 3


class _Name(str):
    pass


class _Why(dict):
    pass


values = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from([_Level.HIGH, _Name("n"), _Why(a="b"), _Why(), 1.5, -0.0]),
    st.integers(-3, 3),
    st.floats(allow_nan=False),
    st.text(max_size=3),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=1),
)


@settings(derandomize=True, max_examples=300)
@given(
    result=st.dictionaries(st.sampled_from(["a", "b", "x", "_why", "zz", "Q.r"]), values),
)
def test_check_result_accepts_exactly_the_contract(result: dict) -> None:
    kept, error, unknown = check_result(Declared(), result)
    bad_check = any(
        k in ("a", "b") and not (v is None or v is True or v is False) for k, v in result.items()
    )
    bad_extra = "x" in result and not (
        result["x"] is None or isinstance(result["x"], bool | int | float | str)
    )
    bad_why = "_why" in result and not isinstance(result["_why"], dict)
    assert bool(error) == (bad_check or bad_extra or bad_why)
    # the error names the first broken key, checks before extras before _why
    first = next((f"check {k!r}" for k in ("a", "b") if k in result and not (
        result[k] is None or result[k] is True or result[k] is False)), None)  # fmt: skip
    first = first or ("extra 'x'" if bad_extra else None) or ("'_why'" if bad_why else "")
    assert error.startswith(first)
    assert sorted(unknown) == sorted(k for k in result if k in ("zz", "Q.r"))
    assert set(kept) == set(result) - {"zz", "Q.r"}


def test_not_a_dict_is_an_error() -> None:
    assert check_result(Declared(), [True])[1] == "returned list, not a dict"


def test_names_must_be_lower_case_words() -> None:
    def declare(**attrs: Any) -> type:
        return type("M", (Declared,), attrs)

    assert problems(declare()) == []
    assert problems(declare(name="has.dot")) and problems(declare(name="Caps"))
    assert problems(declare(name="_core")) and problems(declare(name=""))
    assert problems(declare(checks=("ok", "not ok"))) and problems(declare(extras=("a-b",)))
    assert problems(type("N", (Module,), {"name": "n"})) == ["N does not define evaluate()"]
    assert problems(object) and problems(Declared())  # an instance is not a declaration


class Sloppy(Module):
    """Returns 1 for odd UIDs, a list extra for UID 2, and a key it never declared."""

    name = "sloppy"
    checks = ("odd",)
    extras = ("note",)

    def evaluate(self, msg: Any, services: Any) -> dict:
        out: dict = {"odd": 1 if msg.uid % 2 else False, "surprise": 7}
        out["note"] = [1, 2] if msg.uid == 2 else "fine"
        return out


def test_engine_counts_a_broken_result_as_the_modules_error(tmp_path: Path) -> None:
    box = mailbox.mbox(tmp_path / "inbox.mbox")
    for i in range(6):
        box.add(f"From: p{i}@example.com\nSubject: s{i}\nMessage-ID: <{i}@x.example>\n\nb\n")
    box.flush()
    box.close()
    reg = available_modules(plugins=False)
    reg.modules.append(Sloppy)
    cfg = parse_config(
        {
            "settings": {"modules": ["sloppy"], "cache": str(tmp_path / "c.sqlite")},
            "accounts": [{"name": "l", "path": str(tmp_path / "inbox.mbox"), "ham": ["inbox"]}],
        },
        registry=reg,
    )
    engine = Engine(cfg, cache=Cache(cfg.settings.cache), registry=reg)
    result = engine.run()
    fr = result.accounts[0].folders[0]
    assert fr.total == 6
    assert fr.errors == {"sloppy": 4}  # uids 1, 3, 5 (check is 1) and 2 (extra is a list)
    assert fr.counts["sloppy.odd"] == [0, 2]  # only the valid results count
    said = [w for w in result.warnings if "sloppy" in w]
    assert len(said) == 3, said  # the check, the extra: once each; the unknown key once
    assert any("'odd' is 1" in w for w in said) and any("'surprise'" in w for w in said)
    write_outputs(engine, result, tmp_path / "out")
    rows = list(csv.DictReader((tmp_path / "out" / "messages.csv").open()))
    assert [r["sloppy.odd"] for r in rows] == ["", "", "", "0", "", "0"]
    assert "surprise" not in rows[0] and "sloppy.surprise" not in rows[0]
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["counts"]["module_errors"] == 4
    assert any("'odd' is 1" in w for w in manifest["warnings"])
    engine.cache.close()


def test_registry_holds_classes() -> None:
    reg = available_modules(plugins=False)
    assert reg.modules and all(isinstance(m, type) for m in reg.modules)
    assert isinstance(Registry().modules, list)
