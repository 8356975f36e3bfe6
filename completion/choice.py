"""Which completer a machine serves: the largest whose predicted latencies meet the budgets.

A keystroke, measured through the typing benchmark, reads a handful of new prompt tokens (the rest of the prompt
is cached) and runs a few forward passes (drafts copied from the prompt make a pass yield one token or more): its
latency follows from the measured prefill and decode speeds. The first suggestion after opening a file comes once
the prompt budget is read; the budget is what the model reads in the reader's pause, never below MIN_TOKENS, so a
model too slow to read that much in the pause makes the user wait for the rest."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from .budget import COLD_PROMPT_S, context_budget
from .speed import Speed

KEYSTROKE_READ_TOKENS = 12  # new prompt tokens per keystroke that runs the model (typing benchmark)
KEYSTROKE_PASSES = 5  # forward passes per such keystroke, prefill and drafts included (typing benchmark)
KEYSTROKE_BUDGET_S = 0.3  # p50 while typing
FIRST_BUDGET_S = 0.7  # the first suggestion after opening a file and reading for COLD_PROMPT_S


@dataclass(frozen=True)
class Prediction:
    keystroke_s: float
    first_suggestion_s: float
    context_tokens: int

    def meets_budgets(self) -> bool:
        return self.keystroke_s <= KEYSTROKE_BUDGET_S and self.first_suggestion_s <= FIRST_BUDGET_S


def predict(speed: Speed, max_length: int) -> Prediction:
    keystroke = KEYSTROKE_READ_TOKENS / speed.prefill_tokens_per_s + KEYSTROKE_PASSES / speed.decode_tokens_per_s
    context = context_budget(speed.prefill_tokens_per_s, max_length)
    unread = max(0.0, context / speed.prefill_tokens_per_s - COLD_PROMPT_S)  # left when the reader starts typing
    return Prediction(round(keystroke, 3), round(keystroke + unread, 3), context)


@dataclass(frozen=True)
class Candidate:
    name: str
    speed: Speed
    prediction: Prediction

    def to_dict(self) -> dict:
        return {"name": self.name, **self.speed.to_dict(), **asdict(self.prediction)}


@dataclass(frozen=True)
class Choice:
    name: str
    reason: str
    candidates: tuple[Candidate, ...]

    def to_dict(self) -> dict:
        return {"completer": self.name, "reason": self.reason, "candidates": [c.to_dict() for c in self.candidates]}


def choose(candidates: list[Candidate], left_out: list[str] = ()) -> Choice:
    """`candidates` largest first: the first that meets both budgets, else the fastest to type with. `left_out`:
    models that could not be measured, said in the reason."""
    budgets = f"budgets: keystroke {KEYSTROKE_BUDGET_S * 1000:.0f} ms, first suggestion {FIRST_BUDGET_S * 1000:.0f} ms"
    also = f"; left out: {'; '.join(left_out)}" if left_out else ""

    def said(c: Candidate) -> str:
        p, s = c.prediction, c.speed
        return (f"{c.name} predicted {p.keystroke_s * 1000:.0f} ms a keystroke, {p.first_suggestion_s * 1000:.0f} ms "
                f"the first suggestion ({s.prefill_tokens_per_s:.0f} prompt / {s.decode_tokens_per_s:.1f} new "
                f"tokens/s here)")

    for i, c in enumerate(candidates):
        if c.prediction.meets_budgets():
            slower = [said(o) for o in candidates[:i]]
            why = f"{said(c)}, within the {budgets}" + (f"; larger but too slow: {'; '.join(slower)}" if slower else "")
            return Choice(c.name, why + also, tuple(candidates))
    fastest = min(candidates, key=lambda c: c.prediction.keystroke_s)
    return Choice(fastest.name, f"none meets the {budgets}; the fastest: {said(fastest)}{also}", tuple(candidates))
