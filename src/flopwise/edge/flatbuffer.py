"""A FlatBuffer read in place, by the field numbers of its schema (.fbs): no generated code, no dependency.

The format (flatbuffers.dev, "Internals"): the buffer starts with the offset of its root table; a table starts
with a signed offset back to its vtable, whose 16-bit entries give each field's offset inside the table (0: the
field is absent, its default applies). Field i of a schema is vtable entry i, where a union counts twice (its type,
then its value). Offsets to tables, vectors and strings are unsigned and relative to where they are stored; a
vector or string starts with its 32-bit length. Anything out of bounds raises ValueError.
"""

from __future__ import annotations

import struct
from typing import Any


class Table:
    """One table of a FlatBuffer: `buf` the whole buffer, `pos` where the table starts."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf, self.pos = buf, pos
        self.vtable = pos - read(buf, "<i", pos)
        self.vtable_size = read(buf, "<H", self.vtable)

    def _where(self, field: int) -> int:
        """Where field `field` is stored, or 0 when it is absent."""
        entry = 4 + 2 * field
        if entry + 2 > self.vtable_size:
            return 0
        offset = read(self.buf, "<H", self.vtable + entry)
        return self.pos + offset if offset else 0

    def has(self, field: int) -> bool:
        return self._where(field) != 0

    def scalar(self, field: int, fmt: str, default: Any = 0) -> Any:
        """A scalar field (`fmt` a struct format: "<b", "<i", "<q", "<f", "<?"…)."""
        where = self._where(field)
        return read(self.buf, fmt, where) if where else default

    def _target(self, field: int) -> int:
        where = self._where(field)
        return where + read(self.buf, "<I", where) if where else 0

    def table(self, field: int) -> Table | None:
        target = self._target(field)
        return Table(self.buf, target) if target else None

    def string(self, field: int, default: str = "") -> str:
        target = self._target(field)
        if not target:
            return default
        length = read(self.buf, "<I", target)
        return bytes(_span(self.buf, target + 4, length)).decode("utf-8", "replace")

    def _vector(self, field: int) -> tuple[int, int]:
        """(where its elements start, how many)."""
        target = self._target(field)
        return (target + 4, read(self.buf, "<I", target)) if target else (0, 0)

    def scalars(self, field: int, fmt: str) -> list[Any]:
        """A vector of scalars, e.g. `[int]` with fmt "<i"."""
        start, n = self._vector(field)
        size = struct.calcsize(fmt)
        _span(self.buf, start, n * size)
        return [struct.unpack_from(fmt, self.buf, start + i * size)[0] for i in range(n)]

    def tables(self, field: int) -> list[Table]:
        """A vector of tables."""
        start, n = self._vector(field)
        _span(self.buf, start, 4 * n)
        return [Table(self.buf, start + 4 * i + read(self.buf, "<I", start + 4 * i)) for i in range(n)]

    def blob(self, field: int) -> bytes:
        """A vector of bytes (`[ubyte]`)."""
        start, n = self._vector(field)
        return bytes(_span(self.buf, start, n))

    def union(self, field: int) -> tuple[int, Table | None]:
        """A union: (its type, a number of the schema's union; 0 is NONE) and its table."""
        return self.scalar(field, "<B"), self.table(field + 1)


def root(buf: bytes, identifier: bytes | None = None) -> Table:
    """The root table; with `identifier`, the 4-byte file identifier must be there (ValueError otherwise)."""
    if identifier is not None and buf[4:8] != identifier:
        raise ValueError(f"no {identifier.decode()} file identifier (found {buf[4:8]!r})")
    return Table(buf, read(buf, "<I", 0))


def read(buf: bytes, fmt: str, pos: int) -> Any:
    _span(buf, pos, struct.calcsize(fmt))
    return struct.unpack_from(fmt, buf, pos)[0]


def _span(buf: bytes, start: int, length: int) -> memoryview:
    if start < 0 or length < 0 or start + length > len(buf):
        raise ValueError(f"a FlatBuffer offset points outside the file ({start}+{length} of {len(buf)} bytes)")
    return memoryview(buf)[start : start + length]
