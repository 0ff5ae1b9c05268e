"""Training: params, the device engine (batches on the device, augmentation, optimizers,
schedules), the train stage's run, checkpoints, DDP. Uses core, data and models."""
