"""Guarded execution: compile agent code so the reflective routes around the membrane are
mediated or refused, and give it builtins that keep to the same rules.

Three layers, cheapest first:

1. **Static refusals** (an AST pass, before anything runs): attribute names that only
   reach interpreter internals (dunders other than a few harmless ones, frame, code and
   traceback attributes, the proxies' ``_self_*``), names such as ``__builtins__``,
   metaclasses, and agent classes defining hooks that library code would call with real
   objects (``__array_ufunc__``, ``__instancecheck__``, ``__del__``, ...).  Python
   normalises identifiers (NFKC) before the pass sees them, so look-alike spellings are
   caught too.
2. **Rewrites** that keep meaning through the proxies: ``x.__class__`` is the proxied
   class, ``str.format``/``format_map`` refuse fields that walk into private attributes,
   ``except`` clauses get real exception classes; they and an agent class's ``__exit__``
   first re-raise a budget overrun (`reraise_limits`), which is not the agent's to catch.
3. **Guarded builtins**: ``getattr``/``setattr``/``delattr``/``hasattr`` apply the same
   name rules at run time; ``type(x)`` answers with the proxied class and refuses the
   three-argument form; ``vars``/``globals``/``locals`` are refused; ``eval``/``exec``/
   ``compile`` are judged by the policy (effect ``exec``) and, when allowed, compile through
   this guard; ``open``/``input``/``help``/``breakpoint`` are policy-judged calls.

Normal pandas/polars code compiles to the same bytecode it would without the guard: only
the rare nodes above are rewritten.
"""

from __future__ import annotations

import ast
import builtins
import ctypes
import dis
import logging
import math
import os
import re
import string
import sys
import threading
import time
import types
import unicodedata
import weakref
from collections.abc import Callable
from typing import Any

from .effects import remember
from .errors import PolicyDenied, ResourceLimit
from .proxy import PROXY_TYPES, _get

_log = logging.getLogger("pairproxy")

#: Agent code is compiled under file names starting with this (``<agent:7>``): how frames,
#: functions and classes of agent code are told apart from everything else.
AGENT_FILE_PREFIX = "<agent"

LAST = "__pp_last__"
EXC = "__pp_exc__"
LIMITS = "__pp_limits__"
GETATTR = "__pp_getattr__"
CLASS = "__pp_class__"

#: Dunder attributes agent code may read: plain strings, or (``__class__``) rewritten.
SAFE_DUNDERS = frozenset({"__name__", "__qualname__", "__doc__", "__module__", "__class__"})

#: Dunders an agent class may call on ``super()``.
SUPER_DUNDERS = frozenset(
    {"__init__", "__repr__", "__str__", "__eq__", "__ne__", "__hash__", "__lt__", "__le__",
     "__gt__", "__ge__", "__len__", "__iter__", "__contains__", "__getitem__", "__setitem__",
     "__delitem__", "__call__", "__enter__", "__exit__", "__post_init__", "__setattr__",
     "__getattr__", "__format__", "__bool__"}
)

#: Attributes of frames, code objects, generators, coroutines and tracebacks: the routes
#: from any value back to the interpreter's live state.
FRAME_ATTRS = frozenset(
    {"gi_frame", "gi_code", "gi_yieldfrom", "gi_running", "gi_suspended", "cr_frame", "cr_code",
     "cr_await", "cr_origin", "cr_running", "ag_frame", "ag_code", "ag_await", "ag_running",
     "f_back", "f_globals", "f_locals", "f_builtins", "f_code", "f_trace", "f_lasti",
     "f_lineno", "tb_frame", "tb_next", "tb_lasti", "tb_lineno", "co_code", "co_consts",
     "co_names", "co_varnames", "co_filename", "co_lines", "co_positions", "func_globals",
     "func_code", "func_closure", "im_func", "im_self", "cell_contents", "_getframe",
     "f_trace_lines", "f_trace_opcodes"}
)

#: Hooks library code calls with its own (real) objects: an agent class may not define them.
PROTOCOL_HOOKS = frozenset(
    {"__array_ufunc__", "__array_function__", "__array__", "__array_interface__",
     "__array_struct__", "__array_priority__", "__array_wrap__", "__array_finalize__",
     "__array_prepare__", "__arrow_c_stream__", "__arrow_c_array__", "__arrow_c_schema__",
     "__dataframe__", "__dlpack__", "__dlpack_device__", "__array_namespace__",
     "__instancecheck__", "__subclasscheck__", "__subclasshook__", "__init_subclass__",
     "__class_getitem__", "__set_name__", "__get__", "__set__", "__delete__", "__del__",
     "__reduce__", "__reduce_ex__", "__getstate__", "__setstate__", "__getnewargs__",
     "__getnewargs_ex__", "__mro_entries__", "__prepare__", "__buffer__", "__release_buffer__",
     "__copy__", "__deepcopy__", "__class__", "__dict__", "__slots__", "__weakref__",
     "__getattribute__", "__pandas_priority__", "__narwhals_dataframe__", "__polars_series__"}
)

#: Names agent code may not mention at all.
FORBIDDEN_NAMES = frozenset({"__builtins__", "__loader__", "__spec__", "__build_class__", "__file__", "__cached__"})


def _membrane_error(message: str, *, line: int | None = None) -> PolicyDenied:
    where = f"line {line}: " if line else ""
    return PolicyDenied(
        f"{where}{message} Agent code works with values through the proxies; use their "
        "public API (columns, methods, describe(x) from pairproxy.agent).",
        rule="membrane",
        reason="the membrane keeps the interpreter's internals out of agent code",
    )


def is_dunder(name: str) -> bool:
    return len(name) > 4 and name.startswith("__") and name.endswith("__")


def attribute_refusal(name: str) -> str | None:
    """Why reading attribute `name` is refused, or None when it is allowed."""
    name = unicodedata.normalize("NFKC", name)
    if name.startswith("_self_"):
        return f"attribute {name!r} is sealed."
    if name in FRAME_ATTRS:
        return f"attribute {name!r} reaches interpreter frames and code objects."
    if is_dunder(name) and name not in SAFE_DUNDERS:
        return f"attribute {name!r} is a dunder that reaches the interpreter's internals."
    return None


def write_refusal(name: str) -> str | None:
    name = unicodedata.normalize("NFKC", name)
    if name.startswith("_self_") or name in FRAME_ATTRS or is_dunder(name):
        return f"setting or deleting attribute {name!r} is not available to agent code."
    return None


# --- the AST pass ---------------------------------------------------------------------------


class SemanticTransform(ast.NodeTransformer):
    """The rewrites agent code needs to keep its meaning through proxies at all:
    ``except X`` gets real exception classes even when ``X`` is proxied; and every
    handler first re-raises a budget overrun (`reraise_limits`): ``except Exception:``
    around the work in a loop would otherwise catch it and go on."""

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.AST:
        self.generic_visit(node)
        if node.type is not None:
            node.type = ast.copy_location(_call(EXC, [node.type]), node.type)
        node.body.insert(0, _reraise_limits_at(node.body[0]))
        return node


class GuardTransform(SemanticTransform):
    """Static refusals and the few rewrites (see the module docstring)."""

    def __init__(self) -> None:
        self._class_depth = 0

    def _refuse(self, node: ast.AST, message: str) -> PolicyDenied:
        return _membrane_error(message, line=getattr(node, "lineno", None))

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in FORBIDDEN_NAMES or node.id.startswith("__pp_"):
            raise self._refuse(node, f"the name {node.id!r} is not available to agent code.")
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        name = node.attr
        if isinstance(node.ctx, ast.Load):
            if name == "__class__":
                return ast.copy_location(_call(CLASS, [node.value]), node)
            if name in ("format", "format_map"):
                return ast.copy_location(_call(GETATTR, [node.value, ast.Constant(name)]), node)
            if _is_super_call(node.value) and name in SUPER_DUNDERS:
                return node
            why = attribute_refusal(name)
        else:
            why = write_refusal(name) if (is_dunder(name) or name.startswith("_self_") or name in FRAME_ATTRS) else None
        if why:
            raise self._refuse(node, why)
        return node

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        for kw in node.keywords:
            if kw.arg == "metaclass":
                raise self._refuse(node, "metaclasses are not available to agent code.")
        for stmt in node.body:
            for name in _bound_names(stmt):
                if name in PROTOCOL_HOOKS:
                    raise self._refuse(
                        stmt,
                        f"class {node.name!r} may not define {name!r}: library code calls "
                        "that hook with real objects.",
                    )
                if name in _EXIT_HOOKS and not isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    raise self._refuse(
                        stmt, f"class {node.name!r} may define {name!r} only with def "
                        f"(def {name}(self, exc_type, exc, tb): ...).",
                    )
        self._class_depth += 1
        try:
            self.generic_visit(node)
        finally:
            self._class_depth -= 1
        for stmt in node.body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)) and stmt.name in _EXIT_HOOKS:
                # like an except clause, a context manager's exit may not swallow a budget overrun
                at = 1 if ast.get_docstring(stmt, clean=False) is not None else 0
                stmt.body.insert(at, _reraise_limits_at(stmt.body[0]))
        return node

    def visit_ImportFrom(self, node: ast.ImportFrom) -> ast.AST:
        if node.level:
            raise self._refuse(node, "relative imports are not available to agent code.")
        return node


#: Context-manager exits: they see the exception leaving a ``with`` block and may swallow it.
_EXIT_HOOKS = frozenset({"__exit__", "__aexit__"})


def _call(name: str, args: list[ast.expr]) -> ast.Call:
    return ast.Call(func=ast.Name(name, ast.Load()), args=args, keywords=[])


def _reraise_limits_at(stmt: ast.stmt) -> ast.stmt:
    """The statement ``__pp_limits__()`` (`reraise_limits`), placed at `stmt`."""
    return ast.copy_location(ast.Expr(_call(LIMITS, [])), stmt)


def _is_super_call(node: ast.expr) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super"


def _bound_names(stmt: ast.stmt) -> list[str]:
    if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return [stmt.name]
    targets: list[ast.expr] = []
    if isinstance(stmt, ast.Assign):
        targets = list(stmt.targets)
    elif isinstance(stmt, (ast.AnnAssign, ast.AugAssign)):
        targets = [stmt.target]
    names = []
    for t in targets:
        for n in ast.walk(t):
            if isinstance(n, ast.Name):
                names.append(n.id)
    return names


def compile_agent(
    code: str, filename: str, allow_await: bool = False, mode: str = "exec", *, guarded: bool = True
) -> types.CodeType:
    """Compile agent code through the guard, like a notebook cell: the last expression's
    value is kept (``exec`` mode).  With `allow_await`, top-level ``await`` is allowed.
    ``guarded=False`` keeps only the semantic rewrite (for measuring the guard's cost).

    Most agent code has nothing for the AST pass to refuse or rewrite.  `_compile_plain`
    recognises that case from the text and the compiled names without building a Python
    AST (which costs a few times what compiling does), and the text is compiled as it is:
    the same code object the pass would have produced (tests/test_guard.py checks that
    both routes agree).
    """
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT if allow_await else 0
    code_obj = _compile_plain(code, filename, mode, flags) if guarded else None
    if code_obj is None:
        code_obj = _compile_through_pass(code, filename, mode, flags, guarded)
    _GUARDED_CODE.add(code_obj)
    return code_obj


def _compile_through_pass(code: str, filename: str, mode: str, flags: int, guarded: bool = True) -> types.CodeType:
    """Parse, refuse or rewrite (see `GuardTransform`), keep the last expression's value
    (``exec`` mode: ``__pp_last__ = <expr>``), compile."""
    tree = ast.parse(code, filename, mode)
    tree = (GuardTransform() if guarded else SemanticTransform()).visit(tree)
    return _compile_keeping_last_value(tree, filename, mode, flags)


def _compile_keeping_last_value(tree: ast.AST, filename: str, mode: str, flags: int) -> types.CodeType:
    """Compile `tree`; in ``exec`` mode a last expression statement becomes
    ``__pp_last__ = <expr>`` first."""
    if mode == "exec" and isinstance(tree, ast.Module) and tree.body and isinstance(tree.body[-1], ast.Expr):
        last = tree.body[-1]
        tree.body[-1] = ast.copy_location(
            ast.Assign(targets=[ast.Name(LAST, ast.Store())], value=last.value), last
        )
    ast.fix_missing_locations(tree)
    return compile(tree, filename, mode, flags=flags, dont_inherit=True)  # type: ignore[call-overload,no-any-return]


#: Text the AST pass may act on: ``except`` clauses (rewritten), class bodies (hook and
#: metaclass checks), relative imports, and every identifier the pass refuses or rewrites
#: (dunders, ``_self_*``, `FRAME_ATTRS`, ``format``/``format_map``).
#: Identifiers are matched in the text, not in the compiled names, which miss code the
#: compiler drops as unreachable (``return a.b; lambda: x._self_st``): the pass still
#: refuses that.  Matched anywhere, strings and comments included: a false match only
#: costs the pass.  See `_needs_pass`.
_NEEDS_PASS_SUBSTRINGS = ("except", "class", "__", "_self_")
_RELATIVE_IMPORT = re.compile(r"from\s*\.")
_NEEDS_PASS_WORDS = FRAME_ATTRS | {"format", "format_map"}
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: Each of `_NEEDS_PASS_WORDS` holds one of these: text without any holds none of them.
_WORD_MARKS = ("f_", "gi_", "cr_", "ag_", "tb_", "co_", "im_", "func_", "cell_", "_getframe", "format")
if not all(any(m in w for m in _WORD_MARKS) for w in _NEEDS_PASS_WORDS):  # pragma: no cover
    raise AssertionError("a word the guard's pass acts on has no mark in _WORD_MARKS")


def _needs_pass(code: str) -> bool:
    """Does ASCII `code` hold text the AST pass may act on (see above)?  Substring tests
    and one scan for identifiers: a regex alternation of every word costs a few times
    more, tried at every position."""
    found = _find_text(code, _NEEDS_PASS_SUBSTRINGS, _WORD_MARKS)
    if found == 1:
        return True
    if "from" in code and _RELATIVE_IMPORT.search(code) is not None:
        return True
    if not found:  # most code: no identifier scan
        return False
    return not _NEEDS_PASS_WORDS.isdisjoint(_IDENTIFIER.findall(code))


def _find_text_pure(code: str, texts: tuple[str, ...], marks: tuple[str, ...]) -> int:
    """1 when `code` holds one of `texts`, else 2 when it holds one of `marks`, else 0.
    ``pairproxy._speedups.find_text`` does the same in C (see `pairproxy.hotpath`)."""
    if any(text in code for text in texts):
        return 1
    if any(mark in code for mark in marks):
        return 2
    return 0


def _code_line_pure(co: types.CodeType, offset: int) -> int | None:
    """The line of the instruction at byte `offset` of `co` (None where it has none).
    ``pairproxy._speedups.code_line`` does the same in C (see `pairproxy.hotpath`)."""
    for start, end, line in reversed(list(co.co_lines())):
        if start <= offset < end:
            return line
    return None


#: Set by `pairproxy.hotpath`: the compiled versions where they are in use.
_find_text = _find_text_pure
_code_line = _code_line_pure


_CACHE_OP = dis.opmap["CACHE"]
_RETURN_VALUE = dis.opmap["RETURN_VALUE"]
_RETURN_CONST = dis.opmap.get("RETURN_CONST", -1)  # 3.12+
_LOAD_CONST = dis.opmap["LOAD_CONST"]
_STORE_OPS = frozenset(
    dis.opmap[n] for n in ("STORE_NAME", "STORE_GLOBAL", "STORE_ATTR", "STORE_SUBSCR", "STORE_SLICE",
                           "DELETE_NAME", "DELETE_GLOBAL", "DELETE_ATTR", "DELETE_SUBSCR")
    if n in dis.opmap
)


def _compile_plain(code: str, filename: str, mode: str, flags: int) -> types.CodeType | None:
    """`code` compiled as the AST pass would compile it, when the pass would refuse and
    rewrite nothing but the last expression; None when it might (the caller then runs the
    pass, which decides).

    An answer that is not None must be exact, so every test errs towards None:
    - non-ASCII text: identifiers are NFKC-normalised, so look-alikes need the pass;
    - `_needs_pass`: text anywhere that covers every identifier the pass acts on;
    In ``exec`` mode the value of a last expression statement is kept, a rewrite of the
    last statement alone: `_ends_in_store` rules one out without parsing for most code;
    otherwise the text is parsed and, when there is one, only that rewrite is made.
    """
    if not code.isascii() or _needs_pass(code):
        return None
    try:
        co = compile(code, filename, mode, flags=flags, dont_inherit=True)
    except SyntaxError:
        return None  # the pass raises it, with the same message
    if mode != "exec" or (";" not in code and _ends_in_store(co)):
        return co
    tree = ast.parse(code, filename, "exec")
    if not (tree.body and isinstance(tree.body[-1], ast.Expr)):
        return co
    return _compile_keeping_last_value(tree, filename, mode, flags)


def _ends_in_store(co: types.CodeType) -> bool:
    """Does module code `co` end in a store (an assignment, ``del`` or import) on the
    line of its implicit ``return None``?  Then its last statement is no expression: one
    would end in ``POP_TOP``, or, for a constant, leave nothing but its line number on
    the return (the caller rules out a constant after ``;`` on the store's line)."""
    raw = co.co_code
    units: list[tuple[int, int]] = []  # the last three instructions (opcode, offset), last first
    i = len(raw) - 2
    while i >= 0 and len(units) < 3:
        if raw[i] != _CACHE_OP:
            units.append((raw[i], i))
        i -= 2
    if not units:
        return False
    op, at = units[0]
    if op == _RETURN_CONST:
        store = units[1:2]
    elif op == _RETURN_VALUE and len(units) == 3 and units[1][0] == _LOAD_CONST:
        store = units[2:3]
    else:
        return False
    if not store or store[0][0] not in _STORE_OPS:
        return False
    if "__doc__" in co.co_names:  # a lone string statement compiles to a ``__doc__`` store
        return False
    return _code_line(co, store[0][1]) == _code_line(co, at)


_GUARDED_CODE: weakref.WeakSet[types.CodeType] = weakref.WeakSet()


# --- run-time helpers the rewrites call ---------------------------------------------------


def reraise_limits() -> None:
    """First statement of every ``except`` handler and every class's ``__exit__`` in
    agent code: a `ResourceLimit` (the policy's op or wall-time budget ran out) is the
    owner's stop, not the agent's to catch (nor inside a group, for ``except*``)."""
    e = sys.exc_info()[1]
    if isinstance(e, ResourceLimit) or (
        isinstance(e, BaseExceptionGroup) and e.subgroup(ResourceLimit) is not None
    ):
        raise e


def exception_types(spec: Any) -> Any:
    """``except`` needs real exception classes: unwrap proxied ones (``pl.exceptions.X``)."""
    if type(spec) in PROXY_TYPES:
        real = _get(spec).obj
        if isinstance(real, type) and issubclass(real, BaseException):
            return real
        if isinstance(real, tuple):
            return tuple(exception_types(x) for x in real)
        return real
    if type(spec) is tuple:
        return tuple(exception_types(x) for x in spec)
    return spec


def check_format_string(fmt: str) -> None:
    """Refuse format fields that walk into private or dunder attributes
    (``"{0.__class__.__init__.__globals__}"``), also in nested format specs."""
    for _, field, spec, _ in string.Formatter().parse(fmt):
        if field:
            for part in field.replace("[", ".").replace("]", "").split(".")[1:]:
                if part.startswith("_"):
                    raise _membrane_error(
                        f"the format field {{{field}}} walks into the private attribute {part!r}."
                    )
        if spec and "{" in spec:
            check_format_string(spec)


def _checked_format(s: str) -> Callable[..., str]:
    def format(*args: Any, **kwargs: Any) -> str:  # noqa: A001 - it is str.format
        check_format_string(s)
        return s.format(*args, **kwargs)

    return format


def _checked_format_map(s: str) -> Callable[..., str]:
    def format_map(mapping: Any) -> str:
        check_format_string(s)
        return s.format_map(mapping)

    return format_map


def _unbound_format(fmt: Any, *args: Any, **kwargs: Any) -> str:
    if isinstance(fmt, str):
        check_format_string(fmt)
    return str.format(fmt, *args, **kwargs)


def _unbound_format_map(fmt: Any, mapping: Any) -> str:
    if isinstance(fmt, str):
        check_format_string(fmt)
    return str.format_map(fmt, mapping)


# --- guarded builtins -----------------------------------------------------------------------


class AgentBuiltins:
    """Builds the builtins dict agent code runs with, for one session."""

    #: Builtins that are policy-judged calls of the real function (effect from the catalogue).
    JUDGED = ("open", "input", "help", "breakpoint")
    #: Builtins removed outright: no data use, and they reach process state.
    REMOVED = ("exit", "quit", "copyright", "credits", "license", "__build_class__", "__loader__", "__spec__")

    def __init__(self, session: Any) -> None:
        self.session = session
        m = session._m
        self._m = m
        self._builtins_proxy = m.root(builtins, "builtins", actor="owner")
        self._bst = _get(self._builtins_proxy)

    def build(self) -> dict[str, Any]:
        b = dict(builtins.__dict__)
        for name in self.REMOVED:
            b.pop(name, None)
        b["__build_class__"] = builtins.__build_class__  # class statements (bodies are guarded)
        b["__import__"] = self.session._import
        b["getattr"] = self.getattr
        b["setattr"] = self.setattr
        b["delattr"] = self.delattr
        b["hasattr"] = self.hasattr
        b["type"] = self.type
        b["vars"] = self.vars
        b["globals"] = self._refuser("globals()", "name the values you need directly")
        b["locals"] = self._refuser("locals()", "name the values you need directly")
        b["eval"] = self.eval
        b["exec"] = self.exec
        b["compile"] = self.compile
        for name in self.JUDGED:
            b[name] = self._judged(name)
        return b

    # --- attribute builtins

    def getattr(self, obj: Any, name: str, *default: Any) -> Any:
        if not isinstance(name, str):
            return builtins.getattr(obj, name, *default)  # raises the native TypeError
        why = attribute_refusal(name)
        if why:
            raise _membrane_error(f"getattr(..., {name!r}): {why}")
        return guarded_getattr(obj, name, *default)

    def setattr(self, obj: Any, name: str, value: Any) -> None:
        why = write_refusal(name) if isinstance(name, str) else None
        if why:
            raise _membrane_error(f"setattr(..., {name!r}, ...): {why}")
        builtins.setattr(obj, name, value)

    def delattr(self, obj: Any, name: str) -> None:
        why = write_refusal(name) if isinstance(name, str) else None
        if why:
            raise _membrane_error(f"delattr(..., {name!r}): {why}")
        builtins.delattr(obj, name)

    def hasattr(self, obj: Any, name: str) -> bool:
        if isinstance(name, str) and attribute_refusal(name):
            return builtins.hasattr(obj, name) if type(obj) not in PROXY_TYPES else False
        try:
            guarded_getattr(obj, name)
        except AttributeError:
            return False
        return True

    def type(self, *args: Any) -> Any:
        if len(args) == 1:
            return proxied_class(args[0])
        raise _membrane_error("type() with three arguments creates classes dynamically; use a class statement.")

    def vars(self, *args: Any) -> Any:
        if args and is_agent_type(builtins.type(args[0])):
            return builtins.vars(args[0])
        raise _membrane_error(
            "vars() is available for objects of classes defined in agent code only; "
            "it would reach the internals of library objects."
        )

    # --- code builtins

    def _judge_exec(self, name: str, source: Any) -> None:
        from . import ops as O

        m = self._m
        fields = {"name": name, "args": (O.Opaque("code", _short_text(source)),), "kwargs": {}}
        m.admit(self._bst, "call", self._bst.key, name, "exec", m.all_rights, "", (source,), None, O.Call, fields)
        m._record(O.Call, self._bst, m.now_ns(), "exec", None, fields)

    def eval(self, source: Any, globals: Any = None, locals: Any = None) -> Any:
        self._judge_exec("eval", source)
        code = self._code_for(source, "eval")
        return builtins.eval(code, self._agent_globals(globals), locals)

    def exec(self, source: Any, globals: Any = None, locals: Any = None) -> None:
        self._judge_exec("exec", source)
        code = self._code_for(source, "exec")
        builtins.exec(code, self._agent_globals(globals), locals)

    def compile(self, source: Any, filename: str = AGENT_FILE_PREFIX + "-compile>", mode: str = "exec", *args: Any, **kwargs: Any) -> Any:
        self._judge_exec("compile", source)
        if not isinstance(source, str):
            raise _membrane_error("compile() in agent code takes source text only.")
        return compile_agent(source, AGENT_FILE_PREFIX + "-compile>", mode=mode)

    def _code_for(self, source: Any, mode: str) -> Any:
        if isinstance(source, types.CodeType):
            if source in _GUARDED_CODE:
                return source
            raise _membrane_error("only code compiled by agent code itself can be run.")
        if not isinstance(source, str):
            raise _membrane_error(f"{mode}() in agent code takes source text only.")
        return compile_agent(source, AGENT_FILE_PREFIX + "-eval>", mode=mode)

    def _agent_globals(self, given: Any) -> dict[str, Any]:
        current = self.session._current_globals
        if given is None:
            if current is None:
                raise _membrane_error("eval/exec outside an agent execution.")
            return current  # type: ignore[no-any-return]
        if not isinstance(given, dict):
            raise TypeError("globals must be a dict")
        g = dict(given)
        g["__builtins__"] = current["__builtins__"] if current else self.build()
        return g

    # --- policy-judged builtins

    def _judged(self, name: str) -> Any:
        fn = builtins.getattr(builtins, name)
        m = self._m
        bst = self._bst

        def judged(*args: Any, **kwargs: Any) -> Any:
            st = m.member_state(bst, name, fn)
            return m.call(st, args, kwargs)

        judged.__name__ = name
        judged.__qualname__ = name
        return judged

    @staticmethod
    def _refuser(what: str, hint: str) -> Callable[..., Any]:
        def refuse(*_: Any, **__: Any) -> Any:
            raise _membrane_error(f"{what} is not available to agent code ({hint}).")

        return refuse


def _short_text(source: Any) -> str:
    text = source if isinstance(source, str) else builtins.type(source).__name__
    return text if len(text) <= 80 else text[:79] + "…"


def guarded_getattr(obj: Any, name: str, *default: Any) -> Any:
    """``getattr`` for the rewrites: ``str.format`` checked, ``__class__`` proxied."""
    if name == "__class__":
        return proxied_class(obj)
    if name in ("format", "format_map") and builtins.type(obj) not in PROXY_TYPES:
        if isinstance(obj, str):
            return _checked_format(obj) if name == "format" else _checked_format_map(obj)
        if obj is str:
            return _unbound_format if name == "format" else _unbound_format_map
    return builtins.getattr(obj, name, *default)


def proxied_class(obj: Any) -> Any:
    """``type(x)`` / ``x.__class__`` for agent code: the class as a proxy when x is one."""
    if builtins.type(obj) in PROXY_TYPES:
        st = _get(obj)
        return st.m.attr(st, "__class__")
    return builtins.type(obj)


# --- agent-defined types ------------------------------------------------------------------

_AGENT_TYPES: dict[type, bool] = {}


def is_agent_code(fn: Any) -> bool:
    """Whether `fn` (a function, method, classmethod or staticmethod) was compiled from agent code."""
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    return isinstance(code, types.CodeType) and code.co_filename.startswith(AGENT_FILE_PREFIX)


def is_agent_type(t: type) -> bool:
    """Whether `t` was defined by agent code (any of its methods was compiled by the guard)."""
    known = _AGENT_TYPES.get(t)
    if known is None:
        known = False
        for base in getattr(t, "__mro__", ()):
            for value in vars(base).values():
                if is_agent_code(value):
                    known = True
                    break
            if known:
                break
        remember(_AGENT_TYPES, t, known)
    return known


# --- wall-time limit ----------------------------------------------------------------------


class WallTimeExceeded(ResourceLimit):
    def __init__(self, *args: Any) -> None:
        super().__init__(
            *(args or ("this execution ran past its wall-time budget (policy limits.wall_seconds); "
                       "work on a sample, aggregate before looping, or split the work",))
        )


class Watchdog:
    """Interrupts one thread's agent code when its wall-time budget runs out.

    Uses ``PyThreadState_SetAsyncExc``: the exception is raised in the agent's thread at
    its next bytecode, so pure-Python loops stop; a single long call into native code
    (one huge pandas operation) stops when it returns.  One thread (`_Alarms`) watches
    the deadlines of every execution under way.

    The exception is raised only while the agent's code is on that thread's stack (its
    own frames, or library code it called), and again every `RECHECK` seconds while it
    still is: library code the agent called may catch and drop it (the agent's own
    ``except`` clauses re-raise it, see `reraise_limits`).  Code with top-level
    ``await`` may be suspended when the time is up, with the thread running someone
    else's task on the same event loop (the notebook kernel's): then `on_suspended` is
    called instead (it cancels the agent's task), and the watchdog looks again every
    `RECHECK` seconds until the code has finished, in case it resumes into a loop before
    the cancellation reaches it.

    Once the code has finished (`__exit__`), the exception is never raised: a watchdog
    that fires from then on does nothing, and one that fired as the code was finishing
    has its exception cleared or, where it already arrived inside `__exit__`, swallowed.
    It would otherwise be raised in whatever the thread ran next (the owner's own cells).
    """

    RECHECK = 0.05

    def __init__(self, seconds: float, on_suspended: Callable[[], Any] | None = None) -> None:
        self.seconds = seconds
        self.on_suspended = on_suspended
        self._thread_id = threading.get_ident()
        self._lock = threading.Lock()
        self._done = False
        self._fired = False  # the budget ran out (interrupted, or the agent's task cancelled)

    @property
    def fired(self) -> bool:
        return self._fired

    def __enter__(self) -> Watchdog:
        _ALARMS.arm(self, time.monotonic() + self.seconds)
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            with self._lock:  # from here on the watchdog does not fire
                self._done = True
            if self._fired:  # set as the code finished and not raised yet: clear it
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._thread_id), None)
        except WallTimeExceeded:  # set as the code finished, raised just now: the code did finish
            pass
        _ALARMS.disarm(self)  # nothing can be pending any more

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            if self._agent_running():
                self._fired = True
                self._raise()
            elif not self._fired and self.on_suspended is not None:
                self._fired = True
                self.on_suspended()
        _ALARMS.arm(self, time.monotonic() + self.RECHECK)

    def _agent_running(self) -> bool:
        """Is one of the agent's frames on the watched thread's stack right now?  (True
        when that cannot be told: an audit hook refused ``sys._current_frames``.)"""
        try:
            frame = sys._current_frames().get(self._thread_id)
        except Exception:
            return True
        while frame is not None:
            if frame.f_code.co_filename.startswith(AGENT_FILE_PREFIX):
                return True
            frame = frame.f_back
        return False

    def _raise(self) -> None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(self._thread_id), ctypes.py_object(WallTimeExceeded)
        )


class _Alarms:
    """The one daemon thread that fires the watchdogs whose deadline has passed (a timer
    thread per execution cost about 0.3 ms to start and stop).  It sleeps until the
    earliest deadline and is woken only for an earlier one; a watchdog disarmed in the
    meantime costs it one idle wake-up."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._armed: dict[Watchdog, float] = {}  # -> deadline, `time.monotonic()`
        self._wake_at = math.inf  # when the thread looks next (inf: when woken)
        self._thread: threading.Thread | None = None

    def arm(self, watchdog: Watchdog, deadline: float) -> None:
        with self._cond:
            self._armed[watchdog] = deadline
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="pairproxy-watchdog", daemon=True)
                self._thread.start()
            elif deadline < self._wake_at:
                self._cond.notify()

    def disarm(self, watchdog: Watchdog) -> None:
        with self._cond:
            self._armed.pop(watchdog, None)

    def _run(self) -> None:
        while True:
            with self._cond:
                now = time.monotonic()
                due = [w for w, at in self._armed.items() if at <= now]
                for w in due:
                    del self._armed[w]
                if not due:
                    self._wake_at = min(self._armed.values(), default=math.inf)
                    self._cond.wait(None if self._wake_at == math.inf else self._wake_at - now)
                    continue
            for w in due:  # outside the lock: firing takes the watchdog's own
                try:
                    w._fire()
                except Exception:  # the thread must go on watching the others
                    _log.exception("pairproxy: a wall-time watchdog failed to fire")

    def _reset(self) -> None:
        """In a forked child: the parent's thread and executions are not there."""
        self.__init__()  # type: ignore[misc]


_ALARMS = _Alarms()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_ALARMS._reset)
