"""Decoding never trusts the radio: ≥100,000 mutated and random payloads across the decoders.

Only DecodeError may escape; whatever decodes must be finite, within the family's physical
limits, with consistent shapes, device times (NaN only for clock-less families) and flags.
A plain numpy-random loop keeps this fast and reproducible.
"""
from __future__ import annotations

import numpy as np
import pytest

from lumbar.errors import DecodeError
from lumbar_sensors import registry, synth
from lumbar_sensors.family import Decoded

N_PER_FAMILY = 15_000  # × 7 families = 105,000 payloads


def mutate(rng: np.random.Generator, seed: bytes, corpus: list[bytes]) -> bytes:
    """One random payload: fresh random bytes, or a seed with flips, replacements, cuts, growth or splices."""
    kind = rng.integers(0, 8)
    if kind == 0 or not seed:
        return rng.bytes(int(rng.integers(0, 260)))
    b = bytearray(seed)
    if kind == 1:  # flip a few bits
        for _ in range(int(rng.integers(1, 4))):
            i = int(rng.integers(0, len(b)))
            b[i] ^= 1 << int(rng.integers(0, 8))
    elif kind == 2:  # overwrite bytes with random or extreme values
        for _ in range(int(rng.integers(1, 6))):
            b[int(rng.integers(0, len(b)))] = int(rng.choice([0x00, 0x7F, 0x80, 0xFF, int(rng.integers(0, 256))]))
    elif kind == 3:  # truncate
        del b[int(rng.integers(0, len(b))) :]
    elif kind == 4:  # grow
        b += rng.bytes(int(rng.integers(1, 40)))
    elif kind == 5:  # splice two packets
        other = corpus[int(rng.integers(0, len(corpus)))]
        b = b[: int(rng.integers(0, len(b) + 1))] + other[int(rng.integers(0, len(other) + 1)) :]
    elif kind == 6:  # header byte(s) random
        for i in range(min(len(b), int(rng.integers(1, 4)))):
            b[i] = int(rng.integers(0, 256))
    else:  # a valid packet: keeps stream state moving so stateful paths are reached
        pass
    return bytes(b)


def check(fam_name: str, d: Decoded) -> None:
    fam = registry.get(fam_name)
    n = len(d)
    assert d.seq.shape == (n,) and d.flags.shape == (n,) and d.device_time_s.shape == (n,)
    assert d.seq.dtype == np.int64 and d.flags.dtype == np.uint8
    for arr, limit in ((d.acc, fam.acc_limit_mps2), (d.gyro, fam.gyro_limit_rads)):
        if arr is not None:
            assert arr.shape == (n, 3)
            assert np.all(np.isfinite(arr)), "NaN/inf sample passed"
            assert np.all(np.abs(arr) <= limit), "out-of-range sample passed"
    for extra in (d.mag, d.quat):
        if extra is not None:
            assert np.all(np.isfinite(extra))
    if fam.has_device_clock:
        assert np.all(np.isfinite(d.device_time_s)), "NaN device time from a clocked family"
        assert np.all(np.diff(d.device_time_s) > 0)
    else:
        assert np.all(np.isnan(d.device_time_s))
    if n:
        assert np.all(np.diff(d.seq) >= 1)
        d.to_batch("lumbar")  # the data model accepts it


@pytest.mark.parametrize("family", registry.FAMILY_NAMES)
def test_fuzz_only_decode_errors(family: str) -> None:
    mod = registry.module(family)
    corpus, ctx, _ = synth.stream_payloads(family, 60, seed=1)
    rng = np.random.default_rng(abs(hash(family)) % 2**32)
    stream = mod.new_stream(**ctx)
    ok = errors = 0
    for i in range(N_PER_FAMILY):
        if i % 500 == 0:  # sometimes start afresh, as after a reconnect
            stream = mod.new_stream(**ctx)
        seed = corpus[int(rng.integers(0, len(corpus)))]
        payload = mutate(rng, seed, corpus)
        try:
            d = mod.decode(payload, stream)
        except DecodeError as exc:
            assert str(exc).startswith(f"{family}: "), f"error does not name the family: {exc}"
            errors += 1
            continue
        check(family, d)
        ok += 1
    # both paths are exercised
    assert ok > 100 and errors > 100, (ok, errors)


@pytest.mark.parametrize("family", registry.FAMILY_NAMES)
def test_stream_goes_on_after_errors(family: str) -> None:
    """After garbage, the next good packets still decode (state is not poisoned)."""
    mod = registry.module(family)
    payloads, ctx, _ = synth.stream_payloads(family, 40, seed=2)
    stream = mod.new_stream(**ctx)
    rng = np.random.default_rng(3)
    decoded = 0
    for k, p in enumerate(payloads):
        if k % 3 == 1:
            try:
                mod.decode(rng.bytes(len(p)), stream)
            except DecodeError:
                pass
        try:
            decoded += len(mod.decode(p, stream)) > 0
        except DecodeError:
            pass
    assert decoded >= len(payloads) - 3


@pytest.mark.parametrize("family", registry.FAMILY_NAMES)
def test_non_bytes_payload_is_a_decode_error(family: str) -> None:
    with pytest.raises(DecodeError, match=family):
        registry.module(family).decode("0011", registry.module(family).new_stream())  # type: ignore[arg-type]
