"""docs/contract.md and docs/settings.md are what the code generates now, every setting
the application reads is documented, and the contract's prose names only what exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import server.app  # noqa: F401  (registers every route, as the server does)
from server.docs import blocks, contract, settings_reference
from server.docs.generate import CONTRACT, README, ROOT, SETTINGS, rendered
from server.hub.protocol import ws_schema
from server.preflight import SETTINGS_FILE_VARIABLE, env_name
from server.settings import Settings

REGENERATE = "out of date: run .venv/bin/python -m server.docs and commit the result"


def test_the_committed_documents_are_what_the_code_generates() -> None:
    for path, text in rendered(ROOT).items():
        assert path.read_text(encoding="utf-8") == text, f"{path.name} {REGENERATE}"


def _variables_named_in_source() -> set[str]:
    found: set[str] = set()
    for package in ("server", "signaling", "risk"):
        for path in (ROOT / package).rglob("*.py"):
            if "docs" in path.relative_to(ROOT).parts:
                continue
            found.update(re.findall(r"\bCLOUDBRANCH_[A-Z0-9_]+\b", path.read_text("utf-8")))
    return found


def test_every_setting_the_application_reads_is_documented() -> None:
    fields = {env_name(name) for name in Settings.model_fields}
    readable = fields | {SETTINGS_FILE_VARIABLE}
    named = _variables_named_in_source()
    # Whatever the code names must be a setting it actually reads.
    assert named <= readable, f"named in the code but not a setting: {sorted(named - readable)}"
    reference = SETTINGS.read_text(encoding="utf-8")
    listed = set(re.findall(r"^\| `(CLOUDBRANCH_[A-Z0-9_]+)`", reference, re.MULTILINE))
    assert listed == readable, f"docs/settings.md {REGENERATE}"
    readme = README.read_text(encoding="utf-8")
    assert "docs/settings.md" in readme
    assert "`CLOUDBRANCH_TOKEN_TTL_S`" in readme


def test_a_setting_without_a_meaning_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings_reference, "_source_comments", lambda: {})
    with pytest.raises(settings_reference.UndocumentedSetting, match="CLOUDBRANCH_HOST"):
        settings_reference.render("")


def test_a_close_code_without_a_meaning_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(contract.connection, "CLOSE_TEAPOT", 4418, raising=False)
    with pytest.raises(KeyError, match="CLOSE_TEAPOT"):
        contract.blocks(ROOT)


def test_blocks_must_match_their_generators() -> None:
    document = "x\n<!-- generated: a (gen) -->\nold\n<!-- end generated -->\ny\n"
    assert blocks.fill(document, {"a": "new"}) == (
        "x\n<!-- generated: a (gen) -->\nnew\n<!-- end generated -->\ny\n"
    )
    with pytest.raises(KeyError):
        blocks.fill(document, {"a": "new", "b": "forgotten"})
    with pytest.raises(KeyError):
        blocks.fill(document, {})


def _v1_prose() -> str:
    text = CONTRACT.read_text(encoding="utf-8")
    # v1.1 additions describe what builds are being held to; the generated
    # reference says which of them this build serves.
    return text.split("## Additions (v1.1)", 1)[0]


def test_the_contract_prose_names_only_paths_and_messages_that_exist() -> None:
    prose = _v1_prose()
    served = {
        (route.method, route.resource.canonical)
        for route in contract.build_app().router.routes()
        if route.resource is not None
    }
    named = set(re.findall(r"`(GET|POST|PUT|DELETE) (/[^`\s]+)`", prose))
    named |= set(re.findall(r"^- `(GET|POST|PUT|DELETE) (/[^`\s]+)`", prose, re.MULTILINE))
    assert named, "no paths found in the contract prose"
    assert named <= served, f"the contract names routes this build lacks: {named - served}"

    schema = ws_schema()
    types = set()
    for direction in ("client_to_server", "server_to_client"):
        for definition in schema[direction]["$defs"].values():
            kind = definition.get("properties", {}).get("type", {})
            types.update(v for v in (kind.get("const"), kind.get("default")) if v)
    messages = set(re.findall(r"`?\b([a-z]+\.[a-z_]+) \{", prose))
    assert {"queue.update", "call.offered", "media.start"} <= messages
    assert messages <= types, f"the contract names messages this build lacks: {messages - types}"

    close_codes = {v for k, v in vars(contract.connection).items() if k.startswith("CLOSE_")}
    named_codes = {int(code) for code in re.findall(r"\b(4[0-9]{3})\b", prose)}
    assert named_codes and named_codes <= close_codes, named_codes - close_codes


def test_the_readme_links_the_contract_and_both_machine_readable_documents() -> None:
    readme = README.read_text(encoding="utf-8")
    assert "(docs/contract.md)" in readme
    assert "/api/v1/openapi.json" in readme and "/api/v1/schemas/ws.json" in readme
    assert Path(ROOT / "docs" / "contract.md").is_file()
