"""In-process tests (no server): the fixed marimo rules (`boundary`), the kernel session
hook (`live`) driven through the executor, and the display conversion."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from marimo._ast.compiler import compile_cell
from marimo._messaging.context import HTTP_REQUEST_CTX
from marimo._runtime.exceptions import MarimoRuntimeException
from marimo._types.ids import CellId_t

import pairproxy as pp
from pairproxy import ops as O
from pairproxy.effects import TypeKey, key_of, module_key
from pairproxy.marimo import executor as ex
from pairproxy.marimo import live
from pairproxy.marimo.boundary import RULE, KernelPolicy, builtin_verdict
from pairproxy.marimo.display import for_display
from pairproxy.membrane import Verdict


def _type(name: str) -> TypeKey:
    return TypeKey((name, "builtins.object"), name, False)


CTX = _type("marimo._code_mode._context.AsyncCodeModeContext")


class TestBuiltinVerdict:
    @pytest.mark.parametrize("member", ["create_cell", "edit_cell", "run_cell", "packages", "cells"])
    def test_code_mode_api_is_allowed(self, member: str) -> None:
        for kind in ("attr", "call"):
            v = builtin_verdict(kind, CTX, member)
            assert v is not None and v.decision == "allow" and v.rule == RULE

    @pytest.mark.parametrize("member", ["globals", "_kernel", "graph", "execute_command", "enqueue_command",
                                        "broadcast_raw_notification", "screenshot", "_ops"])
    def test_other_context_members_are_refused(self, member: str) -> None:
        v = builtin_verdict("attr", CTX, member)
        assert v is not None and v.decision == "deny" and "ctx.create_cell" in v.hint

    def test_context_manager_protocol_and_writes(self) -> None:
        assert builtin_verdict("with", CTX, "aenter").decision == "allow"  # type: ignore[union-attr]
        assert builtin_verdict("setattr", CTX, "create_cell").decision == "deny"  # type: ignore[union-attr]

    @pytest.mark.parametrize("name", ["marimo._runtime.runtime.Kernel", "marimo._runtime.context.types.RuntimeContext",
                                      "marimo._runtime.dataflow.graph.DirectedGraph", "pairproxy.session.Session"])
    def test_runtime_and_pairproxy_objects_are_refused_for_every_op(self, name: str) -> None:
        for kind in ("attr", "call", "getitem", "convert", "iter"):
            v = builtin_verdict(kind, _type(name), "anything")
            assert v is not None and v.decision == "deny"

    @pytest.mark.parametrize(("module", "decision"), [
        ("marimo._code_mode", "allow"), ("pairproxy.agent", "allow"), ("pairproxy.marimo.capability", "allow"),
        ("pairproxy", "allow"), ("pairproxy.marimo", "allow"),
        ("pairproxy.session", "deny"), ("pairproxy.marimo.live", "deny"), ("pairproxy.marimo.owner", "deny"),
        ("marimo._runtime", "deny"), ("marimo._runtime.context", "deny"), ("marimo._server.api", "deny"),
        ("marimo._messaging.context", "deny"), ("marimo._entrypoints", "deny"),
        ("pandas", None), ("marimo", None), ("marimo._runtime.output", None),
    ])
    def test_imports(self, module: str, decision: str | None) -> None:
        v = builtin_verdict("import", module_key(__import__("types").ModuleType(module)), module)
        assert (v.decision if v is not None else None) == decision

    def test_package_links(self) -> None:
        import pairproxy
        import pairproxy.marimo

        top, sub = key_of(pairproxy), key_of(pairproxy.marimo)
        assert builtin_verdict("attr", top, "agent").decision == "allow"  # type: ignore[union-attr]
        assert builtin_verdict("attr", top, "Session").decision == "deny"  # type: ignore[union-attr]
        assert builtin_verdict("attr", top, "unwrap").decision == "deny"  # type: ignore[union-attr]
        assert builtin_verdict("attr", sub, "capability").decision == "allow"  # type: ignore[union-attr]
        assert builtin_verdict("attr", sub, "executor").decision == "deny"  # type: ignore[union-attr]

    def test_everything_else_is_the_policys(self) -> None:
        assert builtin_verdict("attr", key_of(pd.DataFrame()), "to_csv") is None
        assert builtin_verdict("cell.create", TypeKey(("notebook",), "notebook", False), "x") is None


class _Policy:
    hash = "abc"
    path = Path("p.toml")
    limits = None

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def decide(self, kind: str, key: Any, member: str, effect: str, root: str, args: Any = (), kwargs: Any = None) -> Verdict:
        self.calls.append((kind, member))
        return Verdict("deny", "p.toml:1")

    def root_rights(self, name: str, obj: Any) -> tuple[int, str]:
        return 1, "p.toml:2"


def test_kernel_policy_applies_the_fixed_rules_first_and_delegates_the_rest() -> None:
    inner = _Policy()
    kp = KernelPolicy(inner)
    assert kp.decide("attr", CTX, "globals", "read", "").rule == RULE
    assert kp.decide("attr", CTX, "create_cell", "read", "").decision == "allow"
    assert inner.calls == []  # never asked about the fixed ones
    assert kp.decide("attr", key_of(1.5), "real", "read", "x").rule == "p.toml:1"
    assert inner.calls == [("attr", "real")]
    assert (kp.hash, kp.path, kp.root_rights("x", 1)) == ("abc", Path("p.toml"), (1, "p.toml:2"))
    audit = KernelPolicy(None)  # audit-only: allow everything else
    assert audit.decide("attr", key_of(1.5), "real", "read", "").decision == "allow"
    assert audit.decide("attr", CTX, "_kernel", "read", "").decision == "deny"


def test_for_display_unwraps_after_a_convert_op() -> None:
    s = pp.Session()
    df = pd.DataFrame({"a": [1]})
    p = s.wrap(df, name="df")
    assert for_display(p) is df
    assert isinstance(s.records[-1], O.Convert) and s.records[-1].to == "display"
    out = for_display([p, (p, 1), {"k": p}])
    assert out[0] is df and out[1][0] is df and out[1][1] == 1 and out[2]["k"] is df
    assert for_display(3) == 3


# --- the kernel hook, in process ---------------------------------------------------------


@pytest.fixture
def agent_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An agent scratchpad context (an HTTP request is set, as /api/kernel/execute does),
    pairproxy's own hook, configuration from the environment; yields the log path."""
    log = tmp_path / "ops.jsonl"
    monkeypatch.setenv("PAIRPROXY_LOG", str(log))
    monkeypatch.setenv("PAIRPROXY_POLICY", "read_only")
    monkeypatch.delenv(ex.ENV_HOOK, raising=False)
    ex.reset_scratch_hook()
    live.reset()
    token = HTTP_REQUEST_CTX.set(object())  # type: ignore[arg-type]
    try:
        yield log
    finally:
        HTTP_REQUEST_CTX.reset(token)
        live.reset()
        ex.reset_scratch_hook()


def _run(code: str, glbls: dict[str, Any]) -> Any:
    return asyncio.run(ex.create_executor().execute_cell_async(compile_cell(code, cell_id=CellId_t("__scratch__")), glbls))


def test_agent_scratch_runs_through_the_kernel_session(agent_run: Path, tmp_path: Path) -> None:
    df = pd.DataFrame({"a": [1, 2, 3]})
    glbls = {"df": df, "__file__": str(tmp_path / "nb.py"), "input": input}
    value = _run("df[df.a > 1]", glbls)
    assert type(value) is pd.DataFrame and value["a"].tolist() == [2, 3]  # real, for marimo's formatter
    session = live.current_session()
    assert session is not None and _run("1", glbls) == 1 and live.current_session() is session
    kinds = [O.kind(r) for r in session.records]
    assert "convert" in kinds and kinds.count("exec") == 2
    assert not any(isinstance(r, O.Root) and r.name == "input" for r in session.records)

    with pytest.raises(MarimoRuntimeException) as info:
        _run("df['a'] = 0", glbls)
    assert isinstance(info.value.__cause__, pp.PolicyDenied)
    assert df["a"].tolist() == [1, 2, 3]
    session.flush()
    assert [O.kind(r) for r in pp.read_log(agent_run)].count("exec") == 3


def test_without_an_agent_request_or_document_it_is_the_owners_panel(agent_run: Path) -> None:
    token = HTTP_REQUEST_CTX.set(None)
    try:
        df = pd.DataFrame({"a": [1]})
        assert _run("df", {"df": df}) is df
        assert live.current_session() is None  # nothing mediated, no session built
    finally:
        HTTP_REQUEST_CTX.reset(token)


def test_a_broken_configuration_refuses_every_agent_run(agent_run: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[policy]\ndefault = 'perhaps'\n")
    monkeypatch.setenv("PAIRPROXY_POLICY", str(bad))
    for _ in range(2):
        with pytest.raises(MarimoRuntimeException) as info:
            _run("1 + 1", {})
        err = info.value.__cause__
        assert isinstance(err, live.ControlPlaneError)
        assert f"{bad}:2" in str(err) and "never runs unmediated" in str(err)
    (tmp_path / "pairproxy.toml").write_text("polcy = 1\n")
    monkeypatch.delenv("PAIRPROXY_POLICY")
    with pytest.raises(MarimoRuntimeException) as info:
        _run("1 + 1", {"__file__": str(tmp_path / "nb.py")})
    assert "unknown key(s) polcy" in str(info.value.__cause__)


def _helper(x: int) -> int:
    return x


def test_owner_controls_keep_the_fixed_rules(agent_run: Path, tmp_path: Path) -> None:
    from pairproxy.marimo import owner

    with pytest.raises(RuntimeError, match="no session"):
        owner.pending()
    glbls = {"helper": _helper, "__file__": str(tmp_path / "nb.py")}
    with pytest.raises(MarimoRuntimeException):
        _run("helper(1)", glbls)  # an uncatalogued call: read_only asks the owner
    assert [p["id"] for p in owner.pending()] == [1]
    assert owner.grant(1) == "approval #1 granted once"
    assert _run("helper(1)", glbls) == 1  # the retry passes
    assert "owner" in owner.set_policy("owner")
    policy = live.current_session().policy
    assert isinstance(policy, KernelPolicy) and policy.policy.name == "owner"
    with pytest.raises(MarimoRuntimeException) as info:
        _run("import marimo._code_mode as cm\ncm._context", glbls)
    assert RULE in str(info.value.__cause__)
    assert "policy: owner" in owner.summary()
