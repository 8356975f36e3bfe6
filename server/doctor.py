"""`plusls doctor`'s completion section: which default completer "auto" serves on this machine, and why (and whether
it chooses lines, completion/line_choice.py)."""
from __future__ import annotations

from pathlib import Path

from plusls.exported.defaults import chooses_lines, exported_dir
from plusls.exported.sessions import RuntimeOptions

from .model_dirs import DefaultModels, ModelDirs


def completer_report(models_dir: Path, options: RuntimeOptions, bench: bool) -> dict:
    """The choice from the speeds known here; `bench`: measure every exported candidate again first."""
    defaults = DefaultModels(ModelDirs(None, None, None, models_dir), options)
    unexported = [m.name for m in defaults.candidates if exported_dir(m, models_dir) is None]
    choice = defaults.choose(measure=True, again=True) if bench else defaults.choice
    report = {"installed": [m.name for m in defaults.candidates], "not_exported": unexported}
    return report | (choice.to_dict() if choice else {"completer": None})


def format_completer(r: dict) -> list[str]:
    if r["completer"] is None:
        why = (f"not exported yet: {', '.join(r['not_exported'])} (`plusls demo` exports them)" if r["not_exported"]
               else "their speed here is not measured yet (`plusls doctor --bench`, or the server's first start)")
        return [f"completion model (auto): undecided; installed {', '.join(r['installed'])}, {why}"]
    lines = [f"completion model (auto): {r['completer']}", f"  why: {r['reason']}"]
    if chooses_lines(r["completer"]):
        lines.append("  line choice: on (at a line start with code below, the prefix-only line where the model is "
                     "surer of it; completion.lineChoice false turns it off)")
    for c in r["candidates"]:
        lines.append(f"  {c['name']}: prompt {c['prefill_tokens_per_s']:.0f} tokens/s, new tokens "
                     f"{c['decode_tokens_per_s']:.1f}/s (measured {c['measured']}); predicted keystroke "
                     f"{c['keystroke_s'] * 1000:.0f} ms, first suggestion {c['first_suggestion_s'] * 1000:.0f} ms, "
                     f"prompt budget {c['context_tokens']} tokens")
    return lines
