"""CycleGAN's image pool: the official buffer rule (store while filling, then swap with p = 1/2)."""

from __future__ import annotations

import io

import pytest
import torch

from genlab.errors import GenlabError
from genlab.models.image_pool import ImagePool


def tagged(tags: range | list[int]) -> torch.Tensor:
    """Images (N, 1, 2, 2) whose every pixel holds their tag, so a returned image names itself."""
    return torch.tensor(list(tags), dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).clone()


def tags_of(images: torch.Tensor) -> list[int]:
    return images[:, 0, 0, 0].long().tolist()


def test_while_filling_every_fake_is_stored_and_returned():
    pool = ImagePool(size=5)
    generator = torch.Generator().manual_seed(0)
    for batch in (range(0, 2), range(2, 4), range(4, 5)):
        fake = tagged(batch).requires_grad_()
        out = pool.query(fake, generator)
        assert tags_of(out) == list(batch)
        assert not out.requires_grad
    assert len(pool) == 5
    assert tags_of(pool.images) == [0, 1, 2, 3, 4]


def test_once_full_half_of_the_fakes_are_swapped_for_stored_ones():
    pool = ImagePool(size=50)
    generator = torch.Generator().manual_seed(1)
    pool.query(tagged(range(50)), generator)
    seen = list(range(50))
    returned: list[int] = []
    new_returned = 0
    for start in range(50, 2050, 10):
        batch = list(range(start, start + 10))
        out = tags_of(pool.query(tagged(batch), generator))
        for tag, new in zip(out, batch, strict=True):
            if tag == new:
                new_returned += 1
            else:
                assert tag < new  # a stored fake: from an earlier query or earlier in this batch
        seen += batch
        returned += out
        # Every fake is either in the pool or has been returned, exactly once.
        assert sorted(returned + tags_of(pool.images)) == sorted(seen[50:] + list(range(50)))
        assert len(pool) == 50
    # 2000 fakes, each returned as is with p = 1/2: 1000 ± 22 (1 s.d.); ±112 is 5 s.d.
    assert 888 <= new_returned <= 1112


def test_the_same_generator_seed_gives_the_same_answers():
    def run(seed: int) -> list[int]:
        pool, generator = ImagePool(size=4), torch.Generator().manual_seed(seed)
        return [
            tag for start in range(0, 40, 4) for tag in tags_of(pool.query(tagged(range(start, start + 4)), generator))
        ]

    assert run(3) == run(3)
    assert run(3) != run(4)


def test_state_round_trip_continues_with_the_same_pool():
    pool, generator = ImagePool(size=6), torch.Generator().manual_seed(5)
    for start in range(0, 12, 3):
        pool.query(tagged(range(start, start + 3)), generator)
    buffer = io.BytesIO()
    torch.save(pool.state_dict(), buffer)
    buffer.seek(0)
    resumed = ImagePool(size=6)
    resumed.load_state_dict(torch.load(buffer))
    assert torch.equal(resumed.images, pool.images)
    state = generator.get_state()
    expected = pool.query(tagged(range(100, 110)), generator)
    got = resumed.query(tagged(range(100, 110)), torch.Generator().set_state(state))
    assert torch.equal(got, expected)
    empty = ImagePool(size=6)
    empty.load_state_dict(ImagePool(size=6).state_dict())
    assert len(empty) == 0
    with pytest.raises(GenlabError, match="holds up to 6 images but this model's pool 50"):
        ImagePool(size=50).load_state_dict(pool.state_dict())


def test_size_zero_returns_the_input_and_negative_sizes_are_refused():
    pool = ImagePool(size=0)
    fake = tagged(range(3))
    assert torch.equal(pool.query(fake), fake)
    assert len(pool) == 0
    with pytest.raises(GenlabError, match="size=-1 must be >= 0"):
        ImagePool(size=-1)
