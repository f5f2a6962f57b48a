"""Solving ALTCHA proof-of-work challenges in tests, as the browser widget does."""

from __future__ import annotations

import base64
import json
from typing import Any

from altcha import v1 as altcha


def solve(challenge: dict[str, Any]) -> str:
    """The base64 payload the widget submits for a challenge served by /accounts/captcha/."""
    solution = altcha.solve_challenge(
        challenge["challenge"], challenge["salt"], challenge["algorithm"], challenge["maxnumber"]
    )
    assert solution is not None
    payload = {
        "algorithm": challenge["algorithm"],
        "challenge": challenge["challenge"],
        "number": solution.number,
        "salt": challenge["salt"],
        "signature": challenge["signature"],
    }
    return base64.b64encode(json.dumps(payload).encode()).decode()
