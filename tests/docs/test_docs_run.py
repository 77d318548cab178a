"""Every shell and Python block of README.md and docs/ runs, as a reader pastes it.

One test per document: its runnable blocks (see ``docs_blocks``) run in order in one
shell (``docs_session``) against the real processes the document itself starts, and
the test fails at the first block that fails, printing the document and line, the
block and what the session printed. Blocks marked ``<!-- not-runnable: REASON -->``
are not run; the rules about markers and tags are checked by ``test_docs_rules.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from docs_blocks import documents, parse
from docs_session import DocSession

pytestmark = [pytest.mark.docs, pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
#: seconds one block may take (a transfer with --wait, a service's start on a loaded machine)
BLOCK_TIMEOUT = 180.0


@pytest.mark.timeout(900)
@pytest.mark.parametrize("doc", documents(ROOT), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_blocks_of_a_document_run(doc: Path, tmp_path: Path) -> None:
    blocks = [block for block in parse(doc) if block.runs]
    if not blocks:
        return
    with DocSession(ROOT, tmp_path) as session:
        for block in blocks:
            result = session.run(block, timeout=BLOCK_TIMEOUT)
            if not result.ok:
                pytest.fail(result.report(ROOT), pytrace=False)
