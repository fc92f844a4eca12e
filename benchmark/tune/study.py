"""Optuna studies, one per method x task, stored in the run store with Optuna's journal
storage (``<out>/tuning/studies/<task>/<method>-<key>.journal``), so that a killed ``tune``
resumes and several processes share one study.

A study's budget is ``trials`` slots. A process takes a slot by claiming its lock
(benchmark/run/locks.py), asks Optuna for the trial, runs it and tells the result; a process
killed mid-trial leaves its trial RUNNING and its slot's lock stale: the next process to claim
the slot marks that trial failed (interrupted: it counts for nothing) and runs the slot again.
Each slot's sampler is seeded from the study's key and the slot, and Optuna's samplers ignore
failed and running trials, so a resumed study asks what an uninterrupted one would have asked.
Slot 0 runs the method's own settings (each clipped into its range), the slots before
``startup`` sample at random, the rest with TPE. A process first takes whole studies nobody
else holds (one process per study keeps TPE sequential, and the result reproducible), then
joins the others' studies slot by slot.

A trial that fails (a non-finite loss, a method that raises, an undefined objective) is a
failed trial with its reason: it uses its slot, and the study goes on.
"""

from __future__ import annotations

import dataclasses
import math
import os
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from benchmark.errors import BenchmarkError
from benchmark.hashing import stable_hash
from benchmark.method import default_hparams
from benchmark.metrics import scorecard
from benchmark.metrics.predictions import Predictions
from benchmark.registry import MethodRef
from benchmark.run import tuned
from benchmark.run.locks import HEARTBEAT, Claims
from benchmark.run.failure import reason
from benchmark.run.keys import source_hash, versions
from benchmark.run.runner import Cell, Runner
from benchmark.run.spec import Spec
from benchmark.task import Task, stable_seed
from benchmark.tune.objective import avg_gap, objective, trial_metrics, tuning_view
from benchmark.tune.space import Dimension, search_space, space_hash, start

Progress = Callable[[str], None]  # one line per finished trial


def startup_trials(trials: int) -> int:
    """Trials before TPE takes over: the first (the method's own settings) and random ones, half the budget."""
    return max(1, trials // 2)


@dataclass(frozen=True)
class StudyPlan:
    method: MethodRef
    task: Task
    dimensions: tuple[Dimension, ...]
    key: str  # hash of everything its trials depend on: a change starts a new study
    journal: Path
    seed: int  # its samplers' seeds derive from it: the method, the task's name and the tuning seeds, nothing of the data

    @property
    def name(self) -> str:
        return f"{self.method.name} · {self.task.id}"

    def claim_path(self, slot: int | None = None) -> Path:
        """What a process claims to work on the study (``slot`` None) or on one of its slots."""
        return self.journal.with_name(f"{self.journal.stem}.{'study' if slot is None else f'slot-{slot}'}")


def tuning_spec(spec: Spec) -> Spec:
    """The spec trials run under: its own store beside the run's, the hand-set settings as the base."""
    return dataclasses.replace(spec, out=spec.out / "tuning", hparams_from=tuned.DEFAULTS, seeds=list(spec.tune.seeds))


def plan_studies(spec: Spec) -> tuple[list[StudyPlan], list[tuple[str, str]]]:
    """The studies of ``spec``'s methods x tasks, and (method, why) for each method not tuned."""
    base = tuning_spec(spec)
    plans, skipped = [], {}
    for method in spec.methods:
        if method.cls.is_gold:
            continue
        dimensions = tuple(search_space(method.cls, method.name))
        if not dimensions:
            skipped[method.name] = method.cls.search.reason or "it declares no hyper-parameter to search"
            continue
        for task in spec.tasks:
            key = stable_hash(
                {
                    "method": method.name,
                    "source_hash": source_hash(method.cls),
                    "space": space_hash(list(dimensions)),
                    "base": base.method_arguments(method, task),
                    "context": spec.tuning_context(task),
                    "seeds": list(spec.tune.seeds),
                    "runtime": dataclasses.asdict(spec.runtime),
                    "metrics": spec.metrics_for(task),
                }
            )
            journal = base.out / "studies" / task.id.replace("/", "__") / f"{method.name}-{key}.journal"
            seed = stable_seed(method.name, task.id, list(spec.tune.seeds))
            plans.append(StudyPlan(method, task, dimensions, key, journal, seed))
    return plans, list(skipped.items())


class Trials:
    """Runs trials in one process: the tuning runner (its own store, the tuning view of each
    dataset) and each tuning seed's gold metrics, computed once."""

    def __init__(self, spec: Spec, report: Callable[[str, int, int], None] | None = None) -> None:
        self.spec = tuning_spec(spec)
        self.runner = Runner(self.spec, report, view=tuning_view)
        self._golds: dict[str, dict[str, float]] = {}

    def gold_metrics(self, cell: Cell) -> dict[str, float]:
        gold = self.runner.cells.gold(cell)
        if gold is None:
            raise BenchmarkError(f"{cell.label}: no gold method in the run")
        key = self.runner.index.key(gold)
        if key not in self._golds:
            outcome = self.runner.cells.execute(gold)
            if outcome.status == "failed":
                raise BenchmarkError(f"the gold {gold.label} failed: {outcome.error}")
            predictions = self.runner.store.read(self.runner.store.predictions(self.runner.index.path(gold)), Predictions.load)
            if predictions is None:
                raise BenchmarkError(f"the gold {gold.label} has no readable predictions")
            self._golds[key] = trial_metrics(predictions)
        return self._golds[key]

    def prepare(self, plan: StudyPlan) -> None:
        """Each tuning seed's original and gold (shared by the study's trials, outside their timing)."""
        for seed in self.spec.tune.seeds:
            cell = Cell(plan.method, plan.task, seed)
            self.gold_metrics(cell)

    def run(self, plan: StudyPlan, params: dict[str, Any]) -> float:
        """The objective of ``params`` (``objective.py``): one unlearning run per tuning seed."""
        gaps = []
        for seed in self.spec.tune.seeds:
            cell = Cell(plan.method, plan.task, seed)
            gold = self.gold_metrics(cell)
            arguments = {**self.spec.method_arguments(plan.method, plan.task), **params}
            method, _ = self.runner.cells.unlearn(cell, arguments=arguments)
            model, data = self.runner.cells.scoring_inputs(cell, method)
            predictions = scorecard.collect(model, data, self.spec.metrics_for(plan.task), self.spec.runtime.forward)
            gaps.append(avg_gap(trial_metrics(predictions), gold))
        return objective(gaps)


def open_study(plan: StudyPlan) -> Any:
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    plan.journal.parent.mkdir(parents=True, exist_ok=True)
    storage = JournalStorage(JournalFileBackend(str(plan.journal)))
    return optuna.create_study(study_name=plan.key, storage=storage, direction="minimize", load_if_exists=True)


def _slot(trial: Any) -> int | None:
    return trial.user_attrs.get("slot")


def settled(study: Any) -> dict[int, Any]:
    """Slot -> its trial, for the slots that count: complete, or failed with a reason (not interrupted)."""
    from optuna.trial import TrialState

    found: dict[int, Any] = {}
    for t in study.get_trials(deepcopy=False):
        if _slot(t) is None:
            continue
        if t.state == TrialState.COMPLETE or (t.state == TrialState.FAIL and "error" in t.user_attrs):
            found.setdefault(_slot(t), t)
    return found


def _interrupt(study: Any, slot: int) -> None:
    """Mark the slot's RUNNING trials failed (their process is gone: we hold the slot's claim)."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if _slot(t) == slot:
            study.tell(t.number, state=TrialState.FAIL)


def _sampler(plan: StudyPlan, slot: int, trials: int, first: dict[str, Any]) -> Any:
    import warnings

    from optuna.exceptions import ExperimentalWarning
    from optuna.samplers import PartialFixedSampler, RandomSampler, TPESampler

    seed = stable_seed(plan.seed, slot) % 2**32
    if slot == 0:
        with warnings.catch_warnings():  # PartialFixedSampler is marked experimental since Optuna 2.4
            warnings.simplefilter("ignore", ExperimentalWarning)
            return PartialFixedSampler(first, RandomSampler(seed=seed))
    if slot < startup_trials(trials):
        return RandomSampler(seed=seed)
    return TPESampler(seed=seed, n_startup_trials=startup_trials(trials))


@contextmanager
def _beating(claims: Claims) -> Iterator[None]:
    """Keep the held claims fresh while a trial runs (a trial may outlast a lock's stale age)."""
    done = threading.Event()

    def beat() -> None:
        while not done.wait(HEARTBEAT):
            claims.heartbeat(force=True)

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def run_slots(trials: Trials, plan: StudyPlan, budget: int, claims: Claims, progress: Progress) -> None:
    """Run every slot of ``plan`` that is not settled and that no other live process holds."""
    study = open_study(plan)
    own = {**default_hparams(plan.method.cls), **trials.spec.method_arguments(plan.method, plan.task)}
    first = start(list(plan.dimensions), own)
    for slot in range(budget):
        if slot in settled(study) or not claims.claim(plan.claim_path(slot)):
            continue
        try:
            if slot in settled(study):  # settled by another process since we looked
                continue
            _interrupt(study, slot)
            trials.prepare(plan)
            study.sampler = _sampler(plan, slot, budget, first)
            trial = study.ask()
            trial.set_user_attr("slot", slot)
            trial.set_user_attr("worker", os.getpid())
            params = {d.name: d.suggest(trial) for d in plan.dimensions}
            progress(_tell(study, trial, trials, plan, params, claims))
        finally:
            claims.release(plan.claim_path(slot))


def _tell(study: Any, trial: Any, trials: Trials, plan: StudyPlan, params: dict[str, Any], claims: Claims) -> str:
    """Run the trial and tell the study its value (or its failure); one line saying how it went."""
    from optuna.trial import TrialState

    started = time.perf_counter()
    try:
        with _beating(claims):
            value = trials.run(plan, params)
        if not math.isfinite(value):
            raise BenchmarkError("the objective is undefined (an Avg. Gap component is missing on one side)")
    except Exception as err:  # noqa: BLE001 -- a failed trial is the study's data, not the run's end
        trial.set_user_attr("seconds", time.perf_counter() - started)
        trial.set_user_attr("error", reason(err, "tuning"))
        study.tell(trial, state=TrialState.FAIL)
        return f"{plan.name} trial {trial.user_attrs['slot']}: failed: {reason(err, 'tuning')}"
    trial.set_user_attr("seconds", time.perf_counter() - started)
    study.tell(trial, value)
    return f"{plan.name} trial {trial.user_attrs['slot']}: {value:.2f}"


def work(spec: Spec, plans: list[StudyPlan], progress: Progress, report: Callable[[str, int, int], None] | None = None) -> None:
    """One process's share: first whole studies nobody holds, then slots of the rest."""
    trials = Trials(spec, report)
    claims = Claims()
    budget = spec.tune.trials
    try:
        for plan in plans:
            if claims.claim(plan.claim_path()):
                try:
                    run_slots(trials, plan, budget, claims, progress)
                finally:
                    claims.release(plan.claim_path())
        for plan in plans:
            run_slots(trials, plan, budget, claims, progress)
    finally:
        claims.release_all()


def summary(plan: StudyPlan, budget: int, seeds: tuple[int, ...]) -> dict[str, Any] | None:
    """The study's tuned entry: the best complete trial's values and the provenance, or None
    while a slot is still to run. ``hparams`` is empty when every trial failed."""
    from optuna.trial import TrialState

    study = open_study(plan)
    slots = settled(study)
    if any(slot not in slots for slot in range(budget)):
        return None
    counted = [slots[s] for s in range(budget)]
    complete = [t for t in counted if t.state == TrialState.COMPLETE]
    best = min(complete, key=lambda t: (t.value, _slot(t))) if complete else None
    return {
        "hparams": dict(best.params) if best else {},
        "trials": budget,
        "failures": len(counted) - len(complete),
        "best_objective": round(best.value, 4) if best else None,
        "start_objective": round(slots[0].value, 4) if slots[0].state == TrialState.COMPLETE else None,
        "seconds": round(sum(t.user_attrs.get("seconds", 0.0) for t in counted), 1),
        "errors": sorted({t.user_attrs["error"] for t in counted if t.state == TrialState.FAIL})[:3],
        "space": [str(d) for d in plan.dimensions],
        "space_hash": space_hash(list(plan.dimensions)),
        "study": plan.key,
        "tuning_seeds": list(seeds),
        "method_source_hash": source_hash(plan.method.cls),
        "versions": versions(),
    }
