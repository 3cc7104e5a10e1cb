"""Every engine event, declared once with its "Called when..." line; no torch, so the service reads it.

The order in which the trainer fires its events is the pseudocode at the top of
`trainer_engine/engine/callbacks.py`, which also holds the dispatcher.
"""

from __future__ import annotations

TRAINER_EVENTS: dict[str, str] = {
    "on_pretrain_routine_start": (
        "Called when train() starts, before anything is built: trainer.args holds the validated config "
        "and trainer.save_dir the run folder (not created yet)."
    ),
    "on_pretrain_routine_end": (
        "Called when setup is done: trainer.model, train_loader, test_loader, optimizer, scheduler, ema, "
        "start_epoch (after a resume) are ready and save_dir exists."
    ),
    "on_train_start": "Called when the training loop is about to start its first epoch.",
    "on_train_epoch_start": (
        "Called when an epoch starts: trainer.epoch is the 0-based epoch, the model is in train mode."
    ),
    "on_train_batch_start": "Called when a batch is about to be preprocessed and run forward.",
    "optimizer_step": (
        "Called when the optimizer has stepped: the weights (and the EMA) hold the update; "
        "fires every `accumulate` batches."
    ),
    "on_before_zero_grad": (
        "Called when the gradients of the step just taken are about to be zeroed: trainer.model's "
        ".grad tensors still hold them."
    ),
    "on_train_batch_end": (
        "Called when a batch is done: trainer.loss_items holds its losses, trainer.tloss the epoch's "
        "running mean."
    ),
    "on_train_epoch_end": (
        "Called when an epoch's batches are done: trainer.tloss holds its mean training losses, "
        "trainer.lr its learning rates; not yet validated or saved."
    ),
    "on_model_save": (
        "Called when the checkpoints of the epoch are written: trainer.last exists (and trainer.best "
        "when this epoch improved fitness)."
    ),
    "on_fit_epoch_end": (
        "Called when an epoch is trained, validated and saved (once per epoch): trainer.metrics holds "
        "the validation metrics, trainer.fitness and trainer.best_fitness are set."
    ),
    "on_params_update": (
        "Called when the learning-rate scheduler has stepped at the end of an epoch: the parameters "
        "and learning rates the next epoch starts from are final."
    ),
    "on_train_end": (
        "Called when training has finished (all epochs, early stop or stop request) and best.pt was "
        "evaluated: trainer.metrics holds that final evaluation, trainer.stop_reason says why it ended."
    ),
    "teardown": "Called when train() is about to return or raise: release what callbacks opened.",
}

VALIDATOR_EVENTS: dict[str, str] = {
    "on_val_start": "Called when validation starts: validator.dataloader and the model are ready.",
    "on_val_batch_start": "Called when a validation batch is about to be preprocessed and run.",
    "on_val_batch_end": "Called when a validation batch's predictions were added to the metrics.",
    "on_val_end": "Called when validation is done: validator.metrics holds the final metrics.",
}

PREDICTOR_EVENTS: dict[str, str] = {
    "on_predict_start": "Called when prediction starts: predictor.model is loaded and in eval mode.",
    "on_predict_batch_start": "Called when a batch of images is about to be preprocessed and run.",
    "on_predict_postprocess_end": "Called when a batch's raw outputs were turned into results objects.",
    "on_predict_batch_end": "Called when a batch's results were appended to predictor.results.",
    "on_predict_end": "Called when every source was predicted: predictor.results holds all results.",
}

EVENTS: dict[str, str] = {**TRAINER_EVENTS, **VALIDATOR_EVENTS, **PREDICTOR_EVENTS}

# The trainer events fired once per batch (or optimizer step); the service turns these into throttled
# progress and lists every other trainer event as a job event.
BATCH_EVENTS: frozenset[str] = frozenset(
    {"on_train_batch_start", "optimizer_step", "on_before_zero_grad", "on_train_batch_end"}
)
# A typo in BATCH_EVENTS would silently turn a batch event into a job event.
assert set(TRAINER_EVENTS) >= BATCH_EVENTS
