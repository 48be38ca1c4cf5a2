from typing import Any

def configure(
    proxy_type: type, state_slot: Any, state_type: type, pure_getattribute: Any,
    underscore_attr: Any, attr_record: type,
) -> None: ...
def getattribute(self: Any, name: str) -> Any: ...
