"""The normalizing SAE (NSAE) of nsae as a SAELens 6 architecture, for inference and for training.

    c  = tanh(ReLU((x − b_dec)·W_enc + b_enc + ε)),  ε ~ N(0, σ²) per entry, only in training (noise_mode="train")
                                                        or also at inference (noise_mode="always", the study's code)
    x′ = c·W_dec + b_dec,                            W_dec unconstrained (never renormalised)
    L  = mean_b ‖x′_b − x_b‖² [/d_in when mse="mean"] + β·mean_b ‖c_b‖₁
    β  = α·(mean_b ‖x_b‖)² of the batch (beta_mode="batch"), or α·layer_mean_norm² (beta_mode="layer")

The fields are the ones nsae writes in an NSAE folder's cfg.json (architecture "nsae", alpha, noise_sigma,
noise_mode, beta_mode, layer_mean_norm, mse), so a folder saved by either side loads in the other with the same
numbers.
"""
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from typing_extensions import override

from sae_lens.saes.sae import (
    SAE,
    SAEConfig,
    TrainCoefficientConfig,
    TrainingSAE,
    TrainingSAEConfig,
    TrainStepInput,
    TrainStepOutput,
)

ARCHITECTURE = "nsae"


def _check_fields(cfg: "NSAEConfig | NSAETrainingConfig") -> None:
    """Refuses, naming the field, any value the NSAE does not define (never a silently different model)."""
    if not (cfg.noise_sigma >= 0 and torch.isfinite(torch.tensor(float(cfg.noise_sigma)))):
        raise ValueError(f"nsae cfg: noise_sigma must be finite and ≥ 0, got {cfg.noise_sigma!r}")
    if cfg.noise_mode not in ("train", "always"):
        raise ValueError(f"nsae cfg: noise_mode must be 'train' or 'always', got {cfg.noise_mode!r}")
    if cfg.beta_mode not in ("batch", "layer"):
        raise ValueError(f"nsae cfg: beta_mode must be 'batch' or 'layer', got {cfg.beta_mode!r}")
    if cfg.mse not in ("sum", "mean"):
        raise ValueError(f"nsae cfg: mse must be 'sum' or 'mean', got {cfg.mse!r}")
    if cfg.beta_mode == "layer" and not (cfg.layer_mean_norm is not None and cfg.layer_mean_norm > 0):
        raise ValueError(f"nsae cfg: beta_mode 'layer' needs a positive layer_mean_norm, got {cfg.layer_mean_norm!r}")


@dataclass
class _NSAEFields:
    """The NSAE's own cfg fields, shared by the inference and the training config (listed first in the MRO, so
    `__post_init__` checks them after SAELens's own checks and `architecture` names the registry entry)."""

    alpha: float = 1e-6
    noise_sigma: float = 1.0
    noise_mode: Literal["train", "always"] = "train"
    beta_mode: Literal["batch", "layer"] = "batch"
    layer_mean_norm: float | None = None
    mse: Literal["sum", "mean"] = "sum"
    seed: int | None = None

    def __post_init__(self):
        super().__post_init__()
        _check_fields(self)

    @override
    @classmethod
    def architecture(cls) -> str:
        return ARCHITECTURE


@dataclass
class NSAEConfig(_NSAEFields, SAEConfig):
    """An NSAE for inference. alpha, beta_mode, layer_mean_norm and mse only matter in training; they are kept so a
    folder records the experiment it came from, as nsae writes it."""


def _init_b_enc(sae: SAE) -> None:
    sae.b_enc = nn.Parameter(torch.zeros(sae.cfg.d_sae, dtype=sae.dtype, device=sae.device))


def _activate(sae: SAE, sae_in: torch.Tensor, noisy: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(c, pre) for the already processed input x − b_dec; pre includes the noise when there is any."""
    pre = sae_in @ sae.W_enc + sae.b_enc
    if noisy and sae.cfg.noise_sigma > 0:
        pre = pre + sae.cfg.noise_sigma * torch.randn_like(pre)
    pre = sae.hook_sae_acts_pre(pre)
    return sae.hook_sae_acts_post(torch.tanh(torch.relu(pre))), pre


def _refuse_fold_W_dec_norm() -> None:
    # Folding decoder norms into the encoder is exact only for positively homogeneous activations; tanh is not one.
    raise NotImplementedError("nsae: fold_W_dec_norm would change the codes (c = tanh(…) is not scale-equivariant)")


class NSAE(SAE[NSAEConfig]):
    """The NSAE for inference: `encode` is noise-free unless the folder says noise_mode="always"."""

    b_enc: nn.Parameter

    @override
    def initialize_weights(self) -> None:
        super().initialize_weights()
        _init_b_enc(self)

    @override
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return _activate(self, self.process_sae_in(x), noisy=self.cfg.noise_mode == "always")[0]

    @override
    def decode(self, feature_acts: torch.Tensor) -> torch.Tensor:
        out = self.hook_sae_recons(feature_acts @ self.W_dec + self.b_dec)
        out = self.run_time_activation_norm_fn_out(out)
        return self.reshape_fn_out(out, self.d_head)

    @override
    def fold_W_dec_norm(self):
        _refuse_fold_W_dec_norm()


@dataclass
class NSAETrainingConfig(_NSAEFields, TrainingSAEConfig):
    """An NSAE to train. SAELens's default decoder_init_norm (0.1) is kept; nsae initialises its own way, which is
    a choice of starting point, not of model."""


class NSAETrainingSAE(TrainingSAE[NSAETrainingConfig]):
    """The NSAE in SAELens's trainer: noise on in `training_forward_pass`, off in `encode` (unless noise_mode is
    "always"), β from the batch's mean input norm."""

    b_enc: nn.Parameter

    def __init__(self, cfg: NSAETrainingConfig, use_error_term: bool = False):
        super().__init__(cfg, use_error_term)
        self._in_training_step = False
        if cfg.mse == "mean":
            d_in = cfg.d_in
            self.mse_loss_fn = lambda preds, target: nn.functional.mse_loss(preds, target, reduction="none") / d_in

    @override
    def initialize_weights(self) -> None:
        super().initialize_weights()
        _init_b_enc(self)

    @override
    def get_coefficients(self) -> dict[str, float | TrainCoefficientConfig]:
        return {"alpha": self.cfg.alpha}

    def beta(self, x: torch.Tensor, alpha: float) -> torch.Tensor:
        """β = α·(mean ‖x‖)² over the batch's rows (beta_mode "batch"), or α·layer_mean_norm²."""
        if self.cfg.beta_mode == "layer":
            return torch.tensor(alpha * float(self.cfg.layer_mean_norm) ** 2, dtype=x.dtype, device=x.device)
        mean_norm = x.detach().reshape(-1, x.shape[-1]).norm(dim=-1).mean()
        return alpha * mean_norm * mean_norm

    @override
    def encode_with_hidden_pre(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        noisy = self._in_training_step or self.cfg.noise_mode == "always"
        return _activate(self, self.process_sae_in(x), noisy=noisy)

    @override
    def training_forward_pass(self, step_input: TrainStepInput) -> TrainStepOutput:
        self._in_training_step = True
        try:
            return super().training_forward_pass(step_input)
        finally:
            self._in_training_step = False

    @override
    def calculate_aux_loss(self, step_input: TrainStepInput, feature_acts: torch.Tensor, hidden_pre: torch.Tensor,
                           sae_out: torch.Tensor) -> dict[str, torch.Tensor]:
        beta = self.beta(step_input.sae_in, step_input.coefficients["alpha"])
        return {"l1_loss": beta * feature_acts.abs().sum(dim=-1).mean()}

    @override
    def fold_W_dec_norm(self):
        _refuse_fold_W_dec_norm()


def register() -> None:
    """Registers the nsae architecture with SAELens (once; a second call is a no-op)."""
    from sae_lens.registry import SAE_CLASS_REGISTRY, SAE_TRAINING_CLASS_REGISTRY, register_sae_class, \
        register_sae_training_class
    if ARCHITECTURE not in SAE_CLASS_REGISTRY:
        register_sae_class(ARCHITECTURE, NSAE, NSAEConfig)
    if ARCHITECTURE not in SAE_TRAINING_CLASS_REGISTRY:
        register_sae_training_class(ARCHITECTURE, NSAETrainingSAE, NSAETrainingConfig)
