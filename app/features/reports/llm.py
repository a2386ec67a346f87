"""The model call, through the official `openai` SDK (chat completions): any OpenAI-compatible
server works (OPENAI_BASE_URL), with the model, key and timeout from the settings.

The SDK does not retry (`max_retries=0`): the job owns the retries, with the kernel's backoff.
Errors come back as `LLMError` with a code, a sentence for the user, and whether a later attempt
may succeed (timeouts, 429, 5xx, connection errors) or not (bad key, unknown model, bad request).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import openai

from app.config import Settings
from app.features.reports.output_schema import json_schema_response_format


@dataclass
class Completion:
    text: str
    usage: dict[str, int] | None
    model: str
    latency_ms: int


class LLMError(Exception):
    def __init__(self, code: str, message: str, *, transient: bool) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.transient = transient


def provider_name(settings: Settings) -> str:
    """`openai`, or the host of the OpenAI-compatible server."""
    if not settings.openai_base_url:
        return "openai"
    return urlparse(settings.openai_base_url).hostname or settings.openai_base_url


def make_client(settings: Settings) -> openai.OpenAI:
    return openai.OpenAI(
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url or None,
        timeout=settings.ai_timeout_seconds,
        max_retries=0,
    )


def complete(
    settings: Settings, messages: list[dict[str, str]], client: openai.OpenAI | None = None
) -> Completion:
    client = client or make_client(settings)
    options: dict[str, Any] = {}
    if settings.ai_response_format == "json_object":
        options["response_format"] = {"type": "json_object"}
    elif settings.ai_response_format == "json_schema":
        options["response_format"] = json_schema_response_format()
    started = time.perf_counter()
    try:
        response = client.chat.completions.create(
            model=settings.ai_model,
            messages=messages,  # type: ignore[arg-type]
            temperature=0.2,
            max_tokens=settings.ai_max_tokens,
            **options,
        )
    except openai.APITimeoutError:
        raise LLMError(
            "ai_timeout",
            f"O serviço de IA não respondeu em {settings.ai_timeout_seconds:g} s. "
            "Tente regenerar o relatório "
            "em alguns minutos.",
            transient=True,
        ) from None
    except openai.APIConnectionError:
        raise LLMError(
            "ai_unavailable",
            "Não foi possível conectar ao serviço de IA. Tente regenerar o relatório em alguns minutos.",
            transient=True,
        ) from None
    except openai.RateLimitError:
        raise LLMError(
            "ai_rate_limited",
            "O serviço de IA está com limite de uso atingido (429). Tente regenerar o relatório mais tarde.",
            transient=True,
        ) from None
    except (openai.AuthenticationError, openai.PermissionDeniedError):
        raise LLMError(
            "ai_config",
            "A chave do serviço de IA foi recusada: o administrador precisa revisar OPENAI_API_KEY.",
            transient=False,
        ) from None
    except openai.NotFoundError:
        raise LLMError(
            "ai_config",
            f"O modelo '{settings.ai_model}' não existe no serviço de IA configurado: "
            "o administrador precisa "
            "revisar AI_MODEL e OPENAI_BASE_URL.",
            transient=False,
        ) from None
    except openai.APIStatusError as exc:
        if exc.status_code >= 500:
            raise LLMError(
                "ai_unavailable",
                f"O serviço de IA falhou ({exc.status_code}). Tente regenerar o relatório em alguns minutos.",
                transient=True,
            ) from None
        raise LLMError(
            "ai_config",
            f"O serviço de IA recusou o pedido ({exc.status_code}): o administrador precisa revisar a "
            "configuração (AI_MODEL, AI_RESPONSE_FORMAT).",
            transient=False,
        ) from None
    latency_ms = int((time.perf_counter() - started) * 1000)
    choice = response.choices[0] if response.choices else None
    content = choice.message.content if choice is not None and choice.message is not None else None
    usage = None
    if response.usage is not None:
        usage = {
            "prompt_tokens": response.usage.prompt_tokens,
            "completion_tokens": response.usage.completion_tokens,
            "total_tokens": response.usage.total_tokens,
        }
    return Completion(content or "", usage, response.model or settings.ai_model, latency_ms)
