"""Strict input, in one place: how a request body is parsed and the JSON schema it must meet.

Every malformed body gets a 400 with one sentence before any Vault read or provider call, and no
traceback (they are client errors). Parsing refuses what Python's json module would let through:
NaN and Infinity (not JSON), lone UTF-16 surrogates (not text; providers choke on them), and nesting
deeper than `MAX_DEPTH` (a 50,000-level `response_format` used to crash the broker). The schema is
checked with `jsonschema` (Draft 2020-12); its error becomes our own sentence, naming the field and
the rule and never quoting the value (a value may be a secret).
"""
from __future__ import annotations

import json
import re
from typing import Any

from .errors import BrokerError

MAX_DEPTH = 64
MAX_TOKENS = 200_000  # no model answers more in one call today; budgets estimate from this bound
MAX_MESSAGES = 2000

_STR = {"type": "string"}
_TEXT_PART = {"type": "object", "required": ["type", "text"],
              "properties": {"type": {"const": "text"}, "text": _STR}}
_IMAGE_PART = {"type": "object", "required": ["type", "image_url"],
               "properties": {"type": {"const": "image_url"},
                              "image_url": {"type": "object", "required": ["url"],
                                            "properties": {"url": {"type": "string", "minLength": 1},
                                                           "detail": {"enum": ["auto", "low", "high"]}}}}}
_AUDIO_PART = {"type": "object", "required": ["type", "input_audio"],
               "properties": {"type": {"const": "input_audio"},
                              "input_audio": {"type": "object", "required": ["data", "format"],
                                              "properties": {"data": {"type": "string", "minLength": 1},
                                                             "format": _STR}}}}
_FILE_PART = {"type": "object", "required": ["type", "file"],
              "properties": {"type": {"const": "file"}, "file": {"type": "object"}}}
_REFUSAL_PART = {"type": "object", "required": ["type", "refusal"],
                 "properties": {"type": {"const": "refusal"}, "refusal": _STR}}
_PART_TYPES = ["text", "image_url", "input_audio", "file", "refusal"]
_PART = {
    "type": "object", "required": ["type"],
    "properties": {"type": {"enum": _PART_TYPES}},
    "allOf": [{"if": {"properties": {"type": {"const": t}}, "required": ["type"]}, "then": s}
              for t, s in (("text", _TEXT_PART), ("image_url", _IMAGE_PART), ("input_audio", _AUDIO_PART),
                           ("file", _FILE_PART), ("refusal", _REFUSAL_PART))],
}
_TOOL_CALL = {"type": "object", "required": ["id", "type", "function"],
              "properties": {"id": _STR, "type": {"const": "function"},
                             "function": {"type": "object", "required": ["name", "arguments"],
                                          "properties": {"name": _STR, "arguments": _STR}}}}
_MESSAGE = {
    "type": "object", "required": ["role"],
    "properties": {
        "role": {"enum": ["system", "user", "assistant", "tool", "developer", "function"]},
        "content": {"anyOf": [{"type": "string"}, {"type": "null"},
                              {"type": "array", "items": _PART, "maxItems": 1000}]},
        "name": _STR, "tool_call_id": _STR, "refusal": {"type": ["string", "null"]},
        "tool_calls": {"type": "array", "items": _TOOL_CALL, "maxItems": 128},
    },
}
_TOOL = {"type": "object", "required": ["type", "function"],
         "properties": {"type": {"const": "function"},
                        "function": {"type": "object", "required": ["name"],
                                     "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 64},
                                                    "description": _STR, "parameters": {"type": "object"},
                                                    "strict": {"type": "boolean"}}}}}
_TOKENS = {"type": "integer", "minimum": 1, "maximum": MAX_TOKENS}

#: The chat/completions body: OpenAI-compatible, only the parameters the broker forwards.
CHAT_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object", "required": ["model", "messages"], "additionalProperties": False,
    "properties": {
        "model": {"type": "string", "minLength": 1, "maxLength": 200},
        "messages": {"type": "array", "minItems": 1, "maxItems": MAX_MESSAGES, "items": _MESSAGE},
        "stream": {"type": "boolean"},
        "api_base": {"type": ["string", "null"], "maxLength": 2048},
        "temperature": {"type": "number", "minimum": 0, "maximum": 2},
        "top_p": {"type": "number", "minimum": 0, "maximum": 1},
        "presence_penalty": {"type": "number", "minimum": -2, "maximum": 2},
        "frequency_penalty": {"type": "number", "minimum": -2, "maximum": 2},
        "max_tokens": _TOKENS, "max_completion_tokens": _TOKENS,
        "n": {"type": "integer", "minimum": 1, "maximum": 16},
        "seed": {"type": "integer", "minimum": -(2 ** 63), "maximum": 2 ** 64 - 1},
        "stop": {"anyOf": [{"type": "string"}, {"type": "array", "items": _STR, "maxItems": 4}]},
        "response_format": {"type": "object", "required": ["type"],
                            "properties": {"type": {"enum": ["text", "json_object", "json_schema"]},
                                           "json_schema": {"type": "object"}}},
        "tools": {"type": "array", "items": _TOOL, "maxItems": 128},
        "tool_choice": {"anyOf": [{"enum": ["none", "auto", "required"]},
                                  {"type": "object", "required": ["type"]}]},
        "user": {"type": "string", "maxLength": 256},
        "stream_options": {"type": "object", "additionalProperties": False,
                           "properties": {"include_usage": {"type": "boolean"}}},
        "logit_bias": {"type": "object", "maxProperties": 300,
                       "additionalProperties": {"type": "number", "minimum": -100, "maximum": 100}},
        "logprobs": {"type": "boolean"},
        "top_logprobs": {"type": "integer", "minimum": 0, "maximum": 20},
        "parallel_tool_calls": {"type": "boolean"},
    },
}

#: The secrets/get body.
SECRET_SCHEMA: dict = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object", "required": ["path", "key"], "additionalProperties": False,
    "properties": {"path": {"type": "string", "minLength": 1, "maxLength": 512},
                   "key": {"type": "string", "minLength": 1, "maxLength": 256}},
}

_VALIDATORS: dict = {}


def _validator(schema: dict):
    v = _VALIDATORS.get(id(schema))
    if v is None:
        from jsonschema import Draft202012Validator

        Draft202012Validator.check_schema(schema)
        v = _VALIDATORS[id(schema)] = Draft202012Validator(schema)
    return v


def _reject_constant(name: str):
    raise BrokerError("invalid_request", f"The request body contains {name}, which is not a JSON number.")


def parse_body(raw: bytes | None, limit: int, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON value of a request body, or BrokerError 400 (size, syntax, NaN, surrogates, depth)."""
    raw = raw or b"null"
    if len(raw) > limit:
        raise BrokerError("invalid_request", f"The request body exceeds {limit} bytes; send a smaller prompt.")
    try:
        value = json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:  # the C parser's own limit: far deeper than MAX_DEPTH anyway
        raise BrokerError("invalid_request", f"The request body is nested deeper than {MAX_DEPTH} levels.") from None
    except (ValueError, UnicodeDecodeError):
        raise BrokerError("invalid_request", "The request body is not valid JSON.") from None
    _check_tree(value, max_depth)
    return value


def _check_tree(value: Any, max_depth: int = MAX_DEPTH) -> None:
    """One walk over the parsed body: depth at most MAX_DEPTH, no lone surrogate in any string or key."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, str):
            _check_str(v)
        elif isinstance(v, (dict, list)):
            if depth > max_depth:
                raise BrokerError("invalid_request", f"The request body is nested deeper than {max_depth} levels.")
            if isinstance(v, dict):
                for k, x in v.items():
                    _check_str(k)
                    stack.append((x, depth + 1))
            else:
                stack.extend((x, depth + 1) for x in v)


def _check_str(s: str) -> None:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise BrokerError("invalid_request", "The request body contains a lone UTF-16 surrogate "
                                             "(\\ud800-\\udfff), which is not text.") from None


def validate(value: Any, schema: dict) -> None:
    """BrokerError 400 naming the first field that breaks `schema` (the value itself is never quoted)."""
    error = next(iter(_validator(schema).iter_errors(value)), None)
    if error is None:
        return
    best = _best(error)
    raise BrokerError("invalid_request", _sentence(best, schema))


def _best(error):
    """The most specific error: inside anyOf/allOf, the one deepest in the body (the field that is wrong)."""
    while error.context:
        error = max(error.context, key=lambda e: (len(e.absolute_path), e.validator != "type"))
    return error


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,40}$")


def _sentence(error, schema) -> str:
    where = _path(error.absolute_path)
    v, arg = error.validator, error.validator_value
    if v == "additionalProperties" and not error.absolute_path and schema is CHAT_SCHEMA:
        extra = sorted(set(error.instance) - set(CHAT_SCHEMA["properties"]))
        name = repr(extra[0]) if extra and _NAME.match(str(extra[0])) else "an unknown parameter"
        allowed = ", ".join(sorted(set(CHAT_SCHEMA["properties"]) - {"model", "messages", "stream", "api_base"}))
        return f"Parameter {name} is not accepted by the broker; allowed: {allowed}."
    if v == "additionalProperties":
        return f"{where} has a field the broker does not accept."
    if v == "required":
        missing = [k for k in arg if isinstance(error.instance, dict) and k not in error.instance]
        return f"{_path(list(error.absolute_path) + missing[:1])} is required."
    if v in ("type",):
        return f"{where} must be of type {arg if isinstance(arg, str) else ' or '.join(arg)}."
    if v in ("enum", "const"):
        options = arg if isinstance(arg, list) else [arg]
        return f"{where} must be one of {', '.join(map(json.dumps, options))}."
    if v in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        op = {"minimum": ">=", "maximum": "<=", "exclusiveMinimum": ">", "exclusiveMaximum": "<"}[v]
        return f"{where} must be {op} {arg}."
    if v in ("minItems", "maxItems", "minLength", "maxLength", "minProperties", "maxProperties"):
        return f"{where} breaks the limit {v} = {arg}."
    if v in ("anyOf", "oneOf"):
        return f"{where} has none of the accepted shapes."
    return f"{where} is not valid ({v})."


def _path(parts) -> str:
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return f"Field '{out}'" if out else "The request body"
