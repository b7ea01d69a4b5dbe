"""RFC 8785 (JSON Canonicalization Scheme) and the settings fingerprint, written independently of
the filter so a test can check the filter's fingerprints against an operator's own computation
(docs/architecture.md §3, verify: fingerprint = lower-case hex sha256 of the JCS form of a node's GET settings body).

Scope: what `json.loads` produces (dict, list, str, int, float, bool, None). Numbers follow the
ECMAScript Number-to-String rule the RFC names: integers in the double range print as integers,
other doubles in their shortest round-trip form with the exponent spelled `e+21`/`e-7`."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any


def canonical(value: Any) -> str:
    """The JCS text of `value`."""
    if value is None or isinstance(value, bool):
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return _number(value)
    if isinstance(value, str):
        # JSON escapes exactly `"`, `\` and the C0 controls (short forms \b \t \n \f \r, else \u00xx
        # in lower case); every other character as is. json.dumps without ASCII-escaping does that.
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ",".join(canonical(item) for item in value) + "]"
    if isinstance(value, dict):
        # Members sorted by the UTF-16 code units of their names (RFC 8785 §3.2.3), not by code points.
        names = sorted(value, key=lambda name: name.encode("utf-16-be"))
        return "{" + ",".join(f"{canonical(name)}:{canonical(value[name])}" for name in names) + "}"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _number(number: float) -> str:
    as_float = float(number)
    if not math.isfinite(as_float):
        raise ValueError("JSON has no NaN or Infinity")
    if as_float == 0:
        return "0"  # also -0
    if as_float.is_integer() and abs(as_float) < 1e21:
        return str(int(as_float))
    text = repr(as_float)  # shortest round-trip digits, like ECMAScript
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    if mantissa.endswith(".0"):
        mantissa = mantissa[:-2]
    sign = "-" if exponent.startswith("-") else "+"
    digits = exponent.lstrip("+-").lstrip("0") or "0"
    # ECMAScript writes plain decimals down to 1e-6; Python switches to exponents at 1e-5.
    if sign == "-" and int(digits) <= 6:
        negative, significant = mantissa.startswith("-"), mantissa.lstrip("-").replace(".", "")
        return ("-" if negative else "") + "0." + "0" * (int(digits) - 1) + significant
    return f"{mantissa}e{sign}{digits}"


def fingerprint(settings: Any) -> str:
    """Lower-case hex sha256 of the canonical UTF-8 bytes: the filter's settings fingerprint."""
    return hashlib.sha256(canonical(settings).encode("utf-8")).hexdigest()
