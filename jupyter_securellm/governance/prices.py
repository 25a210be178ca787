"""Model prices: litellm's LOCAL price map (read as JSON, litellm is never imported) plus overrides.

`import litellm` costs about 3 s and fetches a price map from the internet unless
LITELLM_LOCAL_MODEL_COST_MAP=True; the map it ships (`model_prices_and_context_window_backup.json`)
is all we need, so we read that file directly, once, lazily. `c.SecureLLM.prices` overrides or adds
entries, keyed by alias or litellm model name, with litellm's field names. An unknown price is
reported as None (never a silent 0).
"""
from __future__ import annotations

import importlib.util
import json
import os
import threading
from dataclasses import dataclass
from pathlib import Path

_MAP: dict | None = None
_LOCK = threading.Lock()
MAP_FILE = "model_prices_and_context_window_backup.json"


@dataclass(frozen=True)
class Price:
    input_per_token: float
    output_per_token: float
    source: str  # "override" | "litellm"

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return tokens_in * self.input_per_token + tokens_out * self.output_per_token


def litellm_price_map() -> dict:
    """The price map litellm ships, without importing litellm ({} if litellm is not installed)."""
    global _MAP
    with _LOCK:
        if _MAP is None:
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            spec = importlib.util.find_spec("litellm")
            data: dict = {}
            if spec is not None and spec.submodule_search_locations:
                for loc in spec.submodule_search_locations:
                    f = Path(loc) / MAP_FILE
                    if f.is_file():
                        data = json.loads(f.read_text(encoding="utf-8"))
                        break
            _MAP = data
    return _MAP


def _entry_price(entry: dict, source: str) -> Price | None:
    try:
        i, o = entry["input_cost_per_token"], entry["output_cost_per_token"]
    except (KeyError, TypeError):
        return None
    if not isinstance(i, (int, float)) or not isinstance(o, (int, float)):
        return None
    return Price(float(i), float(o), source)


def validate_overrides(prices: dict) -> None:
    """Raise ValueError naming the first override that cannot be a price."""
    for name, entry in prices.items():
        if not isinstance(entry, dict) or _entry_price(entry, "override") is None:
            raise ValueError(f"prices[{name!r}] must be {{'input_cost_per_token': float, "
                             "'output_cost_per_token': float}} (USD per token)")


def price_of(model: str, alias: str | None = None, overrides: dict | None = None) -> Price | None:
    """The price of a model (alias first in overrides, then model name), or None when unknown."""
    overrides = overrides or {}
    for key in (alias, model):
        if key and key in overrides:
            return _entry_price(overrides[key], "override")
    table = litellm_price_map()
    cands = [model]
    if "/" in model:
        cands.append(model.split("/", 1)[1])
    for key in cands:
        if key in table:
            p = _entry_price(table[key], "litellm")
            if p is not None:
                return p
    return None
