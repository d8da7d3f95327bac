"""Per-task prompts, built on the client side.

Triton's ``generate``/``infer`` APIs take raw text and apply no chat template,
so the gateway formats the conversation itself (``format_chat``). The prompt
holds the work item's text (PHI for sensitive work): never log it, never put it
in an exception message.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from sluicegate.core.interfaces import GenerationFailed

ChatTemplate = Literal["chatml", "llama3", "none"]


@dataclass(frozen=True)
class Message:
    """One chat turn."""

    role: Literal["system", "user", "assistant"]
    content: str


PromptBuilder = Callable[[Mapping[str, str]], list[Message]]

_PROMPTS: dict[str, PromptBuilder] = {}


def register_prompt(task: str) -> Callable[[PromptBuilder], PromptBuilder]:
    """Decorator: make ``task`` available to :func:`build_messages`."""

    def decorate(builder: PromptBuilder) -> PromptBuilder:
        _PROMPTS[task] = builder
        return builder

    return decorate


def known_tasks() -> list[str]:
    """Task names that have a prompt."""
    return sorted(_PROMPTS)


def build_messages(task: str, inputs: Mapping[str, str]) -> list[Message]:
    """The chat messages for ``task``; unknown task or missing input is permanent."""
    builder = _PROMPTS.get(task)
    if builder is None:
        raise GenerationFailed(f"no prompt template for task {task!r}; known: {known_tasks()}")
    return builder(inputs)


def _field(inputs: Mapping[str, str], name: str, *, required: bool = False) -> str:
    value = (inputs.get(name) or "").strip()
    if not value and required:
        # Names only the missing field, never the values of the others.
        raise GenerationFailed(f"prompt input {name!r} is required and was empty or missing")
    return value or "Not provided."


RADIOLOGY_SYSTEM = (
    "You are a radiology report drafting assistant. A radiologist will review and sign "
    "every draft. Write in concise, standard radiology reporting language. Use only the "
    "information given: do not invent findings, measurements, comparisons or patient "
    "details. End with a section headed 'IMPRESSION:' that summarises the most important "
    "findings as a short numbered list, most significant first."
)


@register_prompt("radiology_report")
def radiology_report(inputs: Mapping[str, str]) -> list[Message]:
    """Draft a report (with IMPRESSION) from the procedure, history and findings."""
    user = (
        f"Procedure: {_field(inputs, 'procedure')}\n"
        f"Modality: {_field(inputs, 'modality')}\n"
        f"Clinical history: {_field(inputs, 'clinical_history')}\n"
        f"Findings:\n{_field(inputs, 'findings', required=True)}\n\n"
        "Draft the report, ending with the IMPRESSION section."
    )
    return [Message("system", RADIOLOGY_SYSTEM), Message("user", user)]


@register_prompt("summary")
def summary(inputs: Mapping[str, str]) -> list[Message]:
    """A generic summary of one ``text`` input, for domains without their own prompt."""
    return [
        Message(
            "system",
            "You summarise documents accurately and briefly. Use only the text given.",
        ),
        Message(
            "user", f"Summarise the following text:\n\n{_field(inputs, 'text', required=True)}"
        ),
    ]


FINANCIAL_SYSTEM = (
    "You write short financial summaries for analysts. Use ONLY the computed facts, ratios "
    "and check results given; never calculate, estimate or invent a number. Quote figures "
    "exactly as given, or rounded (for example '$1.2 billion' or '12.5%'). Do not mention "
    "account numbers, IBANs or the names of people. Write 3 to 6 sentences of plain prose."
)


@register_prompt("financial_summary")
def financial_summary(inputs: Mapping[str, str]) -> list[Message]:
    """Narrative from the finance adapter's computed facts only (numbers are grounded later)."""
    user = (
        f"Entity: {_field(inputs, 'entity')}\n"
        f"Period: {_field(inputs, 'period')}\n"
        f"Currency: {_field(inputs, 'currency')}\n\n"
        f"{_field(inputs, 'facts', required=True)}\n\n"
        "Summarise the financial position and performance from these facts."
    )
    return [Message("system", FINANCIAL_SYSTEM), Message("user", user)]


def format_chat(messages: list[Message], template: str = "chatml") -> str:
    """Render messages as one prompt string, ending where the assistant speaks.

    ``chatml``: SmolLM2, Qwen. ``llama3``: Llama 3.x Instruct (no
    ``<|begin_of_text|>``: vLLM's tokenizer adds BOS itself). ``none``: plain
    text, for base models or servers that apply their own template.
    """
    if template == "chatml":
        turns = "".join(f"<|im_start|>{m.role}\n{m.content}<|im_end|>\n" for m in messages)
        return turns + "<|im_start|>assistant\n"
    if template == "llama3":
        turns = "".join(
            f"<|start_header_id|>{m.role}<|end_header_id|>\n\n{m.content}<|eot_id|>"
            for m in messages
        )
        return turns + "<|start_header_id|>assistant<|end_header_id|>\n\n"
    if template == "none":
        return "\n\n".join(m.content for m in messages) + "\n\n"
    raise GenerationFailed(f"unknown chat template {template!r}")


_STOP_SEQUENCES: dict[str, list[str]] = {
    "chatml": ["<|im_end|>"],
    "llama3": ["<|eot_id|>"],
    "none": [],
}


def stop_sequences(template: str) -> list[str]:
    """End-of-turn markers to send as ``stop``, in case the server's EOS misses them."""
    return list(_STOP_SEQUENCES.get(template, []))


_THINK_BLOCK = re.compile(r"<think>.*?</think>", re.DOTALL | re.IGNORECASE)


def strip_think(text: str) -> str:
    """Drop reasoning-model ``<think>`` blocks; only the answer reaches the user.

    Also handles an unterminated block (the model ran out of tokens mid-thought:
    nothing after ``<think>`` is an answer) and a template that opened the block
    in the prompt, so the output starts mid-thought and only ``</think>`` shows.
    """
    text = _THINK_BLOCK.sub("", text)
    lowered = text.lower()
    close = lowered.rfind("</think>")
    if close != -1:
        text = text[close + len("</think>") :]
        lowered = text.lower()
    start = lowered.find("<think>")
    if start != -1:
        text = text[:start]
    return text.strip()
