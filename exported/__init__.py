"""plusls.exported: export Hugging Face checkpoints to ONNX (plusls.exported.export, needs the `train` extra)
and run them with onnxruntime (this package's runtime modules import neither torch nor transformers)."""
from .causal_lm import CausalLM
from .embedder import Embedder
from .errors import ExportError, ModelDirError, PluslsError
from .generation import CancelToken, Generation, GenerationConfig
from .manifest import Manifest, read_manifest
from .seq2seq_lm import Seq2SeqLM
from .sessions import RuntimeOptions

__all__ = [
    "CausalLM", "CancelToken", "Embedder", "ExportError", "Generation", "GenerationConfig", "Manifest",
    "ModelDirError", "PluslsError", "RuntimeOptions", "Seq2SeqLM", "read_manifest",
]
