"""Where the generated documents live and how each is rendered."""

from __future__ import annotations

from pathlib import Path

from server.docs import blocks, contract, settings_reference

ROOT = Path(__file__).resolve().parents[2]
CONTRACT = ROOT / "docs" / "contract.md"
SETTINGS = ROOT / "docs" / "settings.md"
README = ROOT / "README.md"


def rendered(root: Path = ROOT) -> dict[Path, str]:
    """Each generated document's path and the text it should have now."""
    contract_path = root / CONTRACT.relative_to(ROOT)
    return {
        contract_path: blocks.fill(
            contract_path.read_text(encoding="utf-8"), contract.blocks(root)
        ),
        root / SETTINGS.relative_to(ROOT): settings_reference.render(
            (root / README.relative_to(ROOT)).read_text(encoding="utf-8")
        ),
    }
