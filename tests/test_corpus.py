"""Every corpus snippet behaves the same directly and through a Session (policy=None)."""

from __future__ import annotations

from pathlib import Path

import pytest
from corpus_harness import differences, run_direct, run_proxied, snippets

SNIPPETS = snippets()


def test_corpus_is_present() -> None:
    assert len(SNIPPETS) == 20, f"expected the 20 shared corpus snippets, found {len(SNIPPETS)}"


@pytest.mark.parametrize("path", SNIPPETS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_snippet_runs_identically(path: Path) -> None:
    direct = run_direct(path)
    proxied, session = run_proxied(path)
    assert not differences(direct, proxied), "\n".join(differences(direct, proxied))
    # the proxied run really was mediated: it produced data-model op records
    assert sum(1 for r in session.records if type(r).__name__ in ("Attr", "Call", "GetItem")) > 0


@pytest.mark.parametrize("path", SNIPPETS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_snippet_runs_identically_under_owner_policy(path: Path) -> None:
    # owner.toml allows everything: the guard and the policy layer must not change
    # what ordinary agent code does
    from pairproxy.policy import builtin_policy

    direct = run_direct(path)
    proxied, session = run_proxied(path, policy=builtin_policy("owner"))
    assert not differences(direct, proxied), "\n".join(differences(direct, proxied))
    assert all(r.decision == "allow" for r in session.records)
