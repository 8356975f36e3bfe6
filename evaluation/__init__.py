"""plusls.evaluation: `plusls eval`, the benchmarks the seeds report (HumanEval, MBPP, MTPB,
HumanEval infilling, code-to-text), scored with sandboxed execution, pass@k, BLEU and ROUGE-L."""
