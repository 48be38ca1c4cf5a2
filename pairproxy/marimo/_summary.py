"""Plain-words summary of the policy a kernel's session runs under (agent and owner alike)."""

from __future__ import annotations

from typing import Any

from . import config as C
from . import live
from .boundary import CODE_MODE_API, RULE


def summarize(policy: Any = None) -> str:
    """The summary for `policy` (a `Policy`, a `KernelPolicy` or None), by default the
    active session's, else the one the notebook's configuration names."""
    source = ""
    if policy is None:
        session = live.current_session()
        if session is not None:
            policy = session.policy
            cfg = live.current_config()
            source = cfg.sources.get("policy", "") if cfg is not None else ""
        else:
            try:
                cfg = C.resolve()
            except C.ConfigError as e:
                return f"pairproxy is not active in this kernel, and its configuration is broken: {e}"
            if cfg.policy is None:
                return "pairproxy is not active in this kernel yet; its configuration says audit-only mode."
            from ..policy import load_policy

            policy, source = load_policy(cfg.policy), cfg.sources.get("policy", "")
    inner = getattr(policy, "policy", policy) if type(policy).__name__ == "KernelPolicy" else policy
    lines: list[str] = []
    if inner is None:
        lines.append("policy: none (audit-only mode: every op is allowed and recorded)")
    else:
        lines.append(f"policy: {getattr(inner, 'name', '')} ({inner.path}){f'  from {source}' if source else ''}")
        lines.append(f"hash:   {inner.hash}")
        desc = getattr(inner, "description", "")
        if desc:
            lines.append(f"about:  {' '.join(str(desc).split())}")
        default = inner.default
        lines.append(f"default when no rule matches: {default.decision}"
                     + (f" ({default.reason})" if getattr(default, "reason", "") else ""))
        ranked = inner.ranked() if hasattr(inner, "ranked") else list(getattr(inner, "rules", []))
        if ranked:
            lines.append("rules, highest precedence first:")
            for r in ranked:
                reason = f" - {r.spec.reason}" if getattr(r.spec, "reason", "") else ""
                lines.append(f"  {r.decision:5}  {r.describe()}{reason}  [{r.where}]")
        roots = list(getattr(inner, "roots", []))
        if roots:
            from ..effects import rights_names

            lines.append("notebook values start with these rights:")
            for rr in roots:
                match = ", ".join(
                    f"{f}={m.text()}" for f, m in (("name", rr.name), ("type", rr.type)) if m is not None
                ) or "every value"
                lines.append(f"  {match}: {'/'.join(rights_names(rr.bits)) or 'none'}  [{rr.where}]")
    lines += [
        f"always ({RULE}, whatever the policy): code mode offers ctx.{', ctx.'.join(sorted(CODE_MODE_API))};",
        "  marimo's runtime (kernel, runtime context, graph) and pairproxy's internals are refused;",
        "  notebook edits are judged as ops cell.create/edit/delete/move/run, packages.add/remove, ui.set.",
    ]
    return "\n".join(lines)
