"""Unit tests of python/nsae_saelens: the NSAE in SAELens 6 against a float64 numpy reference of its formula."""
import json

import numpy as np
import pytest

from saelens_helpers import require_nsae_saelens

nsae_saelens, sae_lens, torch = require_nsae_saelens()


def randomized(sae, seed, scale=0.5):
    """Random weights (and a b_enc spread around 0, so some codes are zero and some saturate in tanh)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name in ("W_enc", "W_dec", "b_enc", "b_dec"):
            p = getattr(sae, name)
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
    return sae


def numpy_reference(sae, x):
    """c = tanh(ReLU((x − b_dec)·W_enc + b_enc)), x′ = c·W_dec + b_dec in float64."""
    w = {k: getattr(sae, k).detach().double().numpy() for k in ("W_enc", "W_dec", "b_enc", "b_dec")}
    x = x.double().numpy()
    c = np.tanh(np.maximum((x - w["b_dec"]) @ w["W_enc"] + w["b_enc"], 0))
    return c, c @ w["W_dec"] + w["b_dec"]


def rel_err(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def inference_sae(d_in=12, d_sae=48, **kw):
    return randomized(nsae_saelens.NSAE(nsae_saelens.NSAEConfig(d_in=d_in, d_sae=d_sae, **kw)), 1)


def training_sae(d_in=12, d_sae=48, **kw):
    return randomized(nsae_saelens.NSAETrainingSAE(nsae_saelens.NSAETrainingConfig(d_in=d_in, d_sae=d_sae, **kw)), 1)


def step_input(sae, x, alpha):
    from sae_lens.saes.sae import TrainStepInput
    return TrainStepInput(sae_in=x, coefficients={"alpha": alpha}, dead_neuron_mask=None, n_training_steps=0,
                          is_logging_step=False)


def test_registered_for_inference_and_training():
    from sae_lens.registry import get_sae_class, get_sae_training_class
    assert get_sae_class("nsae") == (nsae_saelens.NSAE, nsae_saelens.NSAEConfig)
    assert get_sae_training_class("nsae") == (nsae_saelens.NSAETrainingSAE, nsae_saelens.NSAETrainingConfig)
    nsae_saelens.register()  # a second registration is harmless


@pytest.mark.parametrize("make", [inference_sae, training_sae])
def test_forward_matches_float64_formula(make):
    sae = make()
    x = torch.randn(64, 12, generator=torch.Generator().manual_seed(2)) * 2
    c_ref, recon_ref = numpy_reference(sae, x)
    with torch.no_grad():
        c, recon = sae.encode(x), sae(x)
    assert 0 < (c_ref > 0).mean() < 1 and c_ref.max() > 0.9  # zeros, and codes deep in tanh's curve
    assert rel_err(c, c_ref) < 1e-5
    assert rel_err(recon, recon_ref) < 1e-5


def test_noise_off_in_encode_on_in_training():
    sigma = 0.5
    sae = training_sae(noise_sigma=sigma)
    with torch.no_grad():
        sae.b_enc.fill_(50.0)  # every pre-activation positive: pre − clean pre is exactly the noise
    x = torch.randn(2000, 12, generator=torch.Generator().manual_seed(3))
    clean_pre = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
    with torch.no_grad():
        assert torch.equal(sae.encode(x), sae.encode(x))
        assert rel_err(sae.encode(x), torch.tanh(clean_pre)) < 1e-6
        out = sae.training_forward_pass(step_input(sae, x, 1e-3))
    noise = (out.hidden_pre - clean_pre).detach().double().numpy()
    # 96 000 draws of N(0, 0.25): the std within 2 %, the mean within 5 standard errors.
    assert abs(noise.std() - sigma) < 0.02 * sigma
    assert abs(noise.mean()) < 5 * sigma / np.sqrt(noise.size)
    with torch.no_grad():  # and after the step, encode is clean again
        assert rel_err(sae.encode(x), torch.tanh(clean_pre)) < 1e-6


def test_noise_always_also_in_encode():
    sae = inference_sae(noise_sigma=0.5, noise_mode="always")
    x = torch.randn(256, 12, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        a, b = sae.encode(x), sae.encode(x)
    c_ref, _ = numpy_reference(sae, x)
    assert not torch.equal(a, b)
    assert rel_err(a, c_ref) > 1e-2


@pytest.mark.parametrize("mse", ["sum", "mean"])
def test_loss_and_beta_follow_the_batch_mean_norm(mse):
    alpha = 1e-3
    sae = training_sae(noise_sigma=0.0, mse=mse)
    x = torch.randn(128, 12, generator=torch.Generator().manual_seed(5))
    for scale in (1.0, 3.0):
        xs = x * scale
        with torch.no_grad():
            out = sae.training_forward_pass(step_input(sae, xs, alpha))
        c, recon = numpy_reference(sae, xs)
        x64 = xs.double().numpy()
        beta = alpha * np.linalg.norm(x64, axis=1).mean() ** 2
        per_token = ((recon - x64) ** 2).sum(axis=1) / (12 if mse == "mean" else 1)
        assert rel_err(out.losses["l1_loss"].item(), beta * np.abs(c).sum(axis=1).mean()) < 1e-5
        assert rel_err(out.losses["mse_loss"].item(), per_token.mean()) < 1e-5
        assert rel_err(out.loss.item(), per_token.mean() + beta * np.abs(c).sum(axis=1).mean()) < 1e-5
    assert rel_err(sae.beta(x * 3, alpha).item(), 9 * sae.beta(x, alpha).item()) < 1e-6


def test_beta_layer_mode_uses_the_fixed_norm():
    sae = training_sae(beta_mode="layer", layer_mean_norm=4.0)
    x = torch.randn(32, 12)
    assert rel_err(sae.beta(x, 1e-3).item(), 1e-3 * 16) < 1e-7
    assert rel_err(sae.beta(x * 10, 1e-3).item(), 1e-3 * 16) < 1e-7


def test_trained_folder_saves_nsae_fields_and_loads_back(tmp_path):
    sae = training_sae(alpha=2e-6, noise_sigma=0.7, mse="mean")
    sae.save_inference_model(tmp_path)
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    assert cfg["architecture"] == "nsae"
    assert (cfg["alpha"], cfg["noise_sigma"], cfg["noise_mode"], cfg["beta_mode"], cfg["mse"]) == \
        (2e-6, 0.7, "train", "batch", "mean")
    loaded = sae_lens.SAE.load_from_disk(str(tmp_path))
    assert isinstance(loaded, nsae_saelens.NSAE)
    x = torch.randn(16, 12)
    with torch.no_grad():
        assert rel_err(loaded(x), sae(x)) < 1e-6


@pytest.mark.parametrize("field,value", [("noise_mode", "sometimes"), ("beta_mode", "epoch"), ("mse", "max"),
                                         ("noise_sigma", -1.0)])
def test_unknown_field_values_are_refused_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        nsae_saelens.NSAEConfig(d_in=4, d_sae=8, **{field: value})


def test_fold_W_dec_norm_is_refused():
    with pytest.raises(NotImplementedError, match="tanh"):
        inference_sae().fold_W_dec_norm()
