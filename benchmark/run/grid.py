"""The grid a run works through: its cells (method x task x seed) and what became of each."""

from __future__ import annotations

from dataclasses import dataclass

from benchmark.registry import MethodRef
from benchmark.run.record import CellRecord
from benchmark.task import Task


@dataclass(frozen=True)
class Cell:
    method: MethodRef
    task: Task
    seed: int

    @property
    def label(self) -> str:
        return f"{self.method.name} · {self.task.id} · seed {self.seed}"


@dataclass
class Outcome:
    cell: Cell
    status: str  # "done", "cached", "failed", or "measured" (the device half only: the host half is still to run)
    record: CellRecord | None = None
    error: str = ""
