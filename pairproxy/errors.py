"""Exceptions: refusals the agent reads and policy-file problems the owner reads."""

from __future__ import annotations

from typing import Any


class PolicyDenied(PermissionError):
    """An op was refused (``deny``), needs the owner's approval (``ask``), or would break
    the membrane.

    The message is written for a model to correct itself in one step: what was refused
    and where (a path such as ``$.df.to_csv``), by which rule, why, and what to do
    instead.

    Attributes:
        record: the op record of the refused op (also in the log), or None.
        rule: ``file:line`` of the deciding rule, or a built-in rule name.
        reason: the rule's reason, in the owner's words.
        hint: what is allowed instead.
        ask: the approval number for ``ask`` decisions, else None.
    """

    def __init__(
        self,
        message: str,
        *,
        record: Any = None,
        rule: str = "",
        reason: str = "",
        hint: str = "",
        ask: int | None = None,
    ) -> None:
        super().__init__(message)
        self.record = record
        self.rule = rule
        self.reason = reason
        self.hint = hint
        self.ask = ask

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class PolicyError(ValueError):
    """A policy file is malformed.  ``problems`` lists every one as ``file:line: field: what``.

    Attributes:
        path: the policy file.
        problems: a list of `Problem` (file, line, field, message).
    """

    def __init__(self, path: str, problems: list[Any]) -> None:
        self.path = path
        self.problems = list(problems)
        lines = [str(p) for p in self.problems] or [f"{path}: invalid policy"]
        super().__init__("\n".join(lines))

    @property
    def line(self) -> int | None:
        """Line of the first problem (None if unknown)."""
        return self.problems[0].line if self.problems else None


class LogError(ValueError):
    """An op log cannot be read or fails verification; names the file and record."""

    def __init__(self, message: str, *, path: str = "", line: int | None = None, seq: int | None = None) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.seq = seq


class ResourceLimit(RuntimeError):
    """Agent code exceeded its policy's wall-time or op-count budget for one execution."""
