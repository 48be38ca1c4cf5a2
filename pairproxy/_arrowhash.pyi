from collections.abc import Callable, Sequence
from typing import Any

def column_digest(obj: Any, ranges: Sequence[tuple[int, int]] | None, hasher: Callable[[], Any]) -> bytes | None: ...
