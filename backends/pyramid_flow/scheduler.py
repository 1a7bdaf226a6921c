"""Pyramid Flow's stage-wise flow-matching Euler scheduler.

The flow from noise to a clean latent is cut into `stages` pieces, one per resolution (lowest
first). Each stage runs its own Euler steps over its own slice of the timestep range; between
stages the pipeline upsamples the latent and re-noises it (`renoise_coefficients`) so the next,
sharper stage starts from the noise level it was trained at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor


@dataclass(frozen=True)
class StageSchedule:
    """One stage's timesteps (model inputs) and sigmas (Euler positions, one more than the steps)."""

    timesteps: Tensor
    sigmas: Tensor


class PyramidFlowScheduler:
    def __init__(
        self,
        num_train_timesteps: int = 1000,
        shift: float = 1.0,
        stages: int = 3,
        stage_range: tuple[float, ...] = (0, 1 / 3, 2 / 3, 1),
        gamma: float = 1 / 3,
    ) -> None:
        if len(stage_range) != stages + 1:
            raise ValueError(f"stage_range needs {stages + 1} bounds for {stages} stages")
        self.num_train_timesteps = num_train_timesteps
        self.stages = stages
        self.gamma = gamma
        # The training schedule: sigma from 1 down to 1/N (shifted as in SD3), timestep = sigma * N.
        sigmas = torch.from_numpy(
            np.linspace(1, num_train_timesteps, num_train_timesteps, dtype=np.float32)[::-1].copy()
        )
        sigmas = sigmas / num_train_timesteps
        sigmas = shift * sigmas / (1 + (shift - 1) * sigmas)
        train_timesteps = sigmas * num_train_timesteps

        # Where each stage starts and ends on the training schedule; a later stage starts from an
        # upsampled latent, whose signal share is corrected for the renoising (gamma).
        self.original_start_sigmas: list[float] = []
        distances = []
        for stage in range(stages):
            start = sigmas[max(int(stage_range[stage] * num_train_timesteps), 0)].item()
            end_index = min(int(stage_range[stage + 1] * num_train_timesteps), num_train_timesteps)
            end = sigmas[end_index].item() if end_index < num_train_timesteps else 0.0
            self.original_start_sigmas.append(start)
            if stage > 0:
                signal = 1 - start
                start = 1 - signal / (math.sqrt(1 + 1 / gamma) * (1 - signal) + signal)
            distances.append(start - end)

        # Each stage's share of the timestep range, by the length of its piece of the flow.
        self._last_train_sigma = float(np.linspace(1, 0, num_train_timesteps + 1)[-2])
        self.timestep_bounds: list[tuple[float, float]] = []
        total = sum(distances)
        for stage in range(stages):
            first = 0.0 if stage == 0 else sum(distances[:stage]) / total
            last = 1.0 if stage == stages - 1 else sum(distances[: stage + 1]) / total
            high = train_timesteps[int(first * num_train_timesteps)]
            low = train_timesteps[min(int(last * num_train_timesteps), num_train_timesteps - 1)]
            # The training grid of this stage has N points from high towards low (low itself excluded).
            grid = np.linspace(high.numpy(), low.numpy(), num_train_timesteps + 1)
            self.timestep_bounds.append((float(grid[0]), float(grid[-2])))

    def renoise_coefficients(self, stage: int) -> tuple[float, float]:
        """(alpha, beta) for `alpha * upsampled + beta * block_noise` at the start of `stage` (> 0)."""
        signal = 1 - self.original_start_sigmas[stage]
        alpha = 1 / (math.sqrt(1 + 1 / self.gamma) * (1 - signal) + signal)
        beta = alpha * (1 - signal) / math.sqrt(self.gamma)
        return alpha, beta

    def schedule(self, num_inference_steps: int, stage: int, device: torch.device | str | None = None) -> StageSchedule:
        """The timesteps and sigmas of `num_inference_steps` Euler steps over `stage`."""
        high, low = self.timestep_bounds[stage]
        timesteps = torch.from_numpy(np.linspace(high, low, num_inference_steps)).to(device)
        # Within a stage the sigma runs over that stage's own path, from 1 to the last training point, then 0.
        sigmas = torch.from_numpy(np.linspace(1.0, self._last_train_sigma, num_inference_steps)).to(device)
        return StageSchedule(timesteps, torch.cat([sigmas, sigmas.new_zeros(1)]))

    @staticmethod
    def step(velocity: Tensor, schedule: StageSchedule, index: int, sample: Tensor) -> Tensor:
        """One Euler step from sigma[index] to sigma[index + 1], computed in float32."""
        delta = schedule.sigmas[index + 1] - schedule.sigmas[index]
        return (sample.float() + delta * velocity).to(velocity.dtype)
