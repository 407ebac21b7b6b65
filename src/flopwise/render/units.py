"""Human-readable numbers: 3,976,448 → '3.98 M'."""

from __future__ import annotations

_PREFIXES = ["", "k", "M", "G", "T", "P", "E", "Z", "Y"]


def si(value: float, unit: str = "", digits: int = 3) -> str:
    """Three significant digits with an SI prefix from k to Y: si(3_976_448) == '3.98 M'."""
    if value == 0:
        return f"0 {unit}".rstrip()
    magnitude, scaled = 0, float(value)
    while abs(scaled) >= 999.5 and magnitude < len(_PREFIXES) - 1:
        scaled /= 1000
        magnitude += 1
    if magnitude == 0 and float(value).is_integer():
        return f"{int(value)} {unit}".rstrip()
    text = f"{scaled:.{digits}g}"
    return f"{text} {_PREFIXES[magnitude]}{unit}".rstrip()


_SMALL_PREFIXES = [("m", 1e-3), ("µ", 1e-6), ("n", 1e-9), ("p", 1e-12)]


def si_small(value: float, unit: str) -> str:
    """Like `si`, with m, µ, n, p below 1: si_small(0.000283, 'J') == '283 µJ'."""
    if value == 0 or abs(value) >= 0.9995:
        return si(value, unit)
    for prefix, scale in _SMALL_PREFIXES:
        if abs(value) >= scale * 0.9995:  # below the previous prefix's 999.5: at most three digits
            return f"{value / scale:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}"


def binary_bytes(value: int) -> str:
    """Bytes with binary prefixes: 12_582_912 → '12 MiB'."""
    scaled, units = float(value), ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]
    for unit in units:
        if abs(scaled) < 1024 or unit == units[-1]:
            return f"{scaled:.3g} {unit}" if unit != "B" else f"{int(scaled)} B"
        scaled /= 1024
    raise AssertionError("unreachable")


_COUNT_PREFIXES = ["", "k", "M", "B", "T"]


def count_text(value: int) -> str:
    """A count of things (parameters) as people write it: 8,030,261,248 → '8.03 B', 25,557,032 → '25.6 M'.

    Billions are B, not G: "an 8 B model". MACs and FLOPs keep SI prefixes (`si`).
    """
    magnitude, scaled = 0, float(value)
    while abs(scaled) >= 999.5 and magnitude < len(_COUNT_PREFIXES) - 1:
        scaled /= 1000
        magnitude += 1
    if magnitude == 0:
        return str(int(value))
    return f"{scaled:.3g} {_COUNT_PREFIXES[magnitude]}"
