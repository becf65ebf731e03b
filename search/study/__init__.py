"""The task-agnostic engine: the Optuna loop, samplers, storage, progress, one constrained objective.

Optuna (5.x) internals used here, each because no public API does the job:

- ``optuna.storages._heartbeat.BaseHeartbeat`` (storage.py): the interface RDBStorage implements
  for heartbeats; journal storages get heartbeats by implementing it too.
- ``_get_stale_trial_ids`` (storage.py, engine.py): that interface's method; the public
  ``fail_stale_trials`` fails stale trials but gives no way to record why first.
- ``Study._storage`` (engine.py): a study's storage, for the reaper and the final-training claim.
- ``FrozenTrial._trial_id`` / ``Trial._trial_id`` (storage.py, objective.py): the id public storage
  methods take.
- ``optuna.samplers._lazy_random_state.LazyRandomState`` (samplers.py): to reseed a sampler per
  trial number, deterministically; the public ``reseed_rng()`` draws a random seed.
"""
