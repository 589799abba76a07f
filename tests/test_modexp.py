"""mail/modexp.py: OpenSSL's modular exponentiation must give `pow`'s number for every input.

DKIM's verdict compares the result byte for byte with the expected padding, so one wrong
bit (a dropped leading zero byte, a swapped argument) turns valid signatures into invalid
ones. Inputs cover what a hostile key record or signature can hold: moduli odd and even,
from 2 bits to 4,200, exponents up to 70 bits (OpenSSL's RSA objects refuse over 64; this
is arithmetic and must not), bases larger than the modulus, zero.
"""

from __future__ import annotations

import sys
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailstats.mail import modexp as mx

_bits = st.integers(1, 4200)
_big = _bits.flatmap(lambda b: st.integers(0, 2**b - 1))
_mods = st.one_of(st.integers(2, 2**64), _big.filter(lambda n: n > 1))
_exps = st.one_of(st.just(65537), st.just(3), st.integers(1, 2**70))


def test_linux_finds_the_processes_own_libcrypto() -> None:
    """The libcrypto hashlib links to is the one bound (not some other on the library path)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("the memory map is read on Linux only")
    mapped = mx._mapped_libcrypto()
    if not mapped:
        pytest.skip("this Python links OpenSSL into _hashlib statically")
    lib = mx.libcrypto()
    assert lib is not None and lib._name in mapped


@settings(max_examples=400, derandomize=True, deadline=None)
@given(base=_big, exp=_exps, mod=_mods)
def test_same_number_as_pow(base: int, exp: int, mod: int) -> None:
    """OpenSSL's own answer (not a fallback to pow) equals pow's, and so does modexp's."""
    lib = mx.libcrypto()
    if lib is None:
        pytest.skip("no libcrypto here: pow computes everything")
    expected = pow(base, exp, mod)
    assert mx.openssl_modexp(lib, base, exp, mod) == expected
    assert mx.modexp(base, exp, mod) == expected


@pytest.mark.parametrize(
    ("base", "exp", "mod"),
    [
        (0, 65537, 2**2048 - 159),
        (1, 65537, 2**2048 - 159),
        (2**2048 - 160, 65537, 2**2048 - 159),  # n - 1
        (2**4096, 65537, 2**2048 - 159),  # base over the modulus
        (7, 65537, 2**2048),  # even modulus
        (5, 2**70 + 1, 2**1024 + 643),
        (3, 65537, 2),
        (3, 65537, 1),  # pow's own answers from here: OpenSSL is not asked
        (3, 0, 97),
        (-3, 65537, 97),
    ],
)
def test_edges(base: int, exp: int, mod: int) -> None:
    assert mx.modexp(base, exp, mod) == pow(base, exp, mod)


def test_zero_modulus_raises_as_pow_does() -> None:
    with pytest.raises(ValueError):
        pow(5, 3, 0)
    with pytest.raises(ValueError):
        mx.modexp(5, 3, 0)


def test_without_libcrypto_pow_computes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mx, "libcrypto", lambda: None)
    n = 2**1024 + 643
    assert mx.modexp(12345678901234567890, 65537, n) == pow(12345678901234567890, 65537, n)


def test_threads_do_not_share_scratch_space() -> None:
    """Each thread has its own BN_CTX; results stay right when threads interleave."""
    mods = [2**2048 - 159 - 2 * i for i in range(8)]
    wrong: list[int] = []

    def work(k: int) -> None:
        for j in range(40):
            b = (k * 1_000_003 + j) ** 40
            if mx.modexp(b, 65537, mods[k]) != pow(b, 65537, mods[k]):
                wrong.append(k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
