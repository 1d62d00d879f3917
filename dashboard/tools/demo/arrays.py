"""Small vectorised helpers over numpy and Arrow arrays: times, ids, text and JSON per row."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

US = np.timedelta64(1, "us")
NAT = np.datetime64("NaT", "us")
TS = pa.timestamp("us", tz="UTC")
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def minutes(x) -> np.ndarray:
    return (np.asarray(x, dtype=np.float64) * 60e6).astype(np.int64) * US


def uuids(rng: np.random.Generator, n: int) -> pa.StringArray:
    """``n`` random version-4 UUIDs as text, the same as ``uuid.UUID(bytes=b, version=4)``."""
    b = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    b[:, 6] = (b[:, 6] & 0x0F) | 0x40
    b[:, 8] = (b[:, 8] & 0x3F) | 0x80
    hexed = np.empty((n, 32), np.uint8)
    hexed[:, 0::2], hexed[:, 1::2] = _HEX[b >> 4], _HEX[b & 15]
    out = np.full((n, 36), ord("-"), np.uint8)
    for dashes, (a, b) in enumerate(((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))):
        out[:, a + dashes : b + dashes] = hexed[:, a:b]
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(out))


def take(pool, idx) -> pa.Array:
    return pa.array(pool, pa.string()).take(pa.array(np.asarray(idx, dtype=np.int64)))


def pick(rng, pool, n) -> pa.Array:
    return take(pool, rng.choice(len(pool), size=n))


def join(*parts) -> pa.Array:
    """Concatenate arrays and strings element-wise (null if any part is null)."""
    return pc.binary_join_element_wise(*parts, "")


def fill(templates, idx, values) -> pa.Array:
    """``templates[idx[i]].format(values[i])`` for every row, vectorised (one ``{}`` per template)."""
    prefix, suffix = zip(*(t.split("{}") for t in templates))
    return join(take(prefix, idx), values, take(suffix, idx))


def text(values) -> pa.Array:
    return pc.cast(pa.array(np.asarray(values)), pa.string())


def ts(values) -> pa.Array:
    return pa.array(np.asarray(values, dtype="datetime64[us]"), type=TS, from_pandas=True)


def take_or_null(values: pa.Array, idx) -> pa.Array:
    """``values[idx]`` with null where ``idx`` is -1."""
    idx = np.asarray(idx)
    return values.take(pa.array(np.where(idx < 0, 0, idx), mask=idx < 0))


def json_object(**fields) -> pa.Array:
    """A JSON object per row from string arrays (values quoted) and int arrays (bare)."""
    parts: list = []
    for key, values in fields.items():
        quoted = pa.types.is_string(values.type)
        parts += [", " if parts else "{", f'"{key}": ' + ('"' if quoted else "")]
        parts += [values if quoted else pc.cast(values, pa.string()), '"' if quoted else ""]
    return join(*parts, "}")


def local_to_utc(naive: np.ndarray, zone: str) -> np.ndarray:
    index = pd.DatetimeIndex(naive).tz_localize(zone, ambiguous=np.zeros(len(naive), bool), nonexistent="shift_forward")
    return index.tz_convert("UTC").tz_localize(None).to_numpy().astype("datetime64[us]")


def utc_to_local(utc: np.ndarray, zone: str) -> np.ndarray:
    index = pd.DatetimeIndex(utc).tz_localize("UTC").tz_convert(zone).tz_localize(None)
    return index.to_numpy().astype("datetime64[us]")


def day_of_week(days: np.ndarray) -> np.ndarray:
    """Day of week, 0 = Sunday, of datetime64[D] values."""
    return (days.astype(np.int64) + 4) % 7


def weighted_order(rng, n: int, weights) -> np.ndarray:
    """Per row, a random order of ``len(weights)`` items, heavier ones first (Efraimidis-Spirakis)."""
    keys = rng.random((n, len(weights))) ** (1 / np.asarray(weights, dtype=float))
    return np.argsort(-keys, axis=1)


def null_unless(mask, values: pa.Array) -> pa.Array:
    return pc.if_else(pa.array(np.asarray(mask, bool)), values, pa.scalar(None, values.type))


def flat(pools) -> tuple[str, ...]:
    return tuple(x for pool in pools for x in pool)


def utc_offset_minutes(zone: str, day: dt.date) -> float:
    """The zone's standard offset around ``day`` (good enough for when people are awake)."""
    return zoneinfo.ZoneInfo(zone).utcoffset(dt.datetime(day.year, 1, 15)).total_seconds() / 60
