"""Hot reload: an edit changes decisions from the next execution on; a bad edit keeps the
running policy, is logged once with its file:line, and a later fix is picked up."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

import pairproxy as pp
from pairproxy import ops as O
from pairproxy.effects import type_key
from pairproxy.policy import load_policy

ALLOW_ALL = '[policy]\ndefault = "allow"\n'
DENY_HEAD = ALLOW_ALL + '\n[[rule]]\nname = "head"\ndecision = "deny"\nreason = "no peeking"\nhint = "use df.shape"\n'


def edit(path: Path, text: str) -> None:
    """Rewrite the file and move its mtime on, as an editor saving it would."""
    st = path.stat()
    path.write_text(text)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def events(s: pp.Session) -> list[O.PolicyEvent]:
    return [r for r in s.records if isinstance(r, O.PolicyEvent)]


def test_edit_changes_decisions_from_the_next_exec(tmp_path: Path) -> None:
    path = tmp_path / "live.toml"
    path.write_text(ALLOW_ALL)
    s = pp.Session(policy=load_policy(path))
    ns = {"df": pd.DataFrame({"a": [1, 2, 3]})}
    old_hash = s.policy.hash
    assert s.exec("len(df.head(2))", ns) == 2

    edit(path, DENY_HEAD)
    with pytest.raises(pp.PolicyDenied) as e:
        s.exec("df.head(2)", ns)
    assert e.value.rule == "live.toml:4" and "no peeking" in str(e.value) and "use df.shape" in str(e.value)
    (ev,) = events(s)
    assert ev.message == "reloaded" and ev.hash == s.policy.hash != old_hash and ev.error is None
    assert e.value.record.policy == s.policy.hash

    # attribute reads served by the fast path follow the edit too
    edit(path, ALLOW_ALL + '\n[[rule]]\nop = "attr"\nname = "shape"\ndecision = "deny"\n')
    with pytest.raises(pp.PolicyDenied, match="live.toml:4"):
        s.exec("df.shape", ns)


def test_bad_edit_keeps_the_running_policy_and_is_logged_once(tmp_path: Path) -> None:
    path = tmp_path / "live.toml"
    path.write_text(DENY_HEAD)
    s = pp.Session(policy=load_policy(path))
    ns = {"df": pd.DataFrame({"a": [1, 2, 3]})}
    good_hash = s.policy.hash

    edit(path, DENY_HEAD.replace('decision = "deny"', 'decision = "perhaps"'))
    with pytest.raises(pp.PolicyDenied, match="live.toml:4"):  # still the old rule
        s.exec("df.head(2)", ns)
    (ev,) = events(s)
    assert ev.error == "PolicyError" and ev.hash == good_hash
    assert f"{path}:6: rule[1].decision" in ev.message and "'perhaps'" in ev.message
    assert s.policy.hash == good_hash

    s.exec("df.shape", ns)  # same bad file: not reported again
    assert len(events(s)) == 1

    edit(path, ALLOW_ALL)  # fixed
    assert s.exec("len(df.head(2))", ns) == 2
    assert [e.message for e in events(s)][-1] == "reloaded"


def test_reload_if_changed_contract(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(ALLOW_ALL)
    p = load_policy(path)
    assert p.reload_if_changed() == (False, None)
    edit(path, ALLOW_ALL)  # touched, same content: no change
    assert p.reload_if_changed() == (False, None)
    edit(path, DENY_HEAD)
    assert p.reload_if_changed() == (True, None)
    assert p.decide("call", type_key(pd.DataFrame), "head", "compute", "df").decision == "deny"
    path.unlink()
    changed, error = p.reload_if_changed()
    assert not changed and error is not None and "cannot read" in error
    assert p.reload_if_changed() == (False, None)
    assert p.decide("call", type_key(pd.DataFrame), "head", "compute", "df").decision == "deny"


def test_a_reload_outside_the_session_is_followed_by_the_fast_paths(tmp_path: Path) -> None:
    # The owner reloads the policy object directly: the session learns nothing of it,
    # but answers the fast paths remembered from the old tables must not be served.
    path = tmp_path / "live.toml"
    path.write_text(ALLOW_ALL)
    policy = load_policy(path)
    s = pp.Session(policy=policy)
    ns = {"df": pd.DataFrame({"a": [1, 2, 3]})}
    for _ in range(3):  # the attribute read and the call, answered from the fast tables
        assert s.exec("df.shape[0] + len(df.head(2))", ns) == 5
    edit(path, DENY_HEAD)
    assert policy.reload_if_changed() == (True, None)
    with pytest.raises(pp.PolicyDenied, match="live.toml:4"):
        s.exec("df.head(2)", ns)
    edit(path, ALLOW_ALL + '\n[[rule]]\nop = "attr"\nname = "shape"\ndecision = "deny"\n')
    assert policy.reload_if_changed() == (True, None)
    with pytest.raises(pp.PolicyDenied, match="live.toml:4"):
        s.exec("df.shape", ns)
