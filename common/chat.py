"""A model's own chat template (recorded in its manifest) rendered around a conversation."""
from __future__ import annotations


def render_chat(template: str, messages: list[dict[str, str]] | str) -> str:
    """The conversation (or one user turn) framed by `template`, ready for the assistant's answer. Without a system
    turn the template's default one, if it has one, comes with it (as the model was tuned)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment  # the eval and train extras; only chat prompts need it

    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template).render(messages=messages, add_generation_prompt=True)
