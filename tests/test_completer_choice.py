"""`models.completion: "auto"`: each default completer's speed measured once on this machine, the latencies it
predicts, and the largest that meets the budgets chosen."""
from __future__ import annotations

import shutil

import pytest

from plusls.common.errors import PluslsError
from plusls.completion.choice import FIRST_BUDGET_S, KEYSTROKE_BUDGET_S, Candidate, choose, predict
from plusls.completion.speed import Speed, SpeedCache, speed_key
from plusls.exported import CausalLM, read_manifest
from plusls.exported.defaults import COMPLETER, COMPLETER_LARGE
from plusls.exported.sessions import RuntimeOptions

CPU = RuntimeOptions(providers=("CPUExecutionProvider",))


def candidate(name: str, prefill: float, decode: float) -> Candidate:
    speed = Speed(prefill, decode, "2026-12-04T00:00:00Z")
    return Candidate(name, speed, predict(speed, 32768))


def test_a_fast_machine_serves_the_large_model():
    choice = choose([candidate("large", 400, 60), candidate("small", 1200, 150)])
    assert choice.name == "large" and "larger" not in choice.reason


def test_too_slow_to_type_with_falls_back_to_the_smaller_model_and_says_why():
    large, small = candidate("large", 90, 13), candidate("small", 290, 40)
    assert large.prediction.keystroke_s > KEYSTROKE_BUDGET_S >= small.prediction.keystroke_s
    choice = choose([large, small])
    assert choice.name == "small"
    assert "larger but too slow: large predicted" in choice.reason and "tokens/s" in choice.reason


def test_a_prompt_too_slow_to_read_in_the_pause_delays_the_first_suggestion():
    slow_prompt = candidate("large", 30, 200)  # AVX2-like prefill, however fast the decode
    p = slow_prompt.prediction
    assert p.context_tokens == 256 and p.first_suggestion_s > FIRST_BUDGET_S
    assert p.first_suggestion_s == pytest.approx(p.keystroke_s + 256 / 30 - 4, abs=1e-3)
    assert choose([slow_prompt, candidate("small", 300, 40)]).name == "small"


def test_when_none_meets_the_budgets_the_fastest_serves():
    choice = choose([candidate("large", 20, 3), candidate("small", 60, 8)])
    assert choice.name == "small" and choice.reason.startswith("none meets")


def test_speed_is_measured_once_per_model_and_kept(exported, tmp_path):
    cache = SpeedCache(tmp_path / "speed.json")
    lm = CausalLM(exported["qwen2"], CPU)
    first = cache.speed_of(lm)
    assert first.prefill_tokens_per_s > 0 and first.decode_tokens_per_s > 0
    assert SpeedCache(tmp_path / "speed.json").speed_of(lm) == first  # from the file, not measured again
    again = cache.speed_of(lm, again=True)
    assert again.measured >= first.measured and cache.get(speed_key(lm.manifest, lm.providers)) == again
    other = CausalLM(exported["llama"], CPU)
    assert speed_key(other.manifest, other.providers) != speed_key(lm.manifest, lm.providers)


def test_a_corrupt_speed_file_is_measured_again(exported, tmp_path):
    (tmp_path / "speed.json").write_text("{not json")
    assert SpeedCache(tmp_path / "speed.json").speed_of(CausalLM(exported["qwen2"], CPU)).prefill_tokens_per_s > 0


def test_auto_waits_for_the_measurement_then_chooses_and_remembers(exported, tmp_path, monkeypatch):
    from plusls.server import model_dirs
    from plusls.server.model_dirs import DefaultModels, ModelDirs

    for model in (COMPLETER_LARGE, COMPLETER):  # both candidates installed and exported (tiny stand-ins)
        shutil.copytree(exported["qwen2"], tmp_path / model.name)
    monkeypatch.setattr(model_dirs, "installed_completers", lambda: [COMPLETER_LARGE, COMPLETER])
    cache = SpeedCache(tmp_path / "speed.json")
    defaults = DefaultModels(ModelDirs(None, None, None, tmp_path), CPU, speeds=cache)
    assert defaults.choosing() and not defaults.completer_ready() and defaults.choice is None
    with pytest.raises(PluslsError, match="being chosen"):
        defaults.completion_dir()
    choice = defaults.choose(measure=True)
    # A tiny model is fast anywhere: the larger candidate meets the budgets and serves.
    assert choice.name == COMPLETER_LARGE.name and len(choice.candidates) == 2
    assert defaults.completion_dir() == tmp_path / choice.name and defaults.completer_ready()
    measured = (tmp_path / "speed.json").read_text()
    later = DefaultModels(ModelDirs(None, None, None, tmp_path), CPU, speeds=cache)  # the next start
    assert not later.choosing() and later.choice == choice
    assert (tmp_path / "speed.json").read_text() == measured  # chose from the file, measured nothing
    named = DefaultModels(ModelDirs(None, None, None, tmp_path, completer="qwen2.5-coder-0.5b"), CPU, speeds=cache)
    assert named.completion_dir() == tmp_path / COMPLETER.name and named.choice is None  # a name: no choosing
    assert read_manifest(defaults.completion_dir()).kind == "causal-lm"


def test_a_candidate_that_does_not_run_here_is_left_out_and_said(exported, tmp_path, monkeypatch):
    from plusls.server import model_dirs
    from plusls.server.model_dirs import DefaultModels, ModelDirs

    for model in (COMPLETER_LARGE, COMPLETER):
        shutil.copytree(exported["qwen2"], tmp_path / model.name)
    monkeypatch.setattr(model_dirs, "installed_completers", lambda: [COMPLETER_LARGE, COMPLETER])

    def loader(path, options):
        if path.name == COMPLETER_LARGE.name:
            raise MemoryError("onnxruntime could not allocate 2 GB")
        return CausalLM(path, options)

    monkeypatch.setattr(model_dirs, "CausalLM", loader)
    defaults = DefaultModels(ModelDirs(None, None, None, tmp_path), CPU, speeds=SpeedCache(tmp_path / "speed.json"))
    choice = defaults.choose(measure=True)
    assert choice.name == COMPLETER.name and [c.name for c in choice.candidates] == [COMPLETER.name]
    assert "left out: qwen2.5-coder-1.5b-instruct-fused-q8: onnxruntime could not allocate 2 GB" in choice.reason
