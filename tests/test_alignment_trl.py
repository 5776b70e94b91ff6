"""pglib.alignment against TRL on the same tensors: group advantages (GRPO's and RLOO's), the
GRPO loss (three aggregations, with and without the KL term), the DPO loss and the KTO loss.

Optional: it runs only where TRL is installed (``pip install -e ".[trl]"``, Python >= 3.11;
see CONTRIBUTING.md) and is skipped elsewhere. TRL has no public loss functions: its losses
live in the trainers' private ``_compute_loss`` (and the advantages in
``_generate_and_score_completions``), so this file pins the TRL version it was checked
against (pyproject.toml) and calls them on a real trainer, built offline around a one-layer
Llama and a word-level tokenizer, with the model's log-probs replaced by the test's tensors.
TRL's traps are set off on purpose: ``bf16=False`` (CPU autocast shifts log-probs), a
reference model only through ``beta`` set after construction (otherwise GRPOTrainer fetches
one from the hub) and ``use_bias_correction_kl=False`` (TRL multiplies the KL term by ρ by
default; pglib does not).
"""

from __future__ import annotations

import types

import pytest
import torch

trl = pytest.importorskip("trl")
transformers = pytest.importorskip("transformers")
datasets = pytest.importorskip("datasets")
tokenizers = pytest.importorskip("tokenizers")

import pglib  # noqa: E402

# transformers and TRL warn about their own deprecations when a trainer is built.
pytestmark = [
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]

WORDS = ["<pad>", "<eos>", "<unk>", *(f"w{i}" for i in range(13))]
REWARDS = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.5, 2.0, -1.0, 0.25]])  # B = 2 prompts, G = 4


def _tokenizer() -> transformers.PreTrainedTokenizerFast:
    vocab = {word: i for i, word in enumerate(WORDS)}
    tok = tokenizers.Tokenizer(tokenizers.models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.WhitespaceSplit()
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="<eos>", unk_token="<unk>"
    )


def _model() -> transformers.LlamaForCausalLM:
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(WORDS), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=64,
        pad_token_id=0, eos_token_id=1, bos_token_id=None,
    )  # fmt: skip
    return transformers.LlamaForCausalLM(config)


def _common(tmp_path) -> dict[str, object]:
    return {"output_dir": str(tmp_path), "bf16": False, "use_cpu": True, "report_to": "none"}


def _grpo_trainer(tmp_path, scale_rewards: str = "group") -> trl.GRPOTrainer:
    args = trl.GRPOConfig(
        **_common(tmp_path), per_device_train_batch_size=8, num_generations=4,
        max_completion_length=6, beta=0.0, scale_rewards=scale_rewards,
    )  # fmt: skip
    trainer = trl.GRPOTrainer(
        model=_model(),
        reward_funcs=lambda prompts, completions, **_: REWARDS.flatten().tolist(),
        args=args,
        train_dataset=datasets.Dataset.from_dict({"prompt": ["w1 w2", "w3"] * 4}),
        processing_class=_tokenizer(),
    )
    trainer.model.train()
    return trainer


@pytest.mark.parametrize(("scale_rewards", "method"), [("group", "grpo"), ("none", "dr_grpo")])
def test_group_advantages_agree_with_trl(tmp_path, scale_rewards: str, method: str) -> None:
    """TRL scores G = 4 completions of each prompt with the fixed rewards and normalises them."""
    trainer = _grpo_trainer(tmp_path, scale_rewards)
    prompts = [{"prompt": "w1 w2"}] * 4 + [{"prompt": "w3"}] * 4  # grouped, as TRL's sampler is
    with torch.no_grad():
        theirs = trainer._generate_and_score_completions(prompts)["advantages"]
    ours = pglib.group_advantages(REWARDS, method).flatten()
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)


def test_rloo_advantages_agree_with_trl(tmp_path) -> None:
    """RLOOTrainer's leave-one-out advantages (beta = 0, normalize_advantages=False)."""
    args = trl.RLOOConfig(
        **_common(tmp_path), per_device_train_batch_size=8, num_generations=4,
        max_completion_length=6, beta=0.0,
    )  # fmt: skip
    assert not args.normalize_advantages
    trainer = trl.RLOOTrainer(
        model=_model(),
        reward_funcs=lambda prompts, completions, **_: REWARDS.flatten().tolist(),
        args=args,
        train_dataset=datasets.Dataset.from_dict({"prompt": ["w1 w2", "w3"] * 4}),
        processing_class=_tokenizer(),
    )
    trainer.model.train()
    prompts = [{"prompt": "w1 w2"}] * 4 + [{"prompt": "w3"}] * 4
    with torch.no_grad():
        theirs = trainer._generate_and_score_completions(prompts)["advantages"]
    ours = pglib.group_advantages(REWARDS, "rloo").flatten()
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=1e-7)


def _grpo_batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0]] * 3 + [[1, 1, 1, 1, 1, 1]] + [[1, 0, 0, 0, 0, 0]] * 4)
    logp = -torch.rand(8, 6, generator=generator) * 3
    return {
        "logp": logp,
        # log-probs stay <= 0; ratios up to e^±0.6 or so, so that some terms clip
        "old_logp": (logp + 0.3 * torch.randn(8, 6, generator=generator)).clamp(max=0.0),
        "ref_logp": (logp + 0.5 * torch.randn(8, 6, generator=generator)).clamp(max=0.0),
        "advantages": torch.randn(8, generator=generator),
        "mask": mask,
    }


@pytest.mark.parametrize(
    ("aggregation", "loss_type"),
    [("sequence", "grpo"), ("token", "bnpo"), ("constant", "dr_grpo")],
)
@pytest.mark.parametrize("beta", [0.0, 0.04])
def test_grpo_loss_agrees_with_trl(tmp_path, aggregation: str, loss_type: str, beta: float) -> None:
    trainer = _grpo_trainer(tmp_path)
    trainer.loss_type, trainer.beta = loss_type, beta
    trainer.args.use_bias_correction_kl = False
    trainer.current_gradient_accumulation_steps = 1
    batch = _grpo_batch()
    logp_trl = batch["logp"].clone().requires_grad_(True)
    trainer._get_per_token_logps_and_entropies = lambda *_, **__: (
        logp_trl, torch.zeros_like(logp_trl), None
    )  # fmt: skip
    inputs = {
        "prompt_ids": torch.ones(8, 2, dtype=torch.long),
        "prompt_mask": torch.ones(8, 2, dtype=torch.long),
        "completion_ids": torch.ones(8, 6, dtype=torch.long),
        "completion_mask": batch["mask"],
        "advantages": batch["advantages"],
        "old_per_token_logps": batch["old_logp"],
        "ref_per_token_logps": batch["ref_logp"],
    }
    theirs = trainer._compute_loss(trainer.model, inputs)
    theirs.backward()

    logp = batch["logp"].clone().requires_grad_(True)
    ours = pglib.grpo_loss(
        logp, batch["old_logp"], batch["ref_logp"], batch["advantages"], batch["mask"] > 0,
        beta=beta, aggregation=aggregation, max_completion_length=6,
    )  # fmt: skip
    ours.backward()
    torch.testing.assert_close(ours.detach(), theirs.detach(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(logp.grad, logp_trl.grad, rtol=1e-5, atol=1e-7)


class _FixedLogProbs(torch.nn.Module):
    """Stands in for the policy: whatever the tokens, the summed log-prob of row i of the
    batch is ``sequence_logps[i]`` (all of it on the first completion token), or
    ``kl_logps[i]`` when called on ``kl_input_ids``, the KTO trainer's mismatched pairs."""

    def __init__(self, sequence_logps, kl_logps=None, kl_input_ids=None) -> None:
        super().__init__()
        self.sequence_logps, self.kl_logps, self.kl_input_ids = (
            sequence_logps,
            kl_logps,
            kl_input_ids,
        )

    def forward(self, input_ids: torch.Tensor, **_: object) -> types.SimpleNamespace:
        logps = self.kl_logps if input_ids is self.kl_input_ids else self.sequence_logps
        rest = torch.zeros(input_ids.shape[0], input_ids.shape[1] - 2)
        zeros = torch.zeros(input_ids.shape[0], input_ids.shape[1] - 1)
        return types.SimpleNamespace(
            log_probs=torch.cat([logps[:, None], rest], dim=1),
            entropy=zeros, mean_logits=zeros, is_top1=zeros.bool(), aux_loss=None,
        )  # fmt: skip


def _token_batch(rows: int) -> dict[str, torch.Tensor]:
    """Token ids and masks for ``rows`` sequences of one prompt and three completion tokens."""
    return {
        "input_ids": torch.full((rows, 4), 3),
        "attention_mask": torch.ones(rows, 4, dtype=torch.long),
        "completion_mask": torch.tensor([[0, 1, 1, 1]] * rows),
    }


PAIR_DATA = {"prompt": ["w1", "w2"], "chosen": [" w3", " w4"], "rejected": [" w5", " w6"]}
UNPAIRED_DATA = {"prompt": ["w1", "w2"], "completion": [" w3", " w4"], "label": [True, False]}


def test_dpo_loss_agrees_with_trl(tmp_path) -> None:
    generator = torch.Generator().manual_seed(2)
    policy = -torch.rand(2, 3, generator=generator) * 6  # chosen and rejected, B = 3
    ref = -torch.rand(2, 3, generator=generator) * 6
    args = trl.DPOConfig(**_common(tmp_path), per_device_train_batch_size=2, beta=0.3)
    trainer = trl.DPOTrainer(
        model=_model(),
        ref_model=_model(),  # given, or the trainer looks for one on the hub
        args=args,
        train_dataset=datasets.Dataset.from_dict(PAIR_DATA),
        processing_class=_tokenizer(),
    )
    trainer.model.train()
    trainer.precompute_ref_logps = True  # read the reference log-probs from the batch
    theirs_policy = policy.clone().requires_grad_(True)
    inputs = {**_token_batch(6), "ref_chosen_logps": ref[0], "ref_rejected_logps": ref[1]}
    theirs = trainer._compute_loss(_FixedLogProbs(theirs_policy.flatten()), inputs, False)
    theirs.backward()

    ours_policy = policy.clone().requires_grad_(True)
    ours, chosen, rejected = pglib.dpo_loss(ours_policy[0], ours_policy[1], ref[0], ref[1], 0.3)
    ours.backward()
    torch.testing.assert_close(ours.detach(), theirs.detach(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(ours_policy.grad, theirs_policy.grad, rtol=1e-5, atol=1e-8)
    metrics = trainer._metrics["train"]
    assert metrics["rewards/chosen"][-1] == pytest.approx(float(chosen.mean()), rel=1e-5)
    assert metrics["rewards/rejected"][-1] == pytest.approx(float(rejected.mean()), rel=1e-5)


@pytest.mark.parametrize("kl_shift", [2.0, -2.0])  # a positive and a clamped reference point
def test_kto_loss_agrees_with_trl(tmp_path, kl_shift: float) -> None:
    generator = torch.Generator().manual_seed(3)
    policy = -torch.rand(5, generator=generator) * 6
    ref = -torch.rand(5, generator=generator) * 6
    desirable = torch.tensor([True, False, True, True, False])
    kl_ref = -torch.rand(5, generator=generator) * 6 - 2.5
    kl_policy = (kl_ref + kl_shift * torch.rand(5, generator=generator)).clamp(max=0.0)
    args = trl.KTOConfig(
        **_common(tmp_path), per_device_train_batch_size=2, beta=0.2,
        desirable_weight=1.5, undesirable_weight=0.8,
    )  # fmt: skip
    trainer = trl.KTOTrainer(
        model=_model(),
        ref_model=_model(),
        args=args,
        train_dataset=datasets.Dataset.from_dict(UNPAIRED_DATA),
        processing_class=_tokenizer(),
    )
    trainer.model.train()
    trainer.precompute_ref_logps = True
    assert trainer.calculate_KL
    tokens = _token_batch(5)
    kl_ids = tokens["input_ids"].clone()
    inputs = {
        **tokens,
        "KL_input_ids": kl_ids,
        "KL_attention_mask": tokens["attention_mask"],
        "KL_completion_mask": tokens["completion_mask"],
        "label": desirable,
        "ref_logps": ref,
        "ref_KL_logps": kl_ref,
    }
    theirs_policy = policy.clone().requires_grad_(True)
    model = _FixedLogProbs(theirs_policy, kl_policy, kl_ids)
    theirs = trainer._compute_loss(model, inputs, False)
    theirs.backward()

    z0 = pglib.kto_reference_point(kl_policy, kl_ref)
    assert trainer._metrics["train"]["kl"][-1] == pytest.approx(float(z0), rel=1e-6, abs=0)
    assert (float(z0) > 0) == (kl_shift > 0)
    ours_policy = policy.clone().requires_grad_(True)
    ours, rewards = pglib.kto_loss(ours_policy, ref, desirable, z0, 0.2, 1.5, 0.8)
    ours.backward()
    torch.testing.assert_close(ours.detach(), theirs.detach(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(ours_policy.grad, theirs_policy.grad, rtol=1e-5, atol=1e-8)
    metrics = trainer._metrics["train"]
    assert metrics["rewards/chosen"][-1] == pytest.approx(
        float(rewards[desirable].mean()), rel=1e-5
    )
