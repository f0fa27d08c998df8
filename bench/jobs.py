"""Jobs: the spec of one (scenario, replicate, method, hyperparameters) run, preparing its replicate, running its
method blind, scoring it and storing its record.

One name to import from; each concern lives in its own module, in one direction (spec -> replicate -> run ->
record):

- `cowbench.job_spec`: `ReplicateSpec`, `JobSpec`, `make_job`, `method_info` (ids and derived seeds);
- `cowbench.plugins`: `load_plugins_once`, `plugin_digest(s)` (the plugin hashes specs and records carry);
- `cowbench.replicate`: `Replicate`, `prepare`, `build_replicate`, `replicate_fingerprint` (data, subject,
  oracle, cached);
- `cowbench.job_run`: `blind_step` (blind inputs -> ``run_method`` -> unblind -> checks), `score_step`,
  `execute`, `evaluate`;
- `cowbench.job_record`: `run_job`, `store_failure`, provenance, portable tracebacks.
"""

from __future__ import annotations

from cowbench.job_record import (
    _DETAILS_ALLOWED,
    SharedStateChanged,
    UnstorableOutput,
    _base_record,
    _check_shared_state,
    _failure,
    _outputs_summary,
    _package_roots,
    _provenance,
    _run_job_locked,
    _storable,
    _storable_key,
    _stored_since,
    _write_record,
    job_provenance,
    portable_traceback,
    provenance,
    run_job,
    store_failure,
)
from cowbench.job_run import (
    BatchDependent,
    BlindRun,
    MethodLost,
    _from_plain,
    blind_api,
    blind_step,
    check_output,
    default_run_method,
    evaluate,
    execute,
    row_check_batches,
    run_mode_of,
    score_step,
)
from cowbench.job_spec import JobSpec, ReplicateSpec, make_job, method_info
from cowbench.plugins import _LOADED_PLUGINS, load_plugins_once, loaded_plugins, plugin_digest, plugin_digests
from cowbench.replicate import (
    Replicate,
    _load_or_train,
    _prepare_cached,
    build_replicate,
    prepare,
    replicate_fingerprint,
    scenario_from_spec,
)

__all__ = [
    "_DETAILS_ALLOWED", "_LOADED_PLUGINS", "BatchDependent", "BlindRun", "JobSpec", "MethodLost", "Replicate",
    "ReplicateSpec", "SharedStateChanged", "UnstorableOutput", "_base_record", "_check_shared_state", "_failure",
    "_from_plain", "_load_or_train", "_outputs_summary", "_package_roots", "_prepare_cached", "_provenance",
    "_run_job_locked", "_storable", "_storable_key", "_stored_since", "_write_record", "blind_api", "blind_step",
    "build_replicate", "check_output", "default_run_method", "evaluate", "execute", "job_provenance",
    "load_plugins_once", "loaded_plugins", "make_job", "method_info", "plugin_digest", "plugin_digests",
    "portable_traceback", "prepare", "provenance", "replicate_fingerprint", "row_check_batches", "run_job",
    "run_mode_of", "scenario_from_spec", "score_step", "store_failure",
]
