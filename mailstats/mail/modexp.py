"""pow(base, exp, mod) for the RSA step of DKIM, by the OpenSSL library Python already loaded.

DKIM's RSA check is one modular exponentiation per signature, s ** e mod n, which dkimpy
computes with Python's `pow`: 140-200 us for a 2048-bit key here, and the real corpus needs
287 of them for 500 messages. OpenSSL's BN_mod_exp computes the same number in about
30 us. The `cryptography` package would call it too, but importing it costs each analysis
worker 6.7 MB, and the 100k run's peak memory went over its target (docs/benchmarks.md,
eighth session). Here the call goes through ctypes (0.35 MB) to the libcrypto that hashlib
and ssl have mapped into the process already.

It is arithmetic, not a key object: no limit on the exponent's size or the modulus'
parity, and for every input the result is `pow`'s (tests/test_modexp.py). Where libcrypto
is not found, or an input is one OpenSSL is not asked about (zero or negative), `pow`
computes it: the same number, slower.
"""

from __future__ import annotations

import ctypes
import hashlib  # noqa: F401 - maps the libcrypto that _hashlib links to
import os
import sys
import threading
from functools import cache
from typing import Any

#: Library names to try when the process' own libcrypto was not found in its memory map.
_NAMES = {
    "linux": ("libcrypto.so.3", "libcrypto.so.1.1"),
    "darwin": ("libcrypto.3.dylib", "libcrypto.1.1.dylib"),
    "win32": ("libcrypto-3-x64.dll", "libcrypto-3.dll", "libcrypto-1_1-x64.dll"),
}

_local = threading.local()


def _mapped_libcrypto() -> list[str]:
    """Paths of the libcrypto mapped into this process (Linux): the one Python's hashlib
    links to, so a bundled or pyenv OpenSSL is found before the system's."""
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as fh:
            paths = {line.split(None, 5)[-1].strip() for line in fh if "libcrypto" in line}
    except OSError:
        return []
    return sorted(p for p in paths if os.path.basename(p).startswith("libcrypto") and "/" in p)


def _bind(lib: Any) -> Any:
    """Declare the functions' signatures (ctypes would guess int, which cuts pointers)."""
    vp, cp, ci = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    for name, res, args in (
        ("BN_CTX_new", vp, []),
        ("BN_CTX_free", None, [vp]),
        ("BN_bin2bn", vp, [cp, ci, vp]),
        ("BN_free", None, [vp]),
        ("BN_mod_exp", ci, [vp, vp, vp, vp, vp]),
        ("BN_num_bits", ci, [vp]),
        ("BN_bn2bin", ci, [vp, cp]),
        ("BN_new", vp, []),
    ):
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = res, args
    return lib


@cache
def libcrypto() -> Any | None:
    """The bound libcrypto, or None (then `pow` computes everything)."""
    for candidate in [*_mapped_libcrypto(), *_NAMES.get(sys.platform, ())]:
        try:
            return _bind(ctypes.CDLL(candidate))
        except (OSError, AttributeError):
            continue
    return None


class _Ctx:
    """A thread's BN_CTX (OpenSSL's scratch space, not to be shared between threads), freed
    with the thread's locals."""

    def __init__(self, lib: Any) -> None:
        self.lib, self.ptr = lib, lib.BN_CTX_new()

    def __del__(self) -> None:
        if self.ptr:
            self.lib.BN_CTX_free(self.ptr)


def _ctx(lib: Any) -> int:
    holder = getattr(_local, "ctx", None)
    if holder is None:
        holder = _local.ctx = _Ctx(lib)
    return holder.ptr


def _bn(lib: Any, value: int) -> int:
    data = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return lib.BN_bin2bn(data, len(data), None)


def modexp(base: int, exp: int, mod: int) -> int:
    """pow(base, exp, mod) for integers; OpenSSL computes it when the inputs are positive."""
    lib = libcrypto()
    got = None if lib is None else openssl_modexp(lib, base, exp, mod)
    return pow(base, exp, mod) if got is None else got


def openssl_modexp(lib: Any, base: int, exp: int, mod: int) -> int | None:
    """BN_mod_exp's result, or None for inputs it is not asked about or a failed call."""
    if base < 0 or exp <= 0 or mod <= 1:
        return None
    ctx = _ctx(lib)
    if not ctx:
        return None
    nums = [_bn(lib, base), _bn(lib, exp), _bn(lib, mod), lib.BN_new()]
    try:
        if not all(nums) or lib.BN_mod_exp(nums[3], nums[0], nums[1], nums[2], ctx) != 1:
            return None
        out = ctypes.create_string_buffer(max(1, (lib.BN_num_bits(nums[3]) + 7) // 8))
        written = lib.BN_bn2bin(nums[3], out)
        return int.from_bytes(out.raw[:written], "big")
    finally:
        for num in nums:
            if num:
                lib.BN_free(num)
