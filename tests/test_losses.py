"""The built-in losses against direct, loop-based implementations of their formulas (docs/losses.md)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F

import bench
from bench.errors import ConfigError, DataError
from bench_plugins.losses import _impl
from bench_plugins.losses.distill import build_distill
from bench_plugins.losses.ntxent import build_ntxent
from bench_plugins.losses.triplet import build_triplet

IDS = [3, 7, 3, 1, 7, 7, 2, 3]  # duplicates: recording 3 and 7 appear several times


def _embeddings(seed: int, b: int = len(IDS), d: int = 6) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = F.normalize(torch.randn(b, d, generator=g), dim=-1)
    t = F.normalize(torch.randn(b, d, generator=g), dim=-1)
    return a, t


def _batch(ids: list[int], teacher_audio=None, teacher_text=None) -> SimpleNamespace:
    return SimpleNamespace(
        audio_ids=torch.tensor(ids, dtype=torch.long),
        teacher_audio=teacher_audio,
        teacher_text=teacher_text,
    )


# ---- loop references (float64 Python arithmetic, one element at a time) ----


def _cos(u: torch.Tensor, v: torch.Tensor) -> float:
    uu = [float(x) for x in u]
    vv = [float(x) for x in v]
    dot = sum(x * y for x, y in zip(uu, vv))
    return dot / (math.sqrt(sum(x * x for x in uu)) * math.sqrt(sum(y * y for y in vv)))


def _cos_matrix(a: torch.Tensor, t: torch.Tensor) -> list[list[float]]:
    return [[_cos(a[i], t[j]) for j in range(len(t))] for i in range(len(a))]


def _logsumexp(values: list[float]) -> float:
    top = max(values)
    return top + math.log(sum(math.exp(v - top) for v in values))


def ref_ntxent(a: torch.Tensor, t: torch.Tensor, ids: list[int], tau: float) -> float:
    b = len(ids)
    c = [[s / tau for s in row] for row in _cos_matrix(a, t)]
    total_dim0 = total_dim1 = 0.0
    n = 0
    for i in range(b):
        for j in range(b):
            if ids[i] == ids[j]:
                total_dim0 += c[i][j] - _logsumexp([c[k][j] for k in range(b)])
                total_dim1 += c[i][j] - _logsumexp([c[i][k] for k in range(b)])
                n += 1
    return -0.5 * (total_dim0 / n + total_dim1 / n)


def ref_distill(a, t, ids, ta, tt, tau, w_sup, w_dist) -> float:
    b, m = len(ids), ta.shape[0]
    c = [[s / tau for s in row] for row in _cos_matrix(a, t)]
    teacher = [_cos_matrix(ta[k], tt[k]) for k in range(m)]
    target = [[sum(teacher[k][i][j] for k in range(m)) / m / tau for j in range(b)] for i in range(b)]
    row = 0.0
    for i in range(b):
        lse_t = _logsumexp([target[i][k] for k in range(b)])
        lse_c = _logsumexp([c[i][k] for k in range(b)])
        row += -sum(math.exp(target[i][j] - lse_t) * (c[i][j] - lse_c) for j in range(b))
    col = 0.0
    for j in range(b):
        lse_t = _logsumexp([target[k][j] for k in range(b)])
        lse_c = _logsumexp([c[k][j] for k in range(b)])
        col += -sum(math.exp(target[i][j] - lse_t) * (c[i][j] - lse_c) for i in range(b))
    dist = 0.5 * (row / b + col / b)
    total = w_dist * dist
    if w_sup:
        total += w_sup * ref_ntxent(a, t, ids, tau)
    return total


def ref_triplet(a, t, ids, margin: float, negatives: str) -> float:
    b = len(ids)
    s = _cos_matrix(a, t)
    per_anchor = []
    for i in range(b):
        negs = [j for j in range(b) if ids[j] != ids[i]]
        if not negs:
            continue
        pos = s[i][i]
        anchor_loss = 0.0
        # audio anchor i vs caption negatives j: s[i][j]; caption anchor i vs audio negatives: s[j][i]
        for scores in ([s[i][j] for j in negs], [s[j][i] for j in negs]):
            hinges = [max(0.0, margin - pos + x) for x in scores]
            if negatives == "full":
                anchor_loss += sum(hinges) / len(hinges)
            elif negatives == "hard":
                anchor_loss += hinges[max(range(len(scores)), key=lambda k: scores[k])]
            elif negatives == "semihard":
                best = min(range(len(scores)), key=lambda k: (abs(scores[k] - pos), k))
                anchor_loss += hinges[best]
            else:
                raise AssertionError(negatives)
        per_anchor.append(anchor_loss)
    return sum(per_anchor) / len(per_anchor) if per_anchor else 0.0


# ---- NT-Xent ----


@pytest.mark.parametrize("tau", [0.05, 0.3])
def test_ntxent_matches_loop_formula_with_duplicate_ids(tau: float) -> None:
    a, t = _embeddings(0)
    a.requires_grad_(True)
    t.requires_grad_(True)
    loss = build_ntxent(tau=tau)(a, t, _batch(IDS))
    assert loss.dtype == torch.float32 and loss.dim() == 0
    assert loss.item() == pytest.approx(ref_ntxent(a.detach(), t.detach(), IDS, tau), abs=1e-5)
    loss.backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(t.grad).all()
    assert a.grad.abs().sum() > 0


def test_ntxent_duplicates_are_positives_not_negatives() -> None:
    a, t = _embeddings(1)
    with_dups = build_ntxent()(a, t, _batch(IDS)).item()
    all_distinct = build_ntxent()(a, t, _batch(list(range(len(IDS))))).item()
    assert with_dups != pytest.approx(all_distinct, abs=1e-4)


def test_ntxent_with_distinct_ids_is_the_clip_loss() -> None:
    a, t = _embeddings(2)
    tau = 0.05
    logits = a @ t.T / tau
    target = torch.arange(len(a))
    clip = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
    ours = build_ntxent(tau=tau)(a, t, _batch(list(range(len(a)))))
    assert ours.item() == pytest.approx(clip.item(), abs=1e-5)


def test_ntxent_stays_fp32_under_autocast() -> None:
    a, t = _embeddings(3, d=32)
    a16, t16 = a.bfloat16(), t.bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = build_ntxent()(a16, t16, _batch(IDS))
    assert loss.dtype == torch.float32
    expected = ref_ntxent(a16.float(), t16.float(), IDS, 0.05)
    # A bf16 matmul would be off by ~1e-2 in the logits (x20 from tau).
    assert loss.item() == pytest.approx(expected, abs=1e-5)


def test_ntxent_learnable_tau_starts_at_tau_gets_gradient_and_is_clamped() -> None:
    a, t = _embeddings(4)
    loss_fn = build_ntxent(tau=0.07, learnable_tau=True)
    params = list(loss_fn.parameters())
    assert len(params) == 1
    assert loss_fn.tau == pytest.approx(0.07, rel=1e-6)
    loss = loss_fn(a, t, _batch(IDS))
    assert loss.item() == pytest.approx(build_ntxent(tau=0.07)(a, t, _batch(IDS)).item(), abs=1e-6)
    loss.backward()
    assert params[0].grad is not None and params[0].grad.abs().item() > 0
    with torch.no_grad():
        params[0].fill_(50.0)
    assert loss_fn.tau == pytest.approx(0.01, rel=1e-6)
    assert build_ntxent().tau == 0.05 and not list(build_ntxent().parameters())


@pytest.mark.parametrize(
    "options, expected",
    [({"tau": 0}, "--set ntxent.tau=0: expected a float > 0"),
     ({"tau": -1.0}, "--set ntxent.tau=-1.0: expected a float > 0"),
     ({"tau": "abc"}, "--set ntxent.tau='abc': expected a float > 0"),
     ({"tau": float("nan")}, "--set ntxent.tau=nan: expected a float > 0"),
     ({"learnable_tau": "maybe"}, "--set ntxent.learnable_tau='maybe': expected true or false")],
)
def test_ntxent_rejects_bad_options(options: dict, expected: str) -> None:
    # Values are checked once, by the registry, against build_ntxent's annotations.
    with pytest.raises(ConfigError) as info:
        bench.load("loss", "ntxent", **options)
    assert str(info.value) == expected


# ---- triplet ----


@pytest.mark.parametrize("negatives", ["full", "semihard", "hard"])
@pytest.mark.parametrize("margin", [0.2, 1.0])
def test_triplet_matches_loop_formula(negatives: str, margin: float) -> None:
    a, t = _embeddings(5)
    a.requires_grad_(True)
    t.requires_grad_(True)
    loss = build_triplet(margin=margin, negatives=negatives)(a, t, _batch(IDS))
    expected = ref_triplet(a.detach(), t.detach(), IDS, margin, negatives)
    assert expected > 0
    assert loss.item() == pytest.approx(expected, abs=1e-5)
    loss.backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(t.grad).all()
    assert a.grad.abs().sum() > 0


def _same_recording_is_hardest() -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    # Items 0 and 1 are captions of one recording; caption 1 matches audio 0 better than its own
    # caption 0 does, so a same-recording "negative" would be the hardest and the closest.
    a = F.normalize(torch.tensor([[1.0, 0.0, 0.0], [0.9, 0.1, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), dim=-1)
    t = F.normalize(torch.tensor([[0.8, 0.6, 0.0], [1.0, 0.05, 0.0], [0.3, 1.0, 0.2], [0.2, 0.1, 1.0]]), dim=-1)
    return a, t, [5, 5, 6, 7]


@pytest.mark.parametrize("negatives", ["full", "semihard", "hard"])
def test_triplet_never_uses_same_recording_negatives(negatives: str) -> None:
    a, t, ids = _same_recording_is_hardest()
    loss = build_triplet(margin=0.2, negatives=negatives)(a, t, _batch(ids)).item()
    assert loss == pytest.approx(ref_triplet(a, t, ids, 0.2, negatives), abs=1e-6)
    # The case has teeth: treating items 0 and 1 as different recordings changes the loss.
    naive = build_triplet(margin=0.2, negatives=negatives)(a, t, _batch([0, 1, 6, 7])).item()
    assert naive > loss + 1e-3


def test_triplet_random_picks_uniformly_among_valid_negatives_only() -> None:
    a, t = _embeddings(18)
    scores = a @ t.T  # distinct random scores
    valid = ~_impl.same_recording(torch.tensor(IDS))
    margin = 10.0  # every hinge is active, so each value identifies its negative
    hinge = margin - scores.diagonal()[:, None] + scores
    torch.manual_seed(0)
    counts = torch.zeros(len(IDS), len(IDS))
    for _ in range(1000):
        picked = _impl._triplet_direction(scores, valid, margin, "random")
        match = (hinge - picked[:, None]).abs() < 1e-6
        assert (match.sum(dim=1) == 1).all()
        counts += match.float()
    assert (counts[~valid] == 0).all()
    freq = counts / counts.sum(dim=1, keepdim=True)
    expected = valid.float() / valid.float().sum(dim=1, keepdim=True)
    assert torch.allclose(freq, expected, atol=0.08)


def test_triplet_random_is_reproducible_from_the_global_seed() -> None:
    a, t = _embeddings(6)
    loss_fn = build_triplet(negatives="random", margin=1.0)
    torch.manual_seed(123)
    first = loss_fn(a, t, _batch(IDS)).item()
    torch.manual_seed(123)
    second = loss_fn(a, t, _batch(IDS)).item()
    values = {round(loss_fn(a, t, _batch(IDS)).item(), 6) for _ in range(20)}
    assert first == second
    assert len(values) > 1
    # The random choice lies between the easiest and the hardest negative.
    assert ref_triplet(a, t, IDS, 1.0, "hard") >= first


def test_triplet_without_any_negative_is_zero_and_differentiable() -> None:
    a, t = _embeddings(7, b=3)
    a.requires_grad_(True)
    loss = build_triplet(negatives="hard")(a, t, _batch([4, 4, 4]))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(a.grad, torch.zeros_like(a))


def test_triplet_rejects_unknown_strategy_listing_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as info:
        bench.load("loss", "triplet", negatives="hardest")
    assert str(info.value) == "--set triplet.negatives='hardest': expected one of 'random', 'full', 'semihard', 'hard'"
    with pytest.raises(ConfigError, match=r"--set triplet.margin=-0.1: expected a float >= 0"):
        bench.load("loss", "triplet", margin=-0.1)


# ---- distillation ----


def _teachers(seed: int, m: int, b: int = len(IDS), d: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    # Not normalised on purpose: the loss must normalise the stored teacher embeddings.
    return 3.0 * torch.randn(m, b, d, generator=g), 0.5 * torch.randn(m, b, d, generator=g)


@pytest.mark.parametrize("m,w_sup,w_dist,tau", [(1, 0.0, 1.0, 0.05), (3, 0.0, 1.0, 0.05), (3, 0.4, 0.6, 0.2)])
def test_distill_matches_loop_formula(m: int, w_sup: float, w_dist: float, tau: float) -> None:
    a, t = _embeddings(8)
    a.requires_grad_(True)
    t.requires_grad_(True)
    ta, tt = _teachers(9, m)
    loss = build_distill(w_sup=w_sup, w_dist=w_dist, tau=tau)(a, t, _batch(IDS, ta, tt))
    expected = ref_distill(a.detach(), t.detach(), IDS, ta, tt, tau, w_sup, w_dist)
    assert loss.item() == pytest.approx(expected, abs=1e-5)
    loss.backward()
    assert torch.isfinite(a.grad).all() and torch.isfinite(t.grad).all()
    assert a.grad.abs().sum() > 0


def test_distill_student_equal_to_single_teacher_is_a_stationary_minimum() -> None:
    # H(p, q) is minimised over q at q = p, with dH/dlogits = q - p = 0 there: a student whose
    # scores equal the teacher's gets zero gradient and the loss equals the targets' entropy.
    a, t = _embeddings(10)
    a.requires_grad_(True)
    t.requires_grad_(True)
    batch = _batch(IDS, 4.0 * a.detach()[None], 0.25 * t.detach()[None])
    loss_fn = build_distill(tau=0.05)
    loss = loss_fn(a, t, batch)
    loss.backward()
    assert a.grad.abs().max() < 1e-5 and t.grad.abs().max() < 1e-5
    logits = (a @ t.T / 0.05).detach()
    entropy = lambda dim: -(logits.softmax(dim) * logits.log_softmax(dim)).sum(dim).mean()  # noqa: E731
    assert loss.item() == pytest.approx(0.5 * (entropy(1) + entropy(0)).item(), abs=1e-5)
    # Moving the student away from the teacher raises the loss.
    a2, t2 = _embeddings(11)
    assert loss_fn(F.normalize(a.detach() + 0.3 * a2, dim=-1), t.detach(), batch).item() > loss.item() + 1e-3
    # An ensemble of identical teachers is the same as one.
    batch3 = _batch(IDS, batch.teacher_audio.repeat(3, 1, 1), batch.teacher_text.repeat(3, 1, 1))
    assert loss_fn(a, t, batch3).item() == pytest.approx(loss.item(), abs=1e-6)


def test_distill_w_sup_zero_ignores_audio_ids() -> None:
    a, t = _embeddings(12)
    ta, tt = _teachers(13, 2)
    loss_fn = build_distill(w_sup=0.0)
    same = loss_fn(a, t, _batch(IDS, ta, tt)).item()
    other = loss_fn(a, t, _batch(list(range(len(IDS))), ta, tt)).item()
    assert same == other
    mixed = build_distill(w_sup=0.5)
    assert mixed(a, t, _batch(IDS, ta, tt)).item() != pytest.approx(
        mixed(a, t, _batch(list(range(len(IDS))), ta, tt)).item(), abs=1e-4
    )


def test_distill_requires_teachers_and_says_how_to_get_them() -> None:
    loss_fn = build_distill()
    assert loss_fn.requires_teachers is True
    a, t = _embeddings(14)
    with pytest.raises(ConfigError, match="--teachers"):
        loss_fn(a, t, _batch(IDS))
    ta, tt = _teachers(15, 2, b=len(IDS) - 1)
    with pytest.raises(DataError, match="teacher"):
        loss_fn(a, t, _batch(IDS, ta, tt))
    with pytest.raises(ConfigError, match="w_sup"):
        build_distill(w_sup=0.0, w_dist=0.0)


def test_distill_stays_fp32_under_autocast_with_half_teachers() -> None:
    a, t = _embeddings(16, d=32)
    ta, tt = _teachers(17, 2, d=32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = build_distill()(a.bfloat16(), t.bfloat16(), _batch(IDS, ta.half(), tt.half()))
    assert loss.dtype == torch.float32
    expected = ref_distill(a.bfloat16().float(), t.bfloat16().float(), IDS, ta.half().float(), tt.half().float(),
                           0.05, 0.0, 1.0)
    assert loss.item() == pytest.approx(expected, abs=1e-4)
