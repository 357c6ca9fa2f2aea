"""Decode LiveCodeBench's compressed private tests, ``base64(zlib(pickle(json string)))``, without running code.

``pickle.loads`` on downloaded data executes whatever callable the payload names (``__reduce__`` -> ``os.system``).
:class:`DataOnlyUnpickler` refuses every global in ``find_class``, which is the only way a pickle can reach a
callable or a class (GLOBAL, STACK_GLOBAL, INST, OBJ, NEWOBJ, REDUCE and the copyreg extension codes all go through
it), so only the pickle machine's own data types can come out: str, bytes, bytearray, int, float, bool, None, list,
tuple, dict, set, frozenset. Persistent ids are refused too (no ``persistent_load``). The result is then walked once
more to be sure, and decompression is capped so a small payload cannot expand into all the memory.
"""

from __future__ import annotations

import base64
import binascii
import io
import pickle
import zlib
from typing import Any

MAX_DECOMPRESSED_BYTES = 1 << 30  # LiveCodeBench's largest private test sets are tens of MB *(our default)*
PLAIN_TYPES = (str, bytes, bytearray, int, float, bool, type(None))


class UnsafePickleError(ValueError):
    """A payload that is not plain data (it names a class or function), or not a decodable payload at all."""


class DataOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        raise UnsafePickleError(f"refused: the pickle references the global {module}.{name} (only plain data "
                                "is accepted; nothing was executed)")

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refused: the pickle uses a persistent id (only plain data is accepted)")


def loads_plain(payload: bytes) -> Any:
    """Unpickle ``payload`` allowing plain data only; raises :class:`UnsafePickleError` otherwise."""
    stream = io.BytesIO(payload)
    try:
        value = DataOnlyUnpickler(stream).load()
    except UnsafePickleError:
        raise
    except Exception as exc:  # a truncated or corrupt pickle raises any of a dozen types
        raise UnsafePickleError(f"not a valid pickle: {type(exc).__name__}: {exc}") from None
    if stream.read(1):
        raise UnsafePickleError("trailing bytes after the pickle")
    _check_plain(value)
    return value


def decode_compressed(text: str) -> Any:
    """``base64`` -> ``zlib`` -> data-only unpickle, as LiveCodeBench's loader does (minus the code execution)."""
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise UnsafePickleError(f"neither JSON nor base64: {exc}") from None
    inflater = zlib.decompressobj()
    try:
        payload = inflater.decompress(raw, MAX_DECOMPRESSED_BYTES)
    except zlib.error as exc:
        raise UnsafePickleError(f"base64 but not zlib data: {exc}") from None
    if inflater.unconsumed_tail:
        raise UnsafePickleError(f"decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes")
    return loads_plain(payload)


def _check_plain(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, (list, tuple, set, frozenset)):
            stack.extend(item)
        elif type(item) not in PLAIN_TYPES:
            raise UnsafePickleError(f"refused: unpickled a {type(item).__name__}, not plain data")
