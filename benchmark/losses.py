"""Loss pieces that several unlearning methods share (and plugins may use)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.nn import functional as F


def distillation_kl(student_logits: Tensor, teacher_logits: Tensor, temperature: float = 1.0) -> Tensor:
    """KL_T(teacher ‖ student) = T² · mean_i KL(softmax(t_i/T) ‖ softmax(s_i/T)).

    The T² factor keeps gradient sizes comparable across temperatures (Hinton et al., 2015).
    """
    log_student = F.log_softmax(student_logits / temperature, dim=1)
    log_teacher = F.log_softmax(teacher_logits / temperature, dim=1)
    kl = F.kl_div(log_student, log_teacher, log_target=True, reduction="batchmean")
    return kl * temperature**2


def random_wrong_labels(y: Tensor, num_classes: int, seed: int) -> Tensor:
    """One label per row drawn uniformly among the classes other than y: (y + U{1..C-1}) mod C."""
    generator = torch.Generator().manual_seed(seed)
    shift = torch.randint(1, max(2, num_classes), (len(y),), generator=generator)
    return (y + shift) % num_classes
