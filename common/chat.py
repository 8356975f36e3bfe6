"""A model's own chat template (recorded in its manifest) around a conversation.

Rendering a template needs jinja2, which serving does without: `plusls export` also records the template's
`chat_frame`, the text it puts around each turn (found by rendering it once around marker strings), and the server
frames a conversation with those pieces in plain Python. Both give the same text for system/user/assistant turns.
"""
from __future__ import annotations

MARKS = {"system": "\x01SYSTEM\x01", "user": "\x01USER\x01", "assistant": "\x01ASSISTANT\x01",
         "next": "\x01NEXT\x01"}
PIECES = ("head", "system_to_user", "user_to_assistant", "assistant_to_user", "user_to_answer")


def render_chat(template: str, messages: list[dict[str, str]] | str) -> str:
    """The conversation (or one user turn) framed by `template`, ready for the assistant's answer. Without a system
    turn the template's default one, if it has one, comes with it (as the model was tuned)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment  # only chat prompts (and exports) need it

    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(template).render(messages=messages, add_generation_prompt=True)


def chat_frame(template: str) -> dict[str, str] | None:
    """The template's text around turns: head + system + system_to_user + user + user_to_assistant + assistant +
    assistant_to_user + user ... + user_to_answer. None when the template does not frame turns that way."""
    m = MARKS
    text = render_chat(template, [{"role": "system", "content": m["system"]}, {"role": "user", "content": m["user"]},
                                  {"role": "assistant", "content": m["assistant"]},
                                  {"role": "user", "content": m["next"]}])
    cuts = [text.find(m[k]) for k in ("system", "user", "assistant", "next")]
    if any(c < 0 for c in cuts) or cuts != sorted(cuts):
        return None
    ends = [c + len(m[k]) for c, k in zip(cuts, ("system", "user", "assistant", "next"))]
    pieces = [text[: cuts[0]], text[ends[0] : cuts[1]], text[ends[1] : cuts[2]], text[ends[2] : cuts[3]],
              text[ends[3] :]]
    return dict(zip(PIECES, pieces))


def frame_of(config: dict) -> dict[str, str] | None:
    """How a model's chat template (its manifest's config) frames turns: recorded by `plusls export`; for older
    exports worked out from the template where jinja2 is installed. None: the model cannot be asked in chat form."""
    if frame := config.get("chat_frame"):
        return frame
    template = config.get("chat_template")
    if not template:
        return None
    try:
        return chat_frame(template)
    except Exception:  # no jinja2 here, or a template it cannot render: no chat form
        return None


def chat_messages(system: str, turns: list[tuple[str, str]], user: str) -> list[dict[str, str]]:
    """system, then (user, assistant) example turns, then the user's question."""
    messages = [{"role": "system", "content": system}]
    for question, answer in turns:
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    return messages + [{"role": "user", "content": user}]


def frame_chat(frame: dict[str, str], messages: list[dict[str, str]]) -> str:
    """`messages` (a system turn, then user and assistant turns ending with the user's) as the frame's text, ready
    for the answer."""
    out = [frame["head"], messages[0]["content"], frame["system_to_user"]]
    for m in messages[1:-1]:
        out += [m["content"], frame["user_to_assistant" if m["role"] == "user" else "assistant_to_user"]]
    return "".join(out + [messages[-1]["content"], frame["user_to_answer"]])
