"""`plusls doctor`: versions, providers available and in use, models found, GPU yes/no."""
from __future__ import annotations

import platform
import shutil
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from .errors import ModelDirError
from .manifest import ONNX_FILES, read_manifest
from .sessions import RuntimeOptions, available_providers, make_session, resolve_providers

PACKAGES = ["plusls", "onnxruntime", "onnxruntime-gpu", "tokenizers", "numpy", "torch", "transformers", "optimum",
            "optimum-onnx", "onnx"]


def _version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def collect(models_dir: Path, options: RuntimeOptions) -> dict:
    """Facts about this installation; never imports torch (versions come from package metadata)."""
    providers = available_providers()
    report: dict = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {n: v for n in PACKAGES if (v := _version(n))},
        "providers_available": providers,
        "providers_requested": list(options.providers) if options.providers != "auto" else "auto",
        "gpu": {"cuda_provider": "CUDAExecutionProvider" in providers, "nvidia_smi": shutil.which("nvidia-smi") is not None},
        "models_dir": str(models_dir),
        "models": [],
    }
    try:
        report["providers_used"] = resolve_providers(options.providers)
    except ModelDirError as e:
        report["providers_used"] = f"error: {e}"
    for d in sorted(p for p in models_dir.glob("*") if p.is_dir() and not p.name.startswith(".")):
        try:
            m = read_manifest(d, verify="full")
            # Open one session: the providers a session really got, not the ones asked for.
            used = make_session(d / next(iter(ONNX_FILES[m.kind].values())), options).get_providers()
            report["models"].append({"dir": str(d), "kind": m.kind, "architecture": m.architecture,
                                     "quantization": m.quantization, "parity": m.parity, "providers": used,
                                     "ok": True})
            report["providers_used"] = used
        except ModelDirError as e:
            report["models"].append({"dir": str(d), "ok": False, "error": str(e)})
    return report



def format_report(r: dict) -> str:
    lines = [f"python {r['python']} on {r['platform']}"]
    lines += [f"  {n} {v}" for n, v in r["packages"].items()]
    lines.append(f"onnxruntime providers available: {', '.join(r['providers_available'])}")
    used = r["providers_used"]
    lines.append(f"providers used: {', '.join(used) if isinstance(used, list) else used}")
    gpu = r["gpu"]
    lines.append(f"GPU: {'yes' if gpu['cuda_provider'] else 'no'} (CUDA provider {'present' if gpu['cuda_provider'] else 'absent'}"
                 f", nvidia-smi {'found' if gpu['nvidia_smi'] else 'not found'})")
    lines.append(f"models in {r['models_dir']}: {len(r['models'])}")
    for m in r["models"]:
        if m["ok"]:
            lines.append(f"  {Path(m['dir']).name}: {m['kind']} {m['architecture']}"
                         f"{' ' + m['quantization'] if m['quantization'] else ''} on {m['providers'][0]}; "
                         f"parity {m['parity']}")
        else:
            lines.append(f"  {Path(m['dir']).name}: BROKEN: {m['error']}")
    return "\n".join(lines)
