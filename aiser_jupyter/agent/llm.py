"""One chat-completion call through litellm: offline-safe, its failures named plainly.

litellm is imported on first use (it takes seconds) with its internet fetches turned
off. Every way a call can fail becomes ``ModelUnavailable`` with a ``reason`` the agent
can act on (fall back to the offline planner), except a reply that is not a usable
completion, which raises ``Garbage`` so the loop can ask once more. No message carries
the API key: it is registered with ``security.secrets`` and every text is redacted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

from aiser_jupyter.agent.steps import ModelReply
from aiser_jupyter.errors import AiserError
from aiser_jupyter.security.secrets import redact, redact_url, register

if TYPE_CHECKING:
    from aiser_jupyter.agent.steps import Step, Usage

__all__ = [
    "Garbage",
    "ModelReply",
    "ModelUnavailable",
    "complete",
    "estimate_tokens",
    "load_litellm",
    "where",
]

DETAIL_CHARS = 300  # enough of a provider's error to act on, not a page of JSON


class ModelUnavailable(AiserError):
    """The model could not be reached, timed out, refused us or answered garbage.

    The caller falls back to the offline planner. ``reason`` is one of ``unreachable``,
    ``timeout``, ``auth``, ``http``, ``garbage``, ``missing`` (no litellm) or ``error``;
    ``steps`` and ``usage`` say what the loop had done (and spent) before it gave up.
    """

    def __init__(
        self,
        message: str,
        *,
        reason: str = "error",
        steps: Sequence[Step] = (),
        usage: Usage | None = None,
    ) -> None:
        super().__init__(redact(message))
        self.reason = reason
        self.steps = list(steps)
        self.usage = usage


class Garbage(Exception):
    """The server answered, but not with a usable completion (not JSON, no choices, empty)."""


def estimate_tokens(value: Any) -> int:
    """About a quarter of the JSON characters: used when a server reports no usage."""
    text = value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))
    return len(text) // 4


def load_litellm() -> ModuleType:
    """litellm, with its price-list and tokenizer downloads off, so nothing needs the internet.

    Left alone, ``import litellm`` fetches its model price map from GitHub; the environment
    variables make it use the copy bundled in the wheel (setdefault: a user may override).
    """
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    import litellm

    litellm.suppress_debug_info = True  # no "Give Feedback / Get Help" banner on each error
    return litellm


def where(model: str, api_base: str | None) -> str:
    """'model openai/x at http://host/v1', with any password in the URL masked."""
    return f"model {model}" + (f" at {redact_url(api_base)}" if api_base else "")


def complete(
    *,
    model: str,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
    api_base: str | None,
    api_key: str | None,
    timeout: float,
) -> ModelReply:
    """One completion, no retries (the loop decides); raises ModelUnavailable or Garbage."""
    try:
        litellm = load_litellm()
    except ImportError:
        message = "litellm is not installed: pip install 'aiser-jupyter[agent]'"
        raise ModelUnavailable(message, reason="missing") from None
    register(api_key)
    options: dict[str, Any] = {"tools": tools, "tool_choice": "auto"} if tools else {}
    try:
        response = litellm.completion(
            model=model,
            messages=messages,
            api_base=api_base,
            api_key=api_key,
            timeout=timeout,
            num_retries=0,
            **options,
        )
    except Exception as exc:  # litellm wraps every provider failure; each one means "no answer"
        raise _unavailable(exc, model, api_base, timeout) from None
    return _read(litellm, response, messages, tools)


def _read(
    litellm: ModuleType,
    response: Any,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]],
) -> ModelReply:
    choices = getattr(response, "choices", None)
    message = getattr(choices[0], "message", None) if choices else None
    if message is None:
        raise Garbage("a reply with no choices")
    content = message.content if isinstance(message.content, str) else None
    calls = [_call_dict(call, n) for n, call in enumerate(message.tool_calls or ())]
    if not calls and not (content and content.strip()):
        raise Garbage("an empty message")
    usage = getattr(response, "usage", None)
    prompt = getattr(usage, "prompt_tokens", 0) or 0
    completion = getattr(usage, "completion_tokens", 0) or 0
    if not prompt + completion:
        prompt = estimate_tokens({"messages": messages, "tools": tools})
        completion = estimate_tokens(content or calls)
    try:
        cost = float(litellm.completion_cost(completion_response=response))
    except Exception:  # litellm raises when it has no price for the model: cost unknown
        cost = None
    return ModelReply(content, calls, prompt, completion, cost)


def _call_dict(call: Any, n: int) -> dict[str, Any]:
    """A tool call as the OpenAI dict the transcript keeps; an id made up if none came."""
    function = getattr(call, "function", None)
    return {
        "id": getattr(call, "id", None) or f"call_{n}",
        "type": "function",
        "function": {
            "name": getattr(function, "name", None) or "",
            "arguments": getattr(function, "arguments", None) or "",
        },
    }


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        yield link
        link = link.__cause__ or link.__context__


def _unavailable(
    exc: Exception, model: str, api_base: str | None, timeout: float
) -> ModelUnavailable | Garbage:
    """Name what went wrong from the exception chain, not from litellm's status code.

    litellm reports a refused connection as InternalServerError (status 500) and a non-JSON
    body the same way; only the causes underneath tell them apart from a real HTTP 500.
    """
    import httpx
    import openai

    chain = list(_chain(exc))
    innermost = _clean(str(chain[-1]) or type(chain[-1]).__name__)
    who = where(model, api_base)
    if any(
        isinstance(e, (openai.APITimeoutError, httpx.TimeoutException, TimeoutError)) for e in chain
    ):
        return ModelUnavailable(f"The {who} did not answer within {timeout:g} s", reason="timeout")
    if any(
        isinstance(e, (openai.APIConnectionError, httpx.TransportError, OSError)) for e in chain
    ):
        return ModelUnavailable(
            f"The {who} could not be reached: {innermost}", reason="unreachable"
        )
    status = _http_status(chain)
    detail = _clean(getattr(exc, "message", None) or str(exc))
    if status in (401, 403):
        message = f"The {who} refused the API key (HTTP {status}): {detail}"
        return ModelUnavailable(message, reason="auth")
    if status is not None:
        return ModelUnavailable(f"The {who} answered HTTP {status}: {detail}", reason="http")
    if isinstance(exc, (openai.BadRequestError, openai.AuthenticationError, openai.NotFoundError)):
        return ModelUnavailable(f"The {who} could not be called: {detail}", reason="error")
    return Garbage(detail)


def _http_status(chain: list[BaseException]) -> int | None:
    """The status of an HTTP error response the server really sent, if that is what failed."""
    import httpx

    for link in chain:
        if isinstance(link, httpx.HTTPStatusError):
            return link.response.status_code
    first = chain[0]
    if getattr(first, "litellm_response_headers", None) is not None:
        return getattr(first, "status_code", None)
    return None


def _clean(text: str) -> str:
    """A provider's message, redacted, without litellm's 'litellm.XError: XError: ' prefixes."""
    text = redact(" ".join(text.split()))
    while True:
        head, sep, rest = min(text.partition(": "), text.partition(" - "), key=lambda p: len(p[0]))
        if not (sep and " " not in head and head.endswith(("Error", "Exception"))):
            break
        text = rest
    if len(text) > DETAIL_CHARS:
        text = text[:DETAIL_CHARS] + "…"
    return text
