"""The PIN kept as a salted scrypt hash, never as the digits themselves.

A record is one string in the PHC string format, with the parameters it was made with, so they
can change later without invalidating the PINs already stored:

    $scrypt$ln=13,r=8,p=1$<salt>$<key>        (salt and key in base64 without padding)

``ln=13, r=8, p=1`` (N = 8192, 8 MiB of memory) takes about 20 ms on a desktop core and a few
times that on a Raspberry Pi 4: slow enough that a copied ``system.db`` costs a guesser tens of
milliseconds per PIN, fast enough that the wall answers at once (``bench/bench_pin_hash.py``).
A 4-digit PIN has only 10,000 values, so the hash keeps the PIN out of backups and casual reads
of the file; it cannot make a short PIN strong against someone who has the file and time.

Pure stdlib: ``hashlib.scrypt`` to derive, ``hmac.compare_digest`` to compare in constant time.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from typing import Optional

SCHEME = "scrypt"
LOG2_N, BLOCK_SIZE, PARALLELISM = 13, 8, 1  # what new records are made with
SALT_BYTES, KEY_BYTES = 16, 32
PIN_SHAPE = re.compile(r"[0-9]{4,8}")
MAX_LOG2_N = 20  # a record asking for more (1 GiB at r=8) is refused rather than run
RECORD = re.compile(r"^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+)\$([A-Za-z0-9+/]+)$")


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _derive(pin: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    n = 2 ** log2_n
    return hashlib.scrypt(pin.encode("utf-8", "surrogatepass"), salt=salt, n=n, r=r, p=p, dklen=KEY_BYTES,
                          maxmem=128 * r * (n + p + 2) + 2 ** 20)


def hash_pin(pin: str, *, log2_n: int = LOG2_N, r: int = BLOCK_SIZE, p: int = PARALLELISM,
             salt: Optional[bytes] = None) -> str:
    """A new record for ``pin`` (a fresh random salt unless one is given)."""
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    key = _derive(pin, salt, log2_n, r, p)
    return f"${SCHEME}$ln={log2_n},r={r},p={p}${_b64(salt)}${_b64(key)}"


def is_record(value: object) -> bool:
    """True for a string shaped like a record this module can check."""
    return isinstance(value, str) and _parse(value) is not None


def _parse(record: str) -> Optional[tuple[int, int, int, bytes, bytes]]:
    found = RECORD.fullmatch(record)
    if found is None:
        return None
    log2_n, r, p = (int(found.group(i)) for i in (1, 2, 3))
    if not (1 <= log2_n <= MAX_LOG2_N and r >= 1 and p >= 1):
        return None
    try:
        return log2_n, r, p, _unb64(found.group(4)), _unb64(found.group(5))
    except ValueError:
        return None


def verify_pin(pin: str, record: str) -> bool:
    """Whether ``pin`` is the PIN ``record`` was made from; compared in constant time.

    Raises ValueError for a value that is not a record (e.g. a PIN still stored in plain text),
    so a caller can never mistake a malformed ledger for a wrong PIN.

    Only 4 to 8 digits can match: scrypt keys HMAC with the PIN, and HMAC pads a key with zero
    bytes, so "2020" and "2020\\x00" would otherwise derive the same hash.
    """
    parsed = _parse(record) if isinstance(record, str) else None
    if parsed is None:
        raise ValueError("the stored PIN is not a salted scrypt hash")
    log2_n, r, p, salt, key = parsed
    if not isinstance(pin, str) or not PIN_SHAPE.fullmatch(pin):
        return False
    return hmac.compare_digest(_derive(pin, salt, log2_n, r, p), key)
