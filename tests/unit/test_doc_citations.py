"""Every document the code and tests cite is in the repository, and so is every section they name by title
(`docs/ARCHITECTURE.md, "The address plan"`): a reader sent there finds it."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: A cited document, and the quoted title of a section right after it, if any.
CITATION = re.compile(r'((?:docs/)?[A-Z][A-Z0-9-]*\.md)(?:[,:]? *\(?\\?"([^"\\]+)\\?")?')


def _citations() -> list[tuple[Path, str, str | None]]:
    found = []
    for top in ("src", "tests"):
        for path in sorted((REPO / top).rglob("*.py")):
            for match in CITATION.finditer(path.read_text()):
                found.append((path, match.group(1), match.group(2)))
    return found


def _headings(document: Path) -> list[str]:
    return [line.lstrip("#").strip() for line in document.read_text().splitlines() if line.startswith("#")]


def test_every_cited_document_and_section_exists() -> None:
    citations = _citations()
    assert any(section for _, _, section in citations)  # the pattern still finds the citations there are
    missing = []
    for source, name, section in citations:
        document = REPO / name
        where = source.relative_to(REPO)
        if not document.is_file():
            missing.append(f"{where}: {name} is not in the repository")
        elif section is not None and not any(h.lower().startswith(section.lower()) for h in _headings(document)):
            missing.append(f"{where}: {name} has no section {section!r}")
    assert missing == []
