"""Memorisation check: exact nearest neighbours against brute force; copies score 1, fresh draws ≈ 0.5."""

from __future__ import annotations

import pytest
import torch

from genlab.metrics.memorization import memorisation, nearest_neighbours


def brute_force(queries: torch.Tensor, reference: torch.Tensor, k: int, exclude_self: bool = False):
    """Every pair's distance in a Python loop, float64."""
    q, r = queries.flatten(1).double(), reference.flatten(1).double()
    rows = []
    for i, a in enumerate(q):
        pairs = sorted(
            ((a - b).pow(2).sum().sqrt().item(), j) for j, b in enumerate(r) if not (exclude_self and i == j)
        )
        rows.append(pairs[:k])
    return torch.tensor([[j for _, j in row] for row in rows]), torch.tensor(
        [[d for d, _ in row] for row in rows], dtype=torch.float64
    )


@pytest.mark.parametrize("exclude_self", [False, True])
def test_nearest_neighbours_match_brute_force_across_blocks(exclude_self):
    torch.manual_seed(0)
    reference = torch.randn(23, 1, 3, 4)  # pixels of tiny images, flattened to 12 features
    queries = reference if exclude_self else torch.randn(17, 1, 3, 4)
    indices, distances = nearest_neighbours(queries, reference, k=3, exclude_self=exclude_self, batch_size=5)
    want_i, want_d = brute_force(queries, reference, 3, exclude_self)
    assert torch.equal(indices, want_i)
    torch.testing.assert_close(distances, want_d, rtol=1e-9, atol=1e-9)
    if exclude_self:
        assert not (indices == torch.arange(23)[:, None]).any()


def test_copies_of_training_images_score_one():
    torch.manual_seed(1)
    train = torch.randn(300, 64)
    picked = torch.randperm(300)[:100]
    report = memorisation(train[picked], train, test=torch.randn(200, 64), k=3)
    assert report.share == 1.0
    assert torch.equal(report.indices[:, 0], picked)
    assert report.distances[:, 0].max() < 1e-6 < report.threshold
    assert report.baseline_share == pytest.approx(0.5, abs=0.1)


def test_fresh_draws_score_like_real_test_images():
    torch.manual_seed(2)
    centres = torch.randn(5, 8) * 4  # Gaussian blobs in 8-D

    def draw(n: int) -> torch.Tensor:
        return centres[torch.randint(0, 5, (n,))] + torch.randn(n, 8)

    report = memorisation(draw(2000), draw(1300), test=draw(1000), k=1, batch_size=512)
    assert report.share == pytest.approx(0.5, abs=0.05)
    assert report.baseline_share == pytest.approx(0.5, abs=0.05)
    assert report.indices.shape == report.distances.shape == (2000, 1)


def test_threshold_is_the_median_train_to_train_distance_and_half_copies_score_three_quarters():
    torch.manual_seed(3)
    train = torch.randn(41, 6)
    _, own = brute_force(train, train, 1, exclude_self=True)
    fresh = torch.randn(200, 6)
    report = memorisation(torch.cat([train[:40].repeat(5, 1), fresh]), train, batch_size=16)
    assert report.threshold == pytest.approx(own[:, 0].median().item(), rel=1e-12)
    fresh_share = (brute_force(fresh, train, 1)[1][:, 0] < report.threshold).double().mean().item()
    assert report.share == pytest.approx((200 + 200 * fresh_share) / 400, abs=1e-12)
    assert report.baseline_share is None


def test_bad_inputs():
    with pytest.raises(ValueError, match="12 features per sample but the reference has 8"):
        nearest_neighbours(torch.randn(3, 12), torch.randn(5, 8))
    with pytest.raises(ValueError, match="k=5 nearest neighbours asked of a reference set with 4 candidates"):
        nearest_neighbours(torch.randn(5, 2), torch.randn(5, 2), k=5, exclude_self=True)
    with pytest.raises(ValueError, match="at least 2 training samples"):
        memorisation(torch.randn(3, 2), torch.randn(1, 2))
