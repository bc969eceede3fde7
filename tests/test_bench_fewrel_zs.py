"""The FewRel zero-shot benchmark's data: the pool of the 80 relations' sentences and RE-Matching's
class splits. Read from ../shared/data (skipped where it is absent); no model is involved."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.fewrel_zs import SPLITS, fewrel_pool, rematching_split, wiki80_pids
from knnie import DataError

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
pytestmark = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data absent")


@pytest.fixture(scope="module")
def pool() -> dict:
    return fewrel_pool(SHARED)


def test_the_pool_holds_80_relations_each_example_once(pool):
    assert len(pool) == 80 and all(pid.startswith("P") for pid in pool)
    examples = [ex for examples in pool.values() for ex in examples]
    assert all(ex.label == pid for pid, exs in pool.items() for ex in exs)
    keys = [(tuple(t.lower() for t in ex.tokens), ex.head, ex.tail) for ex in examples]
    assert len(set(keys)) == len(keys) == 22580
    assert min(map(len, pool.values())) == 164 and max(map(len, pool.values())) == 700
    assert all(ex.head.type is None and ex.tail.type is None for ex in examples)


@pytest.mark.parametrize("split", SPLITS)
@pytest.mark.parametrize("m", [5, 10, 15])
def test_each_split_parts_are_disjoint_and_cover_the_80(pool, m, split):
    train, dev, test = rematching_split(SHARED, m, split)
    assert (len(train), len(dev), len(test)) == (75 - m, 5, m)
    assert set(train) | set(dev) | set(test) == set(pool) and len(set(train + dev + test)) == 80


def test_an_unknown_split_is_refused():
    with pytest.raises(ValueError, match="split must be one of 40, 41, 42, 43, ori"):
        rematching_split(SHARED, 5, "44")


def test_a_wiki80_name_without_one_pid_is_refused(tmp_path):
    (tmp_path / "fewrel").mkdir()
    (tmp_path / "wiki80" / "opennre").mkdir(parents=True)
    (tmp_path / "fewrel" / "pid2name.json").write_text(
        '{"P1": ["twin", "a"], "P2": ["twin", "b"], "P3": ["single", "c"]}', encoding="utf-8")
    (tmp_path / "wiki80" / "opennre" / "wiki80_rel2id.json").write_text(
        '{"single": 0, "twin": 1, "absent": 2}', encoding="utf-8")
    with pytest.raises(DataError, match=r"wiki80_rel2id\.json: Wiki80 relation names with no or several P-ids in "
                                        r".*pid2name\.json: \{'twin': \['P1', 'P2'\], 'absent': \[\]\}"):
        wiki80_pids(tmp_path)
