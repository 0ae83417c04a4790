"""Training, evaluation and prediction (``uniseg train`` / ``eval`` / ``predict``).

* ``TrainConfig`` / ``DatasetSpec`` — a run's settings, ``RUN/config.yaml`` (config.py)
* ``train(config, out)`` — the training loop, resumable, DDP under torchrun (trainer.py)
* ``load_trained(ckpt)`` — a checkpoint's network, union and settings (checkpoint.py)
* ``export_checkpoint(ckpt, out)`` — ``model.safetensors`` + ``config.json``, read back as a checkpoint (export.py)
* ``eval_set`` / ``evaluate_set`` / ``write_scores`` — scoring in a dataset's own label space (inputs.py, evaluate.py)
* ``predict_files`` — label PNGs in a label space, Figure 4's multi-label view (predict.py)
* ``confusion`` / ``scores`` — confusion matrix and IoU maths (metrics.py)
* ``mine`` — relation mining, Eq. 7 (mining.py); ``run_demo`` — ``uniseg demo`` (demo.py)

Names are imported lazily, so ``import uniseg.engine`` costs nothing until used.
"""

from __future__ import annotations

from uniseg._lazy import lazy_exports

_EXPORTS = {
    "TrainConfig": "config",
    "DatasetSpec": "config",
    "read_config": "config",
    "train": "trainer",
    "resume_config": "trainer",
    "TrainEvents": "trainer",
    "TrainResult": "trainer",
    "RunInfo": "trainer",
    "TrainingInterrupted": "trainer",
    "NonFiniteLoss": "trainer",
    "load_trained": "checkpoint",
    "read_checkpoint": "checkpoint",
    "TrainedModel": "checkpoint",
    "export_checkpoint": "export",
    "eval_set": "inputs",
    "EvalSet": "inputs",
    "evaluate_set": "evaluate",
    "write_scores": "evaluate",
    "DatasetScore": "evaluate",
    "InferenceSettings": "inference",
    "predict_channels": "inference",
    "predict_files": "predict",
    "target_space": "predict",
    "confusion": "metrics",
    "scores": "metrics",
    "poly_lr": "schedule",
    "setup_runtime": "runtime",
    "mine": "mining",
    "MiningResult": "mining",
    "run_demo": "demo",
    "DemoPlan": "demo",
}

__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
