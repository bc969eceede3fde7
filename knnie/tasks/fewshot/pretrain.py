"""Two-stage pre-training of a relation encoder for few-shot use (after TKRE, Guo et al., IJCAI 2025).

1. Masked Span Language Modelling (MSLM): on the sentence with typed entity markers (so the marker
   embeddings learn), whole spans are masked and predicted by an MLM head tied to the input
   embeddings: each entity span with p 0.5, the relation-indicative span with p 0.8 (the trigger an
   LLM explanation names, else the words between the entities) and every other word with p 0.2.
   As in TKRE's code every masked sub-word becomes [MASK] (no BERT 80/10/10 replacement); unlike
   it, a span or word is masked whole, never some of its sub-words. Markers are never masked.
2. Span-Level Contrastive Learning (SCL): the relation vectors the representer gives kNN and
   prototypes (head start marker ⊕ tail start marker), supervised InfoNCE over a batch: examples
   of the same relation are positives, the others negatives; a sampler puts several examples of
   each of several relations in every batch.

The result is a Hugging Face encoder directory (`RelationRepresenter.save`, the MLM head left out)
with `pretraining.json` beside the weights: the settings, data sizes and losses.
"""

from __future__ import annotations

import logging
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from knnie.data import RelationExample, read_relations
from knnie.data.files import numbered_lines, parse_json, read_text
from knnie.encoders.batching import batch_order, padded
from knnie.encoders.device import resolve_device, to_device
from knnie.encoders.loading import DEFAULT_ENCODER
from knnie.encoders.markers import TYPED, encode_marked, first_few
from knnie.encoders.representer import RelationRepresenter
from knnie.errors import DataError, KnnieError, check_count
from knnie.io import atomic_dir, read_json, write_json
from knnie.tasks.fewshot.generate import example_key
from knnie.tasks.training import TrainConfig, fit, seed_everything

log = logging.getLogger(__name__)

CONFIG_FILE = "pretraining.json"  # beside the encoder's weights: how it was pre-trained
IGNORE = -100  # the label of a sub-word that is not predicted
EVAL_SIZE = 128  # examples the loss before and after each stage is measured on (fixed masks and batches)


@dataclass
class PretrainConfig:
    """The settings of both stages; refused when made if they could not train."""

    mslm_epochs: int = 3
    scl_epochs: int = 3
    lr: float = 5e-5
    head_lr: float = 1e-3  # the new MLM head's transform (its decoder is the tied input embeddings)
    batch_size: int = 32
    seed: int = 42
    max_length: int = 128
    p_relation: float = 0.8  # TKRE's masking probabilities
    p_entity: float = 0.5
    p_other: float = 0.2
    temperature: float = 0.1  # TKRE's τ
    per_relation: int = 4  # examples of one relation together in an SCL batch
    max_examples: int | None = None  # a seeded subset of the data, every relation kept (synthetic examples apart)

    def __post_init__(self) -> None:
        check_count(self.mslm_epochs, 0, "mslm_epochs")
        check_count(self.scl_epochs, 0, "scl_epochs")
        if not self.mslm_epochs and not self.scl_epochs:
            raise KnnieError("both stages have 0 epochs: there is nothing to pre-train")
        for name in ("p_relation", "p_entity", "p_other"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise KnnieError(f"{name} must be a probability in [0, 1], not {getattr(self, name)!r}")
        if not self.temperature > 0:
            raise KnnieError(f"temperature must be > 0, not {self.temperature!r}")
        check_count(self.per_relation, 2, "per_relation")  # an example needs a positive in its batch
        if self.scl_epochs and self.batch_size < 2 * self.per_relation:
            raise KnnieError(f"batch_size {self.batch_size} holds fewer than two relations of {self.per_relation} "
                             "examples each: SCL needs negatives; raise batch_size or lower per_relation")
        if self.max_examples is not None:
            check_count(self.max_examples, 1, "max_examples")
        self.stage(1)  # lr, batch size, seed: checked as training settings

    def stage(self, epochs: int) -> TrainConfig:
        """The fine-tuning settings of one stage."""
        return TrainConfig(epochs=epochs, batch_size=self.batch_size, lr=self.lr, head_lr=self.head_lr,
                           seed=self.seed)


# ---------------------------------------------------------------- stage 1: masked span language modelling


@dataclass
class MaskUnits:
    """One example as MSLM sees it: its marked sub-word ids and the groups of positions that are
    masked together, each with its probability (an entity span, the relation span, another word)."""

    input_ids: list[int]
    groups: list[tuple[float, list[int]]]


def relation_tokens(ex: RelationExample, trigger: list[int] | None) -> list[int]:
    """The relation-indicative tokens: the trigger's when there is one, else those between the entities."""
    if trigger:
        return trigger
    first, second = sorted((ex.head, ex.tail), key=lambda s: s.start)
    return list(range(first.end, second.start))


def mask_units(tokenizer, ex: RelationExample, trigger: list[int] | None, config: PretrainConfig) -> MaskUnits:
    """The marked sub-words of `ex` and its masking groups: head and tail (p_entity each), the relation
    span (p_relation), every other word (p_other); markers and the tokenizer's specials never."""
    marked = TYPED.mark(ex, set())
    ids, word_ids, _, _, _ = encode_marked(tokenizer, ex, marked, config.max_length)
    relation = set(relation_tokens(ex, trigger))
    groups: dict[Any, list[int]] = defaultdict(list)
    for pos, w in enumerate(word_ids):
        token = None if w is None else marked.origins[w]
        if token is None:
            continue
        if ex.head.start <= token < ex.head.end:
            groups["head"].append(pos)
        elif ex.tail.start <= token < ex.tail.end:
            groups["tail"].append(pos)
        elif token in relation:
            groups["relation"].append(pos)
        else:
            groups[token].append(pos)
    p = {"head": config.p_entity, "tail": config.p_entity, "relation": config.p_relation}
    return MaskUnits(ids, [(p.get(key, config.p_other), positions) for key, positions in groups.items()])


def draw_mask(units: MaskUnits, rng: random.Random, mask_id: int) -> tuple[list[int], list[int]]:
    """Input ids with the drawn groups masked, and the labels: the original id where masked, else IGNORE."""
    ids, labels = list(units.input_ids), [IGNORE] * len(units.input_ids)
    for p, positions in units.groups:
        if rng.random() < p:
            for pos in positions:
                labels[pos], ids[pos] = ids[pos], mask_id
    return ids, labels


class MLMHead(nn.Module):
    """BERT's prediction head (dense + GELU + LayerNorm, then a decoder tied to the input embeddings
    plus a bias), made new for an encoder that ships none. The tied weight is read, not owned: it
    stays a parameter of the encoder alone, and the head is never saved."""

    def __init__(self, embeddings: nn.Embedding, hidden_size: int) -> None:
        super().__init__()
        dim = embeddings.weight.shape[1]
        self.transform, self.norm = nn.Linear(hidden_size, dim), nn.LayerNorm(dim, eps=1e-12)
        self.bias = nn.Parameter(torch.zeros(embeddings.weight.shape[0]))
        self.tied = (embeddings,)  # a tuple: not registered as a submodule

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return F.linear(self.norm(F.gelu(self.transform(hidden))), self.tied[0].weight, self.bias)


def mslm_batches(units: list[MaskUnits], batch_size: int, seed: int, mask_id: int, pad_id: int,
                 shuffle: bool = True) -> list[tuple[list[int], dict[str, torch.Tensor]]]:
    """Length-bucketed batches with masks drawn afresh from `seed` (one seed per epoch)."""
    rng, out = random.Random(seed), []
    for idx in batch_order([len(u.input_ids) for u in units], batch_size, shuffle, seed):
        drawn = [draw_mask(units[i], rng, mask_id) for i in idx]
        ids, mask = padded([d[0] for d in drawn], pad_id)
        labels, _ = padded([d[1] for d in drawn], IGNORE)
        out.append((idx, {"input_ids": ids, "attention_mask": mask, "labels": labels}))
    return out


def mslm_loss(encoder: nn.Module, head: MLMHead, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Cross-entropy of the masked sub-words (the head runs on those positions only); 0 when none is masked."""
    hidden = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    where = batch["labels"] != IGNORE
    if not where.any():
        return hidden.sum() * 0.0
    return F.cross_entropy(head(hidden[where]), batch["labels"][where])


# ---------------------------------------------------------------- stage 2: span-level contrastive learning


def supervised_infonce(vectors: torch.Tensor, labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Supervised InfoNCE (SupCon): for each anchor with a positive, the mean over its positives of
    −log softmax of the cosine similarity / τ over all the other vectors of the batch."""
    z = F.normalize(vectors, dim=-1)
    self_pair = torch.eye(len(z), dtype=torch.bool, device=z.device)
    sim = (z @ z.T / temperature).masked_fill(self_pair, float("-inf"))
    log_prob = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    positive = (labels[:, None] == labels[None, :]) & ~self_pair
    anchors = positive.any(1)
    if not anchors.any():
        raise KnnieError("an SCL batch in which no example has another of its relation: nothing to contrast")
    per_anchor = log_prob.masked_fill(~positive, 0.0).sum(1)[anchors] / positive.sum(1)[anchors]
    return -per_anchor.mean()


def relation_batches(labels: list[str], per_relation: int, batch_size: int, seed: int) -> list[list[int]]:
    """Example indices of an epoch's SCL batches (a P×K sampler): each relation's examples shuffled and cut into
    groups of `per_relation`; each batch takes one group from each of the batch_size // per_relation relations
    with the most groups left (ties drawn at random), so that no relation is left over alone. Every batch holds two
    relations or more; when a single relation has groups left they are left out of the epoch (they have no
    negatives). An example whose relation has no other example in its batch is a negative only."""
    rng = random.Random(seed)
    by_relation: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_relation[label].append(i)
    left: dict[str, list[list[int]]] = {}
    for label in sorted(by_relation):
        idx = by_relation[label]
        rng.shuffle(idx)
        left[label] = [idx[s : s + per_relation] for s in range(0, len(idx), per_relation)]
    width = max(2, batch_size // per_relation)
    batches = []
    while len(left) >= 2:
        chosen = sorted(left, key=lambda label: (len(left[label]), rng.random()), reverse=True)[:width]
        batches.append([i for label in chosen for i in left[label].pop(0)])
        left = {label: groups for label, groups in left.items() if groups}
    return batches


def check_relations(examples: list[RelationExample], warn: bool = True) -> None:
    """Refuse data SCL cannot learn from: unlabelled examples, or fewer than two relations with two examples;
    with `warn`, say which relations have a single example."""
    unlabelled = [ex.source or f"example {i}" for i, ex in enumerate(examples) if ex.label is None]
    if unlabelled:
        raise DataError(f"{len(unlabelled)} examples have no relation label; contrastive learning needs every "
                        f"example labelled: {first_few(unlabelled)}")
    counts: dict[str, int] = defaultdict(int)
    for ex in examples:
        counts[ex.label] += 1
    usable = sorted(label for label, n in counts.items() if n >= 2)
    if len(usable) < 2:
        raise DataError(f"contrastive learning needs at least two relations with two examples or more each "
                        f"(positives and negatives); the data has {len(counts)} relation(s) "
                        f"({', '.join(sorted(counts))}), {len(usable)} of them with two examples or more")
    single = sorted(set(counts) - set(usable))
    if single and warn:
        log.warning("%d relations have a single example, which has no positive: in SCL it is a negative only (%s)",
                    len(single), first_few(single))


# ---------------------------------------------------------------- explanations: where the relation spans are


def read_triggers(path: Path, examples: list[RelationExample]) -> dict[tuple, list[int]]:
    """The trigger tokens of the examples an explanations file gives a valid trigger, by `example_key`
    (tokens whose characters meet the trigger's, outside head and tail). A row naming no example of
    `examples`, or a trigger that is not the text at its offsets, is an error naming its line."""
    index = {example_key(ex.to_row()): i for i, ex in enumerate(examples)}
    out: dict[int, list[int]] = {}
    for line, text in numbered_lines(read_text(path, "explanations file")):
        if not text.strip():
            continue
        row = parse_json(text, path, line)
        try:
            key = example_key(row)
        except (KeyError, TypeError, IndexError):
            raise DataError("needs text, head {start, end} and tail {start, end} as `generate` writes them",
                            path=path, line=line) from None
        if key not in index:
            raise DataError(f"names no example of the data (text {str(key[0])[:60]!r}, head {key[1]}-{key[2]}, "
                            f"tail {key[3]}-{key[4]}): were the explanations made for another data file?",
                            path=path, line=line)
        trigger = row.get("trigger")
        if trigger is None:
            continue
        ex = examples[index[key]]
        text, offsets = ex.located()
        start, end = (trigger.get("start"), trigger.get("end")) if isinstance(trigger, dict) else (None, None)
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)
                and text[start:end] == trigger["text"]):
            raise DataError(f"trigger {trigger!r} is not the text at its offsets", path=path, line=line,
                            field="trigger")
        tokens = [i for i, (a, b) in enumerate(offsets) if a < end and start < b
                  and not (ex.head.start <= i < ex.head.end or ex.tail.start <= i < ex.tail.end)]
        if tokens:
            out[key] = tokens
    return out


# ---------------------------------------------------------------- the two stages


@dataclass
class StageReport:
    """One stage's run: loss on the fixed evaluation sample before and after, per-epoch training losses."""

    examples: int
    epochs: int
    loss_before: float
    loss_after: float = float("nan")
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def subset(examples: list[RelationExample], n: int | None, seed: int) -> list[RelationExample]:
    """At most `n` examples, seeded, every relation as equally kept as it can be (round robin over relations)."""
    if n is None or n >= len(examples):
        return examples
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    rank, seen = {}, defaultdict(int)
    for i in order:
        rank[i], seen[examples[i].label] = seen[examples[i].label], seen[examples[i].label] + 1
    return [examples[i] for i in sorted(sorted(order, key=rank.__getitem__)[:n])]


@torch.no_grad()
def mean_loss(model: nn.Module, batches: list[tuple[list[int], dict[str, torch.Tensor]]],
              loss: Callable[[list[int], dict[str, torch.Tensor]], torch.Tensor]) -> float:
    """The example-weighted mean loss over fixed batches, in eval mode."""
    model.eval()
    device = next(model.parameters()).device
    total = sum(loss(idx, to_device(batch, device)).item() * len(idx) for idx, batch in batches)
    return total / sum(len(idx) for idx, _ in batches)


def run_mslm(representer: RelationRepresenter, examples: list[RelationExample], triggers: dict[tuple, list[int]],
             config: PretrainConfig, show_progress: bool = False) -> StageReport:
    """Stage 1 on `representer`'s encoder, in place; the MLM head is made here and dropped after."""
    tokenizer, encoder = representer.tokenizer, representer.encoder
    if tokenizer.mask_token_id is None:
        raise KnnieError("the encoder's tokenizer has no mask token: masked span language modelling needs one")
    units = [mask_units(tokenizer, ex, triggers.get(example_key(ex.to_row())), config) for ex in examples]
    head = MLMHead(encoder.get_input_embeddings(), encoder.config.hidden_size).to(representer.device)
    model = nn.ModuleDict({"encoder": encoder, "head": head})
    mask_id, pad_id = tokenizer.mask_token_id, tokenizer.pad_token_id

    def loss(_: list[int], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return mslm_loss(encoder, head, batch)

    probe = mslm_batches(units[:: max(1, len(units) // EVAL_SIZE)][:EVAL_SIZE], config.batch_size, config.seed,
                         mask_id, pad_id, shuffle=False)
    report = StageReport(len(units), config.mslm_epochs, mean_loss(model, probe, loss))
    start = time.perf_counter()
    report.history = fit(model, encoder, head, len(units),
                         lambda epoch: mslm_batches(units, config.batch_size, config.seed + epoch, mask_id, pad_id),
                         loss, None, config.stage(config.mslm_epochs), show_progress)
    report.seconds, report.loss_after = time.perf_counter() - start, mean_loss(model, probe, loss)
    return report


def run_scl(representer: RelationRepresenter, examples: list[RelationExample], config: PretrainConfig,
            show_progress: bool = False) -> StageReport:
    """Stage 2 on `representer`, in place: supervised InfoNCE over its relation vectors."""
    check_relations(examples)
    units, _ = representer.prepare(examples)
    names = [ex.label for ex in examples]
    ids = {label: i for i, label in enumerate(sorted(set(names)))}
    gold = torch.tensor([ids[label] for label in names], device=representer.device)

    def batches(seed: int) -> list[tuple[list[int], dict[str, torch.Tensor]]]:
        return [(idx, representer.tensors(units, idx))
                for idx in relation_batches(names, config.per_relation, config.batch_size, seed)]

    def loss(idx: list[int], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return supervised_infonce(representer(**batch), gold[idx], config.temperature)

    sample = list(range(0, len(names), max(1, len(names) // EVAL_SIZE)))[:EVAL_SIZE]
    probe = [(idx, representer.tensors(units, idx)) for idx in (
        [sample[j] for j in b] for b in relation_batches([names[i] for i in sample], config.per_relation,
                                                          config.batch_size, config.seed))]
    report = StageReport(len(examples), config.scl_epochs, mean_loss(representer, probe, loss))
    used = sum(len(b) for b in relation_batches(names, config.per_relation, config.batch_size, config.seed))
    start = time.perf_counter()
    report.history = fit(representer, representer.encoder, nn.ModuleList(), used,
                         lambda epoch: batches(config.seed + epoch), loss, None, config.stage(config.scl_epochs),
                         show_progress)
    report.seconds, report.loss_after = time.perf_counter() - start, mean_loss(representer, probe, loss)
    return report


def pretrain(representer: RelationRepresenter, examples: list[RelationExample], config: PretrainConfig,
             triggers: dict[tuple, list[int]] | None = None, show_progress: bool = False,
             on_stage: Callable[[str, StageReport], None] | None = None) -> dict[str, StageReport]:
    """Both stages (those with epochs) on `representer`, in place; `triggers` (token indices by
    `example_key`) steer MSLM's relation spans. `on_stage` hears of each stage as it ends."""
    seed_everything(config.seed)
    if config.scl_epochs:
        check_relations(examples, warn=False)  # before any stage runs: a bad data file fails at once
        representer.too_long(examples, refuse=True)
    reports = {}
    for name, epochs, run in (("mslm", config.mslm_epochs, lambda: run_mslm(representer, examples, triggers or {},
                                                                            config, show_progress)),
                              ("scl", config.scl_epochs, lambda: run_scl(representer, examples, config,
                                                                         show_progress))):
        if epochs:
            reports[name] = run()
            log.info("%s: %s", name, reports[name])
            if on_stage is not None:
                on_stage(name, reports[name])
    return reports


def pretrain_encoder(data: Path, out: Path, config: PretrainConfig, encoder: str = DEFAULT_ENCODER,
                     synthetic: Path | None = None, explanations: Path | None = None, device: str = "auto",
                     show_progress: bool = False, overwrite: bool = False,
                     on_stage: Callable[[str, StageReport], None] | None = None) -> dict[str, Any]:
    """Read the data, pre-train a fresh typed-marker representer of `encoder` and save it atomically to `out`
    with its record (pretraining.json, also returned). The synthetic examples join the (sub-sampled) data in
    both stages; explanations only steer MSLM's masks."""
    check_out(out, overwrite)
    full = read_relations(data)
    real = subset(full, config.max_examples, config.seed)
    generated = read_relations(synthetic) if synthetic is not None else []
    examples = real + generated
    if config.scl_epochs:
        check_relations(examples, warn=False)  # before the encoder is loaded
    # explanations may name any example of the data, in the subset or not
    triggers = read_triggers(explanations, full + generated) if explanations is not None else {}
    steered = sum(example_key(ex.to_row()) in triggers for ex in examples)
    seed_everything(config.seed)  # the new marker embeddings and MLM head too
    representer = RelationRepresenter.fresh(encoder, markers="typed", entity_types=[], max_length=config.max_length)
    representer.to(resolve_device(device))
    start = time.perf_counter()
    reports = pretrain(representer, examples, config, triggers, show_progress, on_stage)
    base = Path(str(encoder)) / CONFIG_FILE  # continued from an encoder pre-trained here: its record too
    record = {"config": asdict(config), "base_encoder": str(encoder), "markers": "typed",
              "base_record": read_json(base, "pre-training record") if base.is_file() else None,
              "data": {"path": str(data), "examples": len(real), "relations": len({ex.label for ex in real}),
                       "synthetic": None if synthetic is None else str(synthetic), "synthetic_examples": len(generated),
                       "explanations": None if explanations is None else str(explanations),
                       "triggers": len(triggers), "triggers_used": steered},
              "stages": {name: asdict(r) for name, r in reports.items()},
              "seconds": round(time.perf_counter() - start, 1), "torch_threads": torch.get_num_threads()}
    representer.to("cpu")
    with atomic_dir(out) as tmp:
        representer.save(tmp)
        write_json(tmp / CONFIG_FILE, record)
    return record


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse to replace a non-empty directory that is not a pre-trained encoder, unless told to."""
    if out.exists() and not out.is_dir():
        raise KnnieError(f"{out} is a file; an encoder is saved as a directory")
    if out.is_dir() and any(out.iterdir()) and not (out / CONFIG_FILE).is_file() and not overwrite:
        raise KnnieError(f"{out} is a non-empty directory that is not a pre-trained encoder; save elsewhere, or "
                         "pass --overwrite to replace everything in it")


def read_record(path: Path) -> dict[str, Any]:
    """The pretraining.json of an encoder directory `pretrain_encoder` wrote."""
    return read_json(Path(path) / CONFIG_FILE, "pre-training record")
